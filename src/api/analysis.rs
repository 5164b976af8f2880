//! Analysis routes under `/datasets/{id}/...`: parse the common filters and the analysis's
//! own parameters, run the pure analysis off the async runtime, apply the tier's disclosure
//! rules, and answer GeoJSON with the summary as a foreign member. Results are cached per
//! snapshot, caller tier and query.

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Query};
use super::features::round;
use super::filters::parse_filter;
use super::protect::{Guard, Protection};
use super::render::{
    FeatureWriter, OutlineReader, Rendered, cached_rendered, geojson_response, outlines, write_f64,
};
use crate::analysis::h3grid::IncidentCells;
use crate::analysis::{emerging, hotspot};
use crate::crs::{Crs, Transformer};
use crate::index::{DatasetSnapshot, Filter, Incidents};
use crate::model::Tier;
use crate::model::{DatasetId, FINE_RES};
use crate::privacy::Principal;
use crate::privacy::disclosure::{
    CellRules, DisclosureError, hidden_counts_with, is_sensitive, rules_for,
};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use h3o::CellIndex;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The filters every analysis takes.
pub const COMMON: &[&str] = &["datetime", "category", "source", "bbox", "bbox-crs"];

impl From<DisclosureError> for ApiError {
    fn from(e: DisclosureError) -> Self {
        let code = match e {
            DisclosureError::ResolutionTooFine { .. } => "tier_resolution",
            DisclosureError::BinTooFine { .. } => "tier_time_bin",
        };
        ApiError::new(StatusCode::FORBIDDEN, code, e.to_string())
    }
}

/// Deserialises the analysis's own parameters (all but [`COMMON`]) into `P`, whose
/// `deny_unknown_fields` turns an unknown parameter into a 400.
pub fn own_params<P: serde::de::DeserializeOwned>(q: &Query) -> ApiResult<P> {
    own_params_except(q, &[])
}

/// As [`own_params`], leaving out the route's own extra parameters `extra` as well.
pub fn own_params_except<P: serde::de::DeserializeOwned>(
    q: &Query,
    extra: &[&str],
) -> ApiResult<P> {
    let rest: Vec<&(String, String)> =
        q.0.iter()
            .filter(|(k, _)| !COMMON.contains(&k.as_str()) && !extra.contains(&k.as_str()))
            .collect();
    let mut seen = std::collections::HashSet::new();
    if let Some((k, _)) = rest.iter().find(|(k, _)| !seen.insert(k.as_str())) {
        return Err(ApiError::bad_request(
            "repeated_parameter",
            format!("query parameter {k:?} is given twice"),
        ));
    }
    let text = serde_urlencoded::to_string(&rest).map_err(ApiError::internal)?;
    serde_urlencoded::from_str(&text).map_err(|e| {
        let msg = e.to_string();
        let code = if msg.contains("unknown field") {
            "unknown_parameter"
        } else {
            "bad_parameter"
        };
        ApiError::bad_request(code, msg.replace("field", "parameter"))
    })
}

/// The snapshot of a dataset the caller may see; 404 otherwise, so existence does not leak.
pub(crate) fn snapshot(
    st: &AppState,
    who: &Principal,
    id: &str,
) -> ApiResult<Arc<DatasetSnapshot>> {
    let missing = || ApiError::not_found(format!("dataset {id:?} not found"));
    let id = DatasetId::new(id).map_err(|_| missing())?;
    st.app
        .catalog
        .get(&id)
        .filter(|s| who.may_see(&s.meta))
        .ok_or_else(missing)
}

