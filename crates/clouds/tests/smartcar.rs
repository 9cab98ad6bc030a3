//! The Smartcar client against the fake Smartcar (crates/test-support), over real HTTP, with an
//! in-memory `TokenVault` and a manual clock kept in step with the fake's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Duration as TimeDelta;
use uuid::Uuid;
use voltplan_clouds::smartcar::{
    BudgetConfig, CallBudget, WebhookEventKind, merge, parse_event, verify_signature,
};
use voltplan_clouds::{
    CloudCommand, CloudError, CloudVehicleRef, CommandReceipt, LinkedTokens, PushedState, Secret,
    SmartcarCloud, SmartcarConfig, SmartcarMode, TokenSet, TokenVault, VehicleCloud,
};
use voltplan_core::{Clock, ManualClock};
use voltplan_test_support::fake_smartcar::{FakeAction, FakeSmartcar, FakeVehicle};

// ------------------------------------------------------------------ in-memory vault

#[derive(Debug, Clone)]
struct Account {
    tokens: TokenSet,
    version: i64,
    revoked: Option<String>,
}

#[derive(Debug, Clone)]
struct Link {
    account_id: Uuid,
    cloud_vehicle_id: String,
    make: Option<String>,
}

#[derive(Debug, Default)]
struct VaultState {
    accounts: HashMap<Uuid, Account>,
    links: HashMap<Uuid, Link>,
    receipts: HashMap<(Uuid, String), CommandReceipt>,
    pushed: HashMap<Uuid, PushedState>,
    replaced: usize,
    /// Plays another process that refreshes first: the next replace stores these and loses.
    rival_tokens: Option<TokenSet>,
}

#[derive(Debug, Default)]
struct MemoryVault(Mutex<VaultState>);

impl MemoryVault {
    fn state(&self) -> std::sync::MutexGuard<'_, VaultState> {
        self.0.lock().unwrap()
    }

    fn link(&self, vehicle: &CloudVehicleRef, account_id: Uuid, smartcar_id: &str, make: &str) {
        self.state().links.insert(
            vehicle.vehicle_id,
            Link {
                account_id,
                cloud_vehicle_id: smartcar_id.to_owned(),
                make: Some(make.to_owned()),
            },
        );
    }

    fn account(&self, account_id: Uuid) -> Account {
        self.state().accounts[&account_id].clone()
    }
}

#[async_trait]
impl TokenVault for MemoryVault {
    async fn tokens_for(&self, vehicle: &CloudVehicleRef) -> Result<LinkedTokens, CloudError> {
        let state = self.state();
        let link = state
            .links
            .get(&vehicle.vehicle_id)
            .ok_or(CloudError::UnknownVehicle)?;
        let account = &state.accounts[&link.account_id];
        if let Some(reason) = &account.revoked {
            return Err(CloudError::AuthorizationRevoked {
                reason: reason.clone(),
            });
        }
        Ok(LinkedTokens {
            account_id: link.account_id,
            tokens: account.tokens.clone(),
            version: account.version,
            cloud_vehicle_id: link.cloud_vehicle_id.clone(),
            make: link.make.clone(),
        })
    }

    async fn replace_tokens(
        &self,
        account_id: Uuid,
        version: i64,
        tokens: &TokenSet,
    ) -> Result<bool, CloudError> {
        let mut state = self.state();
        if let Some(rival) = state.rival_tokens.take() {
            let account = state.accounts.get_mut(&account_id).unwrap();
            account.tokens = rival;
            account.version += 1;
        }
        let account = state.accounts.get_mut(&account_id).unwrap();
        if account.version != version {
            return Ok(false);
        }
        account.tokens = tokens.clone();
        account.version += 1;
        state.replaced += 1;
        Ok(true)
    }

    async fn mark_revoked(&self, account_id: Uuid, reason: &str) -> Result<(), CloudError> {
        self.state().accounts.get_mut(&account_id).unwrap().revoked = Some(reason.to_owned());
        Ok(())
    }

