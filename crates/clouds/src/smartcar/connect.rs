//! Smartcar Connect for Voltplan's Connect pages: the authorization URL, the code exchange and
//! what the new grant can see ("Redirect to Connect", "Handle the response", "Auth code
//! exchange", "All Vehicles", "Vehicle Attributes", "VIN", "User").

use reqwest::Method;
use serde::Deserialize;
use url::form_urlencoded;

use super::client::{SmartcarCloud, TokenFailure};
use crate::cloud::CloudError;
use crate::link::{Secret, TokenSet};

/// The permissions Voltplan asks for: the car's identity, its battery and charge state, charge
/// control, and its location (to know whether it is at home).
pub const SCOPES: &str =
    "read_vehicle_info read_vin read_battery read_charge control_charge read_location";

/// `GET /vehicles` page size (Smartcar's paging: `limit`, `offset`).
const PAGE_SIZE: usize = 50;

/// A car the new grant can reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredVehicle {
    /// Smartcar's vehicle id (store it as the link's `cloud_vehicle_id`).
    pub id: String,
    pub make: String,
    pub model: String,
    pub year: i32,
    /// `None` when the car or the grant does not give it.
    pub vin: Option<String>,
}

#[derive(Debug, Deserialize)]
struct VehiclePage {
    vehicles: Vec<String>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Debug, Deserialize)]
struct Paging {
    count: usize,
}

#[derive(Debug, Deserialize)]
struct Attributes {
    id: String,
    make: String,
    model: String,
    year: i32,
}

