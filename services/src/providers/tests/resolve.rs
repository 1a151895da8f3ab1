//! Which provider answers which model.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::server::limits;
use crate::config::{Config, ProviderConfig};
use crate::providers::{OpenAiProvider, ProviderRegistry, ResolveError};

fn key(key: &str) -> ProviderConfig {
    ProviderConfig {
        api_key: Some(key.into()),
        ..ProviderConfig::default()
    }
}

fn base(base: &str) -> ProviderConfig {
    ProviderConfig {
        api_base: Some(base.into()),
        ..ProviderConfig::default()
    }
}

fn build(
    providers: Vec<(&str, ProviderConfig)>,
    env: &[(&str, &str)],
) -> Result<ProviderRegistry, ResolveError> {
    let config = Config {
        providers: providers
            .into_iter()
            .map(|(name, cfg)| (name.to_owned(), cfg))
            .collect(),
        ..Config::default()
    };
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    ProviderRegistry::from_sources(&config, limits(Duration::from_secs(5), 0), |name| {
        env.get(name).cloned()
    })
}

/// `(provider name, model id)` chosen for `model`.
fn pick(
    registry: &ProviderRegistry,
    model: &str,
    explicit: Option<&str>,
) -> Result<(String, String), ResolveError> {
    registry
        .resolve(model, explicit)
        .map(|(provider, model)| (provider.name().to_owned(), model))
}

fn pair(provider: &str, model: &str) -> (String, String) {
    (provider.to_owned(), model.to_owned())
}

#[test]
fn explicit_then_prefix_then_family_decide() {
    let registry = build(
        vec![
            ("anthropic", key("sk-ant")),
            ("openrouter", key("sk-or")),
            ("vllm", base("http://localhost:8000/v1")),
        ],
        &[],
    )
    .expect("registry");
    assert_eq!(registry.names(), vec!["anthropic", "openrouter", "vllm"]);

    let picked = pick(&registry, "anthropic/claude-sonnet-4-5", None).expect("prefix");
    assert_eq!(picked, pair("anthropic", "claude-sonnet-4-5"));
    let picked = pick(&registry, "vllm/qwen3-coder", None).expect("prefix");
    assert_eq!(picked, pair("vllm", "qwen3-coder"));
    // Through OpenRouter the vendor prefix is part of the model id and stays.
    let picked =
        pick(&registry, "anthropic/claude-sonnet-4-5", Some("openrouter")).expect("explicit");
    assert_eq!(picked, pair("openrouter", "anthropic/claude-sonnet-4-5"));
    let picked = pick(&registry, "openrouter/auto", Some("openrouter")).expect("explicit");
    assert_eq!(picked, pair("openrouter", "auto"));
    let picked = pick(&registry, "claude-haiku-4-5", None).expect("family");
    assert_eq!(picked, pair("anthropic", "claude-haiku-4-5"));

    let unknown = pick(&registry, "gpt-4o", Some("azure")).expect_err("unknown");
    assert!(matches!(&unknown, ResolveError::UnknownProvider(name) if name == "azure"));

    // gpt-* would be openai's, which is not configured; three candidates remain.
    let ambiguous = pick(&registry, "gpt-4o", None).expect_err("ambiguous");
    let text = ambiguous.to_string();
    assert!(text.contains("anthropic, openrouter, vllm"), "{text}");
    assert!(text.contains("agents.defaults.provider"), "{text}");
}

#[test]
fn the_one_provider_with_a_key_or_address_takes_other_models() {
    let registry = build(
        vec![
            ("ollama", base("http://localhost:11434/v1")),
            ("openai", ProviderConfig::default()),
        ],
        &[],
    )
    .expect("registry");
    let picked = pick(&registry, "llama3.2", None).expect("single");
    assert_eq!(picked, pair("ollama", "llama3.2"));
    // Family still picks the configured provider, but a hosted service without its
    // key is refused with what to set, instead of being called and retried.
    let missing = pick(&registry, "o3-mini", None).expect_err("no key");
    assert!(
        matches!(&missing, ResolveError::MissingKey { name, .. } if name == "openai"),
        "{missing:?}"
    );
    assert!(missing.to_string().contains("OPENAI_API_KEY"), "{missing}");
}

#[test]
fn a_hosted_service_without_its_key_is_refused_and_a_local_one_needs_none() {
    // As `facio onboard` writes it: the key from an unset variable, the default host.
    let onboarded = ProviderConfig {
        api_key: Some(String::new()),
        api_base: Some("https://api.openai.com/v1".to_owned()),
        ..ProviderConfig::default()
    };
    let registry = build(vec![("openai", onboarded)], &[]).expect("registry");
    let error = pick(&registry, "gpt-4o-mini", None).expect_err("no key");
    assert_eq!(
        error.to_string(),
        "provider \"openai\" has no API key: api.openai.com needs one: set OPENAI_API_KEY, or \
         providers.openai.apiKey in config.json"
    );
    let error = pick(&registry, "some-local-model", None).expect_err("no key");
    assert!(
        matches!(error, ResolveError::MissingKey { .. }),
        "{error:?}"
    );
    assert_eq!(registry.missing_keys().count(), 1);

    let local = build(vec![("ollama", base("http://localhost:11434/v1"))], &[]).expect("ok");
    assert_eq!(
        pick(&local, "llama3.2", None).expect("local"),
        pair("ollama", "llama3.2")
    );
    assert_eq!(local.missing_keys().count(), 0);
}