    async fn receipt(
        &self,
        vehicle: &CloudVehicleRef,
        idempotency_key: &str,
    ) -> Result<Option<CommandReceipt>, CloudError> {
        Ok(self
            .state()
            .receipts
            .get(&(vehicle.vehicle_id, idempotency_key.to_owned()))
            .cloned())
    }

    async fn record_receipt(
        &self,
        vehicle: &CloudVehicleRef,
        receipt: &CommandReceipt,
    ) -> Result<(), CloudError> {
        self.state()
            .receipts
            .entry((vehicle.vehicle_id, receipt.idempotency_key.clone()))
            .or_insert_with(|| receipt.clone());
        Ok(())
    }

    async fn pushed_state(
        &self,
        vehicle: &CloudVehicleRef,
    ) -> Result<Option<PushedState>, CloudError> {
        Ok(self.state().pushed.get(&vehicle.vehicle_id).cloned())
    }
}

// ------------------------------------------------------------------ rig

const EMAIL: &str = "driver@example.com";
const PASSWORD: &str = "hunter2";

struct Rig {
    fake: FakeSmartcar,
    clock: Arc<ManualClock>,
    vault: Arc<MemoryVault>,
    cloud: SmartcarCloud,
}

struct LinkedCar {
    vehicle: CloudVehicleRef,
    smartcar_id: String,
    account_id: Uuid,
}

impl Rig {
    async fn new() -> Rig {
        Self::with_budgets(BudgetConfig {
            // Generous, so only the budget tests meet it.
            default: CallBudget::per_hour(1000),
            by_make: vec![("KIA".to_owned(), CallBudget::per_day(2))],
        })
        .await
    }

    async fn with_budgets(budgets: BudgetConfig) -> Rig {
        let fake = FakeSmartcar::start().await.unwrap();
        let clock = Arc::new(ManualClock::new(fake.now()));
        let vault = Arc::new(MemoryVault::default());
        let fake_config = fake.config().clone();
        let mut config = SmartcarConfig::new(
            fake_config.client_id.clone(),
            Secret::new(fake_config.client_secret.clone()),
            Secret::new(fake_config.management_token.clone()),
            fake_config.redirect_uris[0].clone(),
        );
        config.connect_base = fake.connect_base();
        config.auth_base = fake.auth_base();
        config.api_base = fake.api_base();
        config.mode = SmartcarMode::Test;
        config.country = Some("DE".to_owned());
        config.budgets = budgets;
        config.request_timeout = Duration::from_secs(10);
        let cloud = SmartcarCloud::new(config, vault.clone(), clock.clone()).unwrap();
        fake.add_account(EMAIL, PASSWORD).unwrap();
        Rig {
            fake,
            clock,
            vault,
            cloud,
        }
    }

    /// Both clocks move together.
    fn advance(&self, by: TimeDelta) {
        self.fake.advance(by);
        self.clock.advance(by);
    }

    /// Connect as the driver would: the login page, the redirect with a code, the exchange.
    async fn connect(&self) -> TokenSet {
        let state = format!("state-{}", Uuid::new_v4());
        let url = self.cloud.authorize_url(&state, None, None);
        let location = self.fake.log_in(&url, EMAIL, PASSWORD, true).await.unwrap();
        let query: HashMap<String, String> = url::Url::parse(&location)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        assert_eq!(query["state"], state);
        self.cloud
            .exchange_code(&query["code"], None)
            .await
            .unwrap()
    }

    /// A car in the fake, connected and linked in the vault.
    async fn linked_car(&self, car: FakeVehicle) -> LinkedCar {
        let make = car.make.clone();
        let smartcar_id = self.fake.add_vehicle(EMAIL, car).unwrap();
        let tokens = self.connect().await;
        let account_id = Uuid::new_v4();
        self.vault.state().accounts.insert(
            account_id,
            Account {
                tokens,
                version: 1,
                revoked: None,
            },
        );
        let vehicle = CloudVehicleRef::new(Uuid::new_v4());
        self.vault.link(&vehicle, account_id, &smartcar_id, &make);
        LinkedCar {
            vehicle,
            smartcar_id,
            account_id,
        }
    }
}

