//! Smartcar's error bodies and what they mean for Voltplan ([`CloudError`]).
//!
//! Three shapes are read (Smartcar "API Errors", the v2 error pages per type, the v3 error page,
//! and the OAuth token endpoint's errors):
//! - v2: `{type, code, description, docURL, statusCode, requestId, resolution: {type}, …}`
//! - v3: `{"errors": [{status, type, code, title, detail, resolution, …}]}`
//! - OAuth: `{error, error_description}`
//!
//! Messages built here carry only Smartcar's type and code, never a body's free text or anything
//! from the request, so no token can leak into an error.

use std::time::Duration;

use serde_json::Value;

use crate::cloud::CloudError;

/// One failed Smartcar response, reduced to what decides the mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SmartcarError {
    pub status: u16,
    /// v2/v3 `type`, or the OAuth `error` (`invalid_grant`, …).
    pub kind: Option<String>,
    pub code: Option<String>,
    /// `resolution.type`: `RETRY_LATER`, `REAUTHENTICATE`, `CONTACT_SUPPORT` or none.
    pub resolution: Option<String>,
    /// The `retry-after` header, in seconds.
    pub retry_after: Option<Duration>,
}

/// What a failure means: the error to return, and whether the account's link is dead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mapped {
    pub error: CloudError,
    /// Only re-linking through Connect helps: the vault should mark the account revoked.
    pub revokes_account: bool,
}

fn text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn resolution_of(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::Object(map)) => text(map.get("type")),
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

