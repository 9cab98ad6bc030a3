//! `/org/{org_id}/webhooks`: partners' subscriptions to outgoing webhooks (Podero has none; see
//! "Webhooks" in `openapi_description.md`), their signing secrets and delivery logs. The worker
//! delivers (`voltplan_worker::webhooks`); incoming cloud webhooks are `webhooks_in.rs`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use voltplan_core::events::{EVENT_TYPES, Event};
use voltplan_store::webhooks::{
    AttemptRecord, DeliveryRecord, DeliveryStatus, NewWebhookEndpoint, SealedSecret,
    WebhookEndpointRecord, WebhookEndpointUpdate, secret_context,
};
use voltplan_webhooks::sign::SigningSecret;
use voltplan_webhooks::target::UrlPolicy;

use crate::auth::OrgAccess;
use crate::body::{Fields, JsonObject, Patch, write_body};
use crate::error::{ApiError, ApiResult};
use crate::params::{Ids, Q};
use crate::schemas::accepted_values_type;
use crate::state::AppState;

/// Every event type a subscription may name, and `*` for all of them: what is accepted and
/// what the OpenAPI document lists.
fn subscribable() -> Vec<&'static str> {
    std::iter::once("*")
        .chain(EVENT_TYPES.iter().map(|(name, _)| *name))
        .collect()
}

accepted_values_type! {
    /// An event type (see "Webhooks" in the API description), or `*` for every type.
    pub struct EventTypeName = subscribable().into_iter();
}

pub(crate) const READ_ONLY: &[&str] = &[
    "id",
    "secret",
    "disabled_reason",
    "failing_since",
    "previous_secret_expires_at",
    "created_at",
    "updated_at",
];
const MAX_DESCRIPTION: usize = 500;
/// How long the secret before a rotation keeps signing, unless the request says otherwise.
const DEFAULT_OVERLAP_SECONDS: i64 = 86_400;
const MAX_OVERLAP_SECONDS: i64 = 7 * 86_400;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WebhookPath {
    #[allow(dead_code)] // checked by `OrgAccess`
    pub org_id: Uuid,
    pub webhook_id: Uuid,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DeliveryPath {
    #[allow(dead_code)] // checked by `OrgAccess`
    pub org_id: Uuid,
    pub webhook_id: Uuid,
    /// The event's id, which is also the `webhook-id` header of every attempt.
    pub delivery_id: Uuid,
}

/// A subscription. The signing secret is shown once, when created or rotated.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookOut {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    #[schema(value_type = Vec<EventTypeName>)]
    pub event_types: Vec<String>,
    /// False when the partner disabled it, or Voltplan did after a day of failed deliveries
    /// (`disabled_reason` then says so; setting `enabled` to true again resumes delivery).
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// The first failed attempt since the last delivered one.
    pub failing_since: Option<DateTime<Utc>>,
    /// Until then, deliveries are signed with the previous secret too.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<WebhookEndpointRecord> for WebhookOut {
    fn from(e: WebhookEndpointRecord) -> Self {
        WebhookOut {
            id: e.id,
            url: e.url,
            description: e.description,
            event_types: e.event_types,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            failing_since: e.failing_since,
            previous_secret_expires_at: e.previous_secret.map(|(_, until)| until),
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// A subscription just created, with its signing secret (shown this once).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookCreatedOut {
    #[serde(flatten)]
    pub webhook: WebhookOut,
    /// `whsec_` and the base64 of 24 random bytes: the Standard Webhooks secret format, which
    /// its libraries take as it is. Store it; it is never shown again.
    pub secret: String,
}

write_body! {
    /// A subscription. `url` is required on POST; `event_types` defaults to `["*"]` (every
    /// type), `enabled` to true. PUT changes only the fields sent. The URL must be `https` (plain
    /// `http` to a loopback address only when the operator allows it), without user info or
    /// fragment, and may not point at a private, loopback or link-local address (checked again
    /// after DNS resolution at every attempt).
    pub struct WebhookWrite {
        #[schema(required = false, max_length = 2048)]
        url: String,
        #[schema(max_length = 500)]
        description: Option<String>,
        #[schema(required = false, min_items = 1, max_items = 64, value_type = Vec<EventTypeName>)]
        event_types: Vec<String>,
        #[schema(required = false)]
        enabled: bool,
    }
}

write_body! {
    /// A new signing secret; the current one keeps signing for `overlap_seconds` (default one day,
    /// at most a week; 0 ends it at once), so receivers can switch without losing a delivery.
    pub struct RotateSecretWrite {
        #[schema(minimum = 0, maximum = 604_800)]
        overlap_seconds: Option<i64>,
    }
}

/// A rotated secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecretOut {
    /// The new secret (shown this once).
    pub secret: String,
    pub previous_secret_expires_at: DateTime<Utc>,
}

/// A test event queued for one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestEventOut {
    /// The event's id: the `webhook-id` of its delivery, and its id in `…/deliveries`.
    pub delivery_id: Uuid,
}

