//! `facio audit verify`: recompute every tenant's hash chain.

use std::process::ExitCode;

use facio_services::config::Config;
use facio_services::domain::TenantId;
use facio_services::store::{AuditRepository, SqliteStore, TenantRepository};

use super::Globals;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check that no audit event was altered, removed or reordered. Exits 1 if any was.
    Verify {
        /// Only this tenant (default: every tenant with events).
        #[arg(long)]
        tenant: Option<String>,
    },
}

pub async fn run(globals: &Globals, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let AuditCommand::Verify { tenant } = command;
    let config = Config::load(globals.config.as_deref())?;
    let store = SqliteStore::connect(&config.storage_url()).await?;
    let tenants = match tenant {
        Some(name) => {
            // A typo must not verify: an unknown tenant is an error, not "0 events".
            let tenant = TenantId::new(name.clone())?;
            if !store.tenant_exists(&tenant).await? {
                eprintln!("error: no such tenant {name}");
                return Ok(ExitCode::from(2));
            }
            vec![tenant]
        }
        None => store.audit_tenants().await?,
    };
    if tenants.is_empty() {
        println!("no events to verify");
        return Ok(ExitCode::SUCCESS);
    }
    let mut intact = true;
    for tenant in tenants {
        let report = store.verify_audit(&tenant).await?;
        match report.first_broken {
            None if report.events_checked == 0 => {
                println!("tenant {tenant}: no events to verify");
            }
            None => println!(
                "tenant {tenant}: {} events checked in 1 chain, intact",
                report.events_checked
            ),
            Some((seq, reason)) => {
                intact = false;
                println!("tenant {tenant}: chain broken at event {seq}: {reason}");
            }
        }
    }
    Ok(if intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
