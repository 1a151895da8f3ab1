//! `facio migrate`: applies the store's pending migrations (SQLite or PostgreSQL, as
//! `storage.url` says) and prints one line saying what it applied. `facio serve` and
//! every command that opens the store migrate too; this is for doing it ahead of a
//! rollout, or checking where a database stands.

use std::process::ExitCode;

use facio_services::config::Config;
use facio_services::store::{migrate_store, redact_url};

use super::Globals;

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {}

pub async fn run(globals: &Globals, _args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(globals.config.as_deref())?;
    let url = config.storage_url();
    let report = migrate_store(&url, config.storage.max_connections())
        .await
        .map_err(|e| anyhow::anyhow!("cannot migrate the store at {}: {e}", redact_url(&url)))?;
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}
