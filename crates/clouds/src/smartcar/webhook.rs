//! Smartcar webhooks, as pure functions for Voltplan's `POST /webhooks/smartcar`.
//!
//! Follows Smartcar's "Payload Verification" (`SC-Signature` = hex HMAC-SHA256 of the raw body,
//! keyed with the Application Management Token), "Callback URI Verification" (`VERIFY` events are
//! answered with `{"challenge": hex(HMAC-SHA256(AMT, challenge))}`), "Event Reference" /
//! "VEHICLE_STATE Event" / "VEHICLE_ERROR Event" (the envelope and signals) and the signal schemas
//! ("Signals: TractionBattery", "Signals: Charge"). Deliveries are at-least-once and unordered, so
//! [`merge`] keeps, per field, the value the car recorded last (`meta.oemUpdatedAt`).
//!
//! The receiver should: verify the signature on the raw bytes before anything else, answer
//! `VERIFY` with [`challenge_response`], de-duplicate on `event_id`, and store
//! `merge(previous, &signals)` as the vehicle's [`crate::PushedState`].

use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use crate::cloud::VehicleReading;
use crate::link::{PushedState, Secret};

type HmacSha256 = Hmac<Sha256>;

const KM_PER_MILE: f64 = 1.609_344;

/// Whether `sc_signature` (the `SC-Signature` header, hex) is the HMAC-SHA256 of `raw_body` under
/// the management token. Compared in constant time; a malformed header is simply `false`.
pub fn verify_signature(management_token: &Secret, raw_body: &[u8], sc_signature: &str) -> bool {
    let Ok(claimed) = hex::decode(sc_signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(management_token.expose().as_bytes()) else {
        return false;
    };
    mac.update(raw_body);
    mac.verify_slice(&claimed).is_ok()
}

/// The value of `challenge` in the JSON reply to a `VERIFY` event: the hex HMAC-SHA256 of the
/// challenge keyed with the management token. Reply `200` with
/// `{"challenge": challenge_response(..)}` and `Content-Type: application/json`.
pub fn challenge_response(management_token: &Secret, challenge: &str) -> String {
    hex::encode(hmac_sha256(
        management_token.expose().as_bytes(),
        challenge.as_bytes(),
    ))
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this never falls back; an empty MAC would fail every
    // comparison rather than pass one.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// A webhook body that is not a Smartcar event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook body is not JSON")]
    NotJson,
    #[error("webhook event lacks {0}")]
    Missing(&'static str),
}

/// One delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    /// The same on every retry of the same event: de-duplicate on it.
    pub event_id: String,
    pub kind: WebhookEventKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WebhookEventKind {
    /// Sent when a webhook is created or its URL changes.
    Verify { challenge: String },
    /// Signal values for one car.
    VehicleState {
        /// Smartcar's vehicle id.
        vehicle_id: String,
        make: Option<String>,
        state: PushedSignals,
    },
    /// Smartcar could not read some signals (or reports that such a problem is `RESOLVED`).
    VehicleError {
        vehicle_id: String,
        /// `state: "RESOLVED"`: the earlier error went away.
        resolved: bool,
        errors: Vec<SignalError>,
    },
    /// An event type this version does not know.
    Other { event_type: String },
}

/// One error reported for a car (or for one of its signals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalError {
    /// The signal code, when the error is about one signal.
    pub signal: Option<String>,
    /// `type`, e.g. `COMPATIBILITY`.
    pub kind: Option<String>,
    pub code: Option<String>,
}

/// A value with the time the car recorded it (`meta.oemUpdatedAt`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stamped<T> {
    pub value: T,
    pub oem_updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatLon {
    pub latitude: f64,
    pub longitude: f64,
}

/// The signals Voltplan uses, each with its own timestamp; also the document stored as
/// [`PushedState::state`] (camelCase JSON, absent fields omitted).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushedSignals {
    /// `tractionbattery-stateofcharge`, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_level_percent: Option<Stamped<f64>>,
    /// `charge-ischargingcableconnected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugged_in: Option<Stamped<bool>>,
    /// `charge-ischarging`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging: Option<Stamped<bool>>,
    /// `charge-amperage` × `charge-voltage` when both are in the same delivery, in watts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_power_w: Option<Stamped<f64>>,
    /// `charge-chargelimits`: the active limit, else the global one, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_limit_percent: Option<Stamped<f64>>,
    /// `tractionbattery-nominalcapacity`, kWh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_kwh: Option<Stamped<f64>>,
    /// `tractionbattery-range`, km (miles converted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_km: Option<Stamped<f64>>,
    /// `location-preciselocation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Stamped<LatLon>>,
}

