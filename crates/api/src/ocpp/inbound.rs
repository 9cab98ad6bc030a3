//! What each message from a charger does. Every write is committed before the answer is sent
//! (a lost answer makes the charger resend, and each write is idempotent), and every answer is
//! checked against its schema before it leaves.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use voltplan_core::charger::{BootInfo, ConnectorStatus, RateUnit};
use voltplan_ocpp::v16::{
    Authorize, AuthorizeResponse, BootNotification, BootNotificationResponse, CONFIGURATION_KEYS,
    DataTransfer, DataTransferResponse, GetConfigurationResponse, HeartbeatResponse, IdTagInfo,
    MeterValue, MeterValues, StartTransaction, StartTransactionResponse, StatusNotification,
    StopTransaction, StopTransactionResponse,
};
use voltplan_ocpp::{Direction, ErrorCode};
use voltplan_store::StoreError;
use voltplan_store::ocpp::{MeterSample, TransactionStart, TransactionStop};

use super::session::Session;

pub(super) enum Answer {
    Result(Value),
    Error(ErrorCode, String),
    /// A newer connection of the same charger holds the link: this one must close.
    Superseded,
}

fn internal(error: &StoreError, session: &Session, action: &str) -> Answer {
    tracing::error!(%error, charge_point_id = %session.charge_point_id, %action, "OCPP: could not store a charger's message");
    Answer::Error(
        ErrorCode::InternalError,
        "the central system could not store the message; send it again".to_owned(),
    )
}

/// Checks the answer against its schema (a failure is our bug: logged, and the charger is told
/// of an internal error rather than sent something invalid).
fn reply<T: Serialize>(session: &Session, action: &str, answer: &T) -> Answer {
    let payload = match serde_json::to_value(answer) {
        Ok(payload) => payload,
        Err(error) => {
            tracing::error!(%error, %action, "OCPP: could not encode an answer");
            return Answer::Error(ErrorCode::InternalError, "internal error".to_owned());
        }
    };
    match session.schemas.check_response(action, &payload) {
        Ok(()) => Answer::Result(payload),
        Err(violation) => {
            tracing::error!(%action, cause = %violation.description, "OCPP: an answer of ours breaks its schema");
            Answer::Error(ErrorCode::InternalError, "internal error".to_owned())
        }
    }
}

fn read<T: DeserializeOwned>(payload: Value) -> Result<T, Answer> {
    serde_json::from_value(payload).map_err(|error| {
        // The schema passed, so this is a value our types cannot hold (e.g. an integer out of
        // range).
        Answer::Error(ErrorCode::TypeConstraintViolation, error.to_string())
    })
}

/// Handles a CALL from the charger.
pub(super) async fn handle(session: &mut Session, action: &str, payload: Value) -> Answer {
    match session.schemas.direction(action) {
        None => {
            return Answer::Error(
                ErrorCode::NotImplemented,
                format!("unknown action {action}"),
            );
        }
        Some(Direction::ToCharger) => {
            return Answer::Error(
                ErrorCode::NotSupported,
                format!("{action} is sent by a central system, not to it"),
            );
        }
        Some(Direction::FromCharger | Direction::Both) => {}
    }
    if let Err(violation) = session.schemas.check_request(action, &payload) {
        return Answer::Error(violation.code, violation.description);
    }
    let answer = match action {
        "BootNotification" => boot(session, payload).await,
        "Heartbeat" => heartbeat(session).await,
        "StatusNotification" => status(session, payload).await,
        "Authorize" => authorize(session, payload),
        "StartTransaction" => start(session, payload).await,
        "StopTransaction" => stop(session, payload).await,
        "MeterValues" => meter_values(session, payload).await,
        "DataTransfer" => data_transfer(session, payload),
        // Reports Voltplan takes note of and has nothing to do with.
        "DiagnosticsStatusNotification"
        | "FirmwareStatusNotification"
        | "LogStatusNotification"
        | "SecurityEventNotification"
        | "SignedFirmwareStatusNotification" => {
            tracing::info!(charge_point_id = %session.charge_point_id, %action, %payload, "OCPP report");
            Ok(reply(session, action, &json!({})))
        }
        _ => Ok(Answer::Error(
            ErrorCode::NotSupported,
            format!("{action} is not supported by this central system"),
        )),
    };
    answer.unwrap_or_else(|a| a)
}

/// Saves the charger document after a message that changed it.
async fn save(session: &mut Session, action: &str, wake: bool) -> Result<(), Answer> {
    match session.save(wake).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Answer::Superseded),
        Err(error) => Err(internal(&error, session, action)),
    }
}

