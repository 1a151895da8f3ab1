//! Building a node from configuration: config, store, providers, tools, workspace,
//! runtime. Shared by `facio serve`, `facio agent` and the SDK so all three run the
//! same runtime.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use facio_actors::{Runtime, RuntimeDeps, RuntimeError};
use facio_services::config::{Config, ConfigError};
use facio_services::domain::TenantId;
use facio_services::providers::{CallLimits, ProviderRegistry, ResolveError, RetryPolicy};
use facio_services::store::{SqliteStore, Store, StoreError, open_store, redact_url};
use facio_services::tools::{ToolRegistry, Workspace, WorkspaceError};
use facio_services::vault::{Vault, remember, resolve_providers, tenant_secrets};

/// Why a node could not start; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `url` is redacted (no password).
    #[error("cannot open the store at {url}: {source}")]
    Store { url: String, source: StoreError },
    #[error(transparent)]
    Provider(#[from] ResolveError),
    #[error("cannot use the workspace: {0}")]
    Workspace(#[from] WorkspaceError),
    #[error(transparent)]
    Auth(#[from] facio_services::auth::AuthError),
    #[error("credential vault: {0}")]
    Vault(#[from] facio_services::vault::VaultError),
    #[error("a provider's credential: {0}")]
    ProviderCredential(String),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    DataDir(#[from] facio_services::store::DataDirLockError),
    #[error(transparent)]
    Sandbox(#[from] facio_services::tools::SandboxError),
}

/// How to start a node.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// `--config`; the default location when absent.
    pub config_path: Option<PathBuf>,
    /// `--workspace`; overrides `agents.defaults.workspace`.
    pub workspace: Option<PathBuf>,
    /// Close turns a previous process left running (the gateway does; one-shot runs don't).
    pub recover: bool,
    /// Fail unless the default model resolves to a provider now.
    pub require_provider: bool,
}

/// A started node: the configuration it runs with and its runtime.
pub struct Node {
    pub config: Arc<Config>,
    pub runtime: Arc<Runtime>,
    /// The store's URL with any password redacted: safe to print.
    pub store_url: String,
    /// Verifies bearer JWTs; none when no auth keys are configured.
    pub verifier: Option<Arc<facio_services::auth::Verifier>>,
    /// The OpenID Connect provider reviewers sign in with (`auth.oidc`).
    pub oidc: Option<Arc<facio_services::auth::Oidc>>,
    /// A serving node's hold on its data directory (and its database's, when that lies
    /// elsewhere): one serving process per store.
    pub data_lock: Option<Arc<Vec<facio_services::store::DataDirLock>>>,
}

impl Node {
    pub async fn start(options: NodeOptions) -> Result<Node, BootError> {
        let mut config = Config::load(options.config_path.as_deref())?;
        if let Some(workspace) = options.workspace {
            config.agents.defaults.workspace = Some(absolute(&workspace));
        }
        Self::start_with_config(config, options.recover, options.require_provider).await
    }

    pub async fn start_with_config(
        mut config: Config,
        recover: bool,
        require_provider: bool,
    ) -> Result<Node, BootError> {
        // A node that recovers runs and re-arms reviews must be the store's only one:
        // it locks its data directory, and the database's directory when a SQLite
        // store lives elsewhere (two data directories on one database are one store).
        // A PostgreSQL store has no file to lock.
        let data_lock = if recover {
            let mut locks = vec![facio_services::store::DataDirLock::acquire(
                &config.data_dir(),
            )?];
            if let Some(dir) = SqliteStore::file_path(&config.storage_url())
                .and_then(|db| db.parent().map(Path::to_path_buf))
                .filter(|dir| absolute(dir) != absolute(&config.data_dir()))
            {
                locks.push(facio_services::store::DataDirLock::acquire(&dir)?);
            }
            Some(Arc::new(locks))
        } else {
            None
        };
        let store = open_configured_store(&config).await?;
        let store_url = redact_url(&config.storage_url());
        let vault = open_vault(store.as_ref(), &config).await?;
        // Everything appended to the audit log from here on is sealed.
        store.set_audit_key(vault.audit_key());
        provider_credentials(store.as_ref(), &vault, &mut config).await?;
        let defaults = &config.agents.defaults;
        let limits = CallLimits {
            timeout: Duration::from_secs(defaults.request_timeout_s.max(1)),
            retry: RetryPolicy {
                max_retries: defaults.max_retries,
                ..RetryPolicy::default()
            },
        };
        let providers = ProviderRegistry::from_config(&config, limits)?;
        match providers.resolve(&defaults.model, defaults.provider.as_deref()) {
            Err(e) if require_provider => return Err(e.into()),
            // A gateway starts without a model (the management API and reviews work),
            // but says at once what is missing instead of failing every turn later.
            Err(e) => tracing::warn!("turns cannot call a model yet: {e}"),
            Ok(_) => {}
        }
        let workspace = Workspace::new(config.workspace_dir(), config.tools.restrict_to_workspace)?;
        hide_node_secrets(&mut config);
        announce_sandbox(&config.tools)?;
        let verifier = facio_services::auth::Verifier::from_config(&config.auth)?.map(Arc::new);
        let oidc = match &config.auth.oidc {
            Some(oidc) => Some(Arc::new(facio_services::auth::Oidc::new(oidc.clone())?)),
            None => None,
        };
        let config = Arc::new(config);
        let runtime = Runtime::start(RuntimeDeps {
            config: config.clone(),
            store,
            providers,
            tools: ToolRegistry::builtin(),
            workspace,
            vault,
            recover_on_start: recover,
        })
        .await?;
        Ok(Node {
            config,
            runtime: Arc::new(runtime),
            store_url,
            verifier,
            oidc,
            data_lock,
        })
    }
}

/// Opens and migrates the store `storage.url` names (SQLite or PostgreSQL), with a
/// pool of `storage.maxConnections`, sealing the audit events it appends with the
/// node's key (a CLI command that records a change seals it like the node would).
/// Every command that reads the store opens it here.
pub async fn open_configured_store(config: &Config) -> Result<Arc<dyn Store>, BootError> {
    let url = config.storage_url();
    let store = open_store(&url, config.storage.max_connections())
        .await
        .map_err(|source| BootError::Store {
            url: redact_url(&url),
            source,
        })?;
    let vault = open_vault(store.as_ref(), config).await?;
    store.set_audit_key(vault.audit_key());
    Ok(store)
}

/// Sandboxed commands cannot see the node's own secrets: the master key, the store,
/// the config and settings files (the data directory itself holds the workspace, so
/// its files are hidden one by one).
fn hide_node_secrets(config: &mut Config) {
    let data = config.data_dir();
    let database = SqliteStore::file_path(&config.storage_url())
        .into_iter()
        .flat_map(|db| {
            let with = |suffix: &str| {
                let mut name = db.clone().into_os_string();
                name.push(suffix);
                PathBuf::from(name)
            };
            [db.clone(), with("-wal"), with("-shm")]
        });
    let files = [
        "master.key",
        "facio.db",
        "facio.db-wal",
        "facio.db-shm",
        "facio.lock",
    ]
    .map(|name| data.join(name))
    .into_iter()
    .chain(database)
    .chain(config.config_file.clone())
    .chain(config.settings_file.clone())
    .filter(|path| path.exists())
    .map(|path| absolute(&path));
    for path in files {
        if !config.tools.exec.hide_paths.contains(&path) {
            config.tools.exec.hide_paths.push(path);
        }
    }
}

/// Says how `exec` is confined here; with `tools.exec.sandbox: "on"` a machine that
/// cannot sandbox refuses to start.
fn announce_sandbox(tools: &facio_services::config::ToolsConfig) -> Result<(), BootError> {
    let status = facio_services::tools::require_sandbox(tools)?;
    match (
        tools.exec.sandbox,
        status.missing(tools.restrict_to_workspace),
    ) {
        (facio_services::config::ExecSandbox::Off, _) => tracing::warn!(
            "exec runs unsandboxed (tools.exec.sandbox is \"off\"): commands can write outside \
             the workspace, reach the network and leave processes behind"
        ),
        (_, Some(missing)) => tracing::warn!(
            "exec cannot be sandboxed here ({missing}); every command is refused until the \
             machine allows it, or tools.exec.sandbox is set to \"off\""
        ),
        (_, None) => tracing::info!(sandbox = %status, "exec runs sandboxed"),
    }
    Ok(())
}

/// The vault (also for CLI commands that check the audit seals), refusing a missing or wrong master key when credentials are stored.
pub async fn open_vault(store: &dyn Store, config: &Config) -> Result<Vault, BootError> {
    let stored = store
        .any_credential()
        .await
        .map_err(|source| BootError::Store {
            url: redact_url(&config.storage_url()),
            source,
        })?;
    let master_key = std::env::var("FACIO_MASTER_KEY").ok();
    Ok(Vault::open(
        master_key.as_deref(),
        &config.data_dir(),
        stored.as_ref(),
    )?)
}

/// Resolves provider keys and headers from the default tenant's credentials.
async fn provider_credentials(
    store: &dyn Store,
    vault: &Vault,
    config: &mut Config,
) -> Result<(), BootError> {
    let secrets = tenant_secrets(store, vault, &TenantId::default_tenant())
        .await
        .map_err(|e| BootError::ProviderCredential(e.to_string()))?;
    resolve_providers(config, &secrets)
        .map_err(|e| BootError::ProviderCredential(e.to_string()))?;
    remember_config_secrets(config);
    Ok(())
}

/// Makes the config's keys and tokens known to the log redactor.
fn remember_config_secrets(config: &Config) {
    for provider in config.providers.values() {
        provider.api_key.iter().for_each(|key| remember(key));
        provider
            .extra_headers
            .values()
            .for_each(|value| remember(value));
    }
    let tokens = [
        &config.api.management_token,
        &config.api.a2a_token,
        &config.api.metrics_token,
        &config.auth.hs256_secret,
        &config.channels.placet.api_key,
    ];
    tokens
        .into_iter()
        .flatten()
        .for_each(|token| remember(token));
    config
        .telemetry
        .headers
        .values()
        .for_each(|value| remember(value));
    // Keys the process may take from its environment without a config entry.
    for var in [
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "FACIO_MASTER_KEY",
        "FACIO_METRICS_TOKEN",
    ] {
        if let Ok(value) = std::env::var(var) {
            remember(&value);
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir().map_or_else(|_| path.to_path_buf(), |cwd| cwd.join(path))
}
