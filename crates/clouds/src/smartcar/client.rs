//! [`SmartcarCloud`]: the HTTP client, its token handling and the [`VehicleCloud`] contract.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;
use voltplan_core::Clock;

use super::budget::CallBudgets;
use super::config::SmartcarConfig;
use super::errors::{SmartcarError, transport};
use super::webhook::reading_from_pushed;
use crate::cloud::{
    CloudCommand, CloudError, CloudVehicleRef, CommandReceipt, VehicleCloud, VehicleReading,
};
use crate::link::{LinkedTokens, Secret, TokenSet, TokenVault};

/// Smartcar documents refresh tokens as living 60 days (renewed by every refresh).
pub(crate) const REFRESH_TOKEN_LIFETIME: chrono::Duration = chrono::Duration::days(60);
/// `expires_in` when a token response lacks it: Smartcar documents it as always 7200.
const DEFAULT_ACCESS_LIFETIME_S: i64 = 7200;

#[derive(Debug, thiserror::Error)]
pub enum SmartcarSetupError {
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// A Smartcar response, read fully.
#[derive(Debug)]
pub(crate) struct ApiResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl ApiResponse {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        retry_after_of(
            self.headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
        )
    }

    pub(crate) fn error(&self) -> SmartcarError {
        SmartcarError::parse(self.status, self.retry_after(), &self.body)
    }

    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, CloudError> {
        serde_json::from_slice(&self.body).map_err(|_| {
            CloudError::Transient(format!(
                "Smartcar answered HTTP {} with an unexpected body",
                self.status
            ))
        })
    }
}

fn retry_after_of(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|secs| secs.is_finite() && *secs >= 0.0)
        .map(Duration::from_secs_f64)
}

/// The token endpoint's answer.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    access_token: String,
    refresh_token: String,
    expires_in: Option<i64>,
}

/// Why the token endpoint gave no tokens.
#[derive(Debug)]
pub(crate) enum TokenFailure {
    /// The request did not get an answer.
    Transport(CloudError),
    /// Smartcar refused (`invalid_grant`, `invalid_client`, …).
    Refused(SmartcarError),
}

/// A vehicle call after token handling: the response (any status but a rejected token) and the
/// account it was made for.
struct VehicleResponse {
    response: ApiResponse,
    account_id: Uuid,
}

