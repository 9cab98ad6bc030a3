//! What one charger's connection knows while it is open.

use std::collections::VecDeque;

use serde_json::{Map, Value};
use voltplan_core::charger::Charger;
use voltplan_ocpp::Schemas;
use voltplan_store::ocpp::ChargerLink;

use crate::state::AppState;

/// What the connection knows while it is open.
pub(super) struct Session {
    pub state: AppState,
    pub link: ChargerLink,
    pub charger: Charger,
    pub charge_point_id: String,
    pub schemas: &'static Schemas,
    /// Calls of the connection's own to send (GetConfiguration after a boot).
    pub own_calls: VecDeque<(String, Map<String, Value>)>,
}

impl Session {
    /// Saves the charger document; `false` when a newer connection of the same charger took over.
    /// `wake`: the worker should look at the wallbox now.
    pub async fn save(&mut self, wake: bool) -> Result<bool, voltplan_store::StoreError> {
        self.state
            .0
            .store
            .save_charger(&self.link, &self.charger, wake)
            .await
    }
}