fn tesla() -> FakeVehicle {
    FakeVehicle::new("TESLA", "Model 3", 2022, "5YJ3E1EA7NF000001")
}

// ------------------------------------------------------------------ Connect

#[tokio::test]
async fn connect_exchanges_a_code_once_and_discovers_the_accounts_cars() {
    let rig = Rig::new().await;
    let first = rig.fake.add_vehicle(EMAIL, tesla()).unwrap();
    let second = rig
        .fake
        .add_vehicle(
            EMAIL,
            FakeVehicle::new("KIA", "EV6", 2023, "KNDC4DLC0P5000002"),
        )
        .unwrap();

    let tokens = rig.connect().await;
    assert_eq!(
        tokens.access_expires_at,
        rig.clock.now() + TimeDelta::hours(2)
    );
    assert_eq!(
        tokens.refresh_expires_at,
        Some(rig.clock.now() + TimeDelta::days(60))
    );

    let cars = rig
        .cloud
        .discover_vehicles(&tokens.access_token)
        .await
        .unwrap();
    let ids: Vec<&str> = cars.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, [first.as_str(), second.as_str()]);
    assert_eq!(cars[1].make, "KIA");
    assert_eq!(cars[1].model, "EV6");
    assert_eq!(cars[1].year, 2023);
    assert_eq!(cars[1].vin.as_deref(), Some("KNDC4DLC0P5000002"));
    assert!(
        !rig.cloud
            .user_id(&tokens.access_token)
            .await
            .unwrap()
            .is_empty()
    );

    // A code is single-use: replaying the redirect fails like an expired grant.
    let url = rig.cloud.authorize_url("s", None, None);
    let location = rig.fake.log_in(&url, EMAIL, PASSWORD, true).await.unwrap();
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    rig.cloud.exchange_code(&code, None).await.unwrap();
    assert!(matches!(
        rig.cloud.exchange_code(&code, None).await,
        Err(CloudError::AuthorizationRevoked { .. })
    ));

    // "Deny" comes back as access_denied with the state.
    let location = rig
        .fake
        .log_in(
            &rig.cloud.authorize_url("st-9", None, None),
            EMAIL,
            PASSWORD,
            false,
        )
        .await
        .unwrap();
    let query: HashMap<String, String> = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(query["error"], "access_denied");
    assert_eq!(query["state"], "st-9");
    assert!(!query.contains_key("code"));
}

// ------------------------------------------------------------------ reading

#[tokio::test]
async fn read_state_is_one_batch_with_fractions_as_percent() {
    let rig = Rig::new().await;
    let car = rig
        .linked_car(FakeVehicle {
            level_percent: 42.0,
            plugged_in: true,
            charge_limit: 0.9,
            capacity_kwh: 75.0,
            ..tesla()
        })
        .await;

    let reading = rig.cloud.read_state(&car.vehicle).await.unwrap();
    assert_eq!(reading.battery_level_percent, 42.0);
    assert!(reading.is_plugged_in);
    assert!(!reading.is_charging);
    assert_eq!(reading.charge_limit_percent, Some(90));
    assert_eq!(reading.battery_capacity_kwh, Some(75.0));
    assert_eq!(reading.range_km, Some(168.0));
    assert_eq!(reading.latitude, Some(48.2082));
    assert_eq!(reading.reported_at, rig.clock.now());
    assert_eq!(rig.fake.api_calls(&car.smartcar_id), 1);
}

#[tokio::test]
async fn a_part_the_car_cannot_answer_only_leaves_its_field_empty() {
    let rig = Rig::new().await;
    let car = rig
        .linked_car(FakeVehicle {
            has_location: false,
            has_charge_limit: false,
            ..tesla()
        })
        .await;
    let reading = rig.cloud.read_state(&car.vehicle).await.unwrap();
    assert_eq!(reading.battery_level_percent, 50.0);
    assert_eq!(reading.latitude, None);
    assert_eq!(reading.longitude, None);
    assert_eq!(reading.charge_limit_percent, None);
}

