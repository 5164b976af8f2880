//! Datasets: create, list, describe, delete, and ingest into a layer.

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Query};
use crate::app::IngestRequest;
use crate::crs::Crs;
use crate::index::DatasetSnapshot;
use crate::ingest::{Format, csv::CsvOptions};
use crate::model::{DatasetId, DatasetSettings, Layer};
use crate::privacy::Principal;
use crate::privacy::disclosure::{CellRules, hidden_counts, rules_for};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

fn dataset_id(s: &str) -> ApiResult<DatasetId> {
    DatasetId::new(s).map_err(|_| ApiError::not_found(format!("dataset {s:?} not found")))
}

/// Counts per name as the tier may see them (small ones `null`, with secondary suppression
/// because the incident total is published).
fn tier_counts(m: std::collections::BTreeMap<&str, u64>, rules: &CellRules) -> Value {
    let counts: Vec<u64> = m.values().copied().collect();
    let hidden = hidden_counts(&counts, rules);
    Value::Object(
        m.keys()
            .zip(counts.iter().zip(hidden))
            .map(|(k, (&n, h))| ((*k).to_owned(), if h { Value::Null } else { json!(n) }))
            .collect(),
    )
}

fn describe_json(s: &DatasetSnapshot, base: &str, who: &Principal) -> Value {
    let (cats, srcs) = s.counts();
    let rules = rules_for(who.tier, &s.meta.settings, false);
    let (cats, srcs) = (tier_counts(cats, &rules), tier_counts(srcs, &rules));
    let id = &s.meta.id;
    json!({
        "id": id, "title": s.meta.title, "metric_crs": s.meta.metric_crs, "created_at": s.meta.created_at,
        "version": s.version,
        "open": s.meta.open, "members": s.meta.members, "settings": s.meta.settings,
        "layers": {
            "incidents": {"count": s.incidents.len(), "collection": format!("{id}.incidents")},
            "facilities": {"count": s.facilities.len(), "collection": format!("{id}.facilities")},
            "baseline": {"count": s.baseline.len(), "collection": format!("{id}.baseline")},
            "study_area": {"present": s.study_area.is_some(), "collection": format!("{id}.study_area")},
        },
        "categories": cats, "sources": srcs,
        "links": [
            {"href": format!("{base}/datasets/{id}"), "rel": "self", "type": "application/json"},
            {"href": format!("{base}/collections/{id}.incidents"), "rel": "collection", "type": "application/json"},
        ]
    })
}

pub async fn list(
    State(st): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    q: Query,
) -> ApiResult<Response> {
    q.allow(&[])?;
    let base = st.base_url(&headers);
    let all: Vec<Value> = st
        .app
        .catalog
        .all()
        .iter()
        .filter(|s| who.may_see(&s.meta))
        .map(|s| describe_json(s, &base, &who))
        .collect();
    Ok(axum::Json(json!({ "datasets": all })).into_response())
}

pub async fn describe(
    State(st): State<AppState>,
    Caller(who): Caller,
    PathOk(id): PathOk<String>,
    headers: HeaderMap,
    q: Query,
) -> ApiResult<Response> {
    q.allow(&[])?;
    let id = dataset_id(&id)?;
    let snap = st
        .app
        .catalog
        .get(&id)
        .filter(|s| who.may_see(&s.meta))
        .ok_or_else(|| ApiError::not_found(format!("dataset {id} not found")))?;
    Ok(axum::Json(describe_json(&snap, &st.base_url(&headers), &who)).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDataset {
    id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    metric_crs: Option<String>,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    open: bool,
    #[serde(default)]
    settings: DatasetSettings,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DatasetPatch {
    title: Option<String>,
    open: Option<bool>,
    settings: Option<DatasetSettings>,
}

pub async fn create(
    State(st): State<AppState>,
    _: ClaimedLength,
    Caller(who): Caller,
    headers: HeaderMap,
    q: Query,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    q.allow(&[])?;
    who.require_admin()?;
    require_json(&headers)?;
    let body = body.map_err(body_error)?;
    let nd: NewDataset = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "bad_json",
            format!("expected {{\"id\": ..., \"title\": ..., \"metric_crs\": optional}}: {e}"),
        )
    })?;
    let meta = st
        .blocking(move |app| {
            Ok(app.create_dataset(crate::app::NewDataset {
                id: &nd.id,
                title: &nd.title,
                metric_crs: nd.metric_crs.as_deref(),
                members: nd.members,
                open: nd.open,
                settings: nd.settings,
            })?)
        })
        .await?;
    let base = st.base_url(&headers);
    let snap = st
        .app
        .catalog
        .get(&meta.id)
        .ok_or_else(|| ApiError::internal("dataset vanished after create"))?;
    let location = format!("{base}/datasets/{}", meta.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(describe_json(&snap, &base, &who)),
    )
        .into_response())
}

pub async fn remove(
    State(st): State<AppState>,
    Caller(who): Caller,
    PathOk(id): PathOk<String>,
    q: Query,
) -> ApiResult<Response> {
    q.allow(&[])?;
    who.require_admin()?;
    let id = dataset_id(&id)?;
    let id2 = id.clone();
    if st
        .blocking(move |app| Ok(app.delete_dataset(&id2)?))
        .await?
    {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found(format!("dataset {id} not found")))
    }
}

pub(crate) fn require_json(headers: &HeaderMap) -> ApiResult<()> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct
        .split(';')
        .next()
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json"))
    {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send Content-Type: application/json",
        ))
    }
}

