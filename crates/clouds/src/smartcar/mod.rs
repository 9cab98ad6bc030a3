//! Smartcar (<https://smartcar.com>): an aggregator that reads and steers cars of many brands
//! through the driver's own OAuth grant. Written from Smartcar's public documentation:
//!
//! - Connect ("Redirect to Connect", "Handle the response"): [`SmartcarCloud::authorize_url`].
//!   Smartcar documents no PKCE parameters for Connect, so none are sent (see there).
//! - Tokens ("Auth code exchange", "Token refresh"): `POST {auth}/oauth/token` with Basic client
//!   authentication; access tokens live 2 h, refresh tokens 60 days and rotate, the used one
//!   dying 1 minute later — so both are persisted together through the [`crate::TokenVault`].
//! - Vehicles API v2.0 ("All Vehicles", "Vehicle Attributes", "VIN", "User", "Battery Level",
//!   "Battery Capacity", "Charge Status", "Charge Limit", "Location", "Batch",
//!   "Start & Stop Charge"): levels and limits are fractions (0.8), converted to percent here.
//! - Errors ("API Errors" and the per-type error pages), limits ("Smartcar Usage Limits",
//!   "Make requests to Smartcar"): mapped to [`crate::CloudError`] in the private `errors`
//!   module; call budgets per make in [`BudgetConfig`].
//! - Webhooks ("Payload Verification", "Callback URI Verification", "Event Reference"): see
//!   [`webhook`].
//!
//! Nothing here touches a database: tokens, receipts and pushed states live behind the
//! [`crate::TokenVault`]; call budgets are in memory, per process.

mod budget;
mod client;
mod config;
mod connect;
mod errors;
pub mod webhook;

pub use client::{SmartcarCloud, SmartcarSetupError};
pub use config::{BudgetConfig, CallBudget, SmartcarConfig, SmartcarMode};
pub use connect::{DiscoveredVehicle, SCOPES};
pub use webhook::{
    LatLon, PushedSignals, SignalError, Stamped, WebhookError, WebhookEvent, WebhookEventKind,
    challenge_response, merge, parse_event, verify_signature,
};

pub use crate::registry::SMARTCAR_CLOUD;