/// One attempt to deliver.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptOut {
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    /// The receiver's HTTP status; null when none came (timeout, refused address, TLS…).
    pub status_code: Option<i32>,
    pub error: Option<String>,
    /// The first 1,024 bytes of the receiver's answer.
    pub response_excerpt: Option<String>,
}

impl From<AttemptRecord> for AttemptOut {
    fn from(a: AttemptRecord) -> Self {
        AttemptOut {
            attempt: a.attempt,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            error: a.error,
            response_excerpt: a.response_excerpt,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatusName {
    Pending,
    Delivered,
    Failed,
}

impl From<DeliveryStatus> for DeliveryStatusName {
    fn from(s: DeliveryStatus) -> Self {
        match s {
            DeliveryStatus::Pending => DeliveryStatusName::Pending,
            DeliveryStatus::Delivered => DeliveryStatusName::Delivered,
            DeliveryStatus::Failed => DeliveryStatusName::Failed,
        }
    }
}

impl From<DeliveryStatusName> for DeliveryStatus {
    fn from(s: DeliveryStatusName) -> Self {
        match s {
            DeliveryStatusName::Pending => DeliveryStatus::Pending,
            DeliveryStatusName::Delivered => DeliveryStatus::Delivered,
            DeliveryStatusName::Failed => DeliveryStatus::Failed,
        }
    }
}

/// An event's delivery to this endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    /// The event's id (`webhook-id`): the same in every attempt, so receivers deduplicate by it.
    pub id: Uuid,
    pub event_type: String,
    /// `pending` (to be sent, or retried at `next_attempt_at`), `delivered`, or `failed` (given
    /// up after the retry window, or the endpoint was deleted).
    pub status: DeliveryStatusName,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The body sent, as JSON: `{id, type, api_version, timestamp, data}`.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// Every attempt, oldest first (in `GET …/deliveries/{delivery_id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<AttemptOut>>,
}

fn delivery_out(d: DeliveryRecord, with_attempts: bool) -> DeliveryOut {
    DeliveryOut {
        id: d.event_id,
        event_type: d.event_type,
        status: d.status.into(),
        attempts: d.attempts,
        next_attempt_at: d.next_attempt_at,
        last_status_code: d.last_status_code,
        last_error: d.last_error,
        created_at: d.created_at,
        finished_at: d.finished_at,
        payload: serde_json::from_str(&d.payload).unwrap_or(Value::Null),
        attempt_log: with_attempts
            .then(|| d.attempt_log.into_iter().map(AttemptOut::from).collect()),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Only deliveries in this status.
    #[param(inline)]
    pub status: Option<DeliveryStatusName>,
    /// At most this many, newest first (1–100, default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

struct EndpointFields {
    url: Option<String>,
    description: Option<String>,
    event_types: Option<Vec<String>>,
    enabled: Option<bool>,
}

fn parse_fields(f: &mut Fields, policy: UrlPolicy) -> EndpointFields {
    let url = f.string("url", 2048, false);
    let url = f
        .not_null("url", url)
        .and_then(|url| match policy.check(&url) {
            Ok(checked) => Some(checked.to_string()),
            Err(refusal) => {
                f.error("url", "url_refused", refusal.to_string());
                None
            }
        });
    let description = match f.string("description", MAX_DESCRIPTION, false) {
        Patch::Set(text) => Some(text),
        Patch::Null => Some(String::new()),
        Patch::Absent => None,
    };
    let allowed = subscribable();
    let event_types = f.list_of("event_types", &allowed, 64);
    let event_types = f.not_null("event_types", event_types);
    if event_types.as_ref().is_some_and(Vec::is_empty) {
        f.error(
            "event_types",
            "too_short",
            "List should have at least 1 item (\"*\" for every type)",
        );
    }
    // "*" covers every type: stored alone.
    let event_types = event_types.map(|types| {
        if types.iter().any(|t| t == "*") {
            vec!["*".to_owned()]
        } else {
            types
        }
    });
    let enabled = f.bool("enabled");
    let enabled = f.not_null("enabled", enabled);
    EndpointFields {
        url,
        description,
        event_types,
        enabled,
    }
}

fn seal(state: &AppState, endpoint_id: Uuid, secret: &SigningSecret) -> SealedSecret {
    let keys = state.keys();
    SealedSecret {
        key_id: keys.current_id().to_owned(),
        sealed: keys.seal(secret.expose().as_bytes(), &secret_context(endpoint_id)),
    }
}

fn url_policy(state: &AppState) -> UrlPolicy {
    UrlPolicy {
        allow_insecure_loopback: state.config().allow_http_loopback_webhooks,
    }
}

/// List the organisation's webhook subscriptions.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/webhooks", tag = "Webhooks",
    params(crate::params::OrgPath),
    responses((status = 200, body = [WebhookOut])),
    security(("bearer" = [])))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    access: OrgAccess,
) -> ApiResult<Json<Vec<WebhookOut>>> {
    let endpoints = state.store().webhook_endpoints(access.org).await?;
    Ok(Json(endpoints.into_iter().map(WebhookOut::from).collect()))
}

/// Subscribe an endpoint. The answer holds its signing secret, shown this once.
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/webhooks", tag = "Webhooks",
    params(crate::params::OrgPath), request_body = WebhookWrite,
    responses((status = 201, body = WebhookCreatedOut)),
    security(("bearer" = [])))]
