//! `/api/v1/settings`: tenant settings apply at once (a rate limit bites on the next
//! request); node settings are checked, saved beside config.json and named as waiting
//! for a restart until the node restarts with them.

use facio_tests::model::Reply;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Env, Gateway, management, stderr, stdout};

const TOKEN: &str = "settings-management-token";
const SECRET: &str = "settings-test-secret-that-is-long-enough";

async fn api(gateway: &Gateway, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    management(gateway, TOKEN, method, path, body).await
}

#[tokio::test]
async fn node_settings_are_checked_saved_and_wait_for_a_restart() {
    let mut env = Env::new(vec![Reply::text("ok")]).await;
    env.set("/api/managementToken", json!(TOKEN));
    let config_before = std::fs::read_to_string(env.config_path()).unwrap();
    let gateway = env.serve().await;

    let (status, shown) = api(&gateway, Method::GET, "/settings", None).await;
    assert_eq!(status, 200, "{shown}");
    let node = &shown["node"];
    assert_eq!(
        node["config"]["agents"]["defaults"]["maxToolIterations"],
        10
    );
    assert_eq!(
        node["config"]["providers"]["scripted"]["apiKey"], "[set]",
        "secrets are masked"
    );
    assert_eq!(node["config"]["api"]["managementToken"], "[set]");
    assert!(!shown.to_string().contains("sk-test-not-secret"));
    assert!(!shown.to_string().contains(TOKEN));
    assert_eq!(node["restartRequired"], json!([]));
    assert_eq!(node["config"]["agents"]["defaults"]["temperature"], 0.1);
    assert_eq!(shown["effective"]["limits"]["requestsPerMinute"], 600);

    // A value of the wrong type is refused, naming the key; nothing is saved.
    let (status, refused) = api(
        &gateway,
        Method::PATCH,
        "/settings",
        Some(json!({"node": {"agents": {"defaults": {"maxToolIterations": "many"}}}})),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        refused["error"]["param"],
        "node.agents.defaults.maxToolIterations"
    );
    let settings_file = env.dir.path().join("settings.json");
    assert!(!settings_file.exists());
    // Where state lives and what holds secrets are not the API's to change.
    for (patch, key) in [
        (json!({"storage": {"dataDir": "/"}}), "node.storage.dataDir"),
        (
            json!({"auth": {"hs256Secret": "x"}}),
            "node.auth.hs256Secret",
        ),
        (json!({"agents": {"bogus": 1}}), "node.agents.bogus"),
        (
            json!({"agents": {"defaults": {"workspace": "/"}}}),
            "node.agents.defaults.workspace",
        ),
        (
            json!({"tools": {"restrictToWorkspace": false}}),
            "node.tools.restrictToWorkspace",
        ),
        (
            json!({"logging": {"level": "info=${FACIO_MASTER_KEY}"}}),
            "node.logging.level",
        ),
    ] {
        let (status, refused) = api(
            &gateway,
            Method::PATCH,
            "/settings",
            Some(json!({"node": patch})),
        )
        .await;
        assert_eq!(status, 422, "{refused}");
        assert_eq!(refused["error"]["param"], key, "{refused}");
    }
    assert!(!settings_file.exists());

    let (status, changed) = api(
        &gateway,
        Method::PATCH,
        "/settings",
        Some(json!({"node": {"agents": {"defaults": {"maxToolIterations": 3}}}})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        changed["saved"],
        json!(["agents.defaults.maxToolIterations"])
    );
    assert_eq!(
        changed["node"]["restartRequired"],
        json!(["agents.defaults.maxToolIterations"])
    );
    assert_eq!(
        changed["node"]["config"]["agents"]["defaults"]["maxToolIterations"], 10,
        "the running node keeps its config until it restarts"
    );
    assert_eq!(
        std::fs::read_to_string(env.config_path()).unwrap(),
        config_before,
        "config.json is left as the operator wrote it"
    );
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&settings_file).unwrap()).unwrap();
    assert_eq!(saved["agents"]["defaults"]["maxToolIterations"], 3);
    let (_, audit) = api(&gateway, Method::GET, "/audit?type=settings_changed", None).await;
    assert!(
        audit
            .to_string()
            .contains("agents.defaults.maxToolIterations"),
        "{audit}"
    );

    drop(gateway);
    let gateway = env.serve().await;
    let (_, shown) = api(&gateway, Method::GET, "/settings", None).await;
    assert_eq!(
        shown["node"]["config"]["agents"]["defaults"]["maxToolIterations"],
        3
    );
    assert_eq!(shown["node"]["restartRequired"], json!([]));

    // null removes a saved value: config.json's applies again after a restart.
    let (status, removed) = api(
        &gateway,
        Method::PATCH,
        "/settings",
        Some(json!({"node": {"agents": {"defaults": {"maxToolIterations": null}}}})),
    )
    .await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(
        removed["node"]["restartRequired"],
        json!(["agents.defaults.maxToolIterations"])
    );
    // The CLI reads the same files: a broken settings.json is named when loading.
    std::fs::write(
        &settings_file,
        "{\"agents\": {\"defaults\": {\"maxToolIterations\": -1}}}",
    )
    .unwrap();
    let output = env.cli(&["sessions", "list"]).await;
    assert!(!output.status.success(), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("settings.json") && stderr(&output).contains("maxToolIterations"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn a_tenant_rate_limit_changed_through_the_api_bites_on_the_next_request() {
    let mut env = Env::new(vec![]).await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set("/auth", json!({"hs256Secret": SECRET}));
    assert!(
        env.cli(&["tenants", "create", "acme"])
            .await
            .status
            .success()
    );
    let operator = crate::support::token(&env, "acme", "operator").await;
    let gateway = env.serve().await;

    // Before the change the config's default applies.
    let (status, _) = management(&gateway, &operator, Method::GET, "/reviews", None).await;
    assert_eq!(status, 200);
    let (status, patched) = api(
        &gateway,
        Method::PATCH,
        "/tenants/acme",
        Some(json!({"requestsPerMinute": 2, "tokensPerRun": 5000})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");

    let mut statuses = Vec::new();
    let (status, shown) = management(&gateway, &operator, Method::GET, "/settings", None).await;
    statuses.push(status);
    for _ in 0..2 {
        statuses.push(
            management(&gateway, &operator, Method::GET, "/reviews", None)
                .await
                .0,
        );
    }
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(shown["tenant"], "acme");
    assert_eq!(shown["settings"]["requestsPerMinute"], 2);
    assert_eq!(shown["effective"]["limits"]["requestsPerMinute"], 2);
    assert_eq!(shown["effective"]["limits"]["tokensPerRun"], 5000);
    assert!(
        shown.get("node").is_none(),
        "another tenant does not see the node's config: {shown}"
    );
    // The default tenant is not held to acme's limit.
    let (status, _) = api(&gateway, Method::GET, "/reviews", None).await;
    assert_eq!(status, 200);

    // null removes acme's own value: the config's default applies again at once.
    let (status, patched) = api(
        &gateway,
        Method::PATCH,
        "/tenants/acme",
        Some(json!({"requestsPerMinute": null})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert!(
        patched["settings"].get("requestsPerMinute").is_none(),
        "{patched}"
    );
    assert_eq!(
        patched["settings"]["tokensPerRun"], 5000,
        "other fields stay"
    );
    let (status, shown) = management(&gateway, &operator, Method::GET, "/settings", None).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["effective"]["limits"]["requestsPerMinute"], 600);
}
