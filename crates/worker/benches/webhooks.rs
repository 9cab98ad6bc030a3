//! Webhook delivery end to end: events written to the outbox at a steady rate, one deliverer
//! (the worker's, as configured by default) sending them to a receiver on loopback. Reports the
//! delivered rate and the delay from the event's timestamp to its arrival (p50, p99, max), on
//! SQLite (a temp file) and on PostgreSQL when `VOLTPLAN_TEST_POSTGRES_URL` is set.
//!
//! `cargo bench -p voltplan-worker --bench webhooks`
//! Optional: `VOLTPLAN_BENCH_EVENTS_PER_SEC` (1000), `VOLTPLAN_BENCH_SECONDS` (20),
//! `VOLTPLAN_BENCH_DEVICES` (500: ordering keys, each device's events are delivered in order).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;
use voltplan_core::events::Event;
use voltplan_core::{Clock, SystemClock};
use voltplan_store::sealed::KeyRing;
use voltplan_store::webhooks::{NewWebhookEndpoint, SealedSecret, secret_context};
use voltplan_store::{OrgScope, Store};
use voltplan_webhooks::sign::SigningSecret;
use voltplan_worker::webhooks::{Deliverer, DeliveryConfig};

#[path = "../tests/common/mod.rs"]
mod common;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn bench(name: &str, store: Arc<dyn Store>) {
    let rate = env_or("VOLTPLAN_BENCH_EVENTS_PER_SEC", 1000);
    let seconds = env_or("VOLTPLAN_BENCH_SECONDS", 20);
    let devices = env_or("VOLTPLAN_BENCH_DEVICES", 500);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let keys = Arc::new(KeyRing::ephemeral());

    // The receiver: records each delivery's delay (arrival − the event's timestamp), in ms.
    let delays: Arc<Mutex<Vec<f64>>> = Arc::default();
    let log = delays.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: Bytes| {
            let log = log.clone();
            async move {
                let arrived = Utc::now();
                if let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body)
                    && let Some(at) = event["timestamp"].as_str()
                    && let Ok(at) = chrono::DateTime::parse_from_rfc3339(at)
                {
                    let delay = arrived - at.with_timezone(&Utc);
                    log.lock()
                        .unwrap()
                        .push(delay.num_microseconds().unwrap_or(0) as f64 / 1e3);
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let org = store
        .create_organisation("Bench", Utc::now())
        .await
        .unwrap();
    let id = Uuid::now_v7();
    let secret = SigningSecret::generate();
    store
        .create_webhook_endpoint(
            OrgScope::new(org.id),
            &NewWebhookEndpoint {
                id,
                url,
                description: String::new(),
                event_types: vec!["*".to_owned()],
                enabled: true,
                secret: SealedSecret {
                    key_id: keys.current_id().to_owned(),
                    sealed: keys.seal(secret.expose().as_bytes(), &secret_context(id)),
                },
                now: Utc::now(),
            },
        )
        .await
        .unwrap();

    let mut config = DeliveryConfig::new(format!("bench-{name}"));
    config.allow_http_loopback = true;
    let deliverer = Arc::new(Deliverer::new(store.clone(), clock, keys, config).unwrap());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let delivering = {
        let deliverer = deliverer.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            deliverer
                .run(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        })
    };

    // The producer: `rate` events a second in batches every 10 ms, as worker batches write them.
    let device_ids: Vec<Uuid> = (0..devices).map(|_| Uuid::now_v7()).collect();
    let total = rate * seconds;
    let per_tick = (rate / 100).max(1);
    let started = Instant::now();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
    let mut written = 0;
    // Each tick's batch is written by a task of its own, as concurrent worker batches write
    // theirs: one writer waiting for its commit would cap the rate at its round trips.
    let mut writers = Vec::new();
    while written < total {
        tick.tick().await;
        let events: Vec<Event> = (0..per_tick)
            .map(|k| {
                let device = device_ids[(written + k) % devices];
                Event::about_device(
                    "device.plugged_in",
                    org.id,
                    device,
                    Utc::now(),
                    json!({"device_type": "electric_vehicle", "device_id": device}),
                )
            })
            .collect();
        written += events.len();
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            store.append_events(&events).await.unwrap();
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let produced_in = started.elapsed().as_secs_f64();
    // Drain: wait (bounded) for the last deliveries.
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    while delays.lock().unwrap().len() < total && Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    let _ = delivering.await;
    server.abort();

    let mut delays = delays.lock().unwrap().clone();
    delays.sort_by(f64::total_cmp);
    println!(
        "{name:<10} events {total:>6} written in {produced_in:>5.1} s ({:>6.0}/s)  delivered {:>6} \
         ({:>6.0}/s)  delay ms p50 {:>6.1}  p99 {:>7.1}  max {:>7.1}",
        total as f64 / produced_in,
        delays.len(),
        delays.len() as f64 / elapsed,
        percentile(&delays, 50.0),
        percentile(&delays, 99.0),
        delays.last().copied().unwrap_or(f64::NAN),
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for (name, db) in common::Db::all().await {
            bench(name, db.store.clone()).await;
            db.drop_database().await;
        }
    });
}
