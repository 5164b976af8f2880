//! The HTTP edge: parse -> call the core (in `spawn_blocking` for anything heavy) -> map.
//! One file per resource; `error` is the only place that maps errors to status codes.

pub mod admin;
pub mod analysis;
pub mod audit;
pub mod cache;
pub mod clusters;
pub mod datasets;
pub mod error;
pub mod extract;
pub mod features;
pub mod filters;
pub mod insights;
pub mod ogc;
pub mod picture;
pub mod protect;
pub mod proximity;
pub mod render;

use crate::app::App;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use error::{ApiError, ApiResult};
use std::sync::Arc;
use std::time::Duration;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Server settings that shape responses.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL for links; when `None`, taken from the `Host` header.
    pub public_url: Option<String>,
    /// Comma-separated allowed origins, or `*`.
    pub cors_origins: String,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub max_concurrency: usize,
    /// Requests per minute per API key (0: no limit).
    pub rate_limit_per_minute: u32,
    /// Requests per minute per client IP address without a key (0: no limit).
    pub anonymous_rate_limit_per_minute: u32,
    /// Analysis answers kept in the per-snapshot cache (0: no caching, as the benchmarks
    /// use to time the computation itself).
    pub cache_entries: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            public_url: None,
            cors_origins: "*".into(),
            max_body_bytes: 512 << 20,
            request_timeout: Duration::from_secs(120),
            max_concurrency: 64,
            rate_limit_per_minute: 600,
            anonymous_rate_limit_per_minute: 300,
            cache_entries: 256,
        }
    }
}

pub struct StateInner {
    pub app: App,
    pub settings: Settings,
    pub cache: cache::Cache,
    /// GeoJSON answers serialised once (same keys as `cache`).
    pub rendered: cache::Cache<render::Rendered>,
    pub limiter: audit::RateLimiter,
    pub anonymous_limiter: audit::RateLimiter,
    /// Work on the blocking pool: running now, and cancelled since start.
    pub work: WorkStats,
}

#[derive(Default)]
pub struct WorkStats {
    pub running: std::sync::atomic::AtomicUsize,
    pub cancelled: std::sync::atomic::AtomicU64,
}

/// Cancels the token when the request's future is dropped (client gone, time limit passed)
/// or done.
struct CancelOnDrop(crate::cancel::Token);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Counts a piece of work as running while it lives (also when it panics).
struct Running<'a>(&'a WorkStats);

impl<'a> Running<'a> {
    fn new(w: &'a WorkStats) -> Running<'a> {
        w.running.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Running(w)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0
            .running
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState(pub Arc<StateInner>);

impl std::ops::Deref for AppState {
    type Target = StateInner;
    fn deref(&self) -> &StateInner {
        &self.0
    }
}

impl AppState {
    pub fn new(app: App, settings: Settings) -> AppState {
        AppState(Arc::new(StateInner {
            limiter: audit::RateLimiter::new(settings.rate_limit_per_minute),
            anonymous_limiter: audit::RateLimiter::new(settings.anonymous_rate_limit_per_minute),
            work: WorkStats::default(),
            cache: cache::Cache::new(settings.cache_entries),
            rendered: cache::Cache::new(settings.cache_entries),
            app,
            settings,
        }))
    }

    /// Runs `f` on the blocking pool with the app.
    /// When the request is dropped before the work ends (the client went away, or the time
    /// limit passed), the work is cancelled at its next `cancel::checkpoint` (analyses only;
    /// writes have none and always finish).
    /// The answer kept in `cache` under `key`, or computed by `compute` on the blocking pool
    /// (see [`AppState::blocking`]) and kept.
    pub(crate) async fn cached_in<T: Send + Sync + 'static>(
        &self,
        cache: &cache::Cache<T>,
        key: String,
        compute: impl FnOnce() -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<Arc<T>> {
        if let Some(v) = cache.get(&key) {
            return Ok(v);
        }
        let v = Arc::new(self.blocking(move |_| compute()).await?);
        cache.put(key, v.clone());
        Ok(v)
    }

    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&App) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let s = self.clone();
        let token = crate::cancel::Token::new();
        let _cancel_on_drop = CancelOnDrop(token.clone());
        tokio::task::spawn_blocking(move || {
            let _running = Running::new(&s.work);
            crate::cancel::run(&token, || f(&s.app)).unwrap_or_else(|e| {
                s.work
                    .cancelled
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "cancelled",
                    e.to_string(),
                ))
            })
        })
        .await
        .map_err(ApiError::internal)?
    }

    /// The base URL of links in responses.
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(u) = &self.settings.public_url {
            return u.trim_end_matches('/').to_owned();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let proto = headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("http");
        format!("{proto}://{host}")
    }
}