/// Reads a delivery (call [`verify_signature`] first). Accepts the current envelope
/// (`eventId`, `eventType`, `data`, `meta`) and the legacy v2 `VERIFY`
/// (`eventName: "verify"`, `payload.challenge`).
pub fn parse_event(raw_body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let json: Value = serde_json::from_slice(raw_body).map_err(|_| WebhookError::NotJson)?;

    if json.get("eventName").and_then(Value::as_str) == Some("verify") {
        let challenge = json
            .pointer("/payload/challenge")
            .and_then(Value::as_str)
            .ok_or(WebhookError::Missing("payload.challenge"))?;
        return Ok(WebhookEvent {
            event_id: str_at(&json, "/webhookId").unwrap_or_default(),
            kind: WebhookEventKind::Verify {
                challenge: challenge.to_owned(),
            },
        });
    }

    let event_id = str_at(&json, "/eventId").ok_or(WebhookError::Missing("eventId"))?;
    let event_type = str_at(&json, "/eventType").ok_or(WebhookError::Missing("eventType"))?;
    let kind = match event_type.as_str() {
        "VERIFY" => WebhookEventKind::Verify {
            challenge: str_at(&json, "/data/challenge")
                .ok_or(WebhookError::Missing("data.challenge"))?,
        },
        "VEHICLE_STATE" => {
            let delivered_at = json.pointer("/meta/deliveredAt").and_then(timestamp);
            WebhookEventKind::VehicleState {
                vehicle_id: str_at(&json, "/data/vehicle/id")
                    .ok_or(WebhookError::Missing("data.vehicle.id"))?,
                make: str_at(&json, "/data/vehicle/make"),
                state: signals_of(&json, delivered_at),
            }
        }
        "VEHICLE_ERROR" => WebhookEventKind::VehicleError {
            vehicle_id: str_at(&json, "/data/vehicle/id")
                .ok_or(WebhookError::Missing("data.vehicle.id"))?,
            resolved: ["/data/state", "/state"]
                .iter()
                .filter_map(|at| str_at(&json, at))
                .any(|state| state.eq_ignore_ascii_case("RESOLVED")),
            errors: errors_of(&json),
        },
        _ => WebhookEventKind::Other { event_type },
    };
    Ok(WebhookEvent { event_id, kind })
}

fn str_at(json: &Value, pointer: &str) -> Option<String> {
    json.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Smartcar writes times as epoch milliseconds (signals), epoch seconds (some `deliveredAt`
/// examples) or ISO 8601 (`VERIFY`'s `deliveredAt`).
fn timestamp(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::Number(n) => {
            let n = n.as_f64()?;
            // Anything past 1e11 is milliseconds: as seconds it would be the year 5138.
            let millis = if n.abs() >= 1e11 { n } else { n * 1000.0 };
            Utc.timestamp_millis_opt(millis.round() as i64).single()
        }
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
            .or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .and_then(|n| timestamp(&Value::from(n)))
            }),
        _ => None,
    }
}

fn number(body: &Value, keys: &[&str]) -> Option<f64> {
    keys.iter()
        .find_map(|key| body.get(*key).and_then(Value::as_f64))
}

fn boolean(body: &Value) -> Option<bool> {
    match body.get("value")? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn charge_limit(body: &Value) -> Option<f64> {
    number(body, &["activeLimit"]).or_else(|| {
        body.get("values")?.as_array()?.iter().find_map(|entry| {
            let global = entry
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("global"));
            if global {
                entry.get("limit").and_then(Value::as_f64)
            } else {
                None
            }
        })
    })
}

