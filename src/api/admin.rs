//! Admin routes: API keys (create, list, rotate, revoke). Keys are shown once, stored hashed.

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Query};
use crate::model::Tier;
use crate::store::KeyRecord;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    organisation: String,
    tier: String,
    #[serde(default)]
    label: String,
    /// `analyst` (default) or `privacy_officer`.
    #[serde(default)]
    role: Option<String>,
}

pub async fn create(
    State(st): State<AppState>,
    Caller(who): Caller,
    headers: axum::http::HeaderMap,
    q: Query,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    q.allow(&[])?;
    who.require_admin()?;
    super::datasets::require_json(&headers)?;
    let body = body.map_err(super::datasets::body_error)?;
    let nk: NewKey = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("bad_json", format!("expected {{\"organisation\": ..., \"tier\": \"open|closed|private\", \"label\": ...}}: {e}"))
    })?;
    let tier =
        Tier::parse(&nk.tier).map_err(|e| ApiError::bad_request("bad_tier", e.to_string()))?;
    let (key, rec) = st
        .blocking(move |app| {
            let officer = match nk.role.as_deref() {
                None | Some("analyst") => false,
                Some("privacy_officer") => true,
                Some(r) => {
                    return Err(ApiError::bad_request(
                        "bad_role",
                        format!("role {r:?}: expected analyst or privacy_officer"),
                    ));
                }
            };
            Ok(app.create_key(&nk.organisation, tier, &nk.label, officer)?)
        })
        .await?;
    tracing::info!(key_id = %rec.id, organisation = %rec.organisation, tier = %rec.tier, "admin created a key");
    Ok(new_key_response(&key, &rec, None))
}

/// `201` with the new key, shown this once.
fn new_key_response(key: &str, rec: &KeyRecord, replaces: Option<&str>) -> Response {
    let mut v = json!({"key": key, "id": rec.id, "organisation": rec.organisation,
        "tier": rec.tier, "label": rec.label, "role": rec.role, "created_at": rec.created_at});
    if let Some(old) = replaces {
        v["replaces"] = json!(old);
    }
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

/// `POST /admin/keys/{key_id}/rotate`: a new key for the same organisation, tier, role and
/// label; the old one stops working at once.
pub async fn rotate(
    State(st): State<AppState>,
    Caller(who): Caller,
    Path(key_id): Path<String>,
    q: Query,
) -> ApiResult<Response> {
    q.allow(&[])?;
    who.require_admin()?;
    let id = key_id.clone();
    match st.blocking(move |app| Ok(app.rotate_key(&id)?)).await? {
        Some((key, rec)) => {
            tracing::info!(old = %key_id, key_id = %rec.id, "admin rotated a key");
            Ok(new_key_response(&key, &rec, Some(&key_id)))
        }
        None => Err(ApiError::not_found(format!("no active key {key_id:?}"))),
    }
}

pub async fn list(
    State(st): State<AppState>,
    Caller(who): Caller,
    q: Query,
) -> ApiResult<Response> {
    q.allow(&[])?;
    who.require_admin()?;
    let keys = st.blocking(|app| Ok(app.store.list_keys()?)).await?;
    Ok(axum::Json(json!({ "keys": keys })).into_response())
}

pub async fn revoke(
    State(st): State<AppState>,
    Caller(who): Caller,
    Path(key_id): Path<String>,
    q: Query,
) -> ApiResult<Response> {
    q.allow(&[])?;
    who.require_admin()?;
    let id = key_id.clone();
    if st.blocking(move |app| Ok(app.revoke_key(&id)?)).await? {
        tracing::info!(key_id = %key_id, "admin revoked a key");
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found(format!("no active key {key_id:?}")))
    }
}