async fn boot(session: &mut Session, payload: Value) -> Result<Answer, Answer> {
    let boot: BootNotification = read(payload)?;
    session.charger.boot = Some(BootInfo {
        vendor: boot.charge_point_vendor,
        model: boot.charge_point_model,
        serial_number: boot
            .charge_point_serial_number
            .or(boot.charge_box_serial_number),
        firmware_version: boot.firmware_version,
    });
    save(session, "BootNotification", false).await?;
    // What the charger can do decides how it is steered (profiles in W or A, or start/stop).
    let keys: Vec<Value> = CONFIGURATION_KEYS.iter().map(|k| json!(k)).collect();
    let mut request = Map::new();
    request.insert("key".to_owned(), Value::Array(keys));
    session
        .own_calls
        .push_back(("GetConfiguration".to_owned(), request));
    let interval = session.state.0.config.ocpp.heartbeat_interval.as_secs() as i64;
    Ok(reply(
        session,
        "BootNotification",
        &BootNotificationResponse {
            status: "Accepted",
            current_time: session.state.0.clock.now(),
            interval,
        },
    ))
}

async fn heartbeat(session: &mut Session) -> Result<Answer, Answer> {
    save(session, "Heartbeat", false).await?;
    Ok(reply(
        session,
        "Heartbeat",
        &HeartbeatResponse {
            current_time: session.state.0.clock.now(),
        },
    ))
}

async fn status(session: &mut Session, payload: Value) -> Result<Answer, Answer> {
    let status: StatusNotification = read(payload)?;
    let parsed = ConnectorStatus::parse(&status.status);
    let at = status
        .timestamp
        .unwrap_or_else(|| session.state.0.clock.now());
    let error = (status.error_code != "NoError").then_some(status.error_code);
    let before = session.charger.connector_status;
    // Connector 0 is the charger as a whole: its faults count, its Available does not hide a
    // connector's session.
    if status.connector_id == 0 {
        if matches!(
            parsed,
            Some(ConnectorStatus::Faulted | ConnectorStatus::Unavailable)
        ) {
            session.charger.connector_status = parsed;
        }
    } else {
        session.charger.connector_status = parsed;
    }
    let changed = session.charger.connector_status != before || session.charger.error_code != error;
    session.charger.error_code = error;
    session.charger.status_at = Some(at);
    save(session, "StatusNotification", changed).await?;
    Ok(reply(session, "StatusNotification", &json!({})))
}

/// A home charger belongs to one household: every id tag is accepted (the charger's owner
/// decides who plugs in; Voltplan decides when it charges).
fn authorize(session: &Session, payload: Value) -> Result<Answer, Answer> {
    let _: Authorize = read(payload)?;
    Ok(reply(
        session,
        "Authorize",
        &AuthorizeResponse {
            id_tag_info: IdTagInfo { status: "Accepted" },
        },
    ))
}

async fn start(session: &mut Session, payload: Value) -> Result<Answer, Answer> {
    let start: StartTransaction = read(payload)?;
    session.charger.meter_wh = Some(start.meter_start as f64);
    session.charger.meter_at = Some(start.timestamp);
    let stored = session
        .state
        .0
        .store
        .start_transaction(
            &session.link,
            &TransactionStart {
                connector_id: start.connector_id,
                id_tag: start.id_tag,
                meter_start_wh: start.meter_start,
                started_at: start.timestamp,
            },
            &session.charger,
        )
        .await;
    let transaction_id = stored.map_err(|e| internal(&e, session, "StartTransaction"))?;
    session.charger.transaction_id = Some(transaction_id);
    Ok(reply(
        session,
        "StartTransaction",
        &StartTransactionResponse {
            id_tag_info: IdTagInfo { status: "Accepted" },
            transaction_id,
        },
    ))
}

