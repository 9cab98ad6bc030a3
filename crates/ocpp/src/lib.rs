//! OCPP-J for Voltplan's central system, without I/O: framing ([`frame`]), validation of every
//! payload against the Open Charge Alliance's JSON Schemas ([`schema`]), the OCPP 1.6J messages
//! Voltplan reads and writes ([`v16`]) and charging profiles from a power schedule
//! ([`profile`]). The WebSocket, the store and the worker live elsewhere
//! (`crates/api/src/ocpp/`, `crates/worker/src/wallbox.rs`).
//!
//! OCPP 2.0.1 is a second version of the same seam: its own schemas (`schemas/v201/`), its
//! message module and its WebSocket subprotocol; the framing is shared (2.0.1 renames two error
//! codes, see [`frame::ErrorCode::name`]).

pub mod frame;
pub mod profile;
pub mod schema;
pub mod v16;

pub use frame::{ErrorCode, Frame, FrameError};
pub use schema::{Direction, Schemas, Violation};

/// An OCPP-J protocol version, as the WebSocket subprotocol names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V16,
    V201,
}

impl Version {
    /// The `Sec-WebSocket-Protocol` token.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Self::V16 => "ocpp1.6",
            Self::V201 => "ocpp2.0.1",
        }
    }

    pub fn from_subprotocol(token: &str) -> Option<Self> {
        match token.trim() {
            "ocpp1.6" => Some(Self::V16),
            "ocpp2.0.1" => Some(Self::V201),
            _ => None,
        }
    }
}