pub async fn create_webhook(
    State(state): State<AppState>,
    access: OrgAccess,
    body: JsonObject,
) -> ApiResult<(StatusCode, Json<WebhookCreatedOut>)> {
    let mut f = Fields::new(body, WebhookWrite::FIELDS, READ_ONLY);
    let fields = parse_fields(&mut f, url_policy(&state));
    if fields.url.is_none() && !f.has_errors_for("url") {
        f.error("url", "missing", "Field required");
    }
    f.finish()?;
    let Some(url) = fields.url else {
        return Err(ApiError::internal("a valid url was not kept"));
    };
    let id = Uuid::now_v7();
    let secret = SigningSecret::generate();
    let endpoint = NewWebhookEndpoint {
        id,
        url,
        description: fields.description.unwrap_or_default(),
        event_types: fields.event_types.unwrap_or_else(|| vec!["*".to_owned()]),
        enabled: fields.enabled.unwrap_or(true),
        secret: seal(&state, id, &secret),
        now: state.now(),
    };
    let created = state
        .store()
        .create_webhook_endpoint(access.org, &endpoint)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookCreatedOut {
            webhook: created.into(),
            secret: secret.expose().to_owned(),
        }),
    ))
}

/// Get one subscription (without its secret).
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/webhooks/{webhook_id}", tag = "Webhooks",
    params(WebhookPath),
    responses((status = 200, body = WebhookOut)),
    security(("bearer" = [])))]
pub async fn get_webhook(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<WebhookPath>,
) -> ApiResult<Json<WebhookOut>> {
    let endpoint = state
        .store()
        .webhook_endpoint(access.org, path.webhook_id)
        .await?;
    Ok(Json(endpoint.into()))
}

/// Change a subscription (partial: send only the fields to change). Setting `enabled` to true on
/// an endpoint Voltplan disabled resumes its pending deliveries.
#[utoipa::path(put, path = "/api/partners/v2.0/org/{org_id}/webhooks/{webhook_id}", tag = "Webhooks",
    params(WebhookPath), request_body = WebhookWrite,
    responses((status = 200, body = WebhookOut)),
    security(("bearer" = [])))]
pub async fn update_webhook(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<WebhookPath>,
    body: JsonObject,
) -> ApiResult<Json<WebhookOut>> {
    let mut f = Fields::new(body, WebhookWrite::FIELDS, READ_ONLY);
    let fields = parse_fields(&mut f, url_policy(&state));
    f.finish()?;
    let update = WebhookEndpointUpdate {
        url: fields.url,
        description: fields.description,
        event_types: fields.event_types,
        enabled: fields.enabled,
    };
    let updated = state
        .store()
        .update_webhook_endpoint(access.org, path.webhook_id, &update, state.now())
        .await?;
    Ok(Json(updated.into()))
}

/// Unsubscribe: nothing more is sent; pending deliveries fail.
#[utoipa::path(delete, path = "/api/partners/v2.0/org/{org_id}/webhooks/{webhook_id}", tag = "Webhooks",
    params(WebhookPath),
    responses((status = 204, description = "Deleted")),
    security(("bearer" = [])))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<WebhookPath>,
) -> ApiResult<StatusCode> {
    state
        .store()
        .delete_webhook_endpoint(access.org, path.webhook_id, state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send a `webhook.test` event to this endpoint only (queued; see its delivery for the result).
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/webhooks/{webhook_id}/test", tag = "Webhooks",
    params(WebhookPath),
    responses((status = 202, body = TestEventOut),
        (status = 409, description = "The endpoint is disabled: enable it first")),
    security(("bearer" = [])))]
