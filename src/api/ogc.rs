//! OGC API - Features, Part 1 (Core, GeoJSON, OpenAPI 3.0) and Part 2 (CRS by reference):
//! landing page, conformance, the API document, collections (`{dataset}.{layer}`) and items.

use super::AppState;
use super::datasets::PathOk;
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Query};
use super::features::{self, rfc3339};
use super::filters::{parse_crs_param, parse_filter, supported_crs};
use crate::crs::Crs;
use crate::index::{DatasetSnapshot, Filter, month_end, month_start};
use crate::model::{DatasetId, Layer, Tier};
use crate::privacy::Principal;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::{Arc, LazyLock};

/// The OpenAPI document (the contract), embedded at build time.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

static OPENAPI_JSON: LazyLock<Value> = LazyLock::new(|| {
    serde_yaml::from_str(OPENAPI_YAML).unwrap_or_else(|e| json!({"error": e.to_string()}))
});

const CONFORMANCE: &[&str] = &[
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
];

/// `f` on the JSON-only documents: absent or `json`.
fn json_only(q: &Query) -> ApiResult<()> {
    match q.get("f") {
        None | Some("json") => Ok(()),
        Some(f) => Err(ApiError::bad_request(
            "bad_format",
            format!("f={f:?}: this document is served as json only"),
        )),
    }
}

/// Maximum `limit`; larger values are clamped (OGC: clamp, do not fail).
pub const MAX_LIMIT: usize = 10_000;

fn json_response(v: Value, content_type: &'static str) -> Response {
    let mut r = axum::Json(v).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn link(href: String, rel: &str, ty: &str, title: &str) -> Value {
    json!({"href": href, "rel": rel, "type": ty, "title": title})
}

pub async fn landing(
    State(st): State<AppState>,
    headers: HeaderMap,
    q: Query,
) -> ApiResult<Response> {
    q.allow(&["f"])?;
    json_only(&q)?;
    let b = st.base_url(&headers);
    Ok(json_response(
        json!({
            "title": "hotspots",
            "description": "Hot spots of nuisance reports (overlast) pooled by a regional data lab, as OGC API - Features.",
            "links": [
                link(format!("{b}/"), "self", "application/json", "this document"),
                link(format!("{b}/api"), "service-desc", "application/vnd.oai.openapi+json;version=3.0", "the API definition (JSON)"),
                link(format!("{b}/openapi.yaml"), "service-desc", "application/vnd.oai.openapi;version=3.0", "the API definition (YAML)"),
                link(format!("{b}/conformance"), "conformance", "application/json", "conformance classes"),
                link(format!("{b}/collections"), "data", "application/json", "the layers of every dataset"),
                link(format!("{b}/datasets"), "http://hotspots.example/rel/datasets", "application/json", "datasets and ingest"),
            ]
        }),
        "application/json",
    ))
}

pub async fn conformance(q: Query) -> ApiResult<Response> {
    q.allow(&["f"])?;
    json_only(&q)?;
    Ok(json_response(
        json!({ "conformsTo": CONFORMANCE }),
        "application/json",
    ))
}

pub async fn api_json(q: Query) -> ApiResult<Response> {
    q.allow(&["f"])?;
    json_only(&q)?;
    Ok(json_response(
        OPENAPI_JSON.clone(),
        "application/vnd.oai.openapi+json;version=3.0",
    ))
}

pub async fn api_yaml() -> Response {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI_YAML).into_response()
}

/// The dataset and layer of a collection id `{dataset}.{layer}`.
pub fn resolve(
    st: &AppState,
    who: &Principal,
    cid: &str,
) -> ApiResult<(Arc<DatasetSnapshot>, Layer)> {
    let missing = || {
        ApiError::not_found(format!(
            "collection {cid:?} not found; collection ids are {{dataset}}.{{layer}}"
        ))
    };
    let (ds, layer) = cid.rsplit_once('.').ok_or_else(missing)?;
    let layer = Layer::parse(layer).map_err(|_| missing())?;
    let id = DatasetId::new(ds).map_err(|_| missing())?;
    let snap = st
        .app
        .catalog
        .get(&id)
        .filter(|s| who.may_see(&s.meta))
        .ok_or_else(missing)?;
    Ok((snap, layer))
}

fn layer_count(snap: &DatasetSnapshot, layer: Layer) -> usize {
    match layer {
        Layer::Incidents => snap.incidents.len(),
        Layer::Facilities => snap.facilities.len(),
        Layer::Baseline => snap.baseline.len(),
        Layer::StudyArea => usize::from(snap.study_area.is_some()),
    }
}