/// The incident filter (time, category, source) and the bbox as a lon/lat box that selects
/// whole cells: a bbox never clips the data an analysis runs on.
pub(crate) fn split_filter(
    q: &Query,
    snap: &DatasetSnapshot,
) -> ApiResult<(Filter, Option<[f64; 4]>)> {
    let mut f = parse_filter(q, snap)?;
    // (bbox handled below; the tier's time and category rules in `scope`)
    let cell_box = match (f.bbox_lonlat.take(), f.bbox_metric.take(), snap.metric_crs) {
        (Some(b), _, _) => Some(b),
        (None, Some(b), Some(metric)) => {
            let t = Transformer::new(metric, Crs::WGS84)?;
            let corners = [(b[0], b[1]), (b[0], b[3]), (b[2], b[1]), (b[2], b[3])];
            let pts: Vec<(f64, f64)> = corners.iter().filter_map(|&(x, y)| t.point(x, y)).collect();
            (pts.len() == 4).then(|| {
                let lo =
                    |i: fn(&(f64, f64)) -> f64| pts.iter().map(i).fold(f64::INFINITY, f64::min);
                let hi =
                    |i: fn(&(f64, f64)) -> f64| pts.iter().map(i).fold(f64::NEG_INFINITY, f64::max);
                [lo(|p| p.0), lo(|p| p.1), hi(|p| p.0), hi(|p| p.1)]
            })
        }
        _ => None,
    };
    Ok((f, cell_box))
}

/// What an analysis request may use under the caller's tier.
pub(crate) struct Scope {
    pub filter: Filter,
    /// Lon/lat box selecting output cells or facilities.
    pub out_box: Option<[f64; 4]>,
    pub rules: CellRules,
    /// Notes for the summary (months snapped, categories left out).
    pub notes: Vec<String>,
    /// Noise and differencing rules that need the incidents behind each count.
    pub protection: Protection,
}

/// The common filters under the tier's rules: the open tier's time filter is widened to whole
/// months; below the private tier, sensitive categories are left out of any output finer than
/// the dataset's `sensitive_max_resolution` (`res`: the resolution asked, `None` when it is
/// not fixed yet), so that no query at a fine resolution includes them and no difference of two
/// queries reveals them; asking only for sensitive categories at a fine resolution is refused.
pub(crate) fn scope(
    q: &Query,
    snap: &DatasetSnapshot,
    who: &Principal,
    res: Option<u8>,
) -> ApiResult<Scope> {
    let (mut filter, out_box) = split_filter(q, snap)?;
    let settings = &snap.meta.settings;
    let mut notes = Vec::new();
    let restricted = (filter.categories.is_some(), filter.sources.is_some());
    let mut base_categories = None;
    if who.tier == Tier::Open
        && let Some(t) = filter.time.as_mut()
    {
        *t = t.whole_months();
        notes.push("the time filter was widened to whole months (open tier)".into());
    }
    let coarse_enough = res.is_some_and(|r| r <= settings.sensitive_max_resolution);
    let sensitive = is_sensitive(filter.categories.as_deref(), settings);
    if who.tier != Tier::Private && !coarse_enough && !settings.sensitive_categories.is_empty() {
        if sensitive {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "tier_sensitive",
                format!(
                    "the categories asked for are sensitive: below the private tier they are shown only at H3 resolution {} or coarser",
                    settings.sensitive_max_resolution
                ),
            ));
        }
        base_categories = Some(
            snap.incidents
                .categories
                .iter()
                .filter(|c| !settings.sensitive_categories.contains(c))
                .cloned()
                .collect(),
        );
        let all = filter
            .categories
            .clone()
            .unwrap_or_else(|| snap.incidents.categories.clone());
        let (keep, left): (Vec<String>, Vec<String>) = all
            .into_iter()
            .partition(|c| !settings.sensitive_categories.contains(c));
        if !left.is_empty() {
            notes.push(format!(
                "sensitive categories left out at this resolution: {}",
                left.join(", ")
            ));
        }
        filter.categories = Some(keep);
    }
    let rules = rules_for(who.tier, settings, sensitive);
    let protection = Protection::new(
        &filter,
        base_categories,
        who.tier,
        settings.noise,
        restricted,
        rules.min_count,
    );
    if protection.noise {
        notes.push("counts carry cell-key noise of at most 2 (dataset setting noise)".into());
    }
    if protection.unrestricted.is_some() {
        let atoms = match (protection.by_category, protection.by_source) {
            (true, true) => "category and source pair",
            (true, false) => "category",
            _ => "source",
        };
        notes.push(format!(
            "restricted by category or source: a cell is shown only when each {atoms} in it has 0 or at least {} incidents",
            rules.min_count
        ));
    }
    Ok(Scope {
        filter,
        out_box,
        rules,
        notes,
        protection,
    })
}

