//! What partners are told through webhooks: the catalogue of event types and the versioned
//! payload every delivery carries (the Standard Webhooks shape `{type, timestamp, data}` plus
//! the event's `id` and `api_version`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

/// The payload's version: bumped when a field changes meaning or disappears (adding a field
/// does not bump it; receivers must ignore fields they do not know).
pub const API_VERSION: &str = "2026-12-01";

/// Every event type with what it means; a subscription names some of them, or `*` for all.
pub const EVENT_TYPES: &[(&str, &str)] = &[
    ("device.plugged_in", "The device reports a plugged-in car."),
    ("device.unplugged", "The car was unplugged."),
    ("device.charging_started", "The device started charging."),
    ("device.charging_stopped", "The device stopped charging."),
    (
        "device.target_reached",
        "The battery reached the level asked for by the deadline (`minimum_charge_limit`).",
    ),
    (
        "device.session_completed",
        "A charging session ended (unplugged), with its outcome, energy, cost and savings.",
    ),
    (
        "device.plan_changed",
        "The worker made a new charging plan, with its explanation.",
    ),
    (
        "device.action_needed",
        "The driver must act (e.g. `reauthenticate`): the device's `actions` say how.",
    ),
    ("device.action_resolved", "No action is needed any more."),
    (
        "device.connection_changed",
        "`connection_status` or `lifecycle_state` changed (cloud or OCPP).",
    ),
    ("device.boost_changed", "`boost_state` changed."),
    (
        "device.onboarded",
        "A driver connected a device through a device-onboarding session.",
    ),
    (
        "webhook.test",
        "Sent by `POST …/webhooks/{id}/test`, to this endpoint only.",
    ),
    (
        "webhook_endpoint.disabled",
        "An endpoint of the organisation was disabled after a day of failed deliveries.",
    ),
];

/// Whether `name` is in the catalogue.
pub fn is_event_type(name: &str) -> bool {
    EVENT_TYPES.iter().any(|(known, _)| *known == name)
}

/// One event, before it is written to the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Also the `webhook-id` of every delivery of it, so receivers deduplicate by it.
    pub id: Uuid,
    pub org_id: Uuid,
    pub event_type: &'static str,
    /// Events with the same key reach an endpoint in the order they happened (the device's id;
    /// the event's own id when order does not matter).
    pub ordering_key: String,
    pub occurred_at: DateTime<Utc>,
    pub data: Value,
}

impl Event {
    /// An event about one device: ordered with the device's other events.
    pub fn about_device(
        event_type: &'static str,
        org_id: Uuid,
        device_id: Uuid,
        occurred_at: DateTime<Utc>,
        data: Value,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            org_id,
            event_type,
            ordering_key: device_id.to_string(),
            occurred_at,
            data,
        }
    }

    /// An event about nothing in particular (a test, an endpoint): ordered with nothing.
    pub fn standalone(
        event_type: &'static str,
        org_id: Uuid,
        occurred_at: DateTime<Utc>,
        data: Value,
    ) -> Self {
        let id = Uuid::now_v7();
        Self {
            id,
            org_id,
            event_type,
            ordering_key: id.to_string(),
            occurred_at,
            data,
        }
    }

    /// The JSON body every delivery of this event carries, byte for byte (it is signed).
    pub fn payload(&self) -> String {
        json!({
            "id": self.id,
            "type": self.event_type,
            "api_version": API_VERSION,
            "timestamp": self.occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "data": self.data,
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_the_documented_envelope() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let org = Uuid::nil();
        let event = Event::about_device("device.plugged_in", org, org, at, json!({"a": 1}));
        let body: Value = serde_json::from_str(&event.payload()).unwrap();
        assert_eq!(body["type"], "device.plugged_in");
        assert_eq!(body["timestamp"], "2026-12-01T10:00:00.000Z");
        assert_eq!(body["api_version"], API_VERSION);
        assert_eq!(body["id"], event.id.to_string());
        assert_eq!(body["data"], json!({"a": 1}));
        assert!(is_event_type("device.plugged_in") && !is_event_type("device.nope"));
    }
}
