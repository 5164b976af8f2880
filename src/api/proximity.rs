//! `GET /datasets/{id}/proximity` (per-facility FeatureCollection, global tests, curves in the
//! summary) and `GET /datasets/{id}/proximity/nearest` (each incident's nearest facility,
//! private tier only).

use super::AppState;
use super::analysis::{Scope, cache_key, disclosure_json, own_params_except, scope, snapshot};
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Query};
use super::features::round;
use super::render::{FeatureWriter, cached_geojson, cached_rendered, geojson_response};
use crate::analysis::proximity::{
    self, FacilityStats, ProxFacility, ProxIncident, ProximityError, ProximityParams,
    ProximityReport,
};
use crate::index::DatasetSnapshot;
use crate::model::Tier;
use crate::privacy::Principal;
use crate::privacy::disclosure::{CellRules, hidden_counts};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

fn proximity_error(e: ProximityError) -> ApiError {
    let status = match e {
        ProximityError::NoFacilities
        | ProximityError::TooFewIncidents { .. }
        | ProximityError::ZeroAreaWindow
        | ProximityError::NoSubjects => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.code(), e.to_string())
}

/// The facilities an analysis may use: of the asked kinds, and never confidential ones below
/// the private tier. Returns (row in the snapshot, facility).
pub(crate) fn facilities(
    snap: &DatasetSnapshot,
    kinds: Option<&[String]>,
    tier: Tier,
) -> Vec<(usize, ProxFacility)> {
    snap.facilities
        .iter()
        .enumerate()
        .filter(|(_, (_, f))| kinds.is_none_or(|k| k.contains(&f.kind)))
        .filter(|(_, (_, f))| tier == Tier::Private || !f.confidential)
        .map(|(i, (_, f))| {
            (
                i,
                ProxFacility {
                    id: f.id.clone(),
                    kind: f.kind.clone(),
                    x: f.x,
                    y: f.y,
                },
            )
        })
        .collect()
}

fn run(
    snap: &DatasetSnapshot,
    sc: &Scope,
    fac: &[ProxFacility],
    params: &ProximityParams,
) -> ApiResult<(Vec<u32>, ProximityReport)> {
    let rows = snap.incidents.select(&sc.filter);
    sc.check_size(rows.len())?;
    let (pts, baseline) = inputs(snap, &rows);
    let window = snap.study_area.as_ref().map(|a| &a.metric);
    let base = (!baseline.is_empty()).then_some(baseline.as_slice());
    let report = proximity::analyze(&pts, fac, window, base, params).map_err(proximity_error)?;
    Ok((rows, report))
}

/// The incidents of `rows` and the dataset's baseline points `(x, y, weight)` as input of the
/// proximity analysis.
pub(crate) fn inputs(
    snap: &DatasetSnapshot,
    rows: &[u32],
) -> (Vec<ProxIncident>, Vec<(f64, f64, f64)>) {
    let inc = &snap.incidents;
    let pts = rows
        .iter()
        .map(|&r| {
            let r = r as usize;
            ProxIncident {
                x: inc.x[r],
                y: inc.y[r],
                cell: inc.cell[r],
                subject: inc.subject[r].checked_sub(1),
            }
        })
        .collect();
    let baseline = snap
        .baseline
        .iter()
        .map(|(_, b)| (b.x, b.y, b.weight))
        .collect();
    (pts, baseline)
}

/// Parses the parameters shared by both routes.
type Prepared = (
    std::sync::Arc<DatasetSnapshot>,
    Scope,
    ProximityParams,
    Option<Vec<String>>,
);

/// Parses the parameters shared by both routes (no resolution: sensitive categories are left
/// out below the private tier).
fn prepare(st: &AppState, who: &Principal, id: &str, q: &Query) -> ApiResult<Prepared> {
    let snap = snapshot(st, who, id)?;
    let sc = scope(q, &snap, who, None)?;
    let params: ProximityParams = own_params_except(q, &["kind"])?;
    params.validate().map_err(proximity_error)?;
    Ok((snap, sc, params, q.list("kind")))
}

pub async fn proximity(
    State(st): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Query,
) -> ApiResult<Response> {
    let (snap, sc, params, kinds) = prepare(&st, &who, &id, &q)?;
    let key = cache_key("proximity", &snap, &who, &q);
    let v = cached_geojson(&st, key.clone(), move || {
        let fac = facilities(&snap, kinds.as_deref(), who.tier);
        let plain: Vec<ProxFacility> = fac.iter().map(|(_, f)| f.clone()).collect();
        let (_, report) = run(&snap, &sc, &plain, &params)?;
        Ok(collection(&snap, &fac, report, &sc, &who))
    })
    .await?;
    geojson_response(v, &key, &headers)
}

