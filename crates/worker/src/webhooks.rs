//! Delivering the outbox: lease due deliveries, sign and send each (Standard Webhooks), record
//! the attempt and its verdict. At least once: a deliverer that dies mid-send leaves its lease to
//! expire and another sends the delivery again with the same `webhook-id`; two never send the same
//! delivery at once (leases), and a device's events reach an endpoint in order (the store's claim).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use voltplan_core::Clock;
use voltplan_store::sealed::KeyRing;
use voltplan_store::webhooks::{
    AttemptRecord, AttemptReport, AttemptVerdict, ClaimedDelivery, KEEP_FINISHED_EVENTS,
    SealedSecret, secret_context,
};
use voltplan_store::{Store, StoreError};
use voltplan_webhooks::retry::next_attempt_at;
use voltplan_webhooks::send::{AttemptOutcome, Delivery, Sender};
use voltplan_webhooks::sign::SigningSecret;
use voltplan_webhooks::target::UrlPolicy;

/// How a deliverer works; [`DeliveryConfig::new`] is what `voltplan worker` runs with.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub worker_id: String,
    /// Deliveries leased per claim.
    pub batch: i64,
    /// Attempts in flight at once.
    pub concurrency: usize,
    /// One attempt's limit (connect, send, answer).
    pub timeout: std::time::Duration,
    /// A lease outlives the attempts of its batch.
    pub lease_for: Duration,
    /// A day of nothing but failures disables an endpoint.
    pub disable_after: Duration,
    /// How long to wait when nothing was due.
    pub idle_poll: std::time::Duration,
    /// `http` to loopback addresses allowed (tests, a receiver on the same host).
    pub allow_http_loopback: bool,
}

