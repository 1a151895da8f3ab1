//! Tenants and roles on the management API: JWTs scope every request to their tenant
//! (another tenant's things answer 404, as if absent) and their roles (403).

use facio_services::auth::{Claims, Role, issue_hs256};
use facio_tests::model::Reply;
use serde_json::{Value, json};

use crate::support::{Env, http, management as call, stderr};

const SECRET: &str = "tenant-test-secret-that-is-long-enough";

async fn token(env: &Env, tenant: &str, role: &str) -> String {
    let token = crate::support::token(env, tenant, role).await;
    assert_eq!(
        token.split('.').count(),
        3,
        "the token alone on stdout: {token}"
    );
    token
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn tenants_see_only_their_own_and_roles_limit_what_they_do() {
    let mut env = Env::new(vec![
        Reply::tool_call("exec", json!({"command": "echo acme > acme.txt"})),
        Reply::text("Done for acme."),
    ])
    .await;
    env.set("/auth", json!({"hs256Secret": SECRET}));
    for name in ["acme", "globex"] {
        let created = env.cli(&["tenants", "create", name]).await;
        assert!(created.status.success(), "{}", stderr(&created));
    }
    let again = env.cli(&["tenants", "create", "acme"]).await;
    assert!(!again.status.success() && stderr(&again).contains("already exists"));
    let unknown = env
        .cli(&["tokens", "create", "--tenant", "ghost", "--role", "admin"])
        .await;
    assert!(!unknown.status.success() && stderr(&unknown).contains("does not exist"));

    let acme_client = token(&env, "acme", "client").await;
    let acme_reviewer = token(&env, "acme", "reviewer").await;
    let globex_reviewer = token(&env, "globex", "reviewer").await;
    let globex_admin = token(&env, "globex", "admin").await;
    let gateway = env.serve().await;

    let (status, run) = call(
        &gateway,
        &acme_client,
        reqwest::Method::POST,
        "/sessions/acme:ops/messages?wait=20",
        Some(json!({"content": "Write the file."})),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["status"], "awaiting_review");
    let (run_id, review_id) = (
        run["runId"].as_str().unwrap(),
        run["reviews"][0].as_str().unwrap(),
    );

    // Another tenant: everything of acme is absent, not forbidden.
    for path in [format!("/reviews/{review_id}"), format!("/runs/{run_id}")] {
        let (status, body) = call(&gateway, &globex_admin, reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let (status, _) = call(
        &gateway,
        &globex_reviewer,
        reqwest::Method::POST,
        &format!("/reviews/{review_id}/decide"),
        Some(json!({"response": {"selectedOption": "approve"}})),
    )
    .await;
    assert_eq!(status, 404);
    let (_, listed) = call(
        &gateway,
        &globex_admin,
        reqwest::Method::GET,
        "/reviews",
        None,
    )
    .await;
    assert_eq!(listed["reviews"], json!([]));
    let (_, audit) = call(
        &gateway,
        &globex_admin,
        reqwest::Method::GET,
        "/audit",
        None,
    )
    .await;
    assert!(
        !audit.to_string().contains(run_id),
        "globex sees none of acme's audit"
    );

    // Roles: each tried where it must not go.
    let forbidden = [
        (
            &acme_client,
            reqwest::Method::POST,
            format!("/reviews/{review_id}/decide"),
            Some(json!({"response": {"selectedOption": "approve"}})),
        ),
        (
            &acme_client,
            reqwest::Method::GET,
            "/reviews".to_owned(),
            None,
        ),
        (
            &acme_client,
            reqwest::Method::GET,
            "/audit".to_owned(),
            None,
        ),
        (
            &acme_reviewer,
            reqwest::Method::POST,
            "/sessions/acme:x/messages".to_owned(),
            Some(json!({"content": "hi"})),
        ),
        (
            &acme_reviewer,
            reqwest::Method::POST,
            "/policy".to_owned(),
            Some(json!({"action": "allow", "tool": "exec"})),
        ),
        (
            &acme_reviewer,
            reqwest::Method::GET,
            "/audit".to_owned(),
            None,
        ),
    ];
    for (token, method, path, body) in forbidden {
        let (status, error) = call(&gateway, token, method.clone(), &path, body).await;
        assert_eq!(status, 403, "{method} {path}: {error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("needs the role")
        );
    }

    let (status, decided) = call(
        &gateway,
        &acme_reviewer,
        reqwest::Method::POST,
        &format!("/reviews/{review_id}/decide"),
        Some(json!({"response": {"selectedOption": "approve"}, "reviewer": "the-ceo"})),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(
        decided["decision"]["reviewer"], "acme:reviewer",
        "a token's verified subject decides, not a name the request claims: {decided}"
    );
    let events = http()
        .get(format!("{}/api/v1/runs/{run_id}/events", gateway.url))
        .bearer_auth(&acme_client)
        .send()
        .await
        .unwrap();
    let text = tokio::time::timeout(crate::support::PATIENCE, events.text())
        .await
        .expect("the run ended")
        .unwrap();
    assert!(
        text.contains("event: end") && text.contains("Done for acme."),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(env.dir.path().join("data/tenants/acme/workspace/acme.txt"))
            .unwrap(),
        "acme\n"
    );
}

#[tokio::test]
async fn bad_tokens_get_401_with_the_reason_and_never_an_echo() {
    let mut env = Env::new(vec![]).await;
    env.set("/auth", json!({"hs256Secret": SECRET}));
    let created = env.cli(&["tenants", "create", "acme"]).await;
    assert!(created.status.success());
    let gateway = env.serve().await;
    let claims = |tenant: &str, exp: u64| Claims {
        sub: "mallory".into(),
        tenant: tenant.into(),
        roles: vec![Role::Admin],
        exp,
        nbf: None,
        iat: None,
        iss: "facio".into(),
        aud: "facio".into(),
        jti: None,
    };
    let b64 = |text: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    };
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none"}"#),
        b64(&serde_json::to_string(&claims("acme", now() + 600)).unwrap())
    );
    let wrong_audience = issue_hs256(
        &Claims {
            aud: "someone-else".into(),
            ..claims("acme", now() + 600)
        },
        SECRET,
    )
    .unwrap();
    let cases = [
        (
            issue_hs256(
                &claims("acme", now() + 600),
                "a-different-secret-of-enough-length!",
            )
            .unwrap(),
            "signature",
        ),
        (
            issue_hs256(&claims("acme", now() - 600), SECRET).unwrap(),
            "expired",
        ),
        (
            issue_hs256(&claims("ghost", now() + 600), SECRET).unwrap(),
            "unknown tenant",
        ),
        (none, "none"),
        (wrong_audience, "audience"),
        ("garbage".to_owned(), "well-formed"),
    ];
    for (token, reason) in cases {
        let (status, error) = call(&gateway, &token, reqwest::Method::GET, "/reviews", None).await;
        assert_eq!(status, 401, "{reason}: {error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{reason}: {message}");
        assert!(!error.to_string().contains(&token), "the token was echoed");
    }
    let missing = http()
        .get(format!("{}/api/v1/reviews", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
}

#[tokio::test]
async fn the_openai_endpoint_runs_each_tenant_in_its_own_sessions() {
    let mut env = Env::new(vec![
        Reply::text("Hello acme."),
        Reply::text("Hello globex."),
    ])
    .await;
    env.set("/auth", json!({"hs256Secret": SECRET}));
    for name in ["acme", "globex"] {
        assert!(env.cli(&["tenants", "create", name]).await.status.success());
    }
    let acme = token(&env, "acme", "client").await;
    let globex = token(&env, "globex", "client").await;
    let reviewer = token(&env, "globex", "reviewer").await;
    let gateway = env.serve().await;
    let chat = |token: Option<String>, text: &str| {
        let mut request = http()
            .post(format!("{}/v1/chat/completions", gateway.url))
            .header("X-Session-Key", "shared:name")
            .json(&json!({"model": "scripted-1", "messages": [{"role": "user", "content": text}]}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(chat(None, "who am I?").await.unwrap().status(), 401);
    // Who calls is settled before the body is read: garbage without a token is 401.
    let garbage = http()
        .post(format!("{}/v1/chat/completions", gateway.url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 401);
    assert_eq!(
        chat(Some(reviewer), "who am I?").await.unwrap().status(),
        403
    );
    let first: Value = chat(Some(acme), "acme's secret plan")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["choices"][0]["message"]["content"], "Hello acme.");
    let second: Value = chat(Some(globex), "hello")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["choices"][0]["message"]["content"], "Hello globex.");
    let seen = crate::support::request_text(&env.model.requests()[1]);
    assert!(
        !seen.contains("acme's secret plan"),
        "globex's turn saw acme's history: {seen}"
    );
}

#[tokio::test]
async fn a_token_over_its_rate_limit_gets_429_with_retry_after() {
    let mut env = Env::new(vec![]).await;
    env.set("/api/managementToken", json!("rate-limit-token"));
    env.set("/limits", json!({"tokenRequestsPerMinute": 2}));
    let gateway = env.serve().await;
    let statuses: Vec<u16> = {
        let mut out = Vec::new();
        for _ in 0..3 {
            let (status, _) = call(
                &gateway,
                "rate-limit-token",
                reqwest::Method::GET,
                "/reviews",
                None,
            )
            .await;
            out.push(status);
        }
        out
    };
    assert_eq!(statuses, [200, 200, 429]);
    let response = http()
        .get(format!("{}/api/v1/reviews", gateway.url))
        .bearer_auth("rate-limit-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let error: Value = response.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rate limit")
    );
}

#[tokio::test]
async fn system_admins_manage_tenants_over_http() {
    let mut env = Env::new(vec![]).await;
    env.set("/api/managementToken", json!("system-admin-token"));
    env.set("/auth", json!({"hs256Secret": SECRET}));
    assert!(
        env.cli(&["tenants", "create", "acme"])
            .await
            .status
            .success()
    );
    let acme_admin = token(&env, "acme", "admin").await;
    let gateway = env.serve().await;
    let (status, created) = call(
        &gateway,
        "system-admin-token",
        reqwest::Method::POST,
        "/tenants",
        Some(json!({"name": "initech"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (status, _) = call(
        &gateway,
        "system-admin-token",
        reqwest::Method::POST,
        "/tenants",
        Some(json!({"name": "initech"})),
    )
    .await;
    assert_eq!(status, 409);
    let (status, invalid) = call(
        &gateway,
        "system-admin-token",
        reqwest::Method::POST,
        "/tenants",
        Some(json!({"name": "bad name"})),
    )
    .await;
    assert_eq!(status, 422, "{invalid}");
    let (_, listed) = call(
        &gateway,
        "system-admin-token",
        reqwest::Method::GET,
        "/tenants",
        None,
    )
    .await;
    assert_eq!(listed["tenants"], json!(["default", "acme", "initech"]));
    let (status, _) = call(
        &gateway,
        &acme_admin,
        reqwest::Method::GET,
        "/tenants",
        None,
    )
    .await;
    assert_eq!(
        status, 403,
        "a tenant's own admin does not manage other tenants"
    );
}

#[tokio::test]
async fn each_tenant_works_in_its_own_workspace() {
    let mut env = Env::new(vec![
        Reply::tool_call(
            "write_file",
            json!({"path": "notes.txt", "content": "acme only"}),
        ),
        Reply::text("Saved."),
        Reply::tool_call("read_file", json!({"path": "notes.txt"})),
        Reply::tool_call("read_file", json!({"path": "../acme/notes.txt"})),
        Reply::text("Nothing there."),
    ])
    .await;
    env.set("/auth", json!({"hs256Secret": SECRET}));
    for name in ["acme", "globex"] {
        assert!(env.cli(&["tenants", "create", name]).await.status.success());
    }
    let acme = token(&env, "acme", "client").await;
    let globex = token(&env, "globex", "client").await;
    let gateway = env.serve().await;
    for (token, text) in [(&acme, "Save a note."), (&globex, "Read the note.")] {
        let (status, run) = call(
            &gateway,
            token,
            reqwest::Method::POST,
            "/sessions/notes/messages?wait=20",
            Some(json!({"content": text})),
        )
        .await;
        assert_eq!(
            (status, run["status"].as_str()),
            (200, Some("completed")),
            "{run}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(env.dir.path().join("data/tenants/acme/workspace/notes.txt"))
            .unwrap(),
        "acme only"
    );
    assert!(!env.workspace().join("notes.txt").exists());
    assert!(
        !env.workspace().join("tenants").exists(),
        "tenants live outside the default workspace"
    );
    let results: Vec<String> = crate::support::tool_results(&env.model.requests()[4])
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    assert!(results[0].contains("does not exist"), "{results:?}");
    assert!(results[1].contains("outside"), "{results:?}");
}

#[tokio::test]
async fn sessions_and_health_are_served_per_tenant() {
    let mut env = Env::new(vec![Reply::text("Noted for acme.")]).await;
    env.set("/auth", json!({"hs256Secret": SECRET}));
    for name in ["acme", "globex"] {
        assert!(env.cli(&["tenants", "create", name]).await.status.success());
    }
    let acme_client = token(&env, "acme", "client").await;
    let acme_operator = token(&env, "acme", "operator").await;
    let globex_operator = token(&env, "globex", "operator").await;
    let gateway = env.serve().await;
    let (status, _) = call(
        &gateway,
        &acme_client,
        reqwest::Method::POST,
        "/sessions/acme:notes/messages?wait=20",
        Some(json!({"content": "remember this"})),
    )
    .await;
    assert_eq!(status, 200);

    let (status, listed) = call(
        &gateway,
        &acme_operator,
        reqwest::Method::GET,
        "/sessions",
        None,
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["sessions"][0]["key"], "acme:notes");
    let (_, history) = call(
        &gateway,
        &acme_operator,
        reqwest::Method::GET,
        "/sessions/acme:notes",
        None,
    )
    .await;
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["message"]["content"].as_str())
        .collect();
    assert_eq!(texts, ["remember this", "Noted for acme."]);
    let (status, _) = call(
        &gateway,
        &globex_operator,
        reqwest::Method::GET,
        "/sessions/acme:notes",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (_, others) = call(
        &gateway,
        &globex_operator,
        reqwest::Method::GET,
        "/sessions",
        None,
    )
    .await;
    assert_eq!(others["sessions"], json!([]));
    let (status, _) = call(
        &gateway,
        &acme_client,
        reqwest::Method::GET,
        "/sessions",
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, health) = call(
        &gateway,
        &acme_client,
        reqwest::Method::GET,
        "/health",
        None,
    )
    .await;
    assert_eq!(
        (status, health["status"].as_str(), health["tenant"].as_str()),
        (200, Some("ok"), Some("acme"))
    );
}

#[tokio::test]
async fn the_a2a_token_is_its_own_and_opens_nothing_else() {
    let mut env = Env::new(vec![]).await;
    env.set(
        "/api",
        json!({"host": "127.0.0.1", "port": 0, "managementToken": "shared-token-value", "a2aToken": "shared-token-value"}),
    );
    let refused = env.cli(&["serve", "--port", "0"]).await;
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("A2A token must differ"),
        "{}",
        stderr(&refused)
    );

    env.set("/api/a2aToken", json!("a2a-peer-token-value"));
    let gateway = env.serve().await;
    let (status, error) = call(
        &gateway,
        "a2a-peer-token-value",
        reqwest::Method::GET,
        "/health",
        None,
    )
    .await;
    assert_eq!(status, 401, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("A2A endpoint")
    );
    let (status, _) = call(
        &gateway,
        "shared-token-value",
        reqwest::Method::GET,
        "/health",
        None,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_revoked_token_is_refused_by_name_and_both_changes_are_audited() {
    let mut env = Env::new(vec![]).await;
    env.set("/auth", json!({"hs256Secret": SECRET}));
    assert!(
        env.cli(&["tenants", "create", "acme"])
            .await
            .status
            .success()
    );
    let admin = crate::support::token(&env, "acme", "admin").await;
    let reviewer = crate::support::token(&env, "acme", "reviewer").await;
    let gateway = env.serve().await;
    let call = |token: String, method: reqwest::Method, path: String| {
        let gateway = &gateway;
        async move { crate::support::management(gateway, &token, method, &path, None).await }
    };
    let (status, _) = call(reviewer.clone(), reqwest::Method::GET, "/reviews".into()).await;
    assert_eq!(status, 200);

    let (status, listed) = call(admin.clone(), reqwest::Method::GET, "/tokens".into()).await;
    assert_eq!(status, 200, "{listed}");
    let tokens = listed["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2, "{listed}");
    assert!(
        !listed.to_string().contains(&reviewer),
        "never the token itself"
    );
    let jti = tokens
        .iter()
        .find(|t| t["roles"] == json!(["reviewer"]))
        .and_then(|t| t["jti"].as_str())
        .unwrap()
        .to_owned();

    // Only admins revoke; an unknown jti is 404.
    let (status, _) = call(
        reviewer.clone(),
        reqwest::Method::DELETE,
        format!("/tokens/{jti}"),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        admin.clone(),
        reqwest::Method::DELETE,
        "/tokens/tok_nope".into(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = call(
        admin.clone(),
        reqwest::Method::DELETE,
        format!("/tokens/{jti}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let (status, refused) = call(reviewer.clone(), reqwest::Method::GET, "/reviews".into()).await;
    assert_eq!(status, 401, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("revoked") && message.contains(&jti),
        "{refused}"
    );

    // The CLI lists and revokes too.
    let list = env.cli(&["tokens", "list", "--tenant", "acme"]).await;
    assert!(list.status.success());
    let out = crate::support::stdout(&list);
    assert!(out.contains(&jti) && out.contains("revoked"), "{out}");
    let admin_jti = out
        .lines()
        .find(|l| l.contains("admin") && l.contains("active"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let revoke = env
        .cli(&["tokens", "revoke", &admin_jti, "--tenant", "acme"])
        .await;
    assert!(
        revoke.status.success(),
        "{}",
        crate::support::stderr(&revoke)
    );
    let (status, _) = call(admin.clone(), reqwest::Method::GET, "/tokens".into()).await;
    assert_eq!(
        status, 401,
        "a token revoked from the CLI is refused by the running node"
    );

    let url = format!("sqlite://{}", env.database().display());
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let kinds: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, actor FROM audit_events WHERE tenant_id = 'acme' AND kind LIKE 'token_%' ORDER BY seq",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    let kinds: Vec<&str> = kinds.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "token_issued",
            "token_issued",
            "token_revoked",
            "token_revoked"
        ],
        "one event per issue and revocation"
    );
    let created: Vec<(String, String)> = sqlx::query_as(
        "SELECT tenant_id, actor FROM audit_events WHERE kind = 'tenant_created' ORDER BY tenant_id",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(
        created.len(),
        2,
        "in the system tenant's log and the new one's: {created:?}"
    );
    assert!(
        created.iter().all(|(_, actor)| actor.starts_with("cli (")),
        "{created:?}"
    );
}
