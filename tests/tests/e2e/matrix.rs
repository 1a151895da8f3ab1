//! The route matrix: every route the OpenAPI document lists exists, refuses each role
//! it does not admit with 403, refuses callers without a token with 401, and answers
//! another tenant's ids with 404, exactly as if they did not exist.

use facio_tests::model::Reply;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Env, Gateway, http, management, token};

const SECRET: &str = "matrix-test-secret-that-is-long-enough";

/// Calls a route and returns its status and, for JSON answers, the body. Event
/// streams are not read: their status is the answer.
async fn probe(gateway: &Gateway, token: Option<&str>, method: &str, path: &str) -> (u16, Value) {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut request = http().request(method.clone(), format!("{}/api/v1{path}", gateway.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if matches!(
        method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        request = request.json(&json!({}));
    }
    let response = request.send().await.expect("call the management API");
    let status = response.status().as_u16();
    let is_json = response.headers().get("content-type").is_some_and(|v| {
        v.to_str()
            .unwrap_or_default()
            .starts_with("application/json")
    });
    if !is_json {
        return (status, Value::Null);
    }
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_route_checks_token_role_and_tenant() {
    let mut env = Env::new(vec![Reply::text("Acme's answer.")]).await;
    env.set("/auth", json!({"hs256Secret": SECRET}));
    for name in ["acme", "globex"] {
        assert!(env.cli(&["tenants", "create", name]).await.status.success());
    }
    let mut acme = Vec::new();
    for role in ["admin", "operator", "reviewer", "client"] {
        acme.push((role, token(&env, "acme", role).await));
    }
    let globex_admin = token(&env, "globex", "admin").await;
    let gateway = env.serve().await;

    let (status, doc) = probe(&gateway, None, "get", "/openapi.json").await;
    assert_eq!(status, 200, "the document is public");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 30, "{}", paths.len());

    // Acme's things, for the cross-tenant probes.
    let acme_admin = &acme[0].1;
    let (status, run) = management(
        &gateway,
        acme_admin,
        Method::POST,
        "/sessions/acme:s1/messages?wait=20",
        Some(json!({"content": "Hello."})),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    let run_id = run["runId"].as_str().unwrap().to_owned();
    let (status, _) = management(
        &gateway,
        acme_admin,
        Method::POST,
        "/credentials",
        Some(json!({"key": "ACME_KEY", "value": "acme-credential-value"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = management(
        &gateway,
        acme_admin,
        Method::PUT,
        "/workspace/file?path=plan.md",
        Some(json!({"content": "acme's plan"})),
    )
    .await;
    assert_eq!(status, 200);
    for (method, path) in [
        ("get", "/sessions/acme:s1".to_owned()),
        ("delete", "/sessions/acme:s1".to_owned()),
        ("get", format!("/runs/{run_id}")),
        ("get", format!("/runs/{run_id}/events")),
        ("get", format!("/usage/runs/{run_id}")),
        ("get", format!("/audit/runs/{run_id}")),
        ("get", "/credentials/ACME_KEY".to_owned()),
        ("delete", "/credentials/ACME_KEY".to_owned()),
        ("get", "/workspace/file?path=plan.md".to_owned()),
        ("get", "/tenants/acme".to_owned()),
    ] {
        let (status, body) = probe(&gateway, Some(&globex_admin), method, &path).await;
        assert_eq!(status, 404, "globex {method} {path}: {body}");
    }
    let (_, listed) = probe(&gateway, Some(&globex_admin), "get", "/sessions").await;
    assert_eq!(listed["sessions"], json!([]), "{listed}");
    let (_, audit) = probe(&gateway, Some(&globex_admin), "get", "/audit").await;
    assert!(!audit.to_string().contains("acme"), "{audit}");

    let fill = |path: &str| {
        path.replace("{key}", "acme:s1")
            .replace("{runId}", &run_id)
            .replace("{id}", "review-that-does-not-exist")
            .replace("{name}", "acme")
    };
    let mut checked = 0;
    for (path, methods) in paths {
        for (method, operation) in methods.as_object().unwrap() {
            let concrete = fill(path);
            let (status, body) = probe(&gateway, None, method, &concrete).await;
            assert_eq!(status, 401, "no token: {method} {path}: {body}");
            let admitted: Vec<&str> = operation["x-facio-roles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            let system_only = operation["x-facio-system-tenant-only"] == json!(true);
            for (role, token) in &acme {
                let (status, body) = probe(&gateway, Some(token), method, &concrete).await;
                let allowed = admitted.contains(role) && !system_only;
                if allowed {
                    assert_ne!(status, 403, "acme {role} {method} {path}: {body}");
                    assert_ne!(status, 401, "acme {role} {method} {path}: {body}");
                    let missing = body["error"]["message"] == "no such management route";
                    assert!(!missing, "documented but not routed: {method} {path}");
                } else {
                    assert_eq!(status, 403, "acme {role} {method} {path}: {body}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 160, "{checked}");
    let (status, body) = probe(&gateway, Some(acme_admin), "get", "/no-such-route").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["message"], "no such management route");
}