fn collection(
    snap: &DatasetSnapshot,
    fac: &[(usize, ProxFacility)],
    report: ProximityReport,
    sc: &Scope,
    who: &Principal,
) -> Value {
    let (fac_box, rules) = (sc.out_box, &sc.rules);
    let mut features = Vec::new();
    for (stats, (row, _)) in report.facilities.iter().zip(fac) {
        let f = &snap.facilities[*row].1;
        if fac_box.is_some_and(|b| f.lon < b[0] || f.lon > b[2] || f.lat < b[1] || f.lat > b[3]) {
            continue;
        }
        let mut props = stats.properties();
        props.remove("x");
        props.remove("y");
        props.insert("name".into(), json!(f.name));
        let (count_hidden, rings_hidden) = hidden_figures(stats, report.summary.radius_m, rules);
        for (ring, &hide) in stats.rings.iter().zip(&rings_hidden) {
            if hide {
                props.insert(ring.label.clone(), Value::Null);
            }
        }
        if count_hidden {
            // the ratio and the Poisson p-value with its expected count would give it back
            for k in ["count", "ratio", "p_value"] {
                props.insert(k.into(), Value::Null);
            }
        }
        let hidden = count_hidden || rings_hidden.contains(&true);
        props.insert("count_suppressed".into(), json!(hidden));
        features.push(json!({"type": "Feature", "id": f.id,
            "geometry": {"type": "Point", "coordinates": [round(f.lon, 7), round(f.lat, 7)]}, "properties": props}));
    }
    let mut summary = serde_json::to_value(&report.summary).unwrap_or_default();
    let mut hist = serde_json::to_value(&report.histogram).unwrap_or_default();
    // the bins add up to the published n_units: secondary suppression over them
    let bin_counts: Vec<u64> = report.histogram.bins.iter().map(|b| b.count).collect();
    if let Some(bins) = hist["bins"].as_array_mut() {
        for (b, hide) in bins.iter_mut().zip(hidden_counts(&bin_counts, rules)) {
            if hide {
                b["count"] = Value::Null;
            }
        }
    }
    summary["histogram"] = hist;
    summary["rho"] = serde_json::to_value(&report.rho).unwrap_or_default();
    summary["l_cross"] = serde_json::to_value(&report.l_cross).unwrap_or_default();
    summary["n_features"] = json!(features.len());
    summary["confidential_facilities_excluded"] = json!(who.tier != Tier::Private);
    summary["disclosure"] = disclosure_json(sc, who);
    json!({"type": "FeatureCollection", "features": features, "summary": summary})
}

/// Which figures of a facility to hide: its count within `radius_m` when it is small, and its
/// rings with secondary suppression over the rings inside `radius_m` (they add up to the
/// published count, so one hidden ring among shown ones could be subtracted back); rings
/// outside the radius add up to nothing published and get primary suppression.
fn hidden_figures(stats: &FacilityStats, radius_m: f64, rules: &CellRules) -> (bool, Vec<bool>) {
    let inside: Vec<usize> = (0..stats.rings.len())
        .filter(|&i| stats.rings[i].outer_m <= radius_m + 1e-9)
        .collect();
    let counts: Vec<u64> = inside.iter().map(|&i| stats.rings[i].count).collect();
    let mut hidden: Vec<bool> = stats
        .rings
        .iter()
        .map(|r| rules.count(r.count).is_none())
        .collect();
    for (&i, h) in inside.iter().zip(hidden_counts(&counts, rules)) {
        hidden[i] = h;
    }
    (rules.count(stats.count).is_none(), hidden)
}

/// Each incident with its nearest facility (`near_fid`, `near_dist_m`, as ArcGIS Near).
pub async fn nearest(
    State(st): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Query,
) -> ApiResult<Response> {
    if who.tier != Tier::Private {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "tier_forbidden",
            "the nearest facility of each incident reveals incident locations: private tier only",
        ));
    }
    let (snap, sc, mut params, kinds) = prepare(&st, &who, &id, &q)?;
    params.simulations = 0;
    let key = cache_key("nearest", &snap, &who, &q);
    let v = cached_rendered(&st, key.clone(), move || {
        let fac = facilities(&snap, kinds.as_deref(), Tier::Private);
        let plain: Vec<ProxFacility> = fac.iter().map(|(_, f)| f.clone()).collect();
        let (rows, report) = run(&snap, &sc, &plain, &params)?;
        let inc = &snap.incidents;
        // one feature at a time into the body: a tree of 1M features took 8 GB
        let mut out = FeatureWriter::new();
        for (&r, n) in rows.iter().zip(&report.nearest) {
            let r = r as usize;
            let f = json!({"type": "Feature", "id": inc.fid[r],
                "geometry": {"type": "Point", "coordinates": [round(inc.lon[r], 7), round(inc.lat[r], 7)]},
                "properties": {"near_fid": plain[n.facility_index as usize].id, "near_dist_m": round(n.distance_m, 2),
                               "category": inc.categories[inc.cat[r] as usize], "source": inc.sources[inc.src[r] as usize]}});
            out.push(&f, false)?;
        }
        let summary = json!({"n": out.len(), "histogram": report.histogram, "distances": "metres in the dataset's metric CRS"});
        out.finish(&summary)
    })
    .await?;
    geojson_response(v, &key, &headers)
}