#[test]
fn environment_fills_in_unconfigured_openai_and_anthropic() {
    let env = [
        ("OPENAI_API_KEY", "sk-env"),
        ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
        ("ANTHROPIC_API_KEY", "sk-ant-env"),
    ];
    let registry = build(Vec::new(), &env).expect("registry");
    assert_eq!(registry.names(), vec!["anthropic", "openai"]);
    assert_eq!(
        pick(&registry, "gpt-4o-mini", None).expect("family"),
        pair("openai", "gpt-4o-mini")
    );
    assert_eq!(
        pick(&registry, "claude-opus-4-1", None).expect("family"),
        pair("anthropic", "claude-opus-4-1")
    );
    let shown = format!("{registry:?}");
    assert!(
        shown.contains("http://127.0.0.1:9/v1/chat/completions"),
        "{shown}"
    );
    assert!(
        shown.contains("https://api.anthropic.com/v1/messages"),
        "{shown}"
    );
    assert!(
        !shown.contains("sk-env") && !shown.contains("sk-ant-env"),
        "{shown}"
    );

    // Configuration wins over the environment.
    let registry = build(vec![("openai", base("http://10.0.0.1/v1"))], &env).expect("registry");
    let shown = format!("{registry:?}");
    assert!(
        shown.contains("http://10.0.0.1/v1/chat/completions"),
        "{shown}"
    );

    // Blank variables count as unset.
    let registry = build(Vec::new(), &[("OPENAI_API_KEY", " ")]).expect("registry");
    assert!(registry.names().is_empty());
}

#[test]
fn nothing_configured_says_what_to_set() {
    let registry = build(Vec::new(), &[]).expect("registry");
    let error = pick(&registry, "gpt-4o-mini", None).expect_err("none");
    let text = error.to_string();
    assert!(matches!(error, ResolveError::NoProvider { .. }));
    assert!(
        text.contains("OPENAI_API_KEY") && text.contains("ANTHROPIC_API_KEY"),
        "{text}"
    );
    assert!(text.contains("providers.<name>.apiKey"), "{text}");
}

#[test]
fn well_known_services_need_only_a_key() {
    let registry = build(
        vec![
            ("openai", key("a")),
            ("openrouter", key("b")),
            ("deepseek", key("c")),
            ("groq", key("d")),
            (
                "claude",
                ProviderConfig {
                    kind: Some("anthropic".into()),
                    ..key("e")
                },
            ),
        ],
        &[],
    )
    .expect("registry");
    let shown = format!("{registry:?}");
    for endpoint in [
        "https://api.openai.com/v1/chat/completions",
        "https://openrouter.ai/api/v1/chat/completions",
        "https://api.deepseek.com/v1/chat/completions",
        "https://api.groq.com/openai/v1/chat/completions",
        "https://api.anthropic.com/v1/messages",
    ] {
        assert!(shown.contains(endpoint), "{endpoint} missing from {shown}");
    }
}

#[test]
fn misconfigured_providers_are_named() {
    let reason = |providers| match build(providers, &[]) {
        Err(ResolveError::Invalid { name, reason }) => format!("{name}: {reason}"),
        other => panic!("expected Invalid, got {other:?}"),
    };
    let text = reason(vec![("mylab", key("k"))]);
    assert!(
        text.starts_with("mylab: providers.mylab.apiBase is required"),
        "{text}"
    );
    let text = reason(vec![(
        "mylab",
        ProviderConfig {
            kind: Some("grpc".into()),
            ..base("http://x")
        },
    )]);
    assert!(
        text.contains("providers.mylab.kind \"grpc\" is not known"),
        "{text}"
    );
    let text = reason(vec![("vllm", base("localhost:8000"))]);
    assert!(text.contains("providers.vllm.apiBase"), "{text}");
    let text = reason(vec![(
        "vllm",
        ProviderConfig {
            extra_headers: BTreeMap::from([("bad header".to_owned(), "x".to_owned())]),
            ..base("http://x")
        },
    )]);
    assert!(text.contains("providers.vllm.extraHeaders"), "{text}");
}

#[test]
fn providers_can_be_added_directly() {
    let scripted = OpenAiProvider::new(
        "scripted",
        &base("http://127.0.0.1:9/v1"),
        "",
        limits(Duration::from_secs(1), 0),
    )
    .expect("provider");
    let registry = ProviderRegistry::default().with_provider("scripted", Arc::new(scripted));
    assert_eq!(registry.names(), vec!["scripted"]);
    assert_eq!(
        pick(&registry, "any-model", None).expect("single"),
        pair("scripted", "any-model")
    );
    let empty = pick(&registry, " ", None).expect_err("empty model");
    assert!(
        empty.to_string().contains("agents.defaults.model"),
        "{empty}"
    );
}