/// The Smartcar cloud. Cheap to share (`Arc`); every method takes `&self`.
pub struct SmartcarCloud {
    pub(crate) config: SmartcarConfig,
    vault: Arc<dyn TokenVault>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) http: reqwest::Client,
    budgets: CallBudgets,
    /// One refresh at a time per account in this process; other processes are caught by the
    /// vault's version check.
    refresh_locks: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for SmartcarCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmartcarCloud")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SmartcarCloud {
    pub fn new(
        config: SmartcarConfig,
        vault: Arc<dyn TokenVault>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SmartcarSetupError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // Smartcar's token endpoint requires a User-Agent.
            .user_agent(concat!("voltplan/", env!("CARGO_PKG_VERSION")))
            // Redirects would carry the bearer token elsewhere; Smartcar's API does not redirect.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SmartcarSetupError::Http(e.without_url().to_string()))?;
        Ok(SmartcarCloud {
            config,
            vault,
            clock,
            http,
            budgets: CallBudgets::default(),
            refresh_locks: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &SmartcarConfig {
        &self.config
    }

    pub(crate) fn api_url(&self, path: &str) -> String {
        format!("{}{}", self.config.api_base.trim_end_matches('/'), path)
    }

    /// Sends one API request with a bearer token.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        access: &Secret,
        body: Option<&Value>,
    ) -> Result<ApiResponse, CloudError> {
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(access.expose())
            .header("sc-unit-system", "metric");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport)?.to_vec();
        Ok(ApiResponse {
            status,
            headers,
            body,
        })
    }

    /// One request to the token endpoint (Basic client authentication, form body).
    pub(crate) async fn token_request(
        &self,
        form: &[(&str, &str)],
    ) -> Result<TokenSet, TokenFailure> {
        let url = format!(
            "{}/oauth/token",
            self.config.auth_base.trim_end_matches('/')
        );
        let response = self
            .http
            .post(url)
            .basic_auth(
                &self.config.client_id,
                Some(self.config.client_secret.expose()),
            )
            .form(form)
            .send()
            .await
            .map_err(|e| TokenFailure::Transport(transport(e)))?;
        let status = response.status().as_u16();
        let retry_after = retry_after_of(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
        );
        let body = response
            .bytes()
            .await
            .map_err(|e| TokenFailure::Transport(transport(e)))?;
        if !(200..300).contains(&status) {
            return Err(TokenFailure::Refused(SmartcarError::parse(
                status,
                retry_after,
                &body,
            )));
        }
        let tokens: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
            TokenFailure::Transport(CloudError::Transient(
                "Smartcar's token endpoint answered with an unexpected body".to_owned(),
            ))
        })?;
        let now = self.clock.now();
        let lifetime = tokens.expires_in.unwrap_or(DEFAULT_ACCESS_LIFETIME_S);
        Ok(TokenSet {
            access_token: Secret::new(tokens.access_token),
            refresh_token: Secret::new(tokens.refresh_token),
            access_expires_at: now + chrono::Duration::seconds(lifetime),
            refresh_expires_at: Some(now + REFRESH_TOKEN_LIFETIME),
        })
    }

    fn refresh_lock(&self, account_id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .refresh_locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(account_id).or_default().clone()
    }

    /// Replaces `stale`'s tokens with fresh ones: someone else's if they got there first (this
    /// process or another), else a refresh of our own, stored with the version check.
    async fn refresh(
        &self,
        vehicle: &CloudVehicleRef,
        stale: &LinkedTokens,
    ) -> Result<LinkedTokens, CloudError> {
        let lock = self.refresh_lock(stale.account_id);
        let _one_refresh_at_a_time = lock.lock().await;
        let current = self.vault.tokens_for(vehicle).await?;
        if current.version != stale.version {
            return Ok(current);
        }
        let refresh_token = current.tokens.refresh_token.expose().to_owned();
        let tokens = match self
            .token_request(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh_token),
            ])
            .await
        {
            Ok(tokens) => tokens,
            Err(TokenFailure::Transport(error)) => return Err(error),
            Err(TokenFailure::Refused(refused)) => {
                return Err(self.fail(current.account_id, &refused).await);
            }
        };
        // `false`: another process stored its refresh first; both pairs are valid (the used
        // refresh token lives one more minute), and the stored one is what everybody uses.
        let _stored = self
            .vault
            .replace_tokens(current.account_id, current.version, &tokens)
            .await?;
        self.vault.tokens_for(vehicle).await
    }

    /// The [`CloudError`] for a refusal, marking the account revoked when only Connect helps.
    async fn fail(&self, account_id: Uuid, refused: &SmartcarError) -> CloudError {
        let mapped = refused.map(self.config.default_retry_after, self.config.billing_backoff);
        if mapped.revokes_account {
            let reason = match &mapped.error {
                CloudError::AuthorizationRevoked { reason } => reason.clone(),
                other => other.to_string(),
            };
            if let Err(vault_error) = self.vault.mark_revoked(account_id, &reason).await {
                return vault_error;
            }
        }
        mapped.error
    }

    fn needs_refresh(&self, tokens: &TokenSet, now: DateTime<Utc>) -> bool {
        let margin = chrono::Duration::from_std(self.config.refresh_margin)
            .unwrap_or_else(|_| chrono::Duration::minutes(5));
        tokens.access_expires_at - now < margin
    }

    /// One call to a vehicle endpoint (`path` after `/vehicles/{id}`): budget, tokens (refresh
    /// before expiry, and once more on a 401), then the request. A token still refused after a
    /// refresh revokes the account.
    async fn vehicle_call(
        &self,
        vehicle: &CloudVehicleRef,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<VehicleResponse, CloudError> {
        let mut linked = self.vault.tokens_for(vehicle).await?;
        let smartcar_id = linked.cloud_vehicle_id.clone();
        if smartcar_id.is_empty()
            || !smartcar_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            // Smartcar's ids are UUIDs; anything else would not name a car (or would escape the path).
            return Err(CloudError::UnknownVehicle);
        }
        let now = self.clock.now();
        let budget = self.config.budgets.for_make(linked.make.as_deref());
        self.budgets
            .try_take(vehicle.vehicle_id, budget, now)
            .map_err(|retry_after| CloudError::RateLimited { retry_after })?;

        let mut refreshed = false;
        if self.needs_refresh(&linked.tokens, now) {
            linked = self.refresh(vehicle, &linked).await?;
            refreshed = true;
        }
        let url = self.api_url(&format!("/vehicles/{smartcar_id}{path}"));
        let mut response = self
            .send(method.clone(), &url, &linked.tokens.access_token, body)
            .await?;
        if !refreshed && response.error().is_authentication() {
            linked = self.refresh(vehicle, &linked).await?;
            response = self
                .send(method, &url, &linked.tokens.access_token, body)
                .await?;
        }
        if response.status == 401
            || (!response.is_success() && response.error().is_authentication())
        {
            return Err(self.fail(linked.account_id, &response.error()).await);
        }
        Ok(VehicleResponse {
            response,
            account_id: linked.account_id,
        })
    }

    /// A command, at most once per idempotency key.
    async fn command(
        &self,
        vehicle: &CloudVehicleRef,
        idempotency_key: &str,
        command: CloudCommand,
        path: &str,
        body: Value,
    ) -> Result<CommandReceipt, CloudError> {
        // Smartcar has no idempotency keys: the vault remembers what was accepted.
        if let Some(receipt) = self.vault.receipt(vehicle, idempotency_key).await? {
            return Ok(receipt);
        }
        let VehicleResponse {
            response,
            account_id,
        } = self
            .vehicle_call(vehicle, Method::POST, path, Some(&body))
            .await?;
        if !response.is_success() {
            let refused = response.error();
            // The car is already where the command wants it: that is what the caller asked for.
            let already_there = refused.kind.as_deref() == Some("VEHICLE_STATE")
                && matches!(
                    (command, refused.code.as_deref()),
                    (CloudCommand::StartCharging, Some("CHARGING_IN_PROGRESS"))
                        | (CloudCommand::StopCharging, Some("NOT_CHARGING"))
                );
            if !already_there {
                return Err(self.fail(account_id, &refused).await);
            }
        }
        let accepted_at = self.clock.now();
        let receipt = CommandReceipt {
            command_id: Uuid::now_v7(),
            idempotency_key: idempotency_key.to_owned(),
            command,
            accepted_at,
            expected_effective_at: chrono::Duration::from_std(self.config.command_effect_after)
                .ok()
                .map(|after| accepted_at + after),
        };
        self.vault.record_receipt(vehicle, &receipt).await?;
        Ok(receipt)
    }

    async fn poll_state(&self, vehicle: &CloudVehicleRef) -> Result<VehicleReading, CloudError> {
        let body = json!({
            "requests": BATCH_PATHS.iter().map(|path| json!({ "path": path })).collect::<Vec<_>>()
        });
        let VehicleResponse {
            response,
            account_id,
        } = self
            .vehicle_call(vehicle, Method::POST, "/batch", Some(&body))
            .await?;
        if !response.is_success() {
            return Err(self.fail(account_id, &response.error()).await);
        }
        let batch: BatchResponse = response.json()?;
        let part = |path: &str| batch.responses.iter().find(|r| r.path == path);

        let battery = match part("/battery") {
            Some(item) if item.code == 200 => item,
            Some(item) => return Err(self.fail(account_id, &item.error()).await),
            None => return Err(missing("/battery")),
        };
        let charge = match part("/charge") {
            Some(item) if item.code == 200 => item,
            Some(item) => return Err(self.fail(account_id, &item.error()).await),
            None => return Err(missing("/charge")),
        };
        // Optional parts: an incompatible car (COMPATIBILITY), a missing permission or any other
        // failure of one part leaves its field empty rather than losing the whole reading.
        let optional = |path: &str| part(path).filter(|item| item.code == 200);

        let fraction = battery
            .body
            .get("percentRemaining")
            .and_then(Value::as_f64)
            .ok_or_else(|| unexpected("/battery"))?;
        let is_plugged_in = charge
            .body
            .get("isPluggedIn")
            .and_then(Value::as_bool)
            .ok_or_else(|| unexpected("/charge"))?;
        let is_charging = charge.body.get("state").and_then(Value::as_str) == Some("CHARGING");
        let limit = optional("/charge/limit")
            .and_then(|item| item.body.get("limit").and_then(Value::as_f64));
        let location = optional("/location");
        let reported_at = [battery, charge]
            .iter()
            .filter_map(|item| item.data_age())
            .min()
            .unwrap_or_else(|| self.clock.now());

        Ok(VehicleReading {
            // Smartcar's fractions (0.3) become percents with one decimal (30.0, not 30.000000004).
            battery_level_percent: ((fraction * 1000.0).round() / 10.0).clamp(0.0, 100.0),
            is_plugged_in,
            is_charging,
            // The v2 API reports no charging power.
            charge_rate_w: 0.0,
            range_km: battery.body.get("range").and_then(Value::as_f64),
            battery_capacity_kwh: optional("/battery/capacity")
                .and_then(|item| item.body.get("capacity").and_then(Value::as_f64)),
            charge_limit_percent: limit.map(|fraction| (fraction * 100.0).round() as i32),
            latitude: location.and_then(|item| item.body.get("latitude").and_then(Value::as_f64)),
            longitude: location.and_then(|item| item.body.get("longitude").and_then(Value::as_f64)),
            energy_meter_kwh: None,
            reported_at,
        })
    }
}