#[tokio::test]
async fn the_car_is_addressed_by_its_smartcar_id_not_the_partners_external_id() {
    let rig = Rig::new().await;
    let car = rig.linked_car(tesla()).await;
    let with_partner_id = CloudVehicleRef {
        external_id: Some("partner-device-17".to_owned()),
        ..car.vehicle.clone()
    };
    rig.cloud.read_state(&with_partner_id).await.unwrap();
    assert_eq!(rig.fake.api_calls(&car.smartcar_id), 1);
}

// ------------------------------------------------------------------ tokens

#[tokio::test]
async fn tokens_are_refreshed_shortly_before_expiry_and_persisted() {
    let rig = Rig::new().await;
    let car = rig.linked_car(tesla()).await;
    let before = rig.vault.account(car.account_id);
    let token_requests = rig.fake.token_requests();

    // 1 h 56 min in: 4 minutes left, under the 5-minute margin.
    rig.advance(TimeDelta::minutes(116));
    rig.cloud.read_state(&car.vehicle).await.unwrap();

    let after = rig.vault.account(car.account_id);
    assert_eq!(rig.fake.token_requests(), token_requests + 1);
    assert_eq!(after.version, before.version + 1);
    assert_ne!(after.tokens.access_token, before.tokens.access_token);
    // Rotated: the new refresh token is stored with the new access token.
    assert_ne!(after.tokens.refresh_token, before.tokens.refresh_token);
    assert_eq!(
        after.tokens.access_expires_at,
        rig.clock.now() + TimeDelta::hours(2)
    );
    // One call reached the car: the refresh happened before it, not after a 401.
    assert_eq!(rig.fake.api_calls(&car.smartcar_id), 1);

    // Well past the first access token's life, the stored pair keeps working.
    rig.advance(TimeDelta::minutes(100));
    rig.cloud.read_state(&car.vehicle).await.unwrap();
    assert_eq!(rig.fake.token_requests(), token_requests + 1);
}

#[tokio::test]
async fn a_401_refreshes_once_and_retries_once() {
    let rig = Rig::new().await;
    let car = rig.linked_car(tesla()).await;
    let token_requests = rig.fake.token_requests();

    rig.fake.expire_access_tokens(EMAIL).unwrap();
    let reading = rig.cloud.read_state(&car.vehicle).await.unwrap();
    assert_eq!(reading.battery_level_percent, 50.0);
    assert_eq!(rig.fake.token_requests(), token_requests + 1);
    // The rejected call and its retry.
    assert_eq!(rig.fake.api_calls(&car.smartcar_id), 2);
    assert_eq!(rig.vault.account(car.account_id).version, 2);
}

#[tokio::test]
async fn a_refresh_lost_to_another_process_uses_the_winners_tokens() {
    let rig = Rig::new().await;
    let car = rig.linked_car(tesla()).await;
    // Another process's fresh pair (a second grant for the same account).
    let rival = rig.connect().await;
    rig.vault.state().rival_tokens = Some(rival.clone());

    rig.advance(TimeDelta::minutes(116));
    rig.cloud.read_state(&car.vehicle).await.unwrap();

    let stored = rig.vault.account(car.account_id);
    assert_eq!(stored.tokens, rival);
    assert_eq!(rig.vault.state().replaced, 0);
    assert_eq!(rig.fake.api_calls(&car.smartcar_id), 1);
}

#[tokio::test]
async fn a_revoked_grant_marks_the_account_revoked() {
    let rig = Rig::new().await;
    let car = rig.linked_car(tesla()).await;

    rig.fake.revoke_account(EMAIL).unwrap();
    let error = rig.cloud.read_state(&car.vehicle).await.unwrap_err();
    assert!(
        matches!(&error, CloudError::AuthorizationRevoked { reason } if reason.contains("invalid_grant")),
        "{error:?}"
    );
    assert!(rig.vault.account(car.account_id).revoked.is_some());
    // No token in what is shown to people.
    let tokens = rig.vault.account(car.account_id).tokens;
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(tokens.access_token.expose()));
    assert!(!shown.contains(tokens.refresh_token.expose()));

    // From now on the vault answers for the account, without Smartcar.
    let calls = rig.fake.api_calls(&car.smartcar_id);
    assert!(matches!(
        rig.cloud.start_charging(&car.vehicle, "k-1").await,
        Err(CloudError::AuthorizationRevoked { .. })
    ));
    assert_eq!(rig.fake.api_calls(&car.smartcar_id), calls);
}