async fn stop(session: &mut Session, payload: Value) -> Result<Answer, Answer> {
    let stop: StopTransaction = read(payload)?;
    let samples = samples(1, Some(stop.transaction_id), &stop.transaction_data);
    session.charger.meter_wh = Some(stop.meter_stop as f64);
    session.charger.meter_at = Some(stop.timestamp);
    session.charger.power_w = Some(0.0);
    if session.charger.transaction_id == Some(stop.transaction_id) {
        session.charger.transaction_id = None;
    }
    let stored = session
        .state
        .0
        .store
        .stop_transaction(
            &session.link,
            &TransactionStop {
                transaction_id: stop.transaction_id,
                meter_stop_wh: stop.meter_stop,
                stopped_at: stop.timestamp,
                reason: stop.reason,
            },
            &samples,
            &session.charger,
        )
        .await;
    let known = stored.map_err(|e| internal(&e, session, "StopTransaction"))?;
    if !known {
        // Answered all the same: a charger whose stop is refused would resend it forever.
        tracing::warn!(charge_point_id = %session.charge_point_id, transaction_id = stop.transaction_id, "OCPP: StopTransaction for an unknown transaction");
    }
    Ok(reply(
        session,
        "StopTransaction",
        &StopTransactionResponse {
            id_tag_info: stop.id_tag.map(|_| IdTagInfo { status: "Accepted" }),
        },
    ))
}

/// The samples Voltplan keeps, in base units; signed or non-numeric values are skipped.
fn samples(
    connector_id: i64,
    transaction_id: Option<i64>,
    values: &[MeterValue],
) -> Vec<MeterSample> {
    values
        .iter()
        .flat_map(|mv| {
            mv.sampled_value.iter().filter_map(move |sv| {
                let (value, unit) = sv.base_value()?;
                Some(MeterSample {
                    connector_id,
                    at: mv.timestamp,
                    measurand: sv.measurand().to_owned(),
                    phase: sv.phase.clone().unwrap_or_default(),
                    transaction_id,
                    value,
                    unit: unit.to_owned(),
                })
            })
        })
        .collect()
}

async fn meter_values(session: &mut Session, payload: Value) -> Result<Answer, Answer> {
    let values: MeterValues = read(payload)?;
    let samples = samples(
        values.connector_id,
        values.transaction_id,
        &values.meter_value,
    );
    // The newest whole-charger readings (no phase) update the live document.
    let mut newest = samples
        .iter()
        .filter(|s| s.phase.is_empty())
        .collect::<Vec<_>>();
    newest.sort_by_key(|s| s.at);
    for sample in newest {
        if session.charger.meter_at.is_some_and(|at| at > sample.at) {
            continue;
        }
        match sample.measurand.as_str() {
            "Energy.Active.Import.Register" => {
                session.charger.meter_wh = Some(sample.value);
                session.charger.meter_at = Some(sample.at);
            }
            "Power.Active.Import" => session.charger.power_w = Some(sample.value),
            "SoC" => session.charger.soc = Some(sample.value),
            _ => {}
        }
    }
    let stored = session
        .state
        .0
        .store
        .record_meter_values(&session.link, &samples, &session.charger)
        .await;
    stored.map_err(|e| internal(&e, session, "MeterValues"))?;
    Ok(reply(session, "MeterValues", &json!({})))
}

/// Voltplan defines no vendor extensions.
fn data_transfer(session: &Session, payload: Value) -> Result<Answer, Answer> {
    let transfer: DataTransfer = read(payload)?;
    tracing::info!(charge_point_id = %session.charge_point_id, vendor_id = %transfer.vendor_id, message_id = ?transfer.message_id, "OCPP DataTransfer from an unknown vendor");
    Ok(reply(
        session,
        "DataTransfer",
        &DataTransferResponse {
            status: "UnknownVendorId",
        },
    ))
}

/// The charger answered one of our calls (its payload already checked against the schema).
pub(super) async fn answered(session: &mut Session, action: &str, payload: &Value) {
    if action != "GetConfiguration" {
        return;
    }
    let Ok(config) = serde_json::from_value::<GetConfigurationResponse>(payload.clone()) else {
        return;
    };
    let value = |key: &str| {
        config
            .configuration_key
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.clone())
    };
    let profiles = value("SupportedFeatureProfiles").unwrap_or_default();
    session.charger.smart_charging = Some(
        profiles
            .split(',')
            .any(|p| p.trim().eq_ignore_ascii_case("SmartCharging")),
    );
    // "Current", "Power", "Current,Power" (OCPP 1.6 §9.4.1); amperes where both are taken:
    // every charger that takes limits takes them in amperes.
    let units = value("ChargingScheduleAllowedChargingRateUnit").unwrap_or_default();
    session.charger.rate_unit = if units.contains("Current") {
        Some(RateUnit::A)
    } else if units.contains("Power") {
        Some(RateUnit::W)
    } else {
        None
    };
    if let Err(error) = session.save(true).await {
        tracing::error!(%error, charge_point_id = %session.charge_point_id, "OCPP: could not store the charger's configuration");
    }
}
