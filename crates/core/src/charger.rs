//! A wallbox as its OCPP central system sees it: the `charger` document that only the central
//! system writes (the partner writes settings, the worker writes state), and what the partner API
//! derives from it (`is_ocpp_connected`, `connection`, `mode`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the charger said about itself in its BootNotification.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BootInfo {
    pub vendor: String,
    pub model: String,
    pub serial_number: Option<String>,
    pub firmware_version: Option<String>,
}

/// A connector's status as OCPP 1.6 `StatusNotification.status` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnectorStatus {
    Available,
    Preparing,
    Charging,
    SuspendedEV,
    SuspendedEVSE,
    Finishing,
    Reserved,
    Unavailable,
    Faulted,
}

impl ConnectorStatus {
    pub fn parse(status: &str) -> Option<Self> {
        Some(match status {
            "Available" => Self::Available,
            "Preparing" => Self::Preparing,
            "Charging" => Self::Charging,
            "SuspendedEV" => Self::SuspendedEV,
            "SuspendedEVSE" => Self::SuspendedEVSE,
            "Finishing" => Self::Finishing,
            "Reserved" => Self::Reserved,
            "Unavailable" => Self::Unavailable,
            "Faulted" => Self::Faulted,
            _ => return None,
        })
    }

    /// A car is connected: every state of a session, from Preparing (plugged, not yet
    /// authorised) to Finishing (stopped, cable still in).
    pub fn is_plugged_in(self) -> bool {
        matches!(
            self,
            Self::Preparing
                | Self::Charging
                | Self::SuspendedEV
                | Self::SuspendedEVSE
                | Self::Finishing
        )
    }

    /// Energy flows. SuspendedEVSE (held at 0 by a profile) and SuspendedEV (the car declines)
    /// are plugged in but not charging.
    pub fn is_charging(self) -> bool {
        self == Self::Charging
    }
}

/// How the charger accepts charging-rate limits (`ChargingScheduleAllowedChargingRateUnit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RateUnit {
    W,
    A,
}

/// The central system's document about one wallbox (`wallboxes.charger`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Charger {
    /// A WebSocket to some replica is open now.
    pub connected: bool,
    /// The `serve` process that holds the WebSocket (commands are sent by it).
    pub replica: Option<String>,
    pub connected_at: Option<DateTime<Utc>>,
    pub disconnected_at: Option<DateTime<Utc>>,
    /// The last message of any kind from the charger.
    pub last_seen_at: Option<DateTime<Utc>>,
    pub boot: Option<BootInfo>,
    /// Connector 1's status (single-connector home chargers; connector 0 is the whole box).
    pub connector_status: Option<ConnectorStatus>,
    /// OCPP `ChargePointErrorCode` of the last StatusNotification, when not `NoError`.
    pub error_code: Option<String>,
    pub status_at: Option<DateTime<Utc>>,
    /// The energy register (`Energy.Active.Import.Register`) in Wh, and when it was read.
    pub meter_wh: Option<f64>,
    pub meter_at: Option<DateTime<Utc>>,
    /// `Power.Active.Import` in W at `meter_at`.
    pub power_w: Option<f64>,
    /// The car's state of charge when the charger reports it (`SoC` measurand), percent.
    pub soc: Option<f64>,
    /// The open OCPP transaction, if any.
    pub transaction_id: Option<i64>,
    /// From GetConfiguration: the charger accepts charging profiles (SmartCharging profile),
    /// in which unit, and on how many phases it charges.
    pub smart_charging: Option<bool>,
    pub rate_unit: Option<RateUnit>,
    pub phases: Option<u8>,
}

/// `connection` of Podero's wallbox object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Connection {
    Online,
    Offline,
    NeverConnected,
}

/// `mode` of Podero's wallbox object: a status pill for the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    Ready,
    PluggedIn,
    Charging,
    Unavailable,
    Unknown,
}

impl Charger {
    pub fn connection(&self) -> Connection {
        if self.connected {
            Connection::Online
        } else if self.connected_at.is_some() {
            Connection::Offline
        } else {
            Connection::NeverConnected
        }
    }

    /// Podero derives `mode` from "is_authenticated, is_plugged_in and is_charging" without
    /// publishing the table; ours: offline or faulted/unavailable → UNAVAILABLE, charging →
    /// CHARGING, plugged in → PLUGGED_IN, available → READY, no status yet → UNKNOWN.
    pub fn mode(&self) -> Mode {
        if !self.connected {
            return if self.connected_at.is_some() {
                Mode::Unavailable
            } else {
                Mode::Unknown
            };
        }
        match self.connector_status {
            None => Mode::Unknown,
            Some(ConnectorStatus::Faulted | ConnectorStatus::Unavailable) => Mode::Unavailable,
            Some(status) if status.is_charging() => Mode::Charging,
            Some(status) if status.is_plugged_in() => Mode::PluggedIn,
            Some(_) => Mode::Ready,
        }
    }

    pub fn is_plugged_in(&self) -> bool {
        self.connector_status
            .is_some_and(ConnectorStatus::is_plugged_in)
    }

    pub fn is_charging(&self) -> bool {
        self.connector_status
            .is_some_and(ConnectorStatus::is_charging)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_and_mode_follow_the_socket_and_the_connector() {
        let mut charger = Charger::default();
        assert_eq!(charger.connection(), Connection::NeverConnected);
        assert_eq!(charger.mode(), Mode::Unknown);
        charger.connected = true;
        charger.connected_at = Some(DateTime::UNIX_EPOCH);
        assert_eq!(charger.connection(), Connection::Online);
        for (status, mode) in [
            (ConnectorStatus::Available, Mode::Ready),
            (ConnectorStatus::Preparing, Mode::PluggedIn),
            (ConnectorStatus::SuspendedEVSE, Mode::PluggedIn),
            (ConnectorStatus::Charging, Mode::Charging),
            (ConnectorStatus::Faulted, Mode::Unavailable),
        ] {
            charger.connector_status = Some(status);
            assert_eq!(charger.mode(), mode, "{status:?}");
        }
        charger.connected = false;
        assert_eq!(charger.connection(), Connection::Offline);
        assert_eq!(charger.mode(), Mode::Unavailable);
    }
}