/// A resolution left at its default is lowered to the finest the caller's tier may see, so a
/// request without parameters works at every tier; an explicit one is checked, not changed.
pub(crate) fn tier_default_res(q: &Query, snap: &DatasetSnapshot, who: &Principal, res: &mut u8) {
    if q.get("resolution").is_none() {
        *res = (*res).min(rules_for(who.tier, &snap.meta.settings, false).max_resolution);
    }
}

impl Scope {
    /// Below the private tier, a filter that matches fewer incidents than the tier's smallest
    /// shown count is refused without saying how many matched: any answer on so few reports
    /// (a density peak, a total, an error message with a count) could single them out.
    pub fn check_size(&self, matched: usize) -> ApiResult<()> {
        if self.rules.tier != Tier::Private
            && matched > 0
            && (matched as u64) < u64::from(self.rules.min_count)
        {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_few_for_tier",
                format!(
                    "fewer than {} incidents match the filters: too few to answer at the {} tier",
                    self.rules.min_count,
                    self.rules.tier.as_str()
                ),
            ));
        }
        Ok(())
    }
}

/// A cell's polygon, counter-clockwise and closed.
/// A GeoJSON Feature, moving its parts in (`json!` would copy them: at 1M incidents the copies
/// of 5,000 cell features with 36-bin series took 0.46 s and 1 GB).
pub(crate) fn feature(id: &str, geometry: Value, properties: Map<String, Value>) -> Value {
    let mut f = Map::new();
    f.insert("type".into(), Value::from("Feature"));
    f.insert("id".into(), Value::from(id));
    f.insert("geometry".into(), geometry);
    f.insert("properties".into(), Value::Object(properties));
    Value::Object(f)
}

pub fn cell_geometry(cell: CellIndex) -> Value {
    let b = cell.boundary();
    let mut ring: Vec<Value> = b
        .iter()
        .map(|ll| json!([round(ll.lng(), 7), round(ll.lat(), 7)]))
        .collect();
    if let Some(first) = ring.first().cloned() {
        ring.push(first);
    }
    json!({"type": "Polygon", "coordinates": [ring]})
}

pub(crate) fn in_box(cell: CellIndex, b: Option<[f64; 4]>) -> bool {
    b.is_none_or(|b| {
        let c = h3o::LatLng::from(cell);
        c.lng() >= b[0] && c.lng() <= b[2] && c.lat() >= b[1] && c.lat() <= b[3]
    })
}

pub(crate) fn disclosure_json(scope: &Scope, who: &Principal) -> Value {
    let r = &scope.rules;
    json!({"tier": who.tier, "max_resolution": r.max_resolution, "min_count": r.min_count,
           "rule": "counts below min_count are null (count_suppressed: true), with secondary suppression where a published total would reveal them; bbox selects whole cells (or facilities) by their centre and never clips the data",
           "notes": scope.notes})
}

/// Serves a cached answer or computes it.
pub(crate) async fn cached(
    st: &AppState,
    key: String,
    compute: impl FnOnce() -> ApiResult<Value> + Send + 'static,
) -> ApiResult<Arc<Value>> {
    st.cached_in(&st.cache, key, compute).await
}

pub(crate) fn cache_key(route: &str, snap: &DatasetSnapshot, who: &Principal, q: &Query) -> String {
    let mut params = q.0.clone();
    params.sort();
    format!(
        "{route}|{}|{}|{}|{:?}",
        snap.meta.id,
        snap.version,
        who.tier.as_str(),
        params
    )
}

/// As [`hotspot_error`], without the number of incidents found when the tier may not see
/// small counts: "found 3" under a narrow filter is a suppressed count.
fn hotspot_run_error(e: hotspot::HotspotError, rules: &CellRules) -> ApiError {
    match e {
        hotspot::HotspotError::TooFewIncidents { found, min } if rules.count(found).is_none() => {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                e.code(),
                format!(
                    "at least {min} incidents are needed for a hot-spot analysis, and fewer match the filters"
                ),
            )
        }
        e => hotspot_error(e),
    }
}