const BATCH_PATHS: [&str; 5] = [
    "/battery",
    "/battery/capacity",
    "/charge",
    "/charge/limit",
    "/location",
];

fn missing(path: &str) -> CloudError {
    CloudError::Transient(format!("Smartcar's batch answer lacks {path}"))
}

fn unexpected(path: &str) -> CloudError {
    CloudError::Transient(format!("Smartcar's {path} answer has an unexpected body"))
}

#[derive(Debug, Deserialize)]
struct BatchResponse {
    responses: Vec<BatchItem>,
}

#[derive(Debug, Deserialize)]
struct BatchItem {
    path: String,
    code: u16,
    #[serde(default)]
    body: Value,
    #[serde(default)]
    headers: HashMap<String, Value>,
}

impl BatchItem {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| value.as_str())
    }

    fn error(&self) -> SmartcarError {
        let body = serde_json::to_vec(&self.body).unwrap_or_default();
        SmartcarError::parse(self.code, retry_after_of(self.header("retry-after")), &body)
    }

    /// `sc-data-age`: when the car produced the data.
    fn data_age(&self) -> Option<DateTime<Utc>> {
        self.header("sc-data-age")
            .and_then(|age| DateTime::parse_from_rfc3339(age).ok())
            .map(|age| age.with_timezone(&Utc))
    }
}

