//! Voltplan's pure core: domain types and the planner. No I/O, no clock reads, no async.

pub mod account;
pub mod charger;
pub mod clock;
pub mod events;
pub mod grid;
pub mod joint;
pub mod planner;
pub mod price;
pub mod session;
pub mod tariff;
pub mod time;
pub mod validation;
pub mod vehicle;
pub mod wallbox;
pub mod zone;

pub use clock::{Clock, ManualClock, SystemClock};
pub use price::PriceSlot;
pub use zone::{PriceZone, Resolution};
