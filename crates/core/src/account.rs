//! Organisations' end users and their buildings.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The key two e-mail addresses are compared by for uniqueness within an organisation: the
/// address lower-cased by Rust's Unicode rules. Computed here, not by the database, because
/// SQLite's `lower()` folds ASCII only while PostgreSQL's folds Unicode: `Öl@x` and `öl@x` must
/// collide on both.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Staff,
    User,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Staff => "staff",
            Role::User => "user",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "staff" => Some(Role::Staff),
            "user" => Some(Role::User),
            _ => None,
        }
    }
}

/// Everything about a user that no query filters on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UserProfile {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub street_and_number: Option<String>,
    pub street_add_info: Option<String>,
    pub zip_code: Option<String>,
    pub town: Option<String>,
    pub country: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub location_last_updated: Option<DateTime<Utc>>,
}

/// A building's descriptive fields (Podero §3.2). Its coordinates are kept as columns because the
/// worker reads them as the centre of each vehicle's geo-fence.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BuildingDetails {
    pub name: String,
    pub property_type: Option<String>,
    pub property_size_m2: Option<i64>,
    pub property_age: Option<i64>,
    pub num_occupants: Option<i64>,
    pub occupant_type: Option<String>,
    pub space_heating: Option<String>,
    pub water_heating: Option<String>,
    pub photovoltaic: Option<bool>,
    pub street_and_number: Option<String>,
    pub street_add_info: Option<String>,
    pub zip_code: Option<String>,
    pub town: Option<String>,
    pub country: Option<String>,
    /// The grid connection's limit, W (Voltplan extension): the building's vehicles are held
    /// under it by their grid group's joint plan (`crate::grid`).
    pub power_limit_w: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_keys_fold_unicode_case() {
        assert_eq!(email_key("Öl@Example.com"), email_key("öl@example.com"));
        assert_eq!(email_key("ÉMILE@x.AT"), "émile@x.at");
        assert_ne!(email_key("a@x.com"), email_key("b@x.com"));
    }
}
