//! The one mapping from every module's errors to HTTP: `application/problem+json`
//! (RFC 9457) with a stable `code`. Server errors are logged and masked.

use crate::app::AppError;
use crate::ingest::IngestError;
use crate::privacy::PrivacyError;
use crate::store::StoreError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Extra members of the problem object (e.g. `rejected` rows).
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            detail: detail.into(),
            extra: None,
        }
    }
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", detail)
    }
    pub fn internal(what: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %what, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; it has been logged",
        )
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let mut body = json!({
            "type": format!("https://hotspots.example/problems/{}", self.code),
            "title": title,
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        if let (Some(extra), Some(obj)) = (self.extra, body.as_object_mut()) {
            obj.extend(extra);
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::DatasetExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "dataset_exists", e.to_string())
            }
            StoreError::DatasetNotFound(_) => ApiError::not_found(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl From<PrivacyError> for ApiError {
    fn from(e: PrivacyError) -> Self {
        let (status, code) = match e {
            PrivacyError::PointsForbidden { .. } => (StatusCode::FORBIDDEN, "tier_forbidden"),
            PrivacyError::AdminOnly => (StatusCode::FORBIDDEN, "admin_only"),
            PrivacyError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Parse(p) if p.code == "too_large" => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, p.code, p.message)
            }
            IngestError::Parse(p) => ApiError::bad_request(p.code, p.message),
            IngestError::Crs(c) => ApiError::bad_request("bad_crs", c.to_string()),
            IngestError::NoArea => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "no_area", e.to_string())
            }
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Store(s) => s.into(),
            AppError::Ingest(i) => i.into(),
            AppError::Privacy(p) => p.into(),
            AppError::BadKey => ApiError::new(StatusCode::UNAUTHORIZED, "bad_key", e.to_string()),
            AppError::DatasetNotFound(_) => ApiError::not_found(e.to_string()),
            AppError::Invalid(m) => ApiError::bad_request("invalid", m),
            AppError::Rejected(rows) => {
                let mut err = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "rows_rejected",
                    format!(
                        "{} rows were rejected and strict=true: nothing was written",
                        rows.len()
                    ),
                );
                let mut extra = serde_json::Map::new();
                extra.insert(
                    "rejected".into(),
                    serde_json::to_value(rows).unwrap_or_default(),
                );
                err.extra = Some(extra);
                err
            }
            AppError::Secret(..) => ApiError::internal(e),
        }
    }
}

impl From<crate::crs::CrsError> for ApiError {
    fn from(e: crate::crs::CrsError) -> Self {
        ApiError::bad_request("bad_crs", e.to_string())
    }
}
