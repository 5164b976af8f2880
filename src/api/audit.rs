//! The request gate every route passes: authenticates the caller once (handlers read the
//! [`Principal`] from the request extensions), applies the per-key rate limit (429 with
//! `Retry-After`), and writes every closed-tier, private-tier and admin request to the
//! append-only audit log before the answer leaves. Also `GET /audit` for privacy officers.

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Query};
use crate::model::Tier;
use crate::privacy::Principal;
use crate::store::AuditEntry;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a handler returned, for the audit log (put in the response extensions).
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditInfo {
    pub rows: Option<i64>,
    pub cells_suppressed: Option<i64>,
}

/// A fixed-window rate limiter per key id.
pub struct RateLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` when the request may go on, else the seconds to wait.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() > 100_000 {
            w.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let e = w.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(e.0) >= Duration::from_secs(60) {
            *e = (now, 0);
        }
        if e.1 >= self.per_minute {
            return Err(60u64
                .saturating_sub(now.duration_since(e.0).as_secs())
                .max(1));
        }
        e.1 += 1;
        Ok(())
    }
}

fn bearer(req: &Request) -> Result<Option<String>, ApiError> {
    match req.headers().get(header::AUTHORIZATION) {
        None => Ok(None),
        Some(v) => {
            let v = v.to_str().map_err(|_| super::extract::bad_auth())?;
            let key = v
                .strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .ok_or_else(super::extract::bad_auth)?;
            Ok(Some(key.trim().to_owned()))
        }
    }
}

/// The dataset a path is about: `/datasets/{id}/...` or `/collections/{id}.{layer}/...`.
fn dataset_of(path: &str) -> Option<String> {
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next()) {
        (Some("datasets"), Some(id)) => Some(id.to_owned()),
        (Some("collections"), Some(cid)) => cid.rsplit_once('.').map(|(d, _)| d.to_owned()),
        _ => None,
    }
}

/// The middleware.
pub async fn gate(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let key = match bearer(&req) {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let app = st.clone();
    let who = match tokio::task::spawn_blocking(move || app.app.authenticate(key.as_deref())).await
    {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return ApiError::from(e).into_response(),
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let limited = match &who.key_id {
        Some(id) => st.limiter.check(id).err().map(|w| (w, "this key")),
        None if who.admin => None,
        None => {
            // callers without a key share a budget per client address (one shared budget
            // when the server was not started with peer addresses, as in tests)
            let peer = req
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map_or_else(|| "local".to_owned(), |c| c.0.ip().to_string());
            st.anonymous_limiter
                .check(&format!("anonymous:{peer}"))
                .err()
                .map(|w| (w, "callers without a key from this address"))
        }
    };
    if let Some((wait, whom)) = limited {
        let mut r = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests for {whom}; retry in {wait} s"),
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return r;
    }
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    req.extensions_mut().insert(who.clone());
    let resp = next.run(req).await;
    let audited = who.admin || who.tier >= Tier::Closed || path.starts_with("/admin");
    if !audited {
        return resp;
    }
    let info = resp
        .extensions()
        .get::<AuditInfo>()
        .copied()
        .unwrap_or_default();
    let entry = AuditEntry {
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        key_id: who.key_id.clone(),
        organisation: who.organisation.clone(),
        tier: who.tier.as_str().to_owned(),
        method,
        dataset: dataset_of(&path),
        route: path,
        query,
        status: resp.status().as_u16(),
        rows_returned: info.rows,
        cells_suppressed: info.cells_suppressed,
        ..AuditEntry::default()
    };
    let app = st.clone();
    match tokio::task::spawn_blocking(move || app.app.store.append_audit(&entry)).await {
        Ok(Ok(())) => resp,
        Ok(Err(e)) => ApiError::internal(format!("audit log write failed: {e}")).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// `GET /audit`: the entries about the caller's organisation's datasets (privacy officers), or
/// all of them (admin), oldest first, paged with `after` (a `seq`) and `limit`.
pub async fn list(
    State(st): State<AppState>,
    Caller(who): Caller,
    q: Query,
) -> ApiResult<Response> {
    q.allow(&["after", "limit", "dataset"])?;
    if !who.privacy_officer {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "privacy_officer_only",
            "the audit log is for privacy officers and the admin",
        ));
    }
    let after = q.number::<i64>("after")?.unwrap_or(0);
    let limit = q.number::<usize>("limit")?.unwrap_or(100).clamp(1, 1000);
    let mut datasets: Option<Vec<String>> = if who.admin {
        None
    } else {
        Some(
            st.app
                .catalog
                .all()
                .iter()
                .filter(|s| who.may_see(&s.meta))
                .map(|s| s.meta.id.to_string())
                .collect(),
        )
    };
    if let Some(d) = q.get("dataset") {
        if datasets
            .as_ref()
            .is_some_and(|ds| !ds.iter().any(|x| x == d))
        {
            return Err(ApiError::not_found(format!("dataset {d:?} not found")));
        }
        datasets = Some(vec![d.to_owned()]);
    }
    let admin = who.admin;
    let (entries, broken) = st
        .blocking(move |app| {
            let e = app.store.audit_entries(datasets.as_deref(), after, limit)?;
            let broken = if admin {
                app.store.verify_audit_chain()?
            } else {
                None
            };
            Ok((e, broken))
        })
        .await?;
    let next = entries.last().map(|e| e.seq);
    let mut body = json!({"entries": entries, "next_after": next});
    if admin {
        body["chain_intact"] = json!(broken.is_none());
        body["chain_broken_at"] = json!(broken);
    }
    Ok(axum::Json(body).into_response())
}

/// Attaches audit figures to a response.
pub fn with_info(mut r: Response, rows: usize, suppressed: usize) -> Response {
    r.extensions_mut().insert(AuditInfo {
        rows: Some(rows as i64),
        cells_suppressed: Some(suppressed as i64),
    });
    r
}

/// The principal the gate authenticated (anonymous when the gate did not run, e.g. in a
/// router built without it).
pub fn principal_of(parts: &axum::http::request::Parts) -> Option<Principal> {
    parts.extensions.get::<Principal>().cloned()
}