fn range_km(body: &Value) -> Option<f64> {
    let value = number(body, &["value"])?;
    let miles = body
        .get("unit")
        .and_then(Value::as_str)
        .is_some_and(|unit| unit.to_ascii_lowercase().starts_with("mi"));
    Some(if miles { value * KM_PER_MILE } else { value })
}

fn signals_of(json: &Value, delivered_at: Option<DateTime<Utc>>) -> PushedSignals {
    let mut signals = PushedSignals::default();
    let mut amperage: Option<Stamped<f64>> = None;
    let mut voltage: Option<Stamped<f64>> = None;
    let Some(list) = json.pointer("/data/signals").and_then(Value::as_array) else {
        return signals;
    };
    for signal in list {
        let failed = signal
            .pointer("/status/value")
            .and_then(Value::as_str)
            .is_some_and(|status| status.eq_ignore_ascii_case("ERROR"));
        let (Some(code), Some(body)) = (
            signal.get("code").and_then(Value::as_str),
            signal.get("body"),
        ) else {
            continue;
        };
        if failed {
            continue;
        }
        // Without the car's own time, fall back to when Smartcar fetched it, then delivered it.
        let Some(at) = signal
            .pointer("/meta/oemUpdatedAt")
            .and_then(timestamp)
            .or_else(|| signal.pointer("/meta/retrievedAt").and_then(timestamp))
            .or(delivered_at)
        else {
            continue;
        };
        fn stamped_at<T>(at: DateTime<Utc>) -> impl Fn(T) -> Stamped<T> {
            move |value| Stamped {
                value,
                oem_updated_at: at,
            }
        }
        let stamp = stamped_at::<f64>(at);
        let stamp_bool = stamped_at::<bool>(at);
        match code {
            "tractionbattery-stateofcharge" => {
                signals.battery_level_percent = number(body, &["value", "percentage"]).map(stamp);
            }
            "charge-ischargingcableconnected" => {
                signals.plugged_in = boolean(body).map(stamp_bool);
            }
            "charge-ischarging" => signals.charging = boolean(body).map(stamp_bool),
            "charge-chargelimits" => signals.charge_limit_percent = charge_limit(body).map(stamp),
            "tractionbattery-nominalcapacity" => {
                signals.capacity_kwh = number(body, &["capacity"]).map(stamp);
            }
            "tractionbattery-range" => signals.range_km = range_km(body).map(stamp),
            "location-preciselocation" => {
                if let (Some(latitude), Some(longitude)) =
                    (number(body, &["latitude"]), number(body, &["longitude"]))
                {
                    signals.location = Some(stamped_at(at)(LatLon {
                        latitude,
                        longitude,
                    }));
                }
            }
            "charge-amperage" => amperage = number(body, &["value"]).map(stamp),
            "charge-voltage" => voltage = number(body, &["value"]).map(stamp),
            _ => {}
        }
    }
    if let (Some(amps), Some(volts)) = (amperage, voltage) {
        signals.charge_power_w = Some(Stamped {
            value: amps.value * volts.value,
            oem_updated_at: amps.oem_updated_at.min(volts.oem_updated_at),
        });
    }
    signals
}

fn errors_of(json: &Value) -> Vec<SignalError> {
    let error_of = |signal: Option<String>, error: &Value| SignalError {
        signal,
        kind: str_at(error, "/type"),
        code: str_at(error, "/code"),
    };
    let mut errors = Vec::new();
    // The error event's exact layout is not spelled out; read the places it has been shown in:
    // a list of errors, a single error, or signals whose status is ERROR.
    if let Some(list) = json.pointer("/data/errors").and_then(Value::as_array) {
        for error in list {
            errors.push(error_of(str_at(error, "/signal/code"), error));
        }
    }
    if let Some(error) = json.pointer("/data/error").filter(|e| e.is_object()) {
        errors.push(error_of(None, error));
    }
    if let Some(list) = json.pointer("/data/signals").and_then(Value::as_array) {
        for signal in list {
            if let Some(error) = signal.pointer("/status/error") {
                errors.push(error_of(str_at(signal, "/code"), error));
            }
        }
    }
    errors
}