fn hotspot_error(e: hotspot::HotspotError) -> ApiError {
    use hotspot::HotspotError as E;
    let status = match e {
        E::TooFewIncidents { .. }
        | E::ZeroVariance
        | E::TooManyCells { .. }
        | E::TooManyLinks { .. }
        | E::InvalidStudyArea { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.code(), e.to_string())
}

/// A snapshot's incidents (all, or the selected rows) as input of the H3 analyses, counted
/// per cell through the snapshot's cell columns (`index::CellColumn`).
pub struct SnapshotCells<'a> {
    pub inc: &'a Incidents,
    pub rows: Option<&'a [u32]>,
}

impl IncidentCells for SnapshotCells<'_> {
    fn total(&self) -> u64 {
        self.rows.map_or(self.inc.len(), <[u32]>::len) as u64
    }
    fn fine_resolution(&self) -> Result<u8, hotspot::HotspotError> {
        match self.total() {
            0 => Err(hotspot::HotspotError::TooFewIncidents {
                found: 0,
                min: hotspot::MIN_INCIDENTS,
            }),
            _ => Ok(FINE_RES),
        }
    }
    fn aggregate(&self, res: h3o::Resolution) -> (Vec<CellIndex>, Vec<u32>) {
        let c = self.inc.cells_at(u8::from(res)).count(self.rows);
        // the column holds valid cells only
        c.cells
            .into_iter()
            .zip(c.counts)
            .filter_map(|(cell, n)| Some((CellIndex::try_from(cell).ok()?, n)))
            .unzip()
    }
}

/// `GET /datasets/{id}/hotspots`: Gi* (and Local Moran) on the H3 grid.
pub async fn hotspots(
    State(st): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Query,
) -> ApiResult<Response> {
    let snap = snapshot(&st, &who, &id)?;
    let params: hotspot::HotspotParams = own_params(&q)?;
    params.validate().map_err(hotspot_error)?;
    let sc = scope(&q, &snap, &who, params.resolution)?;
    if let Some(r) = params.resolution {
        sc.rules.check_resolution(r)?;
    }
    let key = cache_key("hotspots", &snap, &who, &q);
    let v = cached_rendered(&st, key.clone(), move || {
        let inc = &snap.incidents;
        // all incidents need no row list (the guard reads rows only when it protects)
        let rows =
            (!sc.filter.is_empty() || sc.protection.active()).then(|| inc.select(&sc.filter));
        let rows = rows.as_deref();
        sc.check_size(rows.map_or(inc.len(), <[u32]>::len))?;
        let cells = SnapshotCells { inc, rows };
        let area = snap.study_area.as_ref().map(|a| &a.wgs84);
        let mut result =
            hotspot::run(&cells, area, &params).map_err(|e| hotspot_run_error(e, &sc.rules))?;
        if result.summary.resolution > sc.rules.max_resolution {
            // optimized mode chose a finer grid than this tier may see: fix the resolution
            let capped = hotspot::HotspotParams {
                resolution: Some(sc.rules.max_resolution),
                ..params.clone()
            };
            result =
                hotspot::run(&cells, area, &capped).map_err(|e| hotspot_run_error(e, &sc.rules))?;
        }
        let rows = rows.unwrap_or_default();
        let guard = Guard::build(&snap, &sc, rows, result.summary.resolution, &|_| 0)
            .with_total(&snap, rows);
        hotspot_collection(result, &sc, &who, &guard)
    })
    .await?;
    geojson_response(v, &key, &headers)
}

