//! Re-authentication sessions: a partner asks to re-link a vehicle's cloud account
//! (`POST …/auth_session`) and sends the driver's browser to a consent page that completes the
//! session once, with an outcome.
//!
//! The consent page has no bearer token: the session's random id is its secret. So the lookup by
//! id is not scoped by organisation (like an access token's hash); the record carries `org_id`,
//! and every later call is scoped by it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{OrgScope, Result, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthSessionOutcome {
    /// The driver allowed access; the link was restored.
    Success,
    /// The driver denied access.
    Cancelled,
}

impl AuthSessionOutcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthSessionOutcome::Success => "success",
            AuthSessionOutcome::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(AuthSessionOutcome::Success),
            "cancelled" => Some(AuthSessionOutcome::Cancelled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuthSessionRecord {
    /// Random (UUID v4): whoever holds it may decide for the vehicle.
    pub id: Uuid,
    pub org_id: Uuid,
    pub vehicle_id: Uuid,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub outcome: Option<AuthSessionOutcome>,
}

impl AuthSessionRecord {
    /// Not yet completed and not expired at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.completed_at.is_none() && now < self.expires_at
    }
}

#[async_trait]
pub trait AuthSessionStore: Send + Sync {
    /// Stores a new session for a live vehicle of `org` (the record's `org_id` is taken from
    /// `org`). `NotFound` when the organisation has no such live vehicle. Deletes the vehicle's
    /// sessions that expired more than [`KEEP_EXPIRED`] before this one's creation.
    async fn create_auth_session(&self, org: OrgScope, session: &AuthSessionRecord) -> Result<()>;

    /// The session with this id, open or not. Not scoped by organisation: see the module docs.
    async fn get_auth_session(&self, id: Uuid) -> Result<AuthSessionRecord>;

    /// Completes the session if it is still open at `now`. `false` when it was already completed
    /// or has expired: the caller then must not act (someone else decided first).
    async fn complete_auth_session(
        &self,
        org: OrgScope,
        id: Uuid,
        outcome: AuthSessionOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool>;
}

/// How long a vehicle's ended sessions are kept; they are deleted when it gets a new one.
pub const KEEP_EXPIRED: chrono::Duration = chrono::Duration::days(30);

#[derive(sqlx::FromRow)]
pub(crate) struct AuthSessionRow {
    id: Uuid,
    org_id: Uuid,
    vehicle_id: Uuid,
    success_url: Option<String>,
    cancel_url: Option<String>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    outcome: Option<String>,
}

impl TryFrom<AuthSessionRow> for AuthSessionRecord {
    type Error = StoreError;
    fn try_from(row: AuthSessionRow) -> Result<Self, StoreError> {
        let outcome = match row.outcome.as_deref() {
            None => None,
            Some(s) => Some(AuthSessionOutcome::parse(s).ok_or_else(|| {
                StoreError::Corrupt(format!("auth session {} has outcome {s:?}", row.id))
            })?),
        };
        Ok(AuthSessionRecord {
            id: row.id,
            org_id: row.org_id,
            vehicle_id: row.vehicle_id,
            success_url: row.success_url,
            cancel_url: row.cancel_url,
            created_at: row.created_at,
            expires_at: row.expires_at,
            completed_at: row.completed_at,
            outcome,
        })
    }
}

/// Implements [`AuthSessionStore`] for a backend with `read` and `write` pools. The SQL is the
/// same on both databases.
macro_rules! auth_session_store_impl {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::AuthSessionStore for $store {
            async fn create_auth_session(
                &self,
                org: $crate::OrgScope,
                session: &$crate::AuthSessionRecord,
            ) -> $crate::Result<()> {
                // Housekeeping: this vehicle's sessions long past their end (kept a while for
                // support questions), so the table stays bounded without a separate job.
                sqlx::query(
                    "DELETE FROM auth_sessions WHERE org_id = $1 AND vehicle_id = $2 AND expires_at < $3",
                )
                .bind(org.id())
                .bind(session.vehicle_id)
                .bind(session.created_at - $crate::auth_sessions::KEEP_EXPIRED)
                .execute(&self.write)
                .await?;
                // One statement: the vehicle check and the insert cannot be split by a delete.
                let done = sqlx::query(
                    "INSERT INTO auth_sessions \
                     (id, org_id, vehicle_id, success_url, cancel_url, created_at, expires_at) \
                     SELECT $1, $2, $3, $4, $5, $6, $7 \
                     WHERE EXISTS (SELECT 1 FROM electric_vehicles \
                                   WHERE org_id = $2 AND id = $3 AND deleted_at IS NULL)",
                )
                .bind(session.id)
                .bind(org.id())
                .bind(session.vehicle_id)
                .bind(session.success_url.as_deref())
                .bind(session.cancel_url.as_deref())
                .bind(session.created_at)
                .bind(session.expires_at)
                .execute(&self.write)
                .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound);
                }
                Ok(())
            }

            async fn get_auth_session(
                &self,
                id: uuid::Uuid,
            ) -> $crate::Result<$crate::AuthSessionRecord> {
                let row: Option<$crate::auth_sessions::AuthSessionRow> = sqlx::query_as(
                    "SELECT id, org_id, vehicle_id, success_url, cancel_url, created_at, \
                     expires_at, completed_at, outcome FROM auth_sessions WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.read)
                .await?;
                row.ok_or($crate::StoreError::NotFound)?.try_into()
            }

            async fn complete_auth_session(
                &self,
                org: $crate::OrgScope,
                id: uuid::Uuid,
                outcome: $crate::AuthSessionOutcome,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                // The WHERE makes completion happen once: of two concurrent decisions, one
                // updates the row and the other sees no row affected.
                let done = sqlx::query(
                    "UPDATE auth_sessions SET completed_at = $1, outcome = $2 \
                     WHERE org_id = $3 AND id = $4 AND completed_at IS NULL AND expires_at > $5",
                )
                .bind(now)
                .bind(outcome.as_str())
                .bind(org.id())
                .bind(id)
                .bind(now)
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

pub(crate) use auth_session_store_impl;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn outcomes_round_trip() {
        for outcome in [AuthSessionOutcome::Success, AuthSessionOutcome::Cancelled] {
            assert_eq!(AuthSessionOutcome::parse(outcome.as_str()), Some(outcome));
        }
        assert_eq!(AuthSessionOutcome::parse("fail"), None);
    }

    #[test]
    fn a_session_is_open_until_it_expires_or_completes() {
        let at = |h| Utc.with_ymd_and_hms(2026, 11, 26, h, 0, 0).unwrap();
        let mut s = AuthSessionRecord {
            id: Uuid::new_v4(),
            org_id: Uuid::now_v7(),
            vehicle_id: Uuid::now_v7(),
            success_url: None,
            cancel_url: None,
            created_at: at(10),
            expires_at: at(12),
            completed_at: None,
            outcome: None,
        };
        assert!(s.is_open(at(11)));
        assert!(!s.is_open(at(12)), "the end instant is already past");
        s.completed_at = Some(at(11));
        s.outcome = Some(AuthSessionOutcome::Success);
        assert!(!s.is_open(at(11)));
    }
}