impl SmartcarError {
    /// Reads a failed response's body; an unreadable body still yields its status.
    pub(crate) fn parse(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Self {
        let mut error = SmartcarError {
            status,
            kind: None,
            code: None,
            resolution: None,
            retry_after,
        };
        let Ok(json) = serde_json::from_slice::<Value>(body) else {
            return error;
        };
        let v3_first = json
            .get("errors")
            .and_then(Value::as_array)
            .and_then(|errors| errors.first());
        let source = v3_first.unwrap_or(&json);
        error.kind = text(source.get("type")).or_else(|| text(json.get("error")));
        error.code = text(source.get("code"));
        error.resolution = resolution_of(source.get("resolution"));
        error
    }

    /// A rejected bearer token: worth one refresh and one retry.
    pub(crate) fn is_authentication(&self) -> bool {
        self.status == 401 || self.kind.as_deref() == Some("AUTHENTICATION")
    }

    fn label(&self) -> String {
        format!(
            "{}:{} (HTTP {})",
            self.kind.as_deref().unwrap_or("UNKNOWN"),
            self.code.as_deref().unwrap_or("-"),
            self.status
        )
    }

    /// The documented meaning of the error for Voltplan.
    pub(crate) fn map(&self, default_retry_after: Duration, billing_backoff: Duration) -> Mapped {
        let plain = |error: CloudError| Mapped {
            error,
            revokes_account: false,
        };
        let revoked = |reason: String| Mapped {
            error: CloudError::AuthorizationRevoked { reason },
            revokes_account: true,
        };
        let code = self.code.as_deref().unwrap_or("");
        match self.kind.as_deref() {
            Some("RATE_LIMIT") => plain(CloudError::RateLimited {
                retry_after: self.retry_after.unwrap_or(default_retry_after),
            }),
            Some("VEHICLE_STATE") => match code {
                // The car cannot be talked to right now; it may be later.
                "ASLEEP"
                | "UNKNOWN"
                | "UNREACHABLE"
                | "VEHICLE_OFFLINE_FOR_SERVICE"
                | "REMOTE_ACCESS_DISABLED" => plain(CloudError::Unreachable),
                // Awake but in the wrong state (unplugged, driving, door open, …): the worker
                // may retry once the situation changes.
                _ => plain(CloudError::Transient(format!(
                    "vehicle state {}",
                    self.label()
                ))),
            },
            Some("UPSTREAM") => match code {
                "NO_RESPONSE" => plain(CloudError::Unreachable),
                // The car maker throttles; Smartcar advises polling at most every 30 min.
                "RATE_LIMIT" => plain(CloudError::RateLimited {
                    retry_after: self
                        .retry_after
                        .unwrap_or(default_retry_after.max(Duration::from_secs(30 * 60))),
                }),
                _ => plain(CloudError::Transient(format!(
                    "car maker's service failed: {}",
                    self.label()
                ))),
            },
            Some("COMPATIBILITY") | Some("PERMISSION") => plain(CloudError::Unsupported),
            Some("RESOURCE_NOT_FOUND") => plain(CloudError::UnknownVehicle),
            Some("AUTHENTICATION") => revoked(format!(
                "Smartcar rejected the refreshed access token: {}",
                self.label()
            )),
            Some("CONNECTED_SERVICES_ACCOUNT") => {
                if self.resolution.as_deref() == Some("REAUTHENTICATE")
                    || code == "AUTHENTICATION_FAILED"
                {
                    revoked(format!(
                        "the owner must reconnect the car in Smartcar Connect: {}",
                        self.label()
                    ))
                } else if code == "VEHICLE_MISSING" || code == "NO_VEHICLES" {
                    plain(CloudError::UnknownVehicle)
                } else if code == "PERMISSION" {
                    plain(CloudError::Unsupported)
                } else {
                    // ACCOUNT_ISSUE, SUBSCRIPTION, VIRTUAL_KEY_REQUIRED: the owner must act in the
                    // car maker's app; the link itself is fine.
                    plain(CloudError::Transient(format!(
                        "the owner must act in the car maker's account: {}",
                        self.label()
                    )))
                }
            }
            Some("BILLING") => {
                if code == "INVALID_PLAN" {
                    // The feature is not in Voltplan's Smartcar plan: no retry helps.
                    plain(CloudError::Unsupported)
                } else {
                    // A monthly quota or the vehicle count is exhausted: hold off for long.
                    plain(CloudError::RateLimited {
                        retry_after: billing_backoff,
                    })
                }
            }
            Some("invalid_grant") => revoked(format!(
                "Smartcar refused the refresh token: {}",
                self.label()
            )),
            _ if self.status == 401 => revoked(format!(
                "Smartcar rejected the refreshed access token: {}",
                self.label()
            )),
            _ if self.status == 429 => plain(CloudError::RateLimited {
                retry_after: self.retry_after.unwrap_or(default_retry_after),
            }),
            _ if self.status == 404 => plain(CloudError::UnknownVehicle),
            _ => plain(CloudError::Transient(format!(
                "Smartcar request failed: {}",
                self.label()
            ))),
        }
    }
}

/// A transport failure (connect, TLS, timeout, body): retryable, and without the URL.
pub(crate) fn transport(error: reqwest::Error) -> CloudError {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_decode() || error.is_body() {
        "unreadable response"
    } else {
        "request failed"
    };
    CloudError::Transient(format!("Smartcar {what}: {}", error.without_url()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);
    const BILLING: Duration = Duration::from_secs(6 * 3600);

    fn map(status: u16, retry_after: Option<u64>, body: &str) -> Mapped {
        SmartcarError::parse(
            status,
            retry_after.map(Duration::from_secs),
            body.as_bytes(),
        )
        .map(MINUTE, BILLING)
    }

    #[test]
    fn documented_v2_examples_map_as_specified() {
        // From Smartcar's "Vehicle State Errors" page (ASLEEP example).
        let asleep = r#"{"type":"VEHICLE_STATE","code":"ASLEEP","description":"The vehicle is in a sleep state and temporarily unable to perform your request.","docURL":"https://smartcar.com/docs/errors/api-errors/vehicle-state-errors#asleep","statusCode":409,"requestId":"5dea93a1-3f79-4246-90c5-89610a20471b","resolution":{"type":null},"suggestedUserMessage":"Your vehicle is in a sleep state."}"#;
        assert_eq!(map(409, None, asleep).error, CloudError::Unreachable);

        // "Rate Limit Errors", VEHICLE.
        let throttled = r#"{"type":"RATE_LIMIT","code":"VEHICLE","statusCode":429,"resolution":{"type":"RETRY_LATER"}}"#;
        assert_eq!(
            map(429, Some(120), throttled).error,
            CloudError::RateLimited {
                retry_after: Duration::from_secs(120)
            }
        );

        let unplugged = r#"{"type":"VEHICLE_STATE","code":"CHARGING_PLUG_NOT_CONNECTED","statusCode":409,"resolution":{"type":null}}"#;
        assert!(matches!(
            map(409, None, unplugged).error,
            CloudError::Transient(message) if message.contains("CHARGING_PLUG_NOT_CONNECTED")
        ));

        let incompatible = r#"{"type":"COMPATIBILITY","code":"VEHICLE_NOT_CAPABLE","statusCode":501,"resolution":{"type":null}}"#;
        assert_eq!(map(501, None, incompatible).error, CloudError::Unsupported);
        let no_permission = r#"{"type":"PERMISSION","code":null,"statusCode":403}"#;
        assert_eq!(map(403, None, no_permission).error, CloudError::Unsupported);
        let missing = r#"{"type":"RESOURCE_NOT_FOUND","code":"PATH","statusCode":404}"#;
        assert_eq!(map(404, None, missing).error, CloudError::UnknownVehicle);
        let no_response = r#"{"type":"UPSTREAM","code":"NO_RESPONSE","statusCode":502}"#;
        assert_eq!(map(502, None, no_response).error, CloudError::Unreachable);
    }

    #[test]
    fn reauthentication_revokes_the_account() {
        let reauth = r#"{"type":"CONNECTED_SERVICES_ACCOUNT","code":"AUTHENTICATION_FAILED","statusCode":400,"resolution":{"type":"REAUTHENTICATE"}}"#;
        let mapped = map(400, None, reauth);
        assert!(mapped.revokes_account);
        assert!(matches!(
            mapped.error,
            CloudError::AuthorizationRevoked { .. }
        ));

        let subscription = r#"{"type":"CONNECTED_SERVICES_ACCOUNT","code":"SUBSCRIPTION","statusCode":400,"resolution":{"type":null}}"#;
        let mapped = map(400, None, subscription);
        assert!(!mapped.revokes_account);
        assert!(matches!(mapped.error, CloudError::Transient(_)));
    }

    #[test]
    fn oauth_and_v3_bodies_are_read() {
        let oauth =
            r#"{"error":"invalid_grant","error_description":"Invalid or expired refresh token."}"#;
        let mapped = map(400, None, oauth);
        assert!(mapped.revokes_account);

        let v3 = r#"{"errors":[{"status":"429","type":"RATE_LIMIT","code":"VEHICLE","title":"Rate limit","detail":"…","resolution":{"type":"RETRY_LATER"}}]}"#;
        assert_eq!(
            map(429, Some(30), v3).error,
            CloudError::RateLimited {
                retry_after: Duration::from_secs(30)
            }
        );
    }

    #[test]
    fn billing_backs_off_for_long_and_invalid_plan_is_unsupported() {
        let quota = r#"{"type":"BILLING","code":"VEHICLE_REQUEST_LIMIT","statusCode":430,"resolution":{"type":"CONTACT_SUPPORT"}}"#;
        assert_eq!(
            map(430, None, quota).error,
            CloudError::RateLimited {
                retry_after: BILLING
            }
        );
        let plan = r#"{"type":"BILLING","code":"INVALID_PLAN","statusCode":430}"#;
        assert_eq!(map(430, None, plan).error, CloudError::Unsupported);
    }

    #[test]
    fn server_errors_and_garbage_are_transient_without_free_text() {
        let mapped = map(500, None, "<html>token abc</html>");
        match mapped.error {
            CloudError::Transient(message) => assert!(!message.contains("abc")),
            other => panic!("unexpected {other:?}"),
        }
    }
}