/// Cell features with suppression decided on the whole cell set (before the bbox selects),
/// so a cell gives the same answer in every query.
/// A FeatureCollection of H3 cells: each result cell (`h3` named by `id`) whose centre lies in
/// the scope's box becomes a cell polygon whose properties are the cell serialised and then
/// `disclose(i, cell, props)`ed (which returns whether it hid a count); the summary gets
/// `n_features` and the disclosure rules.
fn cell_collection<T: serde::Serialize>(
    cells: &[T],
    id: impl Fn(&T) -> &str,
    mut disclose: impl FnMut(usize, &T, &mut Map<String, Value>) -> bool,
    summary: &impl serde::Serialize,
    sc: &Scope,
    who: &Principal,
) -> ApiResult<Rendered> {
    let mut out = FeatureWriter::new();
    for (i, c) in cells.iter().enumerate() {
        let Ok(cell) = id(c).parse::<CellIndex>() else {
            continue;
        };
        if !in_box(cell, sc.out_box) {
            continue;
        }
        let Ok(Value::Object(mut props)) = serde_json::to_value(c) else {
            continue;
        };
        let hidden = disclose(i, c, &mut props);
        props.insert("count_suppressed".into(), json!(hidden));
        out.push(&feature(id(c), cell_geometry(cell), props), hidden)?;
    }
    let mut summary = serde_json::to_value(summary).unwrap_or_default();
    summary["n_features"] = json!(out.len());
    summary["disclosure"] = disclosure_json(sc, who);
    out.finish(&summary)
}

fn h3_u64(h3: &str) -> u64 {
    h3.parse::<CellIndex>().map_or(0, u64::from)
}

fn hotspot_collection(
    mut result: hotspot::HotspotResult,
    sc: &Scope,
    who: &Principal,
    guard: &Guard,
) -> ApiResult<Rendered> {
    let counts: Vec<u64> = result.cells.iter().map(|c| u64::from(c.count)).collect();
    let cells: Vec<u64> = result.cells.iter().map(|c| u64::from(c.cell)).collect();
    let diff: Vec<bool> = cells.iter().map(|&c| guard.differencing(c, 0)).collect();
    let hidden = hidden_counts_with(&counts, &sc.rules, &diff);
    if guard.noisy() {
        let s = &mut result.summary;
        s.incidents_total = guard.show_total(s.incidents_total);
        s.incidents_used = guard.show_total(s.incidents_used);
    }
    // exact z-scores of neighbourhoods with one hidden cell solve for its count: the open
    // tier gets the confidence bins (and labels) only
    let exact = sc.rules.tier != Tier::Open;
    // ~400 bytes a feature: one allocation instead of a doubling series of copies
    let mut out = FeatureWriter::with_capacity(result.cells.len() * 420);
    // the box selects whole cells by their centre, decided once per cell
    let shown: Vec<bool> = result
        .cells
        .iter()
        .map(|c| in_box(c.cell, sc.out_box))
        .collect();
    let polygons = outlines(
        result
            .cells
            .iter()
            .zip(&shown)
            .filter(|(_, s)| **s)
            .map(|(c, _)| c.cell),
    );
    out.extend(result.cells.len(), |i, b| {
        let c = &result.cells[i];
        if !shown[i] {
            return None;
        }
        let count = (!hidden[i]).then(|| guard.show(cells[i], 0, counts[i]));
        write_hotspot_feature(b, &polygons, c, count, exact, hidden[i]);
        Some(hidden[i])
    });
    let mut summary = serde_json::to_value(&result.summary).map_err(ApiError::internal)?;
    summary["n_features"] = json!(out.len());
    summary["disclosure"] = disclosure_json(sc, who);
    out.finish(&summary)
}