fn newer<T: Copy>(older: Option<Stamped<T>>, newer: Option<Stamped<T>>) -> Option<Stamped<T>> {
    match (older, newer) {
        (Some(old), Some(new)) if old.oem_updated_at > new.oem_updated_at => Some(old),
        (old, None) => old,
        (_, new) => new,
    }
}

/// Merges a delivery into the stored document: per field, the value with the later
/// `oemUpdatedAt` wins (a tie goes to the delivery). An unreadable stored document counts as
/// empty.
pub fn merge(older: Option<&Value>, newer_signals: &PushedSignals) -> Value {
    let old: PushedSignals = older
        .and_then(|value| serde_json::from_value(value.clone()).ok())
        .unwrap_or_default();
    let merged = PushedSignals {
        battery_level_percent: newer(
            old.battery_level_percent,
            newer_signals.battery_level_percent,
        ),
        plugged_in: newer(old.plugged_in, newer_signals.plugged_in),
        charging: newer(old.charging, newer_signals.charging),
        charge_power_w: newer(old.charge_power_w, newer_signals.charge_power_w),
        charge_limit_percent: newer(old.charge_limit_percent, newer_signals.charge_limit_percent),
        capacity_kwh: newer(old.capacity_kwh, newer_signals.capacity_kwh),
        range_km: newer(old.range_km, newer_signals.range_km),
        location: newer(old.location, newer_signals.location),
    };
    serde_json::to_value(merged).unwrap_or(Value::Null)
}