/// Refuses a request whose `Content-Length` is over the body limit from the header alone,
/// before any of the body is read (a client claiming 1 GB gets 413 at once instead of a
/// connection held open until the body arrives). Put it before the body extractor.
pub struct ClaimedLength;

impl FromRequestParts<AppState> for ClaimedLength {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let claimed = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        match claimed {
            Some(n) if n > st.settings.max_body_bytes as u64 => Err(too_large()),
            _ => Ok(ClaimedLength),
        }
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "the request body is larger than the configured limit (--max-body-mb)",
    )
}

/// `Path` whose rejection is problem+json: a segment with bad percent-encoding or invalid
/// UTF-8 names no resource, so it is a 404 `not_found` like any other unknown id.
pub struct PathOk<T>(pub T);

impl<T, S> FromRequestParts<S> for PathOk<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, s).await {
            Ok(Path(t)) => Ok(PathOk(t)),
            Err(e) => Err(ApiError::not_found(format!(
                "no such resource: {}",
                e.body_text()
            ))),
        }
    }
}

/// Maps body read failures: over the limit is 413, anything else 400.
pub fn body_error(e: BytesRejection) -> ApiError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        ApiError::bad_request("bad_body", format!("could not read the request body: {e}"))
    }
}

fn csv_options(q: &Query) -> ApiResult<CsvOptions> {
    let one_char = |k: &str| -> ApiResult<Option<char>> {
        match q.get(k) {
            None => Ok(None),
            Some("\\t") | Some("tab") => Ok(Some('\t')),
            Some(v) if v.chars().count() == 1 => Ok(v.chars().next()),
            Some(v) => Err(ApiError::bad_request(
                "bad_parameter",
                format!("{k}={v:?}: expected one character"),
            )),
        }
    };
    let delimiter = one_char("delimiter")?;
    if delimiter.is_some_and(|d| !d.is_ascii()) {
        return Err(ApiError::bad_request(
            "bad_parameter",
            "delimiter must be an ASCII character",
        ));
    }
    let decimal = one_char("decimal")?;
    if decimal.is_some_and(|d| d != '.' && d != ',') {
        return Err(ApiError::bad_request(
            "bad_parameter",
            "decimal must be '.' or ','",
        ));
    }
    Ok(CsvOptions {
        delimiter: delimiter.map(|d| d as u8),
        decimal,
        x: q.get("x").map(str::to_owned),
        y: q.get("y").map(str::to_owned),
        wkt: q.get("wkt").map(str::to_owned),
    })
}

pub async fn ingest(
    State(st): State<AppState>,
    _: ClaimedLength,
    Caller(who): Caller,
    PathOk((id, layer)): PathOk<(String, String)>,
    headers: HeaderMap,
    q: Query,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    q.allow(&["crs", "delimiter", "decimal", "x", "y", "wkt", "strict"])?;
    let id = dataset_id(&id)?;
    let layer = Layer::parse(&layer).map_err(|e| ApiError::not_found(e.to_string()))?;
    who.may_write(layer)?;
    // a dataset the caller may not see answers exactly like a missing one
    if !st
        .app
        .catalog
        .get(&id)
        .is_some_and(|s| who.may_see(&s.meta))
    {
        return Err(ApiError::not_found(format!("dataset {id} not found")));
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = Format::from_content_type(ct).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type {ct:?}: send application/geo+json or text/csv"),
        )
    })?;
    let crs = Crs::parse(q.get("crs").unwrap_or("EPSG:4326"))?;
    let csv = csv_options(&q)?;
    let strict = q.flag("strict")?;
    let body = body.map_err(body_error)?;
    let outcome = st
        .blocking(move |app| {
            let req = IngestRequest {
                layer,
                format,
                body: &body,
                crs,
                csv,
                strict,
            };
            Ok(app.ingest(&who, &id, req, |_| {})?)
        })
        .await?;
    Ok(axum::Json(outcome).into_response())
}

/// `PATCH /datasets/{id}`: title, open publication and disclosure settings (admin).
pub async fn update(
    State(st): State<AppState>,
    _: ClaimedLength,
    Caller(who): Caller,
    PathOk(id): PathOk<String>,
    headers: HeaderMap,
    q: Query,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    q.allow(&[])?;
    who.require_admin()?;
    require_json(&headers)?;
    let id = dataset_id(&id)?;
    let body = body.map_err(body_error)?;
    let p: DatasetPatch = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "bad_json",
            format!("expected {{\"title\"?, \"open\"?, \"settings\"?}}: {e}"),
        )
    })?;
    st.blocking(move |app| Ok(app.update_dataset(&id, p.title.as_deref(), p.open, p.settings)?))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT` / `DELETE /datasets/{id}/members/{organisation}`: membership of a data lab (admin).
pub async fn member(
    State(st): State<AppState>,
    Caller(who): Caller,
    method: axum::http::Method,
    PathOk((id, org)): PathOk<(String, String)>,
    q: Query,
) -> ApiResult<Response> {
    q.allow(&[])?;
    who.require_admin()?;
    let id = dataset_id(&id)?;
    let add = method == axum::http::Method::PUT;
    let changed = st
        .blocking(move |app| Ok(app.set_member(&id, &org, add)?))
        .await?;
    if !add && !changed {
        return Err(ApiError::not_found(
            "that organisation is not a member of this dataset",
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
