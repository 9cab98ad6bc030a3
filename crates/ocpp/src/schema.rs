//! Every payload against the OCA's JSON Schemas (`crates/ocpp/schemas/`), compiled once.
//!
//! A violation becomes the CALLERROR code the specification names for it: a missing field is an
//! occurrence violation, a wrong type or an over-long string a type violation, an unknown field a
//! formation violation, any other bad value (an enum, a date-time) a property violation.

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::Validator;
use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use crate::Version;
use crate::frame::ErrorCode;

/// Who sends an action's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Charger → central system (BootNotification, MeterValues, …).
    FromCharger,
    /// Central system → charger (SetChargingProfile, RemoteStartTransaction, …).
    ToCharger,
    /// Either side (DataTransfer).
    Both,
}

/// A payload that breaks its schema: the CALLERROR to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub code: ErrorCode,
    pub description: String,
}

struct Action {
    direction: Direction,
    request: Validator,
    response: Validator,
}

/// The compiled schemas of one protocol version.
pub struct Schemas {
    version: Version,
    actions: HashMap<&'static str, Action>,
}

macro_rules! v16_schemas {
    ($($name:literal => $direction:ident),* $(,)?) => {
        &[$((
            $name,
            Direction::$direction,
            include_str!(concat!("../schemas/v16/", $name, ".json")),
            include_str!(concat!("../schemas/v16/", $name, "Response.json")),
        )),*]
    };
}

type Embedded = &'static [(&'static str, Direction, &'static str, &'static str)];

/// OCPP 1.6J with the Security Extension's messages.
const V16: Embedded = v16_schemas![
    "Authorize" => FromCharger,
    "BootNotification" => FromCharger,
    "DataTransfer" => Both,
    "DiagnosticsStatusNotification" => FromCharger,
    "FirmwareStatusNotification" => FromCharger,
    "Heartbeat" => FromCharger,
    "MeterValues" => FromCharger,
    "StartTransaction" => FromCharger,
    "StatusNotification" => FromCharger,
    "StopTransaction" => FromCharger,
    "LogStatusNotification" => FromCharger,
    "SecurityEventNotification" => FromCharger,
    "SignCertificate" => FromCharger,
    "SignedFirmwareStatusNotification" => FromCharger,
    "CancelReservation" => ToCharger,
    "CertificateSigned" => ToCharger,
    "ChangeAvailability" => ToCharger,
    "ChangeConfiguration" => ToCharger,
    "ClearCache" => ToCharger,
    "ClearChargingProfile" => ToCharger,
    "DeleteCertificate" => ToCharger,
    "ExtendedTriggerMessage" => ToCharger,
    "GetCompositeSchedule" => ToCharger,
    "GetConfiguration" => ToCharger,
    "GetDiagnostics" => ToCharger,
    "GetInstalledCertificateIds" => ToCharger,
    "GetLocalListVersion" => ToCharger,
    "GetLog" => ToCharger,
    "InstallCertificate" => ToCharger,
    "RemoteStartTransaction" => ToCharger,
    "RemoteStopTransaction" => ToCharger,
    "ReserveNow" => ToCharger,
    "Reset" => ToCharger,
    "SendLocalList" => ToCharger,
    "SetChargingProfile" => ToCharger,
    "SignedUpdateFirmware" => ToCharger,
    "TriggerMessage" => ToCharger,
    "UnlockConnector" => ToCharger,
    "UpdateFirmware" => ToCharger,
];

fn compile(text: &str, name: &str) -> Validator {
    let schema: Value = match serde_json::from_str(text) {
        Ok(schema) => schema,
        // The schemas are compiled into the binary and checked by the tests below.
        Err(error) => panic!("the embedded schema {name} is not JSON: {error}"),
    };
    match jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
    {
        Ok(validator) => validator,
        Err(error) => panic!("the embedded schema {name} does not compile: {error}"),
    }
}

