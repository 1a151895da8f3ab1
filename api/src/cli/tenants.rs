//! `facio tenants create|list|set` and `facio tokens create|list|revoke`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use facio_services::auth::{Claims, Role, issue_hs256};
use facio_services::config::Config;
use facio_services::domain::{TenantId, TenantSettingsPatch};
use facio_services::store::{Applied, AuditEventKind, Change, NewAuditEvent, Store, TokenRecord};

use super::Globals;

#[derive(Debug, clap::Subcommand)]
pub enum TenantsCommand {
    /// Create a tenant (a team with its own sessions, reviews, policy and audit chain).
    Create { name: String },
    /// All tenants, `default` first.
    List,
    /// Change a tenant's settings; prints them afterwards. Without options, prints them.
    Set {
        name: String,
        /// Models the tenant may use, comma-separated; `*` allows every model.
        #[arg(long)]
        models: Option<String>,
        /// Tokens per UTC day (0: no budget).
        #[arg(long)]
        tokens_per_day: Option<u64>,
        /// Tokens per UTC calendar month (0: no budget).
        #[arg(long)]
        tokens_per_month: Option<u64>,
        /// Tokens one run may use (0: no cap).
        #[arg(long)]
        tokens_per_run: Option<u64>,
        /// Requests per minute for the whole tenant.
        #[arg(long)]
        requests_per_minute: Option<u32>,
        /// Requests per minute for each of the tenant's tokens.
        #[arg(long)]
        requests_per_minute_per_token: Option<u32>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum TokensCommand {
    /// Sign an HS256 token with auth.hs256Secret and print it alone on stdout.
    Create {
        #[arg(long)]
        tenant: String,
        /// admin, operator, reviewer or client (repeat for several).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Lifetime: 3600, 90s, 30m, 12h or 7d.
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// The `sub` claim (default: the tenant's name and the roles).
        #[arg(long)]
        subject: Option<String>,
    },
    /// The tenant's issued tokens that have not expired (never the tokens themselves).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a token by its jti: the gateway refuses it with 401 from then on.
    Revoke {
        jti: String,
        #[arg(long)]
        tenant: String,
    },
}

/// Who runs a local command, for the audit trail: `cli` with the OS user.
fn cli_actor() -> String {
    let user = super::os_user().unwrap_or_else(|| "unknown user".to_owned());
    format!("cli ({user})")
}

async fn open_tenant(
    globals: &Globals,
    tenant: &str,
) -> anyhow::Result<(Config, Arc<dyn Store>, TenantId)> {
    let config = Config::load(globals.config.as_deref())?;
    let tenant = TenantId::new(tenant).context("invalid tenant name")?;
    let store = facio::open_configured_store(&config).await?;
    if !store.tenant_exists(&tenant).await? {
        bail!("tenant {tenant} does not exist; create it with `facio tenants create {tenant}`");
    }
    Ok((config, store, tenant))
}

/// Makes `change` in `tenant` and records it as `kind` with `data` in the logs of
/// `logs`, in one transaction, with `cli (user)` as the actor.
async fn change(
    store: &dyn Store,
    tenant: &TenantId,
    change: Change,
    logs: &[TenantId],
    kind: AuditEventKind,
    data: serde_json::Value,
) -> anyhow::Result<Applied> {
    let mut data = data;
    data["surface"] = serde_json::json!("cli");
    data["requestId"] = serde_json::json!(format!("cli_{}", uuid::Uuid::now_v7().simple()));
    let event = NewAuditEvent {
        kind,
        session_key: None,
        run_id: None,
        actor: cli_actor(),
        data,
    };
    let events = logs
        .iter()
        .map(|log| (log.clone(), event.clone()))
        .collect();
    Ok(store.apply_change(tenant, change, events).await?)
}

pub async fn tenants(globals: &Globals, command: TenantsCommand) -> anyhow::Result<ExitCode> {
    let config = Config::load(globals.config.as_deref())?;
    let store = facio::open_configured_store(&config).await?;
    match command {
        TenantsCommand::Create { name } => {
            let tenant = TenantId::new(name).context("invalid tenant name")?;
            let logs = [TenantId::default_tenant(), tenant.clone()];
            let data = serde_json::json!({"tenant": tenant});
            let kind = AuditEventKind::TenantCreated;
            change(
                store.as_ref(),
                &tenant,
                Change::CreateTenant,
                &logs,
                kind,
                data,
            )
            .await?;
            println!("created tenant {tenant}");
        }
        TenantsCommand::List => {
            for tenant in store.list_tenants().await? {
                println!("{tenant}");
            }
        }
        TenantsCommand::Set {
            name,
            models,
            tokens_per_day,
            tokens_per_month,
            tokens_per_run,
            requests_per_minute,
            requests_per_minute_per_token,
        } => {
            let tenant = TenantId::new(name).context("invalid tenant name")?;
            if !store.tenant_exists(&tenant).await? {
                bail!(
                    "tenant {tenant} does not exist; create it with `facio tenants create {tenant}`"
                );
            }
            let mut settings = store.tenant_settings(&tenant).await?;
            let before = settings.clone();
            if let Some(models) = models {
                settings.models = (models.trim() != "*").then(|| {
                    models
                        .split(',')
                        .map(|m| m.trim().to_owned())
                        .filter(|m| !m.is_empty())
                        .collect()
                });
            }
            settings.merge(TenantSettingsPatch {
                models: None,
                tokens_per_day: tokens_per_day.map(Some),
                tokens_per_month: tokens_per_month.map(Some),
                tokens_per_run: tokens_per_run.map(Some),
                requests_per_minute: requests_per_minute.map(Some),
                requests_per_minute_per_token: requests_per_minute_per_token.map(Some),
            });
            if settings != before {
                let mut data = before.changes(&settings);
                data["tenant"] = serde_json::json!(tenant);
                let set = Change::TenantSettings(settings.clone());
                let logs = std::slice::from_ref(&tenant);
                let kind = AuditEventKind::SettingsChanged;
                change(store.as_ref(), &tenant, set, logs, kind, data).await?;
            }
            println!("{}", serde_json::to_string_pretty(&settings)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn tokens(globals: &Globals, command: TokensCommand) -> anyhow::Result<ExitCode> {
    let (tenant, roles, ttl, subject) = match command {
        TokensCommand::Create {
            tenant,
            roles,
            ttl,
            subject,
        } => (tenant, roles, ttl, subject),
        TokensCommand::List { tenant } => return list_tokens(globals, &tenant).await,
        TokensCommand::Revoke { jti, tenant } => return revoke_token(globals, &tenant, &jti).await,
    };
    let (config, store, tenant) = open_tenant(globals, &tenant).await?;
    let secret = config
        .auth
        .hs256_secret
        .clone()
        .context("auth.hs256Secret is not set; tokens cannot be signed")?;
    let roles = roles
        .iter()
        .map(|r| {
            Role::parse(r).with_context(|| {
                format!("unknown role {r:?}: use admin, operator, reviewer or client")
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let claims = Claims {
        sub: subject.unwrap_or_else(|| {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            format!("{tenant}:{}", names.join("+"))
        }),
        tenant: tenant.to_string(),
        roles,
        exp: now + parse_ttl(&ttl)?,
        nbf: None,
        iat: Some(now),
        iss: config.auth.issuer.clone(),
        aud: config.auth.audience.clone(),
        jti: Some(format!("tok_{}", uuid::Uuid::now_v7().simple())),
    };
    let token = issue_hs256(&claims, &secret)?;
    let jti = claims.jti.clone().unwrap_or_default();
    let at =
        |secs: u64| chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap_or(i64::MAX), 0);
    let issued = Change::IssueToken(TokenRecord {
        tenant: tenant.clone(),
        jti: jti.clone(),
        subject: Some(claims.sub.clone()),
        roles: claims.roles.clone(),
        issued_at: at(now),
        expires_at: at(claims.exp),
        revoked_at: None,
        revoked_by: None,
    });
    let data = serde_json::json!({"jti": jti, "tenant": tenant, "subject": claims.sub,
        "roles": claims.roles, "expiresAt": at(claims.exp)});
    let logs = std::slice::from_ref(&tenant);
    change(
        store.as_ref(),
        &tenant,
        issued,
        logs,
        AuditEventKind::TokenIssued,
        data,
    )
    .await?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

async fn list_tokens(globals: &Globals, tenant: &str) -> anyhow::Result<ExitCode> {
    let (_, store, tenant) = open_tenant(globals, tenant).await?;
    let tokens = store.list_tokens(&tenant).await?;
    if tokens.is_empty() {
        println!("no unexpired tokens for tenant {tenant}");
    }
    for token in tokens {
        let roles: Vec<&str> = token.roles.iter().map(|r| r.as_str()).collect();
        let state = match token.revoked_at {
            Some(at) => format!("revoked {}", at.to_rfc3339()),
            None => "active".to_owned(),
        };
        println!(
            "{}  {}  {}  expires {}  {state}",
            token.jti,
            token.subject.unwrap_or_default(),
            roles.join("+"),
            token.expires_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn revoke_token(globals: &Globals, tenant: &str, jti: &str) -> anyhow::Result<ExitCode> {
    let (_, store, tenant) = open_tenant(globals, tenant).await?;
    let revoke = Change::RevokeToken {
        jti: jti.to_owned(),
        by: cli_actor(),
    };
    let data = serde_json::json!({"jti": jti, "tenant": tenant});
    let logs = std::slice::from_ref(&tenant);
    let kind = AuditEventKind::TokenRevoked;
    match change(store.as_ref(), &tenant, revoke, logs, kind, data).await? {
        Applied::Missing => bail!("no token with jti {jti} was issued in tenant {tenant}"),
        Applied::Unchanged => println!("token {jti} was already revoked"),
        Applied::Changed => println!("revoked token {jti}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_ttl(text: &str) -> anyhow::Result<u64> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .with_context(|| format!("invalid --ttl {text:?}: expected e.g. 30m, 12h, 7d"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("invalid --ttl {text:?}: the unit must be s, m, h or d"),
    };
    if seconds == 0 {
        bail!("--ttl must be more than zero");
    }
    Ok(seconds)
}