/// Lon/lat extent of the incidents and the study area, and their time span. Below the
/// private tier the extent must not give away single reports: the box is widened outward to
/// 0.01 degree and the time span to whole months.
fn extent(snap: &DatasetSnapshot, private: bool) -> Value {
    let inc = &snap.incidents;
    let mut b = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for i in 0..inc.len() {
        b = [
            b[0].min(inc.lon[i]),
            b[1].min(inc.lat[i]),
            b[2].max(inc.lon[i]),
            b[3].max(inc.lat[i]),
        ];
    }
    if let Some(a) = &snap.study_area {
        use geo::BoundingRect;
        if let Some(r) = a.wgs84.bounding_rect() {
            b = [
                b[0].min(r.min().x),
                b[1].min(r.min().y),
                b[2].max(r.max().x),
                b[3].max(r.max().y),
            ];
        }
    }
    if !private {
        b = [
            (b[0] * 100.0).floor() / 100.0,
            (b[1] * 100.0).floor() / 100.0,
            (b[2] * 100.0).ceil() / 100.0,
            (b[3] * 100.0).ceil() / 100.0,
        ];
    }
    let spatial = if b[0].is_finite() {
        json!({"bbox": [b.map(|v| features::round(v, 7))], "crs": Crs::WGS84.uri()})
    } else {
        json!({"bbox": [[-180.0, -90.0, 180.0, 90.0]], "crs": Crs::WGS84.uri()})
    };
    let month = |t: i64, end: bool| -> String {
        match (private, end) {
            (true, _) => rfc3339(t),
            (false, false) => rfc3339(month_start(t, 0)),
            (false, true) => rfc3339(month_end(t)),
        }
    };
    let (t0, t1) = (inc.t.iter().min(), inc.t.iter().max());
    json!({"spatial": spatial, "temporal": {"interval": [[t0.map(|t| month(*t, false)), t1.map(|t| month(*t, true))]], "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}})
}

fn collection_json(snap: &DatasetSnapshot, layer: Layer, base: &str, private: bool) -> Value {
    let cid = format!("{}.{}", snap.meta.id, layer.as_str());
    let items = format!("{base}/collections/{cid}/items");
    json!({
        "id": cid,
        "title": format!("{}: {}", snap.meta.title, layer.as_str()),
        "description": match layer {
            Layer::Incidents => "Nuisance reports (points). Private tier, or your own organisation's records with source=<your organisation>.",
            Layer::Facilities => "Facilities such as care centres (points). Private tier.",
            Layer::Baseline => "Address or population points with a weight, for null models (points). Private tier.",
            Layer::StudyArea => "The study area (polygon).",
        },
        "itemType": "feature",
        "extent": extent(snap, private),
        "crs": supported_crs(snap).iter().map(|c| c.uri()).collect::<Vec<_>>(),
        "storageCrs": Crs::WGS84.uri(),
        "numberOfFeatures": layer_count(snap, layer),
        "links": [
            link(format!("{base}/collections/{cid}"), "self", "application/json", "this collection"),
            link(items.clone(), "items", "application/geo+json", "the features"),
            link(format!("{items}?f=csv"), "items", "text/csv", "the features as CSV"),
        ]
    })
}

pub async fn collections(
    State(st): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    q: Query,
) -> ApiResult<Response> {
    q.allow(&["f"])?;
    json_only(&q)?;
    let base = st.base_url(&headers);
    let cols: Vec<Value> = st
        .app
        .catalog
        .all()
        .iter()
        .filter(|s| who.may_see(&s.meta))
        .flat_map(|s| Layer::ALL.map(|l| collection_json(s, l, &base, who.tier == Tier::Private)))
        .collect();
    Ok(json_response(
        json!({"links": [link(format!("{base}/collections"), "self", "application/json", "the collections")],
               "collections": cols}),
        "application/json",
    ))
}

pub async fn collection(
    State(st): State<AppState>,
    Caller(who): Caller,
    PathOk(cid): PathOk<String>,
    headers: HeaderMap,
    q: Query,
) -> ApiResult<Response> {
    q.allow(&["f"])?;
    json_only(&q)?;
    let (snap, layer) = resolve(&st, &who, &cid)?;
    Ok(json_response(
        collection_json(
            &snap,
            layer,
            &st.base_url(&headers),
            who.tier == Tier::Private,
        ),
        "application/json",
    ))
}

/// `json` (GeoJSON, the default) or `csv`.
fn output_format(q: &Query) -> ApiResult<bool> {
    match q.get("f") {
        None | Some("json") | Some("geojson") => Ok(false),
        Some("csv") => Ok(true),
        Some(f) => Err(ApiError::bad_request(
            "bad_format",
            format!("f={f:?}: expected json or csv"),
        )),
    }
}

/// Rows of a layer matching the filter, in fid order.
fn select(snap: &DatasetSnapshot, layer: Layer, f: &Filter) -> Vec<u32> {
    let in_box = |lon: f64, lat: f64, x: f64, y: f64| {
        f.bbox_lonlat
            .is_none_or(|b| lon >= b[0] && lon <= b[2] && lat >= b[1] && lat <= b[3])
            && (f.bbox_lonlat.is_some()
                || f.bbox_metric
                    .is_none_or(|b| x >= b[0] && x <= b[2] && y >= b[1] && y <= b[3]))
    };
    match layer {
        Layer::Incidents => snap.incidents.select(f),
        Layer::Facilities => (0..snap.facilities.len() as u32)
            .filter(|&i| {
                let p = &snap.facilities[i as usize].1;
                in_box(p.lon, p.lat, p.x, p.y)
            })
            .collect(),
        Layer::Baseline => (0..snap.baseline.len() as u32)
            .filter(|&i| {
                let p = &snap.baseline[i as usize].1;
                in_box(p.lon, p.lat, p.x, p.y)
            })
            .collect(),
        Layer::StudyArea => {
            if snap.study_area.is_some() {
                vec![0]
            } else {
                vec![]
            }
        }
    }
}

/// A weak validator per snapshot, caller and query: the same answer gives the same ETag.
fn etag(snap: &DatasetSnapshot, who: &Principal, query: &[(String, String)], path: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    (path, query, who.tier.as_str(), &who.organisation, who.admin).hash(&mut h);
    format!(
        "W/\"{}-{}-{:016x}\"",
        snap.meta.id,
        snap.version,
        h.finish()
    )
}

fn not_modified(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"))
}

const ITEM_PARAMS: &[&str] = &[
    "f", "limit", "offset", "bbox", "bbox-crs", "datetime", "crs", "category", "source",
];

pub async fn items(
    State(st): State<AppState>,
    Caller(who): Caller,
    PathOk(cid): PathOk<String>,
    headers: HeaderMap,
    q: Query,
) -> ApiResult<Response> {
    q.allow(ITEM_PARAMS)?;
    let (snap, layer) = resolve(&st, &who, &cid)?;
    let sources = q.list("source");
    who.may_list(layer, sources.as_deref())?;
    if layer != Layer::Incidents
        && let Some(p) = ["datetime", "category", "source"]
            .into_iter()
            .find(|p| q.get(p).is_some())
    {
        return Err(ApiError::bad_request(
            "unsupported_parameter",
            format!("{p} filters only the incidents layer"),
        ));
    }
    let csv = output_format(&q)?;
    if csv && layer == Layer::StudyArea {
        return Err(ApiError::bad_request(
            "bad_format",
            "CSV export is for point layers; use f=json for the study area",
        ));
    }
    let crs = parse_crs_param(&q, "crs", &snap)?;
    let filter = parse_filter(&q, &snap)?;
    let limit = match q.number::<usize>("limit")? {
        Some(0) => {
            return Err(ApiError::bad_request(
                "bad_parameter",
                "limit must be at least 1",
            ));
        }
        Some(l) => l.min(MAX_LIMIT),
        None => 10,
    };
    let offset = q.number::<usize>("offset")?.unwrap_or(0);
    let tag = etag(&snap, &who, &q.0, &cid);
    if not_modified(&headers, &tag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    let base = st.base_url(&headers);
    let snap2 = snap.clone();
    let (feats, matched) = st
        .blocking(move |app| {
            let rows = select(&snap2, layer, &filter);
            let page: Vec<u32> = rows.iter().skip(offset).take(limit).copied().collect();
            let details = if layer == Layer::Incidents {
                let fids: Vec<i64> = page
                    .iter()
                    .map(|&r| snap2.incidents.fid[r as usize])
                    .collect();
                app.store.incident_details(&snap2.meta.id, &fids)?
            } else {
                Default::default()
            };
            let feats: Vec<Value> = page
                .iter()
                .map(|&r| {
                    let d = (layer == Layer::Incidents)
                        .then(|| details.get(&snap2.incidents.fid[r as usize]))
                        .flatten();
                    features::feature(&snap2, layer, r as usize, crs, d)
                })
                .collect();
            Ok((feats, rows.len()))
        })
        .await?;
    let n_returned = feats.len();
    let mut resp = if csv {
        (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            features::to_csv(&feats, crs),
        )
            .into_response()
    } else {
        let links = page_links(&base, &cid, &q, offset, limit, matched);
        let returned = feats.len();
        let mut fc = json!({"type": "FeatureCollection", "numberMatched": matched,
                   "numberReturned": returned, "timeStamp": rfc3339(chrono::Utc::now().timestamp()), "links": links});
        // moved in, not copied by json!
        fc["features"] = Value::Array(feats);
        json_response(fc, "application/geo+json")
    };
    let h = resp.headers_mut();
    h.insert(
        "content-crs",
        HeaderValue::from_str(&format!("<{}>", crs.uri())).map_err(ApiError::internal)?,
    );
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&tag).map_err(ApiError::internal)?,
    );
    Ok(super::audit::with_info(resp, n_returned, 0))
}

fn page_links(
    base: &str,
    cid: &str,
    q: &Query,
    offset: usize,
    limit: usize,
    matched: usize,
) -> Vec<Value> {
    let url = |off: usize, f: Option<&str>| {
        let mut params: Vec<(String, String)> =
            q.0.iter()
                .filter(|(k, _)| k != "offset" && k != "limit" && k != "f")
                .cloned()
                .collect();
        params.push(("limit".into(), limit.to_string()));
        params.push(("offset".into(), off.to_string()));
        if let Some(f) = f {
            params.push(("f".into(), f.into()));
        }
        format!(
            "{base}/collections/{cid}/items?{}",
            serde_urlencoded::to_string(&params).unwrap_or_default()
        )
    };
    let mut links = vec![
        link(
            url(offset, None),
            "self",
            "application/geo+json",
            "this page",
        ),
        link(
            url(offset, Some("csv")),
            "alternate",
            "text/csv",
            "this page as CSV",
        ),
        link(
            format!("{base}/collections/{cid}"),
            "collection",
            "application/json",
            "the collection",
        ),
    ];
    if offset + limit < matched {
        links.push(link(
            url(offset + limit, None),
            "next",
            "application/geo+json",
            "next page",
        ));
    }
    if offset > 0 {
        links.push(link(
            url(offset.saturating_sub(limit), None),
            "prev",
            "application/geo+json",
            "previous page",
        ));
    }
    links
}

pub async fn item(
    State(st): State<AppState>,
    Caller(who): Caller,
    PathOk((cid, fid)): PathOk<(String, String)>,
    headers: HeaderMap,
    q: Query,
) -> ApiResult<Response> {
    q.allow(&["f", "crs"])?;
    let (snap, layer) = resolve(&st, &who, &cid)?;
    let missing = || ApiError::not_found(format!("feature {fid:?} not found in {cid}"));
    // A caller who may not list this layer learns nothing about which ids exist: an unknown
    // id and someone else's record get the same 403 (only its own records are found).
    let refusal = who.may_list(layer, None).err();
    let fid_n: i64 = match (fid.parse(), &refusal) {
        (Ok(n), _) => n,
        (Err(_), Some(e)) => return Err(e.clone().into()),
        (Err(_), None) => return Err(missing()),
    };
    let row = match layer {
        Layer::Incidents => snap.incidents.row_of(fid_n),
        Layer::Facilities => snap.facilities.iter().position(|(f, _)| *f == fid_n),
        Layer::Baseline => snap.baseline.iter().position(|(f, _)| *f == fid_n),
        Layer::StudyArea => (fid_n == 1 && snap.study_area.is_some()).then_some(0),
    }
    .ok_or_else(|| refusal.clone().map_or_else(missing, ApiError::from))?;
    // one's own records: the source of this very feature
    let own = (layer == Layer::Incidents)
        .then(|| vec![snap.incidents.sources[snap.incidents.src[row] as usize].clone()]);
    who.may_list(layer, own.as_deref())?;
    let crs = parse_crs_param(&q, "crs", &snap)?;
    if output_format(&q)? {
        return Err(ApiError::bad_request(
            "bad_format",
            "a single feature is served as GeoJSON only",
        ));
    }
    let tag = etag(&snap, &who, &q.0, &format!("{cid}/{fid}"));
    if not_modified(&headers, &tag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    let base = st.base_url(&headers);
    let snap2 = snap.clone();
    let mut f = st
        .blocking(move |app| {
            let details = if layer == Layer::Incidents {
                app.store.incident_details(&snap2.meta.id, &[fid_n])?
            } else {
                Default::default()
            };
            Ok(features::feature(
                &snap2,
                layer,
                row,
                crs,
                details.get(&fid_n),
            ))
        })
        .await?;
    f["links"] = json!([
        link(
            format!("{base}/collections/{cid}/items/{fid}"),
            "self",
            "application/geo+json",
            "this feature"
        ),
        link(
            format!("{base}/collections/{cid}"),
            "collection",
            "application/json",
            "the collection"
        ),
    ]);
    let mut resp = json_response(f, "application/geo+json");
    let h = resp.headers_mut();
    h.insert(
        "content-crs",
        HeaderValue::from_str(&format!("<{}>", crs.uri())).map_err(ApiError::internal)?,
    );
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&tag).map_err(ApiError::internal)?,
    );
    Ok(resp)
}
