//! Errors in the shape Podero partners already parse: `{"detail": "…"}`, and for validation
//! `422 {"detail": [{"loc": […], "msg": "…", "type": "…"}]}`. Internal causes are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use voltplan_core::validation::FieldError;
use voltplan_store::StoreError;

/// What a 503 asks clients to wait before retrying: long enough for a restarted database or a
/// released lock, short enough that a partner's queue drains soon after.
pub const RETRY_AFTER_UNAVAILABLE_SECS: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not found")]
    NotFound,
    /// A 404 whose detail says why (for things that are absent by configuration, not by tenancy).
    #[error("not found: {0}")]
    NotFoundWith(String),
    #[error("validation failed")]
    Invalid(Vec<FieldError>),
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No credentials were sent (RFC 6750 §3.1: the challenge then carries no error code).
    #[error("authentication required")]
    Unauthenticated,
    /// Credentials were sent and are not valid.
    #[error("authentication failed: {0}")]
    Unauthorized(&'static str),
    #[error("request body too large")]
    PayloadTooLarge,
    /// A body that is not declared as JSON (`Content-Type` missing or another type).
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("conflict")]
    Conflict(serde_json::Value),
    /// The database is unreachable or did not answer in time, or the request ran past its
    /// time limit: 503 with `Retry-After`. The cause is logged.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn field(field: &str, kind: &str, msg: impl Into<String>) -> Self {
        ApiError::Invalid(vec![FieldError::body(field, kind, msg)])
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Invalid(errors) => ApiError::Invalid(errors),
            StoreError::Conflict { field } => ApiError::Invalid(vec![FieldError::body(
                field,
                "unique",
                format!("{field} is already in use in this organisation"),
            )]),
            other if other.is_unavailable() => ApiError::Unavailable(other.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"detail": "Not Found"})),
            )
                .into_response(),
            ApiError::NotFoundWith(detail) => {
                (StatusCode::NOT_FOUND, axum::Json(json!({"detail": detail}))).into_response()
            }
            ApiError::Invalid(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(json!({"detail": errors})),
            )
                .into_response(),
            ApiError::BadRequest(msg) => {
                (StatusCode::BAD_REQUEST, axum::Json(json!({"detail": msg}))).into_response()
            }
            ApiError::Unauthenticated => {
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(json!({"detail": "Authentication credentials were not provided"})),
                )
                    .into_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"voltplan\""),
                );
                response
            }
            ApiError::Unauthorized(why) => {
                let mut response =
                    (StatusCode::UNAUTHORIZED, axum::Json(json!({"detail": why}))).into_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"voltplan\", error=\"invalid_token\""),
                );
                response
            }
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                axum::Json(json!({"detail": "Request body is larger than 1 MiB"})),
            )
                .into_response(),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                axum::Json(json!({
                    "detail": "Expected a JSON body with `Content-Type: application/json`"
                })),
            )
                .into_response(),
            ApiError::TooManyRequests { retry_after_secs } => {
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    axum::Json(json!({"detail": "Too many requests; retry later"})),
                )
                    .into_response();
                if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                response
            }
            ApiError::Conflict(body) => (StatusCode::CONFLICT, axum::Json(body)).into_response(),
            ApiError::Unavailable(cause) => {
                tracing::warn!(%cause, "request failed: service unavailable");
                unavailable_response("The service is temporarily unavailable; retry later")
            }
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    axum::Json(json!({"detail": "Internal server error"})),
                )
                    .into_response()
            }
        }
    }
}

/// 503 with `Retry-After` and `detail`.
pub fn unavailable_response(detail: &'static str) -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({"detail": detail})),
    )
        .into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(RETRY_AFTER_UNAVAILABLE_SECS),
    );
    response
}

pub type ApiResult<T> = Result<T, ApiError>;
