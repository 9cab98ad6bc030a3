//! Operations: health, Prometheus metrics, request spans, JSON fallbacks.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use serde_json::json;
use std::sync::OnceLock;
use std::time::Instant;
use utoipa::ToSchema;

use crate::error::unavailable_response;
use crate::state::AppState;

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder once (several servers in one test process share it).
pub fn install_metrics_recorder() {
    PROMETHEUS.get_or_init(|| match PrometheusBuilder::new().install_recorder() {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "metrics recorder not installed");
            None
        }
    });
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the database answered.
    pub status: &'static str,
    /// `sqlite` or `postgres`.
    pub database: &'static str,
}

/// Liveness and readiness: checks the database.
#[utoipa::path(get, path = "/healthz", tag = "Operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn healthz(State(state): State<AppState>) -> Response {
    let database = match state.store().backend() {
        voltplan_store::Backend::Sqlite => "sqlite",
        voltplan_store::Backend::Postgres => "postgres",
    };
    // Bounded well below a load balancer's probe timeout, so an exhausted pool or a database
    // that stopped answering shows at once.
    let ping = tokio::time::timeout(state.0.config.health_timeout, state.store().ping()).await;
    match ping {
        Ok(Ok(())) => axum::Json(Health {
            status: "ok",
            database,
        })
        .into_response(),
        Err(_) => unhealthy(database, "the database did not answer in time"),
        Ok(Err(e)) => unhealthy(database, e),
    }
}

fn unhealthy(database: &'static str, cause: impl std::fmt::Display) -> Response {
    tracing::error!(%cause, "health check failed");
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(Health {
            status: "unavailable",
            database,
        }),
    )
        .into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(crate::error::RETRY_AFTER_UNAVAILABLE_SECS),
    );
    response
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "Operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics() -> Response {
    install_metrics_recorder();
    let body = PROMETHEUS
        .get()
        .and_then(|h| h.as_ref())
        .map(|h| h.render())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Counts requests and their latency by route template and method (never by raw path or a
/// method as sent: anyone could make up new ones and grow the label space without bound).
pub async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", status),
    ];
    metrics::counter!("voltplan_http_requests_total", &labels).increment(1);
    metrics::histogram!("voltplan_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The method as a metrics label: one of the methods this API knows, else `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Ends a request that runs past `ApiConfig::request_timeout` with 503 and `Retry-After`. Store
/// calls have tighter bounds of their own (pool, statement and lock timeouts); this one also
/// covers slow request bodies and everything else. Dropping the handler rolls back its open
/// transaction.
pub async fn limit_request_time(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.0.config.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_secs = limit.as_secs_f64(), "request timed out");
            unavailable_response("The request took too long; retry later")
        }
    }
}

pub fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str())
        .unwrap_or("");
    tracing::info_span!("request", method = %request.method(), route, request_id)
}

pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"detail": "Not Found"})),
    )
        .into_response()
}

pub async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(json!({"detail": "Method Not Allowed"})),
    )
        .into_response()
}

pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    let mut response = (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({"detail": "Internal server error"})),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
