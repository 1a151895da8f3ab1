//! Hostile input: random, truncated, oversized and deeply nested bodies to every JSON
//! route. Each gets a 4xx JSON error; nothing answers 5xx and the gateway stays up.

use facio_tests::model::Reply;
use serde_json::{Value, json};

use crate::support::{Env, http};

const TOKEN: &str = "hostile-test-token";

/// A small deterministic generator, so a failure can be replayed.
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    pub(crate) fn next(&mut self) -> u64 {
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
        (
            "PATCH",
            "/api/v1/settings".to_owned(),
            json!({"tenant": {"tokensPerDay": 100000}, "node": {"agents": {"defaults": {"maxToolIterations": 5}}}}),
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

/// Reads what the server sends until it closes (or resets) the connection.
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let read = async {
        let mut buffer = [0u8; 4096];
        while let Ok(n @ 1..) = stream.read(&mut buffer).await {
            answer.extend_from_slice(&buffer[..n]);
        }
    };
    tokio::time::timeout(crate::support::PATIENCE, read)
        .await
        .expect("the server gave up on the slow client in time");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_others_are_still_served() {
    use tokio::io::AsyncWriteExt;
    let mut env = Env::new(vec![]).await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set(
        "/api",
        json!({"host": "127.0.0.1", "port": 0, "managementToken": TOKEN,
               "headerReadTimeoutS": 1, "bodyIdleTimeoutS": 1}),
    );
    let gateway = env.serve().await;
    let address = gateway.url.trim_start_matches("http://").to_owned();

    // Headers that never finish: the connection is closed, not held.
    let mut trickle = tokio::net::TcpStream::connect(&address).await.unwrap();
    trickle
        .write_all(b"GET /health HTTP/1.1\r\nHost: facio\r\nX-Slow: ")
        .await
        .unwrap();
    let answer = read_until_closed(&mut trickle).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // A body that stops half way: 408 with a JSON reason.
    let mut stalled = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/v1/policy HTTP/1.1\r\nHost: facio\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\nConnection: close\r\n\r\n\
         {{\"action\": "
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stalled).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert!(answer.contains("no part of the request body"), "{answer}");

    // Headers far over the size a request may carry: refused, not buffered.
    let mut huge = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "GET /health HTTP/1.1\r\nHost: facio\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let _ = huge.write_all(head.as_bytes()).await;
    let answer = read_until_closed(&mut huge).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(200)]
    );

    let health = http()
        .get(format!("{}/health", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        health.status(),
        200,
        "well-behaved clients are still served"
    );
}

#[tokio::test]
async fn bad_query_strings_get_json_errors_naming_the_problem() {
    let mut env = Env::new(vec![]).await;
    env.set("/api/managementToken", json!(TOKEN));
    let gateway = env.serve().await;
    for (path, named) in [
        ("/audit?bogus=1", "bogus"),
        ("/sessions?limit=many", "limit"),
        ("/usage?since=yesterday", "since"),
        ("/workspace/tree?depth=-1", "depth"),
        ("/audit/tail?limit=lots", "limit"),
    ] {
        let response = http()
            .get(format!("{}/api/v1{path}", gateway.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert!((400..500).contains(&status), "{path}: {status} {text}");
        let error: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}"));
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(named), "{path}: {message}");
    }
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_json() {
    let mut env = Env::new(vec![]).await;
    env.set("/api/managementToken", json!(TOKEN));
    let gateway = env.serve().await;
    let huge = format!("{{\"content\": \"{}\"}}", "x".repeat(5 * 1024 * 1024));
    for path in ["/api/v1/sessions/big:1/messages", "/v1/chat/completions"] {
        let response = http()
            .post(format!("{}{path}", gateway.url))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(huge.clone())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, 413, "{path}: {text}");
        let error: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{text}"));
        assert_eq!(error["error"]["code"], "too_large", "{text}");
    }
}
