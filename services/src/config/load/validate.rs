//! Range and format rules the types cannot express. Each violation names the key path
//! and the rule; values are not echoed, since some were substituted from secrets.

use std::net::IpAddr;

use reqwest::header::{HeaderName, HeaderValue};

use super::error::one_line;
use super::keypath;
use crate::config::Config;

/// A broken rule at a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Violation {
    pub key: String,
    pub reason: String,
}

fn violation(key: impl Into<String>, reason: impl Into<String>) -> Violation {
    Violation {
        key: key.into(),
        reason: reason.into(),
    }
}

/// `Ok` when `value >= min`.
fn at_least(key: &str, value: u64, min: u64) -> Result<(), Violation> {
    if value < min {
        return Err(violation(key, format!("must be at least {min}")));
    }
    Ok(())
}

/// Checks every rule, stopping at the first broken one.
pub(super) fn validate(config: &Config) -> Result<(), Violation> {
    agents(config)?;
    tools(config)?;
    api(config)?;
    storage(config)?;
    cluster(config)?;
    oidc(config)?;
    a2a(config)?;
    providers(config)?;
    at_least(
        "audit.maxFieldChars",
        config.audit.max_field_chars as u64,
        1,
    )?;
    logging_level(&config.logging.level)
}

fn cluster(config: &Config) -> Result<(), Violation> {
    if let Some(id) = &config.cluster.node_id {
        crate::domain::NodeId::new(id).map_err(|e| violation("cluster.nodeId", e.to_string()))?;
    }
    if let Some(problem) = config.cluster.problem() {
        let key = problem.split(' ').next().unwrap_or("cluster").to_owned();
        return Err(violation(&key, problem));
    }
    at_least("cluster.leaseTtlS", config.cluster.lease_ttl_s, 1)
}