impl Schemas {
    /// OCPP 1.6J's schemas, compiled on first use.
    pub fn v16() -> &'static Self {
        static V16_SCHEMAS: OnceLock<Schemas> = OnceLock::new();
        V16_SCHEMAS.get_or_init(|| Self::compile(Version::V16, V16))
    }

    fn compile(version: Version, embedded: Embedded) -> Self {
        let actions = embedded
            .iter()
            .map(|(name, direction, request, response)| {
                let action = Action {
                    direction: *direction,
                    request: compile(request, name),
                    response: compile(response, &format!("{name}Response")),
                };
                (*name, action)
            })
            .collect();
        Self { version, actions }
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// Who may send the action's request, or `None` for an action this version does not have.
    pub fn direction(&self, action: &str) -> Option<Direction> {
        self.actions.get(action).map(|a| a.direction)
    }

    /// Checks a CALL's payload.
    pub fn check_request(&self, action: &str, payload: &Value) -> Result<(), Violation> {
        match self.actions.get(action) {
            Some(a) => check(&a.request, payload),
            None => Err(Violation {
                code: ErrorCode::NotImplemented,
                description: format!("unknown action {action}"),
            }),
        }
    }

    /// Checks a CALLRESULT's payload for a CALL of `action`.
    pub fn check_response(&self, action: &str, payload: &Value) -> Result<(), Violation> {
        match self.actions.get(action) {
            Some(a) => check(&a.response, payload),
            None => Err(Violation {
                code: ErrorCode::NotImplemented,
                description: format!("unknown action {action}"),
            }),
        }
    }
}

fn check(validator: &Validator, payload: &Value) -> Result<(), Violation> {
    let Err(error) = validator.validate(payload) else {
        return Ok(());
    };
    let code = match error.kind() {
        ValidationErrorKind::Required { .. }
        | ValidationErrorKind::MinItems { .. }
        | ValidationErrorKind::MaxItems { .. } => ErrorCode::OccurrenceConstraintViolation,
        ValidationErrorKind::Type { .. } | ValidationErrorKind::MaxLength { .. } => {
            ErrorCode::TypeConstraintViolation
        }
        ValidationErrorKind::AdditionalProperties { .. }
        | ValidationErrorKind::AdditionalItems { .. } => ErrorCode::FormationViolation,
        _ => ErrorCode::PropertyConstraintViolation,
    };
    let path = error.instance_path().to_string();
    let description = if path.is_empty() {
        error.to_string()
    } else {
        format!("{path}: {error}")
    };
    Err(Violation { code, description })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_embedded_schema_compiles() {
        let schemas = Schemas::v16();
        assert_eq!(schemas.actions.len(), 39);
        assert_eq!(
            schemas.direction("MeterValues"),
            Some(Direction::FromCharger)
        );
        assert_eq!(schemas.direction("Fly"), None);
    }

    #[test]
    fn violations_get_the_code_the_specification_names() {
        let schemas = Schemas::v16();
        let code = |action: &str, payload: Value| {
            schemas
                .check_request(action, &payload)
                .map_err(|v| v.code.name(Version::V16))
        };
        assert_eq!(
            code(
                "BootNotification",
                json!({"chargePointVendor": "V", "chargePointModel": "M"})
            ),
            Ok(())
        );
        assert_eq!(
            code("BootNotification", json!({"chargePointVendor": "V"})),
            Err("OccurenceConstraintViolation")
        );
        assert_eq!(
            code(
                "BootNotification",
                json!({"chargePointVendor": 7, "chargePointModel": "M"})
            ),
            Err("TypeConstraintViolation")
        );
        assert_eq!(
            code(
                "BootNotification",
                json!({"chargePointVendor": "V".repeat(21), "chargePointModel": "M"})
            ),
            Err("TypeConstraintViolation")
        );
        assert_eq!(
            code(
                "BootNotification",
                json!({"chargePointVendor": "V", "chargePointModel": "M", "colour": "red"})
            ),
            Err("FormationViolation")
        );
        assert_eq!(
            code(
                "StatusNotification",
                json!({"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"})
            ),
            Err("PropertyConstraintViolation")
        );
        assert_eq!(
            code(
                "StartTransaction",
                json!({"connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": "yesterday"})
            ),
            Err("PropertyConstraintViolation")
        );
        assert_eq!(code("Fly", json!({})), Err("NotImplemented"));
    }
}