/// A reading from a stored pushed document, when it arrived within `fresh_for` and has at least
/// the level, the plug and the charging flag.
pub(crate) fn reading_from_pushed(
    pushed: &PushedState,
    now: DateTime<Utc>,
    fresh_for: std::time::Duration,
) -> Option<VehicleReading> {
    let age = (now - pushed.received_at).to_std().unwrap_or_default();
    if age > fresh_for {
        return None;
    }
    let signals: PushedSignals = serde_json::from_value(pushed.state.clone()).ok()?;
    let level = signals.battery_level_percent?;
    let plugged = signals.plugged_in?;
    let charging = signals.charging?;
    let reported_at = level
        .oem_updated_at
        .min(plugged.oem_updated_at)
        .min(charging.oem_updated_at);
    let charge_rate_w = if charging.value {
        signals.charge_power_w.map_or(0.0, |p| p.value.max(0.0))
    } else {
        0.0
    };
    Some(VehicleReading {
        battery_level_percent: level.value.clamp(0.0, 100.0),
        is_plugged_in: plugged.value,
        is_charging: charging.value,
        charge_rate_w,
        range_km: signals.range_km.map(|r| r.value),
        battery_capacity_kwh: signals.capacity_kwh.map(|c| c.value),
        charge_limit_percent: signals.charge_limit_percent.map(|l| l.value.round() as i32),
        latitude: signals.location.map(|l| l.value.latitude),
        longitude: signals.location.map(|l| l.value.longitude),
        energy_meter_kwh: None,
        reported_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amt() -> Secret {
        Secret::new("amt-secret")
    }

    // Expected values computed independently with Python:
    //   hmac.new(b'amt-secret', body, hashlib.sha256).hexdigest()
    const VERIFY_BODY: &str = r#"{"eventId":"e1","eventType":"VERIFY","data":{"challenge":"abc"}}"#;
    const VERIFY_BODY_SIGNATURE: &str =
        "5360d1601ea715c8a17c9d079b77d7e02837494be4b889e51138cf8b43d6ed80";

    #[test]
    fn signature_matches_an_independently_computed_hmac() {
        assert!(verify_signature(
            &amt(),
            VERIFY_BODY.as_bytes(),
            VERIFY_BODY_SIGNATURE
        ));
        assert!(verify_signature(
            &amt(),
            VERIFY_BODY.as_bytes(),
            &VERIFY_BODY_SIGNATURE.to_uppercase()
        ));
        // One byte of the body changed, a wrong key, a truncated or non-hex header.
        assert!(!verify_signature(
            &amt(),
            VERIFY_BODY.replace("abc", "abd").as_bytes(),
            VERIFY_BODY_SIGNATURE
        ));
        assert!(!verify_signature(
            &Secret::new("other"),
            VERIFY_BODY.as_bytes(),
            VERIFY_BODY_SIGNATURE
        ));
        assert!(!verify_signature(
            &amt(),
            VERIFY_BODY.as_bytes(),
            &VERIFY_BODY_SIGNATURE[..62]
        ));
        assert!(!verify_signature(&amt(), VERIFY_BODY.as_bytes(), "zz"));
        assert!(!verify_signature(&amt(), VERIFY_BODY.as_bytes(), ""));
    }

    #[test]
    fn hmac_agrees_with_the_rfc_4231_style_public_vector() {
        // The well-known HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
        assert_eq!(
            challenge_response(
                &Secret::new("key"),
                "The quick brown fox jumps over the lazy dog"
            ),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn challenge_is_keyed_with_the_management_token() {
        // hmac.new(b'amt-secret', b'abc', hashlib.sha256).hexdigest()
        assert_eq!(
            challenge_response(&amt(), "abc"),
            "a51beb643e337c9b7f70ad3d26d878a20b8805ea86c022c5312719abc0f29d1b"
        );
    }

    #[test]
    fn documented_verify_events_parse() {
        // "Callback URI Verification", version 4.0.
        let v4 = r#"{
          "eventId": "52f6e0bb-1369-45da-a61c-9e67d092d6db",
          "eventType": "VERIFY",
          "data": { "challenge": "<random-string>" },
          "meta": {
            "version": "4.0",
            "webhookId": "5a8e5e38-1e12-4011-a36d-56f120053f9e",
            "webhookName": "Example Webhook",
            "deliveryId": "5d569643-3a47-4cd1-a3ec-db5fc1f6f03b",
            "deliveredAt": "2025-07-31T19:38:42.332Z"
          }
        }"#;
        let event = parse_event(v4.as_bytes()).unwrap();
        assert_eq!(event.event_id, "52f6e0bb-1369-45da-a61c-9e67d092d6db");
        assert_eq!(
            event.kind,
            WebhookEventKind::Verify {
                challenge: "<random-string>".into()
            }
        );
        // Legacy 2.0.
        let v2 = r#"{"version":"2.0","webhookId":"w-1","eventName":"verify","payload":{"challenge":"c-2"}}"#;
        assert_eq!(
            parse_event(v2.as_bytes()).unwrap().kind,
            WebhookEventKind::Verify {
                challenge: "c-2".into()
            }
        );
    }

    /// "Webhook responses" (v4.0 example), with charge signals added in the schema pages' shapes.
    const VEHICLE_STATE: &str = r#"{
      "eventId": "5a537912-9ad3-424b-ba33-65a1704567e9",
      "eventType": "VEHICLE_STATE",
      "data": {
        "user": { "id": "93b3ea96-ca37-43a9-9073-f4334712dbc7" },
        "vehicle": { "id": "123e4567-e89b-12d3-a456-426614174000", "make": "Test Make",
                     "model": "Test Model", "year": 2020 },
        "signals": [
          { "code": "location-preciselocation", "name": "PreciseLocation", "group": "Location",
            "body": { "latitude": 37.7749, "longitude": -122.4194 },
            "status": { "value": "SUCCESS" },
            "meta": { "retrievedAt": 1758668712404, "oemUpdatedAt": 1758668712404 } },
          { "code": "location-isathome", "name": "IsAtHome", "group": "Location",
            "status": { "error": { "code": "VEHICLE_NOT_CAPABLE", "type": "COMPATIBILITY" },
                        "value": "ERROR" } },
          { "code": "tractionbattery-stateofcharge", "name": "StateOfCharge",
            "group": "TractionBattery", "body": { "unit": "percent", "value": 75 },
            "status": { "value": "SUCCESS" },
            "meta": { "retrievedAt": 1758668712404, "oemUpdatedAt": 1758668712404 } },
          { "code": "charge-ischargingcableconnected", "body": { "value": true },
            "meta": { "retrievedAt": 1758668712404, "oemUpdatedAt": 1758668700000 } },
          { "code": "charge-ischarging", "body": { "value": true },
            "meta": { "retrievedAt": 1758668712404, "oemUpdatedAt": 1758668700000 } },
          { "code": "charge-amperage", "body": { "unit": "amps", "value": 16 },
            "meta": { "oemUpdatedAt": 1758668700000 } },
          { "code": "charge-voltage", "body": { "unit": "volts", "value": 230 },
            "meta": { "oemUpdatedAt": 1758668700000 } },
          { "code": "charge-chargelimits",
            "body": { "values": [ { "type": "global", "limit": 80, "condition": null } ],
                      "activeLimit": null, "unit": "percent" },
            "meta": { "oemUpdatedAt": 1758668700000 } },
          { "code": "tractionbattery-nominalcapacity",
            "body": { "source": "SMARTCAR", "capacity": 73.5, "unit": "kWhr" },
            "meta": { "oemUpdatedAt": 1758668700000 } },
          { "code": "tractionbattery-range", "body": { "unit": "miles", "value": 100 },
            "meta": { "oemUpdatedAt": 1758668700000 } }
        ]
      },
      "triggers": [ { "type": "SIGNAL_UPDATED",
                      "signal": { "name": "StateOfCharge", "group": "TractionBattery",
                                  "code": "tractionbattery-stateofcharge" } } ],
      "meta": { "version": "4.0", "deliveryId": "48b25f8f-9fea-42e1-9085-81043682cbb8",
                "deliveredAt": 1761896351529, "webhookId": "123e4567-e89b-12d3-a456-426614174000",
                "webhookName": "My First Webhook", "signalCount": 3, "mode": "LIVE" }
    }"#;

    fn ms(millis: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(millis).single().unwrap()
    }

    #[test]
    fn documented_vehicle_state_parses_into_signals() {
        let event = parse_event(VEHICLE_STATE.as_bytes()).unwrap();
        let WebhookEventKind::VehicleState {
            vehicle_id,
            make,
            state,
        } = event.kind
        else {
            panic!("not a vehicle state");
        };
        assert_eq!(vehicle_id, "123e4567-e89b-12d3-a456-426614174000");
        assert_eq!(make.as_deref(), Some("Test Make"));
        assert_eq!(
            state.battery_level_percent,
            Some(Stamped {
                value: 75.0,
                oem_updated_at: ms(1758668712404)
            })
        );
        assert_eq!(state.plugged_in.map(|s| s.value), Some(true));
        assert_eq!(state.charging.map(|s| s.value), Some(true));
        assert_eq!(state.charge_power_w.map(|s| s.value), Some(3680.0));
        assert_eq!(state.charge_limit_percent.map(|s| s.value), Some(80.0));
        assert_eq!(state.capacity_kwh.map(|s| s.value), Some(73.5));
        let range = state.range_km.map(|s| s.value).unwrap();
        assert!((range - 160.9344).abs() < 1e-9);
        assert_eq!(
            state.location.map(|s| s.value),
            Some(LatLon {
                latitude: 37.7749,
                longitude: -122.4194
            })
        );
    }

    #[test]
    fn the_older_documented_shape_without_meta_uses_delivery_time() {
        // "Webhook responses" (3.0 example): `percentage`, no per-signal meta, seconds.
        let body = r#"{"eventId":"1234567890","eventType":"VEHICLE_STATE",
          "data":{"vehicle":{"id":"v-1","make":"Test Make","model":"Test Model","year":2020},
                  "signals":[{"code":"tractionbattery-stateofcharge","name":"StateOfCharge",
                              "group":"TractionBattery","body":{"percentage":75}}],
                  "user":{"id":"user_1234567890"}},
          "meta":{"version":"3.0","deliveryId":"1234567890","deliveredAt":1700000000}}"#;
        let WebhookEventKind::VehicleState { state, .. } =
            parse_event(body.as_bytes()).unwrap().kind
        else {
            panic!("not a vehicle state");
        };
        assert_eq!(
            state.battery_level_percent,
            Some(Stamped {
                value: 75.0,
                oem_updated_at: ms(1_700_000_000_000)
            })
        );
    }

    #[test]
    fn vehicle_errors_and_unknown_events_parse() {
        let body = r#"{"eventId":"e-9","eventType":"VEHICLE_ERROR","data":{"vehicle":{"id":"v-1"},
            "errors":[{"type":"VEHICLE_STATE","code":"ASLEEP"}],"state":"ERROR"}}"#;
        let event = parse_event(body.as_bytes()).unwrap();
        assert_eq!(
            event.kind,
            WebhookEventKind::VehicleError {
                vehicle_id: "v-1".into(),
                resolved: false,
                errors: vec![SignalError {
                    signal: None,
                    kind: Some("VEHICLE_STATE".into()),
                    code: Some("ASLEEP".into())
                }]
            }
        );
        let other = r#"{"eventId":"e-10","eventType":"SOMETHING_NEW","data":{}}"#;
        assert_eq!(
            parse_event(other.as_bytes()).unwrap().kind,
            WebhookEventKind::Other {
                event_type: "SOMETHING_NEW".into()
            }
        );
        assert_eq!(parse_event(b"not json"), Err(WebhookError::NotJson));
        assert_eq!(
            parse_event(br#"{"eventType":"VERIFY"}"#),
            Err(WebhookError::Missing("eventId"))
        );
    }

    fn stamped<T>(value: T, millis: i64) -> Option<Stamped<T>> {
        Some(Stamped {
            value,
            oem_updated_at: ms(millis),
        })
    }

    #[test]
    fn merge_keeps_the_newest_value_per_field_whatever_the_delivery_order() {
        let first = PushedSignals {
            battery_level_percent: stamped(60.0, 2_000),
            plugged_in: stamped(true, 1_000),
            ..PushedSignals::default()
        };
        // Delivered later but recorded earlier for the level; newer for the plug.
        let late = PushedSignals {
            battery_level_percent: stamped(55.0, 1_500),
            plugged_in: stamped(false, 3_000),
            charging: stamped(false, 3_000),
            ..PushedSignals::default()
        };
        let stored = merge(None, &first);
        let merged: PushedSignals = serde_json::from_value(merge(Some(&stored), &late)).unwrap();
        assert_eq!(merged.battery_level_percent, stamped(60.0, 2_000));
        assert_eq!(merged.plugged_in, stamped(false, 3_000));
        assert_eq!(merged.charging, stamped(false, 3_000));

        // The other order ends in the same document.
        let other_order = merge(Some(&merge(None, &late)), &first);
        assert_eq!(other_order, merge(Some(&stored), &late));
        // Garbage stored earlier counts as nothing.
        let fresh: PushedSignals =
            serde_json::from_value(merge(Some(&Value::from("garbage")), &first)).unwrap();
        assert_eq!(fresh, first);
    }

    #[test]
    fn a_fresh_complete_document_becomes_a_reading() {
        let signals = PushedSignals {
            battery_level_percent: stamped(61.0, 10_000),
            plugged_in: stamped(true, 9_000),
            charging: stamped(true, 9_500),
            charge_power_w: stamped(7_400.0, 9_500),
            charge_limit_percent: stamped(80.0, 9_000),
            ..PushedSignals::default()
        };
        let received_at = ms(20_000);
        let pushed = PushedState {
            state: merge(None, &signals),
            received_at,
        };
        let fresh_for = std::time::Duration::from_secs(1800);
        let reading = reading_from_pushed(
            &pushed,
            received_at + chrono::Duration::minutes(29),
            fresh_for,
        )
        .unwrap();
        assert_eq!(reading.battery_level_percent, 61.0);
        assert!(reading.is_plugged_in && reading.is_charging);
        assert_eq!(reading.charge_rate_w, 7_400.0);
        assert_eq!(reading.charge_limit_percent, Some(80));
        assert_eq!(reading.reported_at, ms(9_000));
        // Too old, or missing the charging flag: not used.
        assert!(
            reading_from_pushed(
                &pushed,
                received_at + chrono::Duration::minutes(31),
                fresh_for
            )
            .is_none()
        );
        let incomplete = PushedState {
            state: merge(
                None,
                &PushedSignals {
                    charging: None,
                    ..signals
                },
            ),
            received_at,
        };
        assert!(reading_from_pushed(&incomplete, received_at, fresh_for).is_none());
    }
}