impl DeliveryConfig {
    pub fn new(worker_id: impl Into<String>) -> Self {
        Self {
            worker_id: worker_id.into(),
            batch: 200,
            concurrency: 64,
            timeout: std::time::Duration::from_secs(10),
            lease_for: Duration::seconds(120),
            disable_after: Duration::hours(24),
            idle_poll: std::time::Duration::from_millis(200),
            allow_http_loopback: false,
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    pub claimed: usize,
    pub delivered: usize,
    pub failed: usize,
    /// Attempts whose result could not be written: the lease was lost meanwhile.
    pub lease_lost: usize,
}

pub struct Deliverer {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// The clock of `webhook-timestamp`, which receivers compare with their own clock: the same
    /// as `clock` unless the deliverer runs on simulated time (the demo).
    wire_clock: Arc<dyn Clock>,
    keys: Arc<KeyRing>,
    sender: Sender,
    config: DeliveryConfig,
}

impl Deliverer {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        keys: Arc<KeyRing>,
        config: DeliveryConfig,
    ) -> Result<Self, voltplan_webhooks::send::SenderError> {
        let policy = UrlPolicy {
            allow_insecure_loopback: config.allow_http_loopback,
        };
        let sender = Sender::new(policy, config.timeout)?;
        Ok(Self {
            store,
            wire_clock: clock.clone(),
            clock,
            keys,
            sender,
            config,
        })
    }

    /// Signs with this clock's time (see `wire_clock`).
    pub fn with_wire_clock(mut self, wire_clock: Arc<dyn Clock>) -> Self {
        self.wire_clock = wire_clock;
        self
    }

    /// Delivers until `shutdown` resolves. A round under way then is abandoned: its leases lapse
    /// and a deliverer sends those deliveries again (at least once, same `webhook-id`).
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut last_prune: Option<DateTime<Utc>> = None;
        loop {
            let round = self.run_once();
            let stats = tokio::select! {
                stats = round => stats,
                () = &mut shutdown => return,
            };
            let now = self.clock.now();
            if last_prune.is_none_or(|at| now - at > Duration::hours(1)) {
                last_prune = Some(now);
                match self
                    .store
                    .prune_webhook_events(now - KEEP_FINISHED_EVENTS)
                    .await
                {
                    Ok(pruned) if pruned > 0 => tracing::info!(pruned, "old webhook events pruned"),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "pruning webhook events failed"),
                }
            }
            let idle = match stats {
                Ok(stats) => stats.claimed == 0,
                Err(error) => {
                    tracing::warn!(%error, "webhook delivery round failed");
                    true
                }
            };
            if idle {
                tokio::select! {
                    () = tokio::time::sleep(self.config.idle_poll) => {}
                    () = &mut shutdown => return,
                }
            }
        }
    }

    /// One round: claim a batch, attempt each (`concurrency` at once), record every attempt.
    pub async fn run_once(&self) -> Result<DeliveryStats, StoreError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_webhook_deliveries(
                &self.config.worker_id,
                now,
                self.config.lease_for,
                self.config.batch,
            )
            .await?;
        let mut stats = DeliveryStats {
            claimed: claimed.len(),
            ..DeliveryStats::default()
        };
        if claimed.is_empty() {
            return Ok(stats);
        }
        let reports: Vec<(ClaimedDelivery, AttemptReport)> = futures::stream::iter(claimed)
            .map(|delivery| async move {
                let report = self.attempt(&delivery).await;
                (delivery, report)
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        // One transaction for the round: a commit per delivery is what limited PostgreSQL.
        let written = self
            .store
            .finish_webhook_attempts(&reports, self.clock.now(), self.config.disable_after)
            .await?;
        for ((_, report), written) in reports.iter().zip(written) {
            match (written, report.verdict) {
                (false, _) => stats.lease_lost += 1,
                (true, AttemptVerdict::Delivered) => stats.delivered += 1,
                (true, _) => stats.failed += 1,
            }
        }
        Ok(stats)
    }

    fn open(&self, endpoint_id: uuid::Uuid, sealed: &SealedSecret) -> Option<SigningSecret> {
        let plain = self
            .keys
            .open(&sealed.key_id, &sealed.sealed, &secret_context(endpoint_id))
            .ok()?;
        SigningSecret::parse(std::str::from_utf8(&plain).ok()?).ok()
    }

    /// One attempt and its verdict (written by the caller with the rest of the round).
    async fn attempt(&self, claimed: &ClaimedDelivery) -> AttemptReport {
        let started_at = self.clock.now();
        let current = self.open(claimed.endpoint_id, &claimed.secret);
        let previous = claimed
            .previous_secret
            .as_ref()
            .and_then(|(sealed, _)| self.open(claimed.endpoint_id, sealed));
        let (attempt, retry_after, delivered) = match &current {
            None => {
                // Not sent unsigned: the keys that sealed the secret are gone.
                tracing::error!(
                    endpoint = %claimed.endpoint_id,
                    "a webhook signing secret does not open: was VOLTPLAN_SECRET_KEYS changed?"
                );
                let record = AttemptRecord {
                    attempt: claimed.attempts + 1,
                    started_at,
                    duration_ms: 0,
                    status_code: None,
                    error: Some(
                        "The signing secret could not be opened with the server's keys".to_owned(),
                    ),
                    response_excerpt: None,
                };
                (record, None, false)
            }
            Some(current) => {
                let mut secrets = vec![current];
                secrets.extend(previous.as_ref());
                let sent = self
                    .sender
                    .deliver(&Delivery {
                        url: &claimed.url,
                        msg_id: &claimed.event_id.to_string(),
                        timestamp: self.wire_clock.now(),
                        body: &claimed.payload,
                        secrets: &secrets,
                    })
                    .await;
                let (status_code, error, retry_after, delivered) = match sent.outcome {
                    AttemptOutcome::Delivered { status } => {
                        (Some(i32::from(status)), None, None, true)
                    }
                    AttemptOutcome::Failed {
                        status,
                        error,
                        retry_after,
                    } => (status.map(i32::from), Some(error), retry_after, false),
                };
                let record = AttemptRecord {
                    attempt: claimed.attempts + 1,
                    started_at,
                    duration_ms: i32::try_from(sent.duration_ms).unwrap_or(i32::MAX),
                    status_code,
                    error,
                    response_excerpt: sent.response_excerpt,
                };
                (record, retry_after, delivered)
            }
        };
        let now = self.clock.now();
        let verdict = if delivered {
            AttemptVerdict::Delivered
        } else {
            let attempts_made = u32::try_from(claimed.window_attempts + 1).unwrap_or(u32::MAX);
            let first = claimed.first_attempt_at.unwrap_or(started_at);
            match next_attempt_at(
                attempts_made,
                first,
                now,
                retry_after,
                rand::random::<f64>(),
            ) {
                Some(at) => AttemptVerdict::RetryAt(at),
                None => AttemptVerdict::GiveUp,
            }
        };
        if !delivered {
            // The error names the URL, whose path may be the partner's capability: it goes to
            // the delivery log the partner reads, not to the operator's logs.
            tracing::info!(
                endpoint = %claimed.endpoint_id,
                event = %claimed.event_id,
                attempt = attempt.attempt,
                status = ?attempt.status_code,
                ?verdict,
                "webhook delivery failed"
            );
        }
        AttemptReport { attempt, verdict }
    }
}