impl SmartcarCloud {
    /// The Connect URL to send the driver to. `state` comes back on the redirect (bind it to the
    /// driver's session). `make` skips Connect's brand selection.
    ///
    /// `code_challenge` is accepted but not sent: Smartcar's Connect documentation lists no PKCE
    /// parameters (`code_challenge`, `code_challenge_method`), and Voltplan is a confidential
    /// client that authenticates the code exchange with its secret.
    pub fn authorize_url(
        &self,
        state: &str,
        code_challenge: Option<&str>,
        make: Option<&str>,
    ) -> String {
        let _undocumented_pkce = code_challenge;
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &self.config.redirect_uri)
            .append_pair("scope", SCOPES)
            .append_pair("state", state)
            .append_pair("approval_prompt", "auto")
            .append_pair("mode", self.config.mode.as_str());
        if let Some(make) = make.filter(|m| !m.is_empty()) {
            query.append_pair("make", make);
        }
        if let Some(country) = self.config.country.as_deref().filter(|c| !c.is_empty()) {
            query.append_pair("flags", &format!("country:{country}"));
        }
        format!(
            "{}/oauth/authorize?{}",
            self.config.connect_base.trim_end_matches('/'),
            query.finish()
        )
    }

    /// Exchanges the code from Connect's redirect for the account's first tokens.
    /// `code_verifier` is ignored, like the challenge in [`Self::authorize_url`].
    pub async fn exchange_code(
        &self,
        code: &str,
        code_verifier: Option<&str>,
    ) -> Result<TokenSet, CloudError> {
        let _undocumented_pkce = code_verifier;
        let redirect_uri = self.config.redirect_uri.clone();
        match self
            .token_request(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &redirect_uri),
            ])
            .await
        {
            Ok(tokens) => Ok(tokens),
            Err(TokenFailure::Transport(error)) => Err(error),
            Err(TokenFailure::Refused(refused)) => Err(match refused.kind.as_deref() {
                // An expired, reused or foreign code: the driver has to go through Connect again.
                Some("invalid_grant") => CloudError::AuthorizationRevoked {
                    reason: "Smartcar refused the authorization code (expired, already used or \
                             issued for another redirect URI)"
                        .to_owned(),
                },
                Some(
                    kind @ ("invalid_client"
                    | "unauthorized_client"
                    | "invalid_request"
                    | "unsupported_grant_type"),
                ) => CloudError::Transient(format!(
                    "Smartcar refused Voltplan's token request ({kind}): check the client id, \
                     secret and redirect URI"
                )),
                _ => {
                    refused
                        .map(self.config.default_retry_after, self.config.billing_backoff)
                        .error
                }
            }),
        }
    }

    /// A GET with the grant's access token, outside any vehicle's budget (Connect-time calls).
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        access: &Secret,
        path: &str,
    ) -> Result<T, CloudError> {
        let response = self
            .send(Method::GET, &self.api_url(path), access, None)
            .await?;
        if !response.is_success() {
            let refused = response.error();
            let mapped = refused.map(self.config.default_retry_after, self.config.billing_backoff);
            return Err(mapped.error);
        }
        response.json()
    }

    /// The Smartcar user the grant belongs to (`GET /user`), to recognise a driver who connects
    /// again.
    pub async fn user_id(&self, access: &Secret) -> Result<String, CloudError> {
        #[derive(Deserialize)]
        struct User {
            id: String,
        }
        let user: User = self.get_json(access, "/user").await?;
        Ok(user.id)
    }

    /// Every car the grant reaches, with its attributes and (when given) VIN.
    pub async fn discover_vehicles(
        &self,
        access: &Secret,
    ) -> Result<Vec<DiscoveredVehicle>, CloudError> {
        let mut ids: Vec<String> = Vec::new();
        loop {
            let page: VehiclePage = self
                .get_json(
                    access,
                    &format!("/vehicles?limit={PAGE_SIZE}&offset={}", ids.len()),
                )
                .await?;
            let got = page.vehicles.len();
            ids.extend(page.vehicles);
            let total = page.paging.map_or(ids.len(), |p| p.count);
            if got == 0 || ids.len() >= total {
                break;
            }
        }
        let mut vehicles = Vec::with_capacity(ids.len());
        for id in ids {
            if !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(CloudError::Transient(
                    "Smartcar listed a vehicle id that is not a plain id".to_owned(),
                ));
            }
            let attributes: Attributes = self.get_json(access, &format!("/vehicles/{id}")).await?;
            #[derive(Deserialize)]
            struct Vin {
                vin: String,
            }
            let vin = match self
                .get_json::<Vin>(access, &format!("/vehicles/{id}/vin"))
                .await
            {
                Ok(vin) => Some(vin.vin),
                // No read_vin grant or a car that does not tell.
                Err(CloudError::Unsupported) => None,
                Err(other) => return Err(other),
            };
            vehicles.push(DiscoveredVehicle {
                id: attributes.id,
                make: attributes.make,
                model: attributes.model,
                year: attributes.year,
                vin,
            });
        }
        Ok(vehicles)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;
    use uuid::Uuid;
    use voltplan_core::SystemClock;

    use super::*;
    use crate::cloud::{CloudVehicleRef, CommandReceipt};
    use crate::link::{LinkedTokens, PushedState, TokenVault};
    use crate::smartcar::{SmartcarConfig, SmartcarMode};

    struct NoVault;

    #[async_trait]
    impl TokenVault for NoVault {
        async fn tokens_for(&self, _: &CloudVehicleRef) -> Result<LinkedTokens, CloudError> {
            Err(CloudError::UnknownVehicle)
        }
        async fn replace_tokens(&self, _: Uuid, _: i64, _: &TokenSet) -> Result<bool, CloudError> {
            Ok(false)
        }
        async fn mark_revoked(&self, _: Uuid, _: &str) -> Result<(), CloudError> {
            Ok(())
        }
        async fn receipt(
            &self,
            _: &CloudVehicleRef,
            _: &str,
        ) -> Result<Option<CommandReceipt>, CloudError> {
            Ok(None)
        }
        async fn record_receipt(
            &self,
            _: &CloudVehicleRef,
            _: &CommandReceipt,
        ) -> Result<(), CloudError> {
            Ok(())
        }
        async fn pushed_state(
            &self,
            _: &CloudVehicleRef,
        ) -> Result<Option<PushedState>, CloudError> {
            Ok(None)
        }
    }

    #[test]
    fn authorize_url_carries_the_documented_parameters() {
        let mut config = SmartcarConfig::new(
            "client-1",
            Secret::new("s"),
            Secret::new("amt"),
            "https://voltplan.example/connect/smartcar/callback",
        );
        config.mode = SmartcarMode::Simulated;
        config.country = Some("DE".to_owned());
        let cloud = SmartcarCloud::new(config, Arc::new(NoVault), Arc::new(SystemClock)).unwrap();
        let url = cloud.authorize_url("st&ate", Some("challenge"), Some("TESLA"));
        let parsed = url::Url::parse(&url).unwrap();
        assert_eq!(parsed.host_str(), Some("connect.smartcar.com"));
        assert_eq!(parsed.path(), "/oauth/authorize");
        let query: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["client_id"], "client-1");
        assert_eq!(
            query["redirect_uri"],
            "https://voltplan.example/connect/smartcar/callback"
        );
        assert_eq!(query["scope"], SCOPES);
        assert_eq!(query["state"], "st&ate");
        assert_eq!(query["approval_prompt"], "auto");
        assert_eq!(query["mode"], "simulated");
        assert_eq!(query["make"], "TESLA");
        assert_eq!(query["flags"], "country:DE");
        assert!(!query.contains_key("code_challenge"));
    }
}
