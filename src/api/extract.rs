//! Request extractors whose rejections are problem+json: the caller's [`Principal`] from
//! `Authorization: Bearer`, and query parameters checked against an allowlist.

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::privacy::Principal;
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};

/// The authenticated caller (anonymous = open tier).
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(p) = super::audit::principal_of(parts) {
            return Ok(Caller(p));
        }
        let key = match parts.headers.get(header::AUTHORIZATION) {
            None => None,
            Some(v) => {
                let v = v.to_str().map_err(|_| bad_auth())?;
                let key = v
                    .strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
                    .ok_or_else(bad_auth)?;
                Some(key.trim().to_owned())
            }
        };
        let app = state.clone();
        let principal = tokio::task::spawn_blocking(move || app.app.authenticate(key.as_deref()))
            .await
            .map_err(ApiError::internal)??;
        Ok(Caller(principal))
    }
}

pub(crate) fn bad_auth() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "bad_authorization",
        "the Authorization header must be 'Bearer <key>'",
    )
}

/// Query parameters in order, as sent.
pub struct Query(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .map(Query)
            .map_err(|e| {
                ApiError::bad_request("bad_query", format!("unreadable query string: {e}"))
            })
    }
}

impl Query {
    /// Rejects parameters outside `allowed` and repeated parameters (400, as OGC's
    /// unknown-parameter test expects).
    pub fn allow(&self, allowed: &[&str]) -> ApiResult<()> {
        for (i, (k, _)) in self.0.iter().enumerate() {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::bad_request(
                    "unknown_parameter",
                    format!(
                        "unknown query parameter {k:?}; this route takes: {}",
                        allowed.join(", ")
                    ),
                ));
            }
            if self.0[..i].iter().any(|(k2, _)| k2 == k) {
                return Err(ApiError::bad_request(
                    "repeated_parameter",
                    format!("query parameter {k:?} is given twice"),
                ));
            }
        }
        Ok(())
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    /// A comma-separated list (`category=a,b`), empty items dropped.
    pub fn list(&self, k: &str) -> Option<Vec<String>> {
        self.get(k).map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
    }

    /// A number parameter with a clear error.
    pub fn number<T: std::str::FromStr>(&self, k: &str) -> ApiResult<Option<T>> {
        self.get(k)
            .map(|v| {
                v.trim().parse::<T>().map_err(|_| {
                    ApiError::bad_request(
                        "bad_parameter",
                        format!("{k}={v:?} is not a valid number"),
                    )
                })
            })
            .transpose()
    }

    /// A boolean parameter (`true`/`false`).
    pub fn flag(&self, k: &str) -> ApiResult<bool> {
        match self.get(k) {
            None | Some("false") => Ok(false),
            Some("true") | Some("") => Ok(true),
            Some(v) => Err(ApiError::bad_request(
                "bad_parameter",
                format!("{k}={v:?}: expected true or false"),
            )),
        }
    }
}