pub async fn test_webhook(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<WebhookPath>,
) -> ApiResult<(StatusCode, Json<TestEventOut>)> {
    let endpoint = state
        .store()
        .webhook_endpoint(access.org, path.webhook_id)
        .await?;
    if !endpoint.enabled {
        return Err(ApiError::Conflict(
            json!({"detail": "The endpoint is disabled; enable it to send a test event"}),
        ));
    }
    let event = Event::standalone(
        "webhook.test",
        access.org.id(),
        state.now(),
        json!({"webhook_id": endpoint.id, "message": "A test event from Voltplan"}),
    );
    state
        .store()
        .append_test_event(access.org, endpoint.id, &event)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(TestEventOut {
            delivery_id: event.id,
        }),
    ))
}

/// Replace the signing secret. Deliveries carry a signature by each secret until the previous
/// one expires (Standard Webhooks' space-separated `webhook-signature`).
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/webhooks/{webhook_id}/rotate-secret", tag = "Webhooks",
    params(WebhookPath), request_body = RotateSecretWrite,
    responses((status = 200, body = RotatedSecretOut)),
    security(("bearer" = [])))]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<WebhookPath>,
    body: JsonObject,
) -> ApiResult<Json<RotatedSecretOut>> {
    let mut f = Fields::new(body, RotateSecretWrite::FIELDS, &[]);
    let overlap = f.int("overlap_seconds", 0, MAX_OVERLAP_SECONDS);
    let overlap = match overlap {
        Patch::Set(seconds) => seconds,
        Patch::Null | Patch::Absent => DEFAULT_OVERLAP_SECONDS,
    };
    f.finish()?;
    let now = state.now();
    let secret = SigningSecret::generate();
    let until = now + Duration::seconds(overlap);
    state
        .store()
        .rotate_webhook_secret(
            access.org,
            path.webhook_id,
            &seal(&state, path.webhook_id, &secret),
            until,
            now,
        )
        .await?;
    Ok(Json(RotatedSecretOut {
        secret: secret.expose().to_owned(),
        previous_secret_expires_at: until,
    }))
}

/// The endpoint's deliveries, newest first: what was sent, how often, and what came back.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/webhooks/{webhook_id}/deliveries", tag = "Webhooks",
    params(WebhookPath, DeliveriesQuery),
    responses((status = 200, body = [DeliveryOut])),
    security(("bearer" = [])))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<WebhookPath>,
    Q(query): Q<DeliveriesQuery>,
) -> ApiResult<Json<Vec<DeliveryOut>>> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::Invalid(vec![
            voltplan_core::validation::FieldError::at(
                &["query", "limit"],
                "less_than_equal",
                "Input should be between 1 and 100",
            ),
        ]));
    }
    let deliveries = state
        .store()
        .webhook_deliveries(
            access.org,
            path.webhook_id,
            query.status.map(Into::into),
            limit,
        )
        .await?;
    Ok(Json(
        deliveries
            .into_iter()
            .map(|d| delivery_out(d, false))
            .collect(),
    ))
}

/// One delivery with every attempt.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/webhooks/{webhook_id}/deliveries/{delivery_id}", tag = "Webhooks",
    params(DeliveryPath),
    responses((status = 200, body = DeliveryOut)),
    security(("bearer" = [])))]
pub async fn get_delivery(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<DeliveryPath>,
) -> ApiResult<Json<DeliveryOut>> {
    let delivery = state
        .store()
        .webhook_delivery(access.org, path.webhook_id, path.delivery_id)
        .await?;
    Ok(Json(delivery_out(delivery, true)))
}

/// Send a delivery again now (a failed one, or a replay of a delivered one), with the same
/// `webhook-id` and a new 24-hour retry window.
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/retry", tag = "Webhooks",
    params(DeliveryPath),
    responses((status = 202, body = DeliveryOut)),
    security(("bearer" = [])))]
pub async fn retry_delivery(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<DeliveryPath>,
) -> ApiResult<(StatusCode, Json<DeliveryOut>)> {
    let delivery = state
        .store()
        .retry_webhook_delivery(access.org, path.webhook_id, path.delivery_id, state.now())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(delivery_out(delivery, true))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::declaration::{all_null, properties};

    #[test]
    fn the_declared_fields_are_documented_and_read() {
        assert_eq!(properties::<WebhookWrite>(), WebhookWrite::FIELDS);
        let mut f = Fields::new(
            all_null(WebhookWrite::FIELDS),
            WebhookWrite::FIELDS,
            READ_ONLY,
        );
        parse_fields(
            &mut f,
            UrlPolicy {
                allow_insecure_loopback: false,
            },
        );
        assert_eq!(f.unread(), Vec::<&str>::new());
    }
}
