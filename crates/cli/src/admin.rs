//! `voltplan admin …`: organisations, API clients and one-off maintenance, for operators and
//! scripts. Each command prints one JSON object on stdout.

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use uuid::Uuid;
use voltplan_core::{Clock, SystemClock};
use voltplan_store::{OrgScope, StoreError};

use crate::runtime::DatabaseArgs;
use crate::runtime::{create_client, open_store};

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create an organisation: prints {"org_id": "…"}.
    CreateOrg {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Create an API client of an organisation: prints {"client_id": "…", "client_secret": "…"}.
    CreateClient {
        #[arg(long)]
        org: Uuid,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Revoke an API client and all its tokens: prints {"client_id": "…", "revoked": true}.
    RevokeClient {
        #[arg(long)]
        client: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Give an API client a new secret and revoke its tokens: prints {"client_id", "client_secret"}.
    RotateSecret {
        #[arg(long)]
        client: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Recompute an organisation's closed charging sessions from their `/data` rows under the
    /// current session rules (docs/worker.md): for sessions written by an older version. Prints
    /// {"sessions_checked", "sessions_changed", "sessions_skipped", "outcomes", "written"}.
    RecomputeSessions {
        #[arg(long)]
        org: Uuid,
        /// Report what would change without writing it.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

pub async fn run(command: AdminCommand) -> anyhow::Result<()> {
    let output = match command {
        AdminCommand::CreateOrg { name, db } => {
            let store = open_store(&db, 2).await?;
            let org = store.create_organisation(&name, SystemClock.now()).await?;
            json!({ "org_id": org.id })
        }
        AdminCommand::CreateClient { org, name, db } => {
            let store = open_store(&db, 2).await?;
            store
                .get_organisation(org)
                .await
                .map_err(|e| not_found(e, "organisation", &org.to_string()))?;
            let (client_id, client_secret) =
                create_client(store.as_ref(), OrgScope::new(org), &name).await?;
            json!({ "client_id": client_id, "client_secret": client_secret })
        }
        AdminCommand::RevokeClient { client, db } => {
            let store = open_store(&db, 2).await?;
            store
                .revoke_api_client(&client, SystemClock.now())
                .await
                .map_err(|e| not_found(e, "active API client", &client))?;
            json!({ "client_id": client, "revoked": true })
        }
        AdminCommand::RotateSecret { client, db } => {
            let store = open_store(&db, 2).await?;
            let secret = voltplan_api::generate_client_secret();
            let hash = voltplan_api::hash_secret(&secret)?;
            store
                .rotate_api_client_secret(&client, &hash, SystemClock.now())
                .await
                .map_err(|e| not_found(e, "active API client", &client))?;
            json!({ "client_id": client, "client_secret": secret })
        }
        AdminCommand::RecomputeSessions { org, dry_run, db } => {
            let store = open_store(&db, 2).await?;
            store
                .get_organisation(org)
                .await
                .map_err(|e| not_found(e, "organisation", &org.to_string()))?;
            let report = voltplan_worker::recompute::recompute_sessions(
                store.as_ref(),
                OrgScope::new(org),
                dry_run,
            )
            .await?;
            serde_json::to_value(report).context("encoding the report")?
        }
    };
    println!(
        "{}",
        serde_json::to_string(&output).context("printing the result")?
    );
    Ok(())
}

fn not_found(err: StoreError, what: &str, id: &str) -> anyhow::Error {
    match err {
        StoreError::NotFound => anyhow::anyhow!("no {what} with id {id}"),
        other => other.into(),
    }
}