fn a2a(config: &Config) -> Result<(), Violation> {
    let a2a = &config.a2a;
    if a2a.name.trim().is_empty() {
        return Err(violation("a2a.name", "must not be empty"));
    }
    if let Some(url) = &a2a.url {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| violation("a2a.url", format!("must be a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(violation("a2a.url", "must be an http or https URL"));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (i, skill) in a2a.skills.iter().enumerate() {
        if skill.id.trim().is_empty() || skill.name.trim().is_empty() {
            return Err(violation(
                format!("a2a.skills[{i}]"),
                "needs an id and a name",
            ));
        }
        if !seen.insert(skill.id.as_str()) {
            return Err(violation(format!("a2a.skills[{i}].id"), "is used twice"));
        }
    }
    Ok(())
}

fn oidc(config: &Config) -> Result<(), Violation> {
    let Some(oidc) = &config.auth.oidc else {
        return Ok(());
    };
    let issuer = reqwest::Url::parse(&oidc.issuer)
        .map_err(|e| violation("auth.oidc.issuer", format!("must be a URL: {e}")))?;
    let local = issuer
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        .is_some_and(|h| {
            h.eq_ignore_ascii_case("localhost")
                || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        });
    if issuer.scheme() != "https" && !(issuer.scheme() == "http" && local) {
        return Err(violation(
            "auth.oidc.issuer",
            "must be an https URL (http only for a provider on this machine)",
        ));
    }
    if oidc.client_id.trim().is_empty() {
        return Err(violation("auth.oidc.clientId", "must not be empty"));
    }
    for (key, value) in [
        ("auth.oidc.rolesClaim", &oidc.roles_claim),
        ("auth.oidc.tenantClaim", &oidc.tenant_claim),
    ] {
        if value.trim().is_empty() || value.split('.').any(str::is_empty) {
            return Err(violation(key, "must be a claim name or a dotted path"));
        }
    }
    if !oidc.scopes.iter().any(|s| s == "openid") {
        return Err(violation("auth.oidc.scopes", "must include openid"));
    }
    if let Some(url) = &oidc.redirect_url {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| violation("auth.oidc.redirectUrl", format!("must be a URL: {e}")))?;
        if !parsed.path().ends_with("/inbox/callback") {
            return Err(violation(
                "auth.oidc.redirectUrl",
                "must be this node's public URL ending in /inbox/callback",
            ));
        }
    }
    Ok(())
}

fn agents(config: &Config) -> Result<(), Violation> {
    let d = &config.agents.defaults;
    if d.model.trim().is_empty() {
        return Err(violation("agents.defaults.model", "must not be empty"));
    }
    if d.provider.as_deref().is_some_and(|p| p.trim().is_empty()) {
        return Err(violation("agents.defaults.provider", "must not be blank"));
    }
    at_least(
        "agents.defaults.maxToolIterations",
        d.max_tool_iterations.into(),
        1,
    )?;
    at_least("agents.defaults.maxTokens", d.max_tokens.into(), 1)?;
    at_least(
        "agents.defaults.contextWindowTokens",
        d.context_window_tokens.into(),
        1024,
    )?;
    if d.max_tokens >= d.context_window_tokens {
        return Err(violation(
            "agents.defaults.maxTokens",
            "must be less than agents.defaults.contextWindowTokens (the reply must fit the window)",
        ));
    }
    if !(0.0..=2.0).contains(&d.temperature) {
        return Err(violation(
            "agents.defaults.temperature",
            "must be between 0 and 2",
        ));
    }
    at_least("agents.defaults.requestTimeoutS", d.request_timeout_s, 1)?;
    at_least("agents.defaults.idlePassivateS", d.idle_passivate_s, 1)
}

fn tools(config: &Config) -> Result<(), Violation> {
    let t = &config.tools;
    at_least("tools.timeoutS", t.timeout_s, 1)?;
    at_least("tools.exec.timeoutS", t.exec.timeout_s, 1)?;
    at_least(
        "tools.exec.maxOutputChars",
        t.exec.max_output_chars as u64,
        1,
    )?;
    for (i, pattern) in t.exec.deny_patterns.iter().enumerate() {
        if let Err(err) = regex::Regex::new(pattern) {
            return Err(violation(
                keypath::index("tools.exec.denyPatterns", i),
                format!("not a valid regex: {}", one_line(&err.to_string())),
            ));
        }
    }
    for (name, server) in &t.mcp_servers {
        if let Some(problem) = super::super::mcp_server_name_problem(name) {
            return Err(violation(format!("tools.mcpServers.{name}"), problem));
        }
        if let Some((field, problem)) = server.problem() {
            return Err(violation(
                format!("tools.mcpServers.{name}.{field}"),
                problem,
            ));
        }
    }
    let webhooks = config
        .channels
        .webhooks
        .iter()
        .map(|(n, c)| (n, c.problem()));
    let telegram = config
        .channels
        .telegram
        .iter()
        .map(|(n, c)| (n, c.problem()));
    for (area, (name, problem)) in webhooks
        .map(|c| ("channels.webhooks", c))
        .chain(telegram.map(|c| ("channels.telegram", c)))
    {
        let named = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !named {
            return Err(violation(
                format!("{area}.{name}"),
                "a channel name is 1-64 letters, digits, '-' or '_'",
            ));
        }
        if let Some((field, problem)) = problem {
            return Err(violation(format!("{area}.{name}.{field}"), problem));
        }
    }
    at_least("tools.web.timeoutS", t.web.timeout_s, 1)?;
    at_least("tools.web.fetchMaxChars", t.web.fetch_max_chars as u64, 1)?;
    for (i, host) in t.web.allow_private_hosts.iter().enumerate() {
        if !is_host(host) {
            return Err(violation(
                keypath::index("tools.web.allowPrivateHosts", i),
                "must be an IP address or a host name",
            ));
        }
    }
    Ok(())
}

fn api(config: &Config) -> Result<(), Violation> {
    if !is_host(&config.api.host) {
        return Err(violation(
            "api.host",
            "must be an IP address or a host name",
        ));
    }
    Ok(())
}

fn storage(config: &Config) -> Result<(), Violation> {
    if let Some(url) = &config.storage.url
        && !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
    {
        return Err(violation(
            "storage.url",
            "must start with sqlite:, postgres:// or postgresql://",
        ));
    }
    Ok(())
}

fn providers(config: &Config) -> Result<(), Violation> {
    for (name, provider) in &config.providers {
        let key = |field: &str| keypath::child(&keypath::child("providers", name), field);
        if name.trim().is_empty() {
            return Err(violation("providers", "a provider name must not be empty"));
        }
        if let Some(base) = &provider.api_base {
            let ok = reqwest::Url::parse(base).is_ok_and(|url| {
                matches!(url.scheme(), "http" | "https") && url.host_str().is_some()
            });
            if !ok {
                return Err(violation(
                    key("apiBase"),
                    "must be an http:// or https:// URL",
                ));
            }
        }
        if let Some(kind) = &provider.kind
            && !matches!(
                kind.trim().to_ascii_lowercase().as_str(),
                "openai" | "anthropic"
            )
        {
            return Err(violation(
                key("kind"),
                "must be \"openai\" or \"anthropic\"",
            ));
        }
        for (header, value) in &provider.extra_headers {
            let at = keypath::child(&key("extraHeaders"), header);
            if HeaderName::from_bytes(header.as_bytes()).is_err() {
                return Err(violation(at, "not a valid HTTP header name"));
            }
            if HeaderValue::from_str(value).is_err() {
                return Err(violation(at, "not a valid HTTP header value"));
            }
        }
    }
    Ok(())
}

/// An IP address (IPv6 optionally in brackets) or an RFC 1123 host name.
fn is_host(host: &str) -> bool {
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(host);
    if unbracketed.parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// A `tracing` filter: comma-separated `level`, `target` or `target=level` directives.
/// Span filters (`target[span{field=value}]=level`) are passed through unchecked.
fn logging_level(filter: &str) -> Result<(), Violation> {
    let bad = |reason: String| Err(violation("logging.level", reason));
    if filter.trim().is_empty() {
        return bad("must not be empty (e.g. \"info\" or \"info,facio=debug\")".into());
    }
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if directive.contains('[') {
            continue;
        }
        let (target, level) = match directive.rsplit_once('=') {
            Some((target, level)) => (Some(target), Some(level)),
            None if is_level(directive) => (None, Some(directive)),
            None => (Some(directive), None),
        };
        if let Some(level) = level
            && !is_level(level)
        {
            return bad(format!(
                "{level:?} is not a level (use one of {})",
                LEVELS.join(", ")
            ));
        }
        if let Some(target) = target
            && (target.is_empty()
                || !target
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-' | '.')))
        {
            return bad(format!("{target:?} is not a module path"));
        }
    }
    Ok(())
}

fn is_level(text: &str) -> bool {
    LEVELS
        .iter()
        .any(|level| level.eq_ignore_ascii_case(text.trim()))
}
