//! `facio audit verify`: recompute every tenant's hash chain (in the store, or in an
//! export file without any store); `facio audit export`: write a chain as JSON Lines.

use std::process::ExitCode;

use facio_services::config::Config;
use facio_services::domain::TenantId;
use facio_services::store::{AuditFilter, verify_export};

use super::Globals;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check that no audit event was altered, removed or reordered. Exits 1 if any was.
    Verify {
        /// Only this tenant (default: every tenant with events).
        #[arg(long)]
        tenant: Option<String>,
        /// Check an export (`facio audit export`, `GET /api/v1/audit/export`) instead
        /// of the store: no database or config needed.
        #[arg(long, conflicts_with = "tenant")]
        file: Option<std::path::PathBuf>,
        /// A checkpoint an earlier verify printed (`seq:mac`): the log must still hold
        /// it, so a rollback of the whole log to an earlier state is found. Needs
        /// `--tenant`.
        #[arg(long, requires = "tenant")]
        anchor: Option<String>,
    },
    /// Search a tenant's audit events; prints them as JSON Lines, oldest first.
    List {
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Kinds, comma-separated (`tool_call,tool_denied`).
        #[arg(long = "type")]
        kinds: Option<String>,
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        session: Option<String>,
        #[arg(long)]
        run: Option<String>,
        /// RFC 3339 times.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        /// Text the event's data contains.
        #[arg(long)]
        text: Option<String>,
        /// Only events after this seq (the next page).
        #[arg(long)]
        after: Option<i64>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Write a tenant's audit chain as JSON Lines, every field its hashes commit to.
    Export {
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

pub async fn run(globals: &Globals, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let tenant = match command {
        AuditCommand::Verify {
            file: Some(file), ..
        } => return verify_file(&file),
        AuditCommand::Verify {
            tenant,
            file: None,
            anchor,
        } => (tenant, anchor),
        AuditCommand::Export { tenant, out } => return export(globals, &tenant, out).await,
        AuditCommand::List {
            tenant,
            kinds,
            actor,
            session,
            run,
            since,
            until,
            text,
            after,
            limit,
        } => {
            let time = |name: &str, value: Option<String>| -> anyhow::Result<_> {
                value
                    .map(|v| {
                        chrono::DateTime::parse_from_rfc3339(&v)
                            .map(|t| t.with_timezone(&chrono::Utc))
                            .map_err(|e| anyhow::anyhow!("--{name} must be an RFC 3339 time: {e}"))
                    })
                    .transpose()
            };
            let filter = AuditFilter {
                kinds: kinds
                    .iter()
                    .flat_map(|k| k.split(','))
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(|k| {
                        facio_services::store::AuditEventKind::parse(k)
                            .ok_or_else(|| anyhow::anyhow!("unknown event type {k:?}"))
                    })
                    .collect::<anyhow::Result<_>>()?,
                actor,
                session_key: session
                    .map(facio_services::domain::SessionKey::new)
                    .transpose()?,
                run_id: run.map(facio_services::domain::RunId::new).transpose()?,
                since: time("since", since)?,
                until: time("until", until)?,
                text,
                after: Some(after.unwrap_or(0)),
                limit: Some(limit.clamp(1, 5000)),
                ..AuditFilter::default()
            };
            return list(globals, &tenant, &filter).await;
        }
    };
    let (tenant, anchor) = tenant;
    let config = Config::load(globals.config.as_deref())?;
    // Opened with the key the node seals with (from the master key): the seals are
    // checked with it.
    let store = facio::open_configured_store(&config).await?;
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
        let report = store
            .verify_audit_anchored(&tenant, anchor.as_deref())
            .await?;
        match report.first_broken {
            None if report.events_checked == 0 => {
                println!("tenant {tenant}: no events to verify");
            }
            None => println!(
                "tenant {tenant}: {} events checked in {} {}, intact; {} checkpoints{}{}",
                report.events_checked,
                report.chains,
                if report.chains == 1 {
                    "chain"
                } else {
                    "chains"
                },
                report.checkpoints_checked,
                report
                    .anchor
                    .map(|a| format!(", sealed, newest checkpoint {a} (keep it for --anchor)"))
                    .unwrap_or_default(),
                match report.unsealed {
                    0 => String::new(),
                    n => format!("; the newest {n} not yet in a checkpoint"),
                }
            ),
            Some((0, reason)) => {
                intact = false;
                println!("tenant {tenant}: log broken: {reason}");
            }
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

/// `facio audit verify --file F`: the export's chains, checked without a store.
fn verify_file(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let report = verify_export(std::io::BufReader::new(file))?;
    for (tenant, count) in &report.events {
        let whole = if report.from_genesis.contains(tenant) {
            "each chain from its start"
        } else {
            "from each chain's first exported event on"
        };
        println!("tenant {tenant}: {count} events checked, {whole}");
    }
    match report.first_broken {
        None => {
            println!("{}: intact", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Some((line, seq, why)) => {
            println!(
                "{}: broken at line {line} (event {seq}): {why}",
                path.display()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `facio audit export`: every event of the tenant's chain, oldest first.
async fn export(
    globals: &Globals,
    tenant: &str,
    out: Option<std::path::PathBuf>,
) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let config = Config::load(globals.config.as_deref())?;
    let store = facio::open_configured_store(&config).await?;
    let tenant = TenantId::new(tenant)?;
    if !store.tenant_exists(&tenant).await? {
        eprintln!("error: no such tenant {tenant}");
        return Ok(ExitCode::from(2));
    }
    let events = store.list_audit(&tenant, &AuditFilter::default()).await?;
    let mut text = String::new();
    for event in &events {
        text.push_str(&serde_json::to_string(event)?);
        text.push('\n');
    }
    match out {
        Some(path) => std::fs::write(&path, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?,
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    eprintln!("exported {} events of tenant {tenant}", events.len());
    Ok(ExitCode::SUCCESS)
}

/// `facio audit list`: one event a line, oldest first; the last line's `seq` is the
/// `--after` of the next page.
async fn list(globals: &Globals, tenant: &str, filter: &AuditFilter) -> anyhow::Result<ExitCode> {
    let config = Config::load(globals.config.as_deref())?;
    let store = facio::open_configured_store(&config).await?;
    let tenant = TenantId::new(tenant)?;
    if !store.tenant_exists(&tenant).await? {
        eprintln!("error: no such tenant {tenant}");
        return Ok(ExitCode::from(2));
    }
    for event in store.list_audit(&tenant, filter).await? {
        println!("{}", serde_json::to_string(&event)?);
    }
    Ok(ExitCode::SUCCESS)
}
