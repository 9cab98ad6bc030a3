//! The OCPP 1.6J messages Voltplan's central system reads and writes, as typed structs. Payloads
//! are validated against the schemas ([`crate::schema`]) before they are read into these types, so
//! the types only carry the fields Voltplan uses.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

// ---- charger → central system

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BootNotification {
    pub charge_point_vendor: String,
    pub charge_point_model: String,
    pub charge_point_serial_number: Option<String>,
    pub charge_box_serial_number: Option<String>,
    pub firmware_version: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BootNotificationResponse {
    /// `Accepted`, `Pending` or `Rejected`.
    pub status: &'static str,
    pub current_time: DateTime<Utc>,
    /// Heartbeat interval in seconds.
    pub interval: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatResponse {
    pub current_time: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusNotification {
    pub connector_id: i64,
    pub error_code: String,
    pub status: String,
    pub timestamp: Option<DateTime<Utc>>,
    pub info: Option<String>,
    pub vendor_error_code: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorize {
    pub id_tag: String,
}

/// `idTagInfo` of Authorize, StartTransaction and StopTransaction answers.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdTagInfo {
    /// `Accepted`, `Blocked`, `Expired`, `Invalid`, `ConcurrentTx`.
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeResponse {
    pub id_tag_info: IdTagInfo,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartTransaction {
    pub connector_id: i64,
    pub id_tag: String,
    /// The energy register at the start, Wh.
    pub meter_start: i64,
    pub timestamp: DateTime<Utc>,
    pub reservation_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartTransactionResponse {
    pub id_tag_info: IdTagInfo,
    pub transaction_id: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopTransaction {
    pub transaction_id: i64,
    pub id_tag: Option<String>,
    /// The energy register at the end, Wh.
    pub meter_stop: i64,
    pub timestamp: DateTime<Utc>,
    pub reason: Option<String>,
    #[serde(default)]
    pub transaction_data: Vec<MeterValue>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopTransactionResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_tag_info: Option<IdTagInfo>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeterValues {
    pub connector_id: i64,
    pub transaction_id: Option<i64>,
    pub meter_value: Vec<MeterValue>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeterValue {
    pub timestamp: DateTime<Utc>,
    pub sampled_value: Vec<SampledValue>,
}

/// One sample. Defaults as OCPP 1.6 §7.45 gives them: measurand
/// `Energy.Active.Import.Register`, unit `Wh`, context `Sample.Periodic`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SampledValue {
    pub value: String,
    pub context: Option<String>,
    pub format: Option<String>,
    pub measurand: Option<String>,
    pub phase: Option<String>,
    pub location: Option<String>,
    pub unit: Option<String>,
}

impl SampledValue {
    pub fn measurand(&self) -> &str {
        self.measurand
            .as_deref()
            .unwrap_or("Energy.Active.Import.Register")
    }

    /// The value in the measurand's base unit (Wh, W, %, A, V), or `None` when it is not a
    /// plain number (e.g. `SignedData`).
    pub fn base_value(&self) -> Option<(f64, &'static str)> {
        if self.format.as_deref() == Some("SignedData") {
            return None;
        }
        let value: f64 = self.value.trim().parse().ok()?;
        if !value.is_finite() {
            return None;
        }
        let unit = self.unit.as_deref();
        Some(match self.measurand() {
            m if m.starts_with("Energy.Active") => match unit {
                Some("kWh") => (value * 1000.0, "Wh"),
                _ => (value, "Wh"),
            },
            m if m.starts_with("Power.Active") || m == "Power.Offered" => match unit {
                Some("kW") => (value * 1000.0, "W"),
                _ => (value, "W"),
            },
            "SoC" => (value, "Percent"),
            m if m.starts_with("Current") => (value, "A"),
            "Voltage" => (value, "V"),
            _ => (value, "other"),
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataTransfer {
    pub vendor_id: String,
    pub message_id: Option<String>,
    pub data: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataTransferResponse {
    /// `Accepted`, `Rejected`, `UnknownMessageId`, `UnknownVendorId`.
    pub status: &'static str,
}

// ---- central system → charger

/// `SetChargingProfile.req`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetChargingProfile {
    pub connector_id: i64,
    pub cs_charging_profiles: ChargingProfile,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargingProfile {
    pub charging_profile_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<i64>,
    pub stack_level: i64,
    /// `TxDefaultProfile` or `TxProfile` (Voltplan never sets `ChargePointMaxProfile`).
    pub charging_profile_purpose: String,
    /// `Absolute`: the schedule starts at `startSchedule`.
    pub charging_profile_kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<DateTime<Utc>>,
    /// After it the profile no longer applies and the charger charges at its own maximum:
    /// Voltplan sets it to the driver's deadline, so a charger that loses Voltplan charges anyway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<DateTime<Utc>>,
    pub charging_schedule: ChargingSchedule,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargingSchedule {
    /// Seconds the schedule lasts from `startSchedule`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_schedule: Option<DateTime<Utc>>,
    /// `W` or `A`.
    pub charging_rate_unit: String,
    pub charging_schedule_period: Vec<ChargingSchedulePeriod>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_charging_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargingSchedulePeriod {
    /// Seconds from the schedule's start.
    pub start_period: i64,
    /// In the schedule's unit; one decimal (the schema's `multipleOf: 0.1`).
    pub limit: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number_phases: Option<i64>,
}

/// An answer whose only field is `status` (SetChargingProfile, ClearChargingProfile,
/// RemoteStart/StopTransaction, ChangeConfiguration, ChangeAvailability, TriggerMessage, …).
#[derive(Debug, Clone, Deserialize)]
pub struct StatusResponse {
    pub status: String,
}

/// `GetConfiguration.conf`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetConfigurationResponse {
    #[serde(default)]
    pub configuration_key: Vec<KeyValue>,
    #[serde(default)]
    pub unknown_key: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyValue {
    pub key: String,
    pub readonly: bool,
    pub value: Option<String>,
}

/// The configuration keys Voltplan reads after a boot (OCPP 1.6 §9.1 and §9.4).
pub const CONFIGURATION_KEYS: &[&str] = &[
    "SupportedFeatureProfiles",
    "ChargingScheduleAllowedChargingRateUnit",
    "ChargingScheduleMaxPeriods",
    "MaxChargingProfilesInstalled",
    "MeterValueSampleInterval",
    "MeterValuesSampledData",
    "NumberOfConnectors",
];