#[async_trait]
impl VehicleCloud for SmartcarCloud {
    async fn read_state(&self, vehicle: &CloudVehicleRef) -> Result<VehicleReading, CloudError> {
        // A fresh, complete pushed state costs no call to the car.
        if let Some(pushed) = self.vault.pushed_state(vehicle).await?
            && let Some(reading) =
                reading_from_pushed(&pushed, self.clock.now(), self.config.webhook_fresh_for)
        {
            return Ok(reading);
        }
        self.poll_state(vehicle).await
    }

    async fn start_charging(
        &self,
        vehicle: &CloudVehicleRef,
        idempotency_key: &str,
    ) -> Result<CommandReceipt, CloudError> {
        self.command(
            vehicle,
            idempotency_key,
            CloudCommand::StartCharging,
            "/charge",
            json!({ "action": "START" }),
        )
        .await
    }

    async fn stop_charging(
        &self,
        vehicle: &CloudVehicleRef,
        idempotency_key: &str,
    ) -> Result<CommandReceipt, CloudError> {
        self.command(
            vehicle,
            idempotency_key,
            CloudCommand::StopCharging,
            "/charge",
            json!({ "action": "STOP" }),
        )
        .await
    }

    async fn set_charge_limit(
        &self,
        vehicle: &CloudVehicleRef,
        percent: i32,
        idempotency_key: &str,
    ) -> Result<CommandReceipt, CloudError> {
        // Smartcar accepts limits from 0.5 to 1.0.
        if !(50..=100).contains(&percent) {
            return Err(CloudError::Unsupported);
        }
        self.command(
            vehicle,
            idempotency_key,
            CloudCommand::SetChargeLimit { percent },
            "/charge/limit",
            json!({ "limit": f64::from(percent) / 100.0 }),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds() {
        assert_eq!(retry_after_of(Some("120")), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after_of(Some(" 1.5 ")),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(retry_after_of(Some("soon")), None);
        assert_eq!(retry_after_of(Some("-3")), None);
        assert_eq!(retry_after_of(None), None);
    }
}