/// One hot-spot cell as a GeoJSON Feature, written straight into the body (the bytes that
/// `serde_json` writes for the cell's `Value`, keys in its sorted order, without building
/// one). `exact`: whether z-scores and p-values are shown.
pub fn write_hotspot_feature(
    b: &mut Vec<u8>,
    polygons: &OutlineReader,
    c: &hotspot::CellResult,
    count: Option<u64>,
    exact: bool,
    hidden: bool,
) {
    // plain byte appends: `write!` through `fmt` costs more than the rest of a feature
    let float = |b: &mut Vec<u8>, key: &[u8], v: Option<f64>| {
        if let Some(v) = v {
            b.extend_from_slice(key);
            match exact {
                true => write_f64(b, v),
                false => b.extend_from_slice(b"null"),
            }
        }
    };
    let int = |b: &mut Vec<u8>, v: i64| {
        let _ = serde_json::to_writer(&mut *b, &v);
    };
    b.extend_from_slice(b"{\"geometry\":");
    polygons.write(b, c.cell);
    b.extend_from_slice(b",\"id\":\"");
    b.extend_from_slice(c.h3.as_bytes());
    b.extend_from_slice(b"\",\"properties\":{\"count\":");
    match count {
        Some(n) => {
            let _ = serde_json::to_writer(&mut *b, &n);
        }
        None => b.extend_from_slice(b"null"),
    }
    b.extend_from_slice(match hidden {
        true => b",\"count_suppressed\":true,\"gi_bin\":",
        false => b",\"count_suppressed\":false,\"gi_bin\":",
    });
    int(b, i64::from(c.gi_bin));
    float(b, b",\"gi_p\":", Some(c.gi_p));
    float(b, b",\"gi_p_sim\":", c.gi_p_sim);
    float(b, b",\"gi_z\":", Some(c.gi_z));
    b.extend_from_slice(b",\"h3\":\"");
    b.extend_from_slice(c.h3.as_bytes());
    b.push(b'"');
    float(b, b",\"lmi_i\":", c.lmi_i);
    if let Some(l) = c.lmi_label {
        b.extend_from_slice(b",\"lmi_label\":");
        let _ = serde_json::to_writer(&mut *b, &l);
    }
    float(b, b",\"lmi_p\":", c.lmi_p);
    float(b, b",\"lmi_z\":", c.lmi_z);
    b.extend_from_slice(b",\"n_neighbors\":");
    int(b, i64::from(c.n_neighbors));
    b.extend_from_slice(b"},\"type\":\"Feature\"}");
}

fn emerging_error(e: emerging::EmergingError) -> ApiError {
    use emerging::EmergingError as E;
    let status = match e {
        E::NoIncidents
        | E::TooFewBins { .. }
        | E::CubeTooLarge { .. }
        | E::ZeroVariance
        | E::EmptyWindow => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.code(), e.to_string())
}

fn points_of(snap: &DatasetSnapshot, rows: &[u32]) -> Vec<(u64, i64)> {
    rows.iter()
        .map(|&r| {
            (
                snap.incidents.cell[r as usize],
                snap.incidents.t[r as usize],
            )
        })
        .collect()
}

/// `GET /datasets/{id}/emerging`: space-time Gi*, Mann-Kendall and the 17 categories.
pub async fn emerging(
    State(st): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Query,
) -> ApiResult<Response> {
    let snap = snapshot(&st, &who, &id)?;
    let mut params: emerging::EmergingParams = own_params(&q)?;
    tier_default_res(&q, &snap, &who, &mut params.resolution);
    params.validate().map_err(emerging_error)?;
    let sc = scope(&q, &snap, &who, Some(params.resolution))?;
    sc.rules.check_resolution(params.resolution)?;
    sc.rules
        .check_weekly(params.bin == emerging::TimeBin::Week)?;
    let key = cache_key("emerging", &snap, &who, &q);
    let v = cached_rendered(&st, key.clone(), move || {
        let rows = snap.incidents.select(&sc.filter);
        let pts = points_of(&snap, &rows);
        sc.check_size(pts.len())?;
        let result = emerging::emerging_hot_spots(&pts, &params).map_err(emerging_error)?;
        let bin = params.bin;
        let (g_total, g_bins) =
            Guard::build_total_and_periods(&snap, &sc, &rows, params.resolution, &|t| {
                bin.index_of(t)
            });
        let bin_of = |start: &str| {
            chrono::NaiveDate::parse_from_str(start, "%Y-%m-%d").map_or(i64::MIN, |d| {
                bin.index_of(d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp())
            })
        };
        let cells: Vec<u64> = result.cells.iter().map(|c| h3_u64(&c.h3)).collect();
        let totals: Vec<u64> = result.cells.iter().map(|c| c.total_count).collect();
        let diff: Vec<bool> = cells.iter().map(|&c| g_total.differencing(c, 0)).collect();
        let hidden_total = hidden_counts_with(&totals, &sc.rules, &diff);
        let disclose = |i: usize, c: &emerging::EmergingCell, props: &mut Map<String, Value>| {
            let hide_total = hidden_total[i];
            let mut hidden = hide_total;
            if hide_total {
                props.insert("total_count".into(), Value::Null);
            } else if g_total.noisy() {
                props.insert(
                    "total_count".into(),
                    json!(g_total.show(cells[i], 0, totals[i])),
                );
            }
            if let Some(Value::Array(series)) = props.get_mut("series") {
                let bins: Vec<u64> = c.series.iter().map(|b| u64::from(b.count)).collect();
                let idx: Vec<i64> = c.series.iter().map(|b| bin_of(&b.bin_start)).collect();
                let diff: Vec<bool> = idx
                    .iter()
                    .map(|&j| g_bins.differencing(cells[i], j))
                    .collect();
                let hide = series_hidden(&bins, hide_total, &sc.rules, &diff);
                for (j, (b, hide)) in series.iter_mut().zip(hide).enumerate() {
                    if hide {
                        b["count"] = Value::Null;
                        hidden = true;
                    } else if g_bins.noisy() {
                        b["count"] = json!(g_bins.show(cells[i], idx[j], bins[j]));
                    }
                    if sc.rules.tier == Tier::Open {
                        // as for /hotspots: bins only, no exact z at the open tier
                        b["z"] = Value::Null;
                        b["p"] = Value::Null;
                    }
                }
            }
            if (hidden && sc.rules.min_count > 1) || g_bins.noisy() {
                // the slope of the counts would give them back
                props.remove("count_trend");
            }
            hidden
        };
        cell_collection(
            &result.cells,
            |c| &c.h3,
            disclose,
            &result.summary,
            &sc,
            &who,
        )
    })
    .await?;
    geojson_response(v, &key, &headers)
}