// ------------------------------------------------------------------ limits

#[tokio::test]
async fn smartcars_vehicle_throttle_becomes_rate_limited_with_its_retry_after() {
    let rig = Rig::new().await;
    let car = rig.linked_car(tesla()).await;
    rig.fake
        .throttle_vehicle(&car.smartcar_id, TimeDelta::seconds(90))
        .unwrap();
    assert_eq!(
        rig.cloud.read_state(&car.vehicle).await,
        Err(CloudError::RateLimited {
            retry_after: Duration::from_secs(90)
        })
    );
    rig.advance(TimeDelta::seconds(90));
    rig.cloud.read_state(&car.vehicle).await.unwrap();
}

#[tokio::test]
async fn a_call_over_the_makes_budget_is_refused_without_reaching_smartcar() {
    let rig = Rig::new().await;
    // KIA: 2 calls a day in this rig.
    let car = rig
        .linked_car(FakeVehicle::new("KIA", "EV6", 2023, "KNDC4DLC0P5000002"))
        .await;
    rig.cloud.read_state(&car.vehicle).await.unwrap();
    rig.cloud.read_state(&car.vehicle).await.unwrap();
    let refused = rig.cloud.read_state(&car.vehicle).await;
    assert_eq!(
        refused,
        Err(CloudError::RateLimited {
            retry_after: Duration::from_secs(12 * 3600)
        })
    );
    assert_eq!(rig.fake.api_calls(&car.smartcar_id), 2);

    // Half a day later one call is back.
    rig.advance(TimeDelta::hours(12));
    rig.cloud.read_state(&car.vehicle).await.unwrap();
    assert_eq!(rig.fake.api_calls(&car.smartcar_id), 3);
}

// ------------------------------------------------------------------ commands

#[tokio::test]
async fn a_repeated_key_returns_the_first_receipt_without_a_second_call() {
    let rig = Rig::new().await;
    let car = rig
        .linked_car(FakeVehicle {
            plugged_in: true,
            ..tesla()
        })
        .await;

    let first = rig
        .cloud
        .start_charging(&car.vehicle, "plan-1/start")
        .await
        .unwrap();
    assert_eq!(first.command, CloudCommand::StartCharging);
    assert_eq!(first.accepted_at, rig.clock.now());
    assert!(
        first
            .expected_effective_at
            .is_some_and(|t| t > first.accepted_at)
    );
    let calls = rig.fake.api_calls(&car.smartcar_id);

    // The same key, even naming another command: the first receipt, nothing sent.
    let again = rig
        .cloud
        .stop_charging(&car.vehicle, "plan-1/start")
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(rig.fake.api_calls(&car.smartcar_id), calls);
    assert_eq!(rig.fake.commands(&car.smartcar_id).len(), 1);
    assert!(rig.fake.vehicle(&car.smartcar_id).unwrap().charging);

    // Charging raises the level with the fake's clock: 11 kW for 1 h on 60 kWh ≈ +18.3 %.
    rig.advance(TimeDelta::hours(1));
    let reading = rig.cloud.read_state(&car.vehicle).await.unwrap();
    assert!(reading.is_charging);
    assert!(
        (reading.battery_level_percent - 68.3).abs() < 0.05,
        "{reading:?}"
    );

    let stop = rig
        .cloud
        .stop_charging(&car.vehicle, "plan-1/stop")
        .await
        .unwrap();
    assert_ne!(stop.command_id, first.command_id);
    let actions: Vec<FakeAction> = rig
        .fake
        .commands(&car.smartcar_id)
        .into_iter()
        .map(|c| c.action)
        .collect();
    assert_eq!(
        actions,
        [FakeAction::StartCharging, FakeAction::StopCharging]
    );
}

