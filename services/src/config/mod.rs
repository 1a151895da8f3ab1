//! Typed configuration, one file per area. Loaded from `config.json` (camelCase keys,
//! snake_case accepted), with `${ENV_VAR}` interpolation and `FACIO_` environment
//! overrides (`FACIO_API__PORT=9000` sets `api.port`). Invalid config fails fast and
//! names the key path.

mod a2a;
mod agents;
mod api;
mod audit;
mod auth;
mod channels;
mod cluster;
mod limits;
mod load;
mod logging;
mod mcp;
mod onboard;
mod pricing;
mod providers;
mod storage;
mod telemetry;
mod tools;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use a2a::{A2aConfig, A2aProvider, A2aSkill};
pub use agents::{AgentDefaults, AgentsConfig};
pub use api::ApiConfig;
pub use audit::AuditConfig;
pub use auth::{AuthConfig, OidcConfig};
pub use channels::{ChannelsConfig, PlacetConfig, TelegramChannel, WebhookChannel};
pub use cluster::ClusterConfig;
pub use limits::{LimitsConfig, TenantLimits};
pub use load::{
    CHANGEABLE_KEYS, ConfigError, SETTINGS_FILE, SettingsChange, SettingsError,
    default_config_path, default_data_dir,
};
pub use logging::{LogFormat, LoggingConfig};
pub use mcp::{MCP_SERVER_NAME_MAX, McpServerConfig, McpTransport, mcp_server_name_problem};
pub use onboard::{OnboardError, OnboardReport, onboard};
pub use pricing::{ModelPrice, PricingConfig, cost_micros};
pub use providers::{ProviderConfig, ProvidersConfig};
pub use storage::StorageConfig;
pub use telemetry::TelemetryConfig;
pub use tools::{ExecConfig, ExecSandbox, ToolsConfig, WebConfig};

/// The whole `config.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// Agent defaults (model, workspace, budgets).
    pub agents: AgentsConfig,
    /// Model providers by name (`openai`, `anthropic`, `openrouter`, `vllm`, ...).
    pub providers: ProvidersConfig,
    /// Tool limits and confinement.
    pub tools: ToolsConfig,
    /// The HTTP gateway.
    pub api: ApiConfig,
    /// Where state lives.
    pub storage: StorageConfig,
    /// Audit log settings.
    pub audit: AuditConfig,
    /// Log output.
    pub logging: LoggingConfig,
    /// OpenTelemetry traces and metrics.
    pub telemetry: TelemetryConfig,
    /// Verification of bearer tokens (JWT) for tenants and roles.
    pub auth: AuthConfig,
    /// Request rate limits per tenant and per token; token budgets.
    pub limits: LimitsConfig,
    /// Prices per million tokens by model, for the usage cost estimates.
    pub pricing: PricingConfig,
    /// Review delivery channels (Placet).
    pub channels: ChannelsConfig,
    /// This node's id and its session leases.
    pub cluster: ClusterConfig,
    /// The A2A agent card.
    pub a2a: A2aConfig,
    /// The tool-call policy a tenant starts with (rules, `enabled`, `skipCron`) until
    /// an operator changes it through `/api/v1/policy`.
    pub policy: crate::policy::Policy,
    /// Directory the config file was loaded from; relative paths resolve against it.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
    /// The config file read, if any.
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
    /// Where settings changed through the API are kept (`settings.json` beside the
    /// config file).
    #[serde(skip)]
    pub settings_file: Option<PathBuf>,
    /// Key paths whose values came from the environment (`${VAR}` or `FACIO_*__*`),
    /// which views of the config do not show.
    #[serde(skip)]
    pub from_environment: Vec<String>,
}