fn cors(origins: &str) -> CorsLayer {
    let allow = if origins.trim() == "*" {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .split(',')
                .filter_map(|o| HeaderValue::from_str(o.trim()).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
        ])
        .expose_headers([
            header::ETAG,
            header::HeaderName::from_static("content-crs"),
            header::LOCATION,
        ])
        .max_age(Duration::from_secs(3600))
}

/// The router with every route and middleware.
pub fn router(state: AppState) -> Router {
    let s = state.settings.clone();
    Router::new()
        .route("/", get(ogc::landing))
        .route("/health", get(health))
        .route("/conformance", get(ogc::conformance))
        .route("/api", get(ogc::api_json))
        .route("/openapi.yaml", get(ogc::api_yaml))
        .route("/collections", get(ogc::collections))
        .route("/collections/{cid}", get(ogc::collection))
        .route("/collections/{cid}/items", get(ogc::items))
        .route("/collections/{cid}/items/{fid}", get(ogc::item))
        .route("/datasets", get(datasets::list).post(datasets::create))
        .route(
            "/datasets/{id}",
            get(datasets::describe)
                .delete(datasets::remove)
                .patch(datasets::update),
        )
        .route("/datasets/{id}/hotspots", get(analysis::hotspots))
        .route("/datasets/{id}/emerging", get(analysis::emerging))
        .route(
            "/datasets/{id}/emerging/compare",
            get(analysis::emerging_compare),
        )
        .route("/datasets/{id}/proximity", get(proximity::proximity))
        .route("/datasets/{id}/concentration", get(insights::concentration))
        .route("/datasets/{id}/clusters", get(clusters::clusters))
        .route("/datasets/{id}/density", get(clusters::density))
        .route("/datasets/{id}/coverage", get(insights::coverage))
        .route("/datasets/{id}/picture", get(picture::picture))
        .route("/datasets/{id}/proximity/nearest", get(proximity::nearest))
        .route(
            "/datasets/{id}/{layer}",
            post(datasets::ingest).layer(DefaultBodyLimit::max(s.max_body_bytes)),
        )
        .route(
            "/datasets/{id}/members/{organisation}",
            put(datasets::member).delete(datasets::member),
        )
        .route("/audit", get(audit::list))
        .route("/admin/keys", get(admin::list).post(admin::create))
        .route("/admin/keys/{key_id}", delete(admin::revoke))
        .route("/admin/keys/{key_id}/rotate", post(admin::rotate))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::gate,
        ))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            s.max_concurrency,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            time_limit,
        ))
        .layer(CompressionLayer::new())
        .layer(cors(&s.cors_origins))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn health(
    axum::extract::State(st): axum::extract::State<AppState>,
    q: extract::Query,
) -> ApiResult<Response> {
    use std::sync::atomic::Ordering::Relaxed;
    q.allow(&[])?;
    let work = serde_json::json!({"running": st.work.running.load(Relaxed),
                                  "cancelled": st.work.cancelled.load(Relaxed)});
    Ok(axum::Json(
        serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "work": work}),
    )
    .into_response())
}

/// Answers 503 (problem+json, code `timeout`) when a request takes longer than the configured
/// time limit. Dropping the request cancels an analysis on the blocking pool at its next
/// checkpoint (see `AppState::blocking`); a write finishes and commits.
async fn time_limit(
    axum::extract::State(st): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(st.settings.request_timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request took longer than {} s (--request-timeout-secs)",
                st.settings.request_timeout.as_secs()
            ),
        )
        .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route; see /api for the routes")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route; see /api",
    )
}