#[tokio::test]
async fn a_refused_command_consumes_no_key() {
    let rig = Rig::new().await;
    let car = rig.linked_car(tesla()).await; // unplugged

    let refused = rig.cloud.start_charging(&car.vehicle, "k-7").await;
    assert!(
        matches!(&refused, Err(CloudError::Transient(m)) if m.contains("CHARGING_PLUG_NOT_CONNECTED")),
        "{refused:?}"
    );
    assert!(rig.vault.state().receipts.is_empty());

    rig.fake
        .update_vehicle(&car.smartcar_id, |car| car.plugged_in = true)
        .unwrap();
    rig.cloud.start_charging(&car.vehicle, "k-7").await.unwrap();
    assert_eq!(rig.fake.commands(&car.smartcar_id).len(), 1);

    // Starting a car that already charges is what was asked for: accepted, nothing new sent.
    let already = rig.cloud.start_charging(&car.vehicle, "k-8").await.unwrap();
    assert_eq!(already.command, CloudCommand::StartCharging);
    assert_eq!(rig.fake.commands(&car.smartcar_id).len(), 1);
}

#[tokio::test]
async fn charge_limits_are_sent_as_fractions_within_smartcars_range() {
    let rig = Rig::new().await;
    let car = rig.linked_car(tesla()).await;

    rig.cloud
        .set_charge_limit(&car.vehicle, 85, "lim-1")
        .await
        .unwrap();
    assert_eq!(
        rig.fake.vehicle(&car.smartcar_id).unwrap().charge_limit,
        0.85
    );
    assert_eq!(
        rig.fake.commands(&car.smartcar_id)[0].action,
        FakeAction::SetChargeLimit(0.85)
    );

    let calls = rig.fake.api_calls(&car.smartcar_id);
    assert_eq!(
        rig.cloud.set_charge_limit(&car.vehicle, 40, "lim-2").await,
        Err(CloudError::Unsupported)
    );
    assert_eq!(rig.fake.api_calls(&car.smartcar_id), calls);
}

#[tokio::test]
async fn an_unlinked_vehicle_is_unknown() {
    let rig = Rig::new().await;
    assert_eq!(
        rig.cloud
            .read_state(&CloudVehicleRef::new(Uuid::new_v4()))
            .await,
        Err(CloudError::UnknownVehicle)
    );
}

// ------------------------------------------------------------------ webhooks

#[tokio::test]
async fn a_fresh_pushed_state_is_read_without_any_call() {
    let rig = Rig::new().await;
    let car = rig
        .linked_car(FakeVehicle {
            level_percent: 64.0,
            plugged_in: true,
            charging: true,
            ..tesla()
        })
        .await;

    // What the webhook endpoint does: verify, parse, merge, store.
    let body = rig
        .fake
        .vehicle_state_event(&car.smartcar_id)
        .unwrap()
        .to_string();
    let amt = Secret::new(rig.fake.config().management_token.clone());
    assert!(verify_signature(
        &amt,
        body.as_bytes(),
        &rig.fake.sign(body.as_bytes())
    ));
    let event = parse_event(body.as_bytes()).unwrap();
    let WebhookEventKind::VehicleState {
        vehicle_id, state, ..
    } = event.kind
    else {
        panic!("not a vehicle state: {event:?}");
    };
    assert_eq!(vehicle_id, car.smartcar_id);
    rig.vault.state().pushed.insert(
        car.vehicle.vehicle_id,
        PushedState {
            state: merge(None, &state),
            received_at: rig.clock.now(),
        },
    );

    rig.advance(TimeDelta::minutes(29));
    let reading = rig.cloud.read_state(&car.vehicle).await.unwrap();
    assert_eq!(rig.fake.api_calls(&car.smartcar_id), 0);
    assert_eq!(reading.battery_level_percent, 64.0);
    assert!(reading.is_plugged_in && reading.is_charging);
    assert!((reading.charge_rate_w - 11_000.0).abs() < 1e-6);
    assert_eq!(reading.charge_limit_percent, Some(80));

    // Stale after 30 minutes: the car is asked again.
    rig.advance(TimeDelta::minutes(2));
    rig.cloud.read_state(&car.vehicle).await.unwrap();
    assert_eq!(rig.fake.api_calls(&car.smartcar_id), 1);
}
