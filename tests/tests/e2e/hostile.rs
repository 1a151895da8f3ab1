//! Hostile input: random, truncated, oversized and deeply nested bodies to every JSON
//! route. Each gets a 4xx JSON error; nothing answers 5xx and the gateway stays up.

use facio_tests::model::Reply;
use serde_json::{Value, json};

use crate::support::{Env, http};

const TOKEN: &str = "hostile-test-token";

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next() & 0xff) as u8).collect()
    }
}

fn bodies(valid: &Value, rng: &mut XorShift) -> Vec<Vec<u8>> {
    let text = valid.to_string().into_bytes();
    let mut out: Vec<Vec<u8>> = (0..text.len())
        .step_by(3)
        .map(|n| text[..n].to_vec())
        .collect();
    for len in [1, 7, 64, 513] {
        out.push(rng.bytes(len));
    }
    out.push(format!("{}{}", "[".repeat(20_000), "]".repeat(20_000)).into_bytes());
    out.push(b"null".to_vec());
    out.push(b"[]".to_vec());
    out.push(b"\"just a string\"".to_vec());
    out.push(
        json!({"content": 42, "response": "no", "action": [], "tool": {}, "messages": "x"})
            .to_string()
            .into_bytes(),
    );
    out.push(vec![b'{'; 100_000]);
    out
}

#[tokio::test]
async fn no_json_route_answers_5xx_to_garbage() {
    let mut env = Env::new(vec![
        Reply::tool_call("exec", json!({"command": "echo x"})),
        Reply::text("ok"),
    ])
    .await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set(
        "/limits",
        json!({"tenantRequestsPerMinute": 100000, "tokenRequestsPerMinute": 100000}),
    );
    let gateway = env.serve().await;
    let created = http()
        .post(format!(
            "{}/api/v1/sessions/fuzz:one/messages?wait=20",
            gateway.url
        ))
        .bearer_auth(TOKEN)
        .json(&json!({"content": "open a review"}))
        .send()
        .await
        .unwrap();
    let run: Value = created.json().await.unwrap();
    let review = run["reviews"][0]
        .as_str()
        .expect("a pending review to aim at")
        .to_owned();

    let routes = [
        (
            "POST",
            "/v1/chat/completions".to_owned(),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "POST",
            "/api/v1/sessions/fuzz:two/messages".to_owned(),
            json!({"content": "hi"}),
        ),
        (
            "POST",
            format!("/api/v1/reviews/{review}/decide"),
            json!({"response": {"selectedOption": "reject"}, "reviewer": "x"}),
        ),
        (
            "POST",
            "/api/v1/policy".to_owned(),
            json!({"action": "deny", "tool": "exec", "params": {"command": "rm *"}}),
        ),
        (
            "DELETE",
            "/api/v1/policy".to_owned(),
            json!({"action": "deny", "tool": "exec"}),
        ),
        (
            "PATCH",
            "/api/v1/policy/settings".to_owned(),
            json!({"enabled": true, "skipCron": false}),
        ),
        (
            "POST",
            "/api/v1/credentials".to_owned(),
            json!({"key": "FUZZ_KEY", "value": "fuzz-value", "exposed": false}),
        ),
        (
            "PUT",
            "/api/v1/credentials/FUZZ_KEY".to_owned(),
            json!({"value": "fuzz-value", "exposed": true}),
        ),
        (
            "PUT",
            "/api/v1/credentials/FUZZ_KEY/exposed".to_owned(),
            json!({"exposed": true}),
        ),
        (
            "POST",
            "/api/v1/credentials/providers".to_owned(),
            json!({"name": "scripted", "apiKey": "sk-fuzz"}),
        ),
        (
            "PUT",
            "/api/v1/workspace/file?path=fuzz.txt".to_owned(),
            json!({"content": "fuzz"}),
        ),
        (
            "POST",
            "/api/v1/commands/new".to_owned(),
            json!({"sessionKey": "fuzz:three"}),
        ),
        (
            "POST",
            "/api/v1/commands/stop".to_owned(),
            json!({"sessionKey": "fuzz:three"}),
        ),
        (
            "PATCH",
            "/api/v1/tenants/default".to_owned(),
            json!({"models": ["m"], "tokensPerDay": 10, "tokensPerMonth": 100}),
        ),
        (
            "POST",
            "/api/v1/tenants".to_owned(),
            json!({"name": "fuzzed"}),
        ),
    ];
    let mut rng = XorShift(0x5eed_f00d_cafe_b0ba);
    let client = http();
    let mut sent = 0;
    for (method, path, valid) in &routes {
        for body in bodies(valid, &mut rng) {
            // The chat route must not start turns from garbage that happens to parse.
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let response = client
                .request(method.clone(), format!("{}{path}", gateway.url))
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert!(
                status.as_u16() < 500,
                "{method} {path} answered {status} to {:?}: {text}",
                String::from_utf8_lossy(&body[..body.len().min(80)])
            );
            if !status.is_success() {
                let error: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
                assert!(
                    error["error"]["message"]
                        .as_str()
                        .is_some_and(|m| !m.is_empty()),
                    "{text}"
                );
            }
            sent += 1;
        }
    }
    assert!(sent > 100, "only {sent} bodies sent");
    let health = client
        .get(format!("{}/health", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "the gateway survived");
}