/// Which bin counts of a cell's series to hide. The series adds up to the cell's published
/// `total_count`, so the bins get secondary suppression among themselves (one hidden bin
/// among shown ones would be the total minus the rest); when the total itself is hidden, every
/// non-zero bin is, or the bins would add the total back up.
fn series_hidden(bins: &[u64], total_hidden: bool, rules: &CellRules, also: &[bool]) -> Vec<bool> {
    if total_hidden {
        bins.iter().map(|&b| b > 0).collect()
    } else {
        hidden_counts_with(bins, rules, also)
    }
}

/// `GET /datasets/{id}/emerging/compare`: counts before and after a date per cell.
pub async fn emerging_compare(
    State(st): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Query,
) -> ApiResult<Response> {
    let snap = snapshot(&st, &who, &id)?;
    let mut params: emerging::CompareParams = own_params(&q)?;
    tier_default_res(&q, &snap, &who, &mut params.resolution);
    params.validate().map_err(emerging_error)?;
    let sc = scope(&q, &snap, &who, Some(params.resolution))?;
    sc.rules.check_resolution(params.resolution)?;
    let key = cache_key("compare", &snap, &who, &q);
    let v = cached_rendered(&st, key.clone(), move || {
        let rows = snap.incidents.select(&sc.filter);
        let pts = points_of(&snap, &rows);
        sc.check_size(pts.len())?;
        let result = emerging::compare_periods(&pts, &params).map_err(emerging_error)?;
        let split = chrono::DateTime::parse_from_rfc3339(&result.summary.split_at)
            .map_or(i64::MAX, |d| d.timestamp());
        let guard = Guard::build(&snap, &sc, &rows, params.resolution, &|t| {
            i64::from(t >= split)
        });
        let cells: Vec<u64> = result.cells.iter().map(|c| h3_u64(&c.h3)).collect();
        let before: Vec<u64> = result.cells.iter().map(|c| c.count_before).collect();
        let after: Vec<u64> = result.cells.iter().map(|c| c.count_after).collect();
        let diff = |period: i64| -> Vec<bool> {
            cells
                .iter()
                .map(|&c| guard.differencing(c, period))
                .collect()
        };
        let (hb, ha) = (
            hidden_counts_with(&before, &sc.rules, &diff(0)),
            hidden_counts_with(&after, &sc.rules, &diff(1)),
        );
        let (days_b, days_a) = (result.summary.before_days, result.summary.after_days);
        let disclose =
            |i: usize, _: &emerging::compare::CompareCell, props: &mut Map<String, Value>| {
                let hidden = hb[i] || ha[i];
                if hidden {
                    // rates, their ratio and the test would give the counts back
                    for k in [
                        "count_before",
                        "count_after",
                        "rate_before_per_day",
                        "rate_after_per_day",
                        "rate_ratio",
                        "p",
                    ] {
                        props.insert(k.into(), Value::Null);
                    }
                } else if guard.noisy() {
                    let b = guard.show(cells[i], 0, before[i]);
                    let a = guard.show(cells[i], 1, after[i]);
                    let (rb, ra) = (b as f64 / days_b, a as f64 / days_a);
                    props.insert("count_before".into(), json!(b));
                    props.insert("count_after".into(), json!(a));
                    props.insert("rate_before_per_day".into(), json!(rb));
                    props.insert("rate_after_per_day".into(), json!(ra));
                    props.insert(
                        "rate_ratio".into(),
                        if rb > 0.0 {
                            json!(ra / rb)
                        } else {
                            Value::Null
                        },
                    );
                    props.insert("p".into(), Value::Null);
                }
                hidden
            };
        cell_collection(
            &result.cells,
            |c| &c.h3,
            disclose,
            &result.summary,
            &sc,
            &who,
        )
    })
    .await?;
    geojson_response(v, &key, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use h3o::{LatLng, Resolution};

    /// The feature as the `Value` path wrote it before the direct writer: the cell serialised,
    /// its count replaced or nulled, exact figures nulled at the open tier, the polygon.
    fn via_value(
        c: &hotspot::CellResult,
        count: Option<u64>,
        exact: bool,
        hidden: bool,
    ) -> Vec<u8> {
        let Ok(Value::Object(mut props)) = serde_json::to_value(c) else {
            panic!("object");
        };
        props.insert("count".into(), json!(count));
        if !exact {
            for k in ["gi_z", "gi_p", "gi_p_sim", "lmi_i", "lmi_z", "lmi_p"] {
                if props.contains_key(k) {
                    props.insert(k.into(), Value::Null);
                }
            }
        }
        props.insert("count_suppressed".into(), json!(hidden));
        serde_json::to_vec(&feature(&c.h3, cell_geometry(c.cell), props)).expect("json")
    }

    #[test]
    fn the_direct_writer_writes_the_bytes_of_the_value_path() {
        let mut cells = Vec::new();
        for i in 0..400 {
            let (a, b) = ((i * 37 % 101) as f64, (i * 53 % 97) as f64);
            let ll = LatLng::new(52.40 + a * 2e-4 + f64::from(i % 7) * 1e-3, 4.80 + b * 3e-4)
                .expect("ll");
            cells.push(ll.to_cell(Resolution::Twelve));
        }
        for method in [hotspot::Method::Gistar, hotspot::Method::LocalMoran] {
            let p = hotspot::HotspotParams {
                method,
                resolution: Some(9),
                k: Some(1),
                permutations: Some(99),
                ..Default::default()
            };
            let r = hotspot::run(&cells, None, &p).expect("runs");
            assert!(r.cells.len() > 10);
            for (i, c) in r.cells.iter().enumerate() {
                for (count, exact, hidden) in [
                    (Some(u64::from(c.count)), true, false),
                    (None, false, true),
                    (Some(u64::from(c.count) + 1), false, false),
                ] {
                    let mut b = Vec::new();
                    let cold = outlines(std::iter::empty());
                    write_hotspot_feature(&mut b, &cold, c, count, exact, hidden);
                    drop(cold);
                    // again, the polygon from the cache
                    let mut again = Vec::new();
                    let warm = outlines(std::iter::once(c.cell));
                    write_hotspot_feature(&mut again, &warm, c, count, exact, hidden);
                    let want = via_value(c, count, exact, hidden);
                    assert_eq!(
                        String::from_utf8_lossy(&b),
                        String::from_utf8_lossy(&want),
                        "cell {i}"
                    );
                    assert_eq!(again, want);
                }
            }
        }
    }
}
