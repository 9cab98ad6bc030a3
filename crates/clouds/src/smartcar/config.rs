//! How a [`super::SmartcarCloud`] is set up: the application's credentials, Smartcar's hosts, the
//! Connect mode and the per-brand call budgets.

use std::time::Duration;

use crate::link::Secret;

/// Smartcar Connect's `mode`: real cars, the dashboard's Vehicle Simulator, or test accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmartcarMode {
    #[default]
    Live,
    Simulated,
    Test,
}

impl SmartcarMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SmartcarMode::Live => "live",
            SmartcarMode::Simulated => "simulated",
            SmartcarMode::Test => "test",
        }
    }
}

/// A token bucket's shape: `capacity` calls, refilled evenly over `refill_every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallBudget {
    pub capacity: u32,
    /// The time in which an empty bucket fills up again.
    pub refill_every: Duration,
}

impl CallBudget {
    pub const fn per_hour(capacity: u32) -> Self {
        CallBudget {
            capacity,
            refill_every: Duration::from_secs(3600),
        }
    }

    pub const fn per_day(capacity: u32) -> Self {
        CallBudget {
            capacity,
            refill_every: Duration::from_secs(24 * 3600),
        }
    }
}

/// Calls Voltplan allows itself per vehicle, by make. Smartcar advises fewer than 20 requests per
/// vehicle and hour ("Make requests to Smartcar"); Hyundai and Kia lock accounts out far sooner
/// (owners report about 24–48 forced refreshes a day in Europe, 30 a day on US Blue Link), so
/// their default is 24 a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetConfig {
    pub default: CallBudget,
    /// Make (compared case-insensitively with Smartcar's `make`) → budget.
    pub by_make: Vec<(String, CallBudget)>,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            default: CallBudget::per_hour(20),
            by_make: vec![
                ("HYUNDAI".to_owned(), CallBudget::per_day(24)),
                ("KIA".to_owned(), CallBudget::per_day(24)),
            ],
        }
    }
}

impl BudgetConfig {
    /// The budget for a make; the default one when the make is unknown or has none of its own.
    pub fn for_make(&self, make: Option<&str>) -> CallBudget {
        make.and_then(|make| {
            self.by_make
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(make.trim()))
                .map(|(_, budget)| *budget)
        })
        .unwrap_or(self.default)
    }
}

/// Everything a [`super::SmartcarCloud`] needs. `Debug` never prints the secrets.
#[derive(Clone)]
pub struct SmartcarConfig {
    pub client_id: String,
    pub client_secret: Secret,
    /// The Application Management Token: the key of webhook signatures and challenges.
    pub management_token: Secret,
    /// Must be registered in Smartcar's dashboard; sent with Connect and the code exchange.
    pub redirect_uri: String,
    /// Default `https://connect.smartcar.com`.
    pub connect_base: String,
    /// Default `https://auth.smartcar.com`.
    pub auth_base: String,
    /// Default `https://api.smartcar.com/v2.0`.
    pub api_base: String,
    pub mode: SmartcarMode,
    /// Sent as Connect's `flags=country:XX`; European simulated logins fail without it.
    pub country: Option<String>,
    /// A webhook-pushed state older than this (by arrival) is not used by `read_state`.
    pub webhook_fresh_for: Duration,
    /// Tokens with less than this left are refreshed before a call.
    pub refresh_margin: Duration,
    /// Per-vehicle call budgets by make.
    pub budgets: BudgetConfig,
    /// How long to hold off after a `BILLING` error (a monthly plan quota is exhausted); Smartcar
    /// does not say when the billing period ends.
    pub billing_backoff: Duration,
    /// `retry-after` assumed when a 429 carries none, and for an OEM's `UPSTREAM:RATE_LIMIT`
    /// (Smartcar advises polling at most every 30 minutes across brands).
    pub default_retry_after: Duration,
    /// When the car is expected to have acted on an accepted command (receipts'
    /// `expected_effective_at`). Smartcar reports 3–45 s on average, up to 300 s.
    pub command_effect_after: Duration,
    pub connect_timeout: Duration,
    /// Smartcar documents responses of up to 300 s when the car is slow to answer.
    pub request_timeout: Duration,
}

impl SmartcarConfig {
    /// Smartcar's production hosts, `live` mode and the documented defaults.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: Secret,
        management_token: Secret,
        redirect_uri: impl Into<String>,
    ) -> Self {
        SmartcarConfig {
            client_id: client_id.into(),
            client_secret,
            management_token,
            redirect_uri: redirect_uri.into(),
            connect_base: "https://connect.smartcar.com".to_owned(),
            auth_base: "https://auth.smartcar.com".to_owned(),
            api_base: "https://api.smartcar.com/v2.0".to_owned(),
            mode: SmartcarMode::Live,
            country: None,
            webhook_fresh_for: Duration::from_secs(30 * 60),
            refresh_margin: Duration::from_secs(5 * 60),
            budgets: BudgetConfig::default(),
            billing_backoff: Duration::from_secs(6 * 3600),
            default_retry_after: Duration::from_secs(60),
            command_effect_after: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(310),
        }
    }
}

impl std::fmt::Debug for SmartcarConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `Secret`'s own Debug already hides the value; the fields are listed so a log shows
        // which application and hosts a process talks to.
        f.debug_struct("SmartcarConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("management_token", &self.management_token)
            .field("redirect_uri", &self.redirect_uri)
            .field("connect_base", &self.connect_base)
            .field("auth_base", &self.auth_base)
            .field("api_base", &self.api_base)
            .field("mode", &self.mode)
            .field("country", &self.country)
            .field("webhook_fresh_for", &self.webhook_fresh_for)
            .field("budgets", &self.budgets)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let config = SmartcarConfig::new(
            "client-1",
            Secret::new("very-secret-client"),
            Secret::new("very-secret-amt"),
            "https://voltplan.example/connect/smartcar",
        );
        let printed = format!("{config:?}");
        assert!(printed.contains("client-1"));
        assert!(!printed.contains("very-secret"));
    }

    #[test]
    fn budgets_by_make_ignore_case() {
        let budgets = BudgetConfig::default();
        assert_eq!(budgets.for_make(Some("Kia")), CallBudget::per_day(24));
        assert_eq!(budgets.for_make(Some("TESLA")), CallBudget::per_hour(20));
        assert_eq!(budgets.for_make(None), CallBudget::per_hour(20));
    }
}
