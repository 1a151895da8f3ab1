//! Usage and budgets: every model call is recorded with its tokens and estimated
//! cost, `/api/v1/usage` sums it, a tenant's daily budget stops a conversation cleanly
//! and its model allow list refuses other models.

use facio_tests::model::Reply;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Env, management as call};

const TOKEN: &str = "usage-management-token";

async fn send(gateway: &crate::support::Gateway, session: &str, text: &str) -> Value {
    let (status, run) = call(
        gateway,
        TOKEN,
        Method::POST,
        &format!("/sessions/{session}/messages?wait=20"),
        Some(json!({"content": text})),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    run
}

#[tokio::test]
async fn usage_is_recorded_priced_and_a_daily_budget_stops_the_conversation() {
    let mut env = Env::new(vec![
        Reply::tool_call("list_dir", json!({})),
        Reply::text("The workspace is empty."),
        Reply::text("Second answer."),
        Reply::text("never sent: the budget is used up"),
    ])
    .await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set(
        "/pricing",
        json!({"scripted-1": {"inputPerMillion": 3.0, "outputPerMillion": 15.0}}),
    );
    let gateway = env.serve().await;

    let first = send(&gateway, "u:1", "What is in the workspace?").await;
    assert_eq!(first["status"], "completed", "{first}");
    let run_id = first["runId"].as_str().unwrap();

    let (status, usage) = call(&gateway, TOKEN, Method::GET, "/usage", None).await;
    assert_eq!(status, 200, "{usage}");
    let totals = &usage["totals"];
    assert_eq!(totals["calls"], 2, "{usage}");
    assert_eq!(totals["runs"], 1, "{usage}");
    let (prompt, completion) = (
        totals["promptTokens"].as_u64().unwrap(),
        totals["completionTokens"].as_u64().unwrap(),
    );
    assert!(prompt > 0 && completion > 0, "{usage}");
    let expected_micros = (prompt * 3 + completion * 15) as f64;
    let cost_micros = totals["costMicros"].as_u64().unwrap() as f64;
    assert!(
        (cost_micros - expected_micros).abs() <= 2.0,
        "{cost_micros} vs {expected_micros}"
    );
    assert_eq!(usage["groups"][0]["key"], "scripted-1", "{usage}");

    let (status, by_run) = call(
        &gateway,
        TOKEN,
        Method::GET,
        &format!("/usage/runs/{run_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{by_run}");
    assert_eq!(by_run["calls"].as_array().unwrap().len(), 2, "{by_run}");
    assert_eq!(
        by_run["usage"]["totalTokens"], totals["totalTokens"],
        "the run's own total matches its calls"
    );
    let (status, _) = call(
        &gateway,
        TOKEN,
        Method::GET,
        "/usage/runs/01890000-0000-7000-8000-000000000000",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, bad) = call(&gateway, TOKEN, Method::GET, "/usage?groupBy=colour", None).await;
    assert_eq!(status, 400, "{bad}");

    // A daily budget just above what is used: the next turn runs, the one after stops.
    let used = totals["totalTokens"].as_u64().unwrap();
    let (status, tenant) = call(
        &gateway,
        TOKEN,
        Method::PATCH,
        "/tenants/default",
        Some(json!({"tokensPerDay": used + 1})),
    )
    .await;
    assert_eq!(status, 200, "{tenant}");
    assert_eq!(tenant["settings"]["tokensPerDay"], used + 1);
    let second = send(&gateway, "u:1", "And now?").await;
    assert_eq!(second["content"], "Second answer.", "{second}");
    let requests_before = env.model.requests().len();
    let third = send(&gateway, "u:1", "Once more?").await;
    assert_eq!(third["status"], "completed", "{third}");
    let text = third["content"].as_str().unwrap();
    assert!(text.contains("daily budget"), "{text}");
    assert_eq!(
        env.model.requests().len(),
        requests_before,
        "no model call past the budget"
    );
    let (_, usage) = call(&gateway, TOKEN, Method::GET, "/usage", None).await;
    assert_eq!(usage["budgets"]["day"]["limitTokens"], used + 1, "{usage}");
    let (_, events) = call(
        &gateway,
        TOKEN,
        Method::GET,
        "/audit?type=budget_exhausted",
        None,
    )
    .await;
    assert_eq!(events["events"][0]["data"]["scope"], "day", "{events}");
    let (_, history) = call(&gateway, TOKEN, Method::GET, "/sessions/u:1", None).await;
    let last = history["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(
        last.to_string().contains("daily budget"),
        "the stop is the conversation's last word: {last}"
    );

    // A model allow list: clients naming another model are refused, as are runs.
    let (status, _) = call(
        &gateway,
        TOKEN,
        Method::PATCH,
        "/tenants/default",
        Some(json!({"tokensPerDay": 0, "models": ["approved-model"]})),
    )
    .await;
    assert_eq!(status, 200);
    let refused = gateway
        .post_chat(
            &json!({"model": "scripted-1", "messages": [{"role": "user", "content": "hi"}]}),
            None,
        )
        .await;
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_allowed", "{body}");
    let blocked = send(&gateway, "u:2", "Hello?").await;
    assert_eq!(blocked["status"], "failed", "{blocked}");
    assert_eq!(env.model.requests().len(), requests_before);
}

#[tokio::test]
async fn a_run_resumed_after_a_review_reports_and_budgets_every_call_it_made() {
    let mut env = Env::new(vec![
        Reply::tool_call("exec", json!({"command": "echo hi"})),
        Reply::text("Said hi."),
        Reply::tool_call("exec", json!({"command": "echo again"})),
        Reply::text("never sent: the run's cap is reached"),
    ])
    .await;
    env.set("/api/managementToken", json!(TOKEN));
    let gateway = env.serve().await;
    let api = |method: reqwest::Method, path: String, body: Option<Value>| {
        let gateway = &gateway;
        async move { crate::support::management(gateway, TOKEN, method, &path, body).await }
    };
    let decide_first = |run: Value| {
        let (api, gateway) = (&api, &gateway);
        async move {
            let review = run["reviews"][0].as_str().unwrap().to_owned();
            let body = json!({"response": {"selectedOption": "approve"}});
            let (status, _) = api(
                reqwest::Method::POST,
                format!("/reviews/{review}/decide"),
                Some(body),
            )
            .await;
            assert_eq!(status, 200);
            let run_id = run["runId"].as_str().unwrap().to_owned();
            crate::support::follow_run(gateway, TOKEN, &run_id, |state| {
                let status = state["status"].as_str()?;
                (status != "running" && status != "awaiting_review").then(|| state.clone())
            })
            .await
            .expect("the run ended")
        }
    };
    let first = send(&gateway, "u:resume", "Say hi.").await;
    assert_eq!(first["status"], "awaiting_review", "{first}");
    let done = decide_first(first.clone()).await;
    assert_eq!(done["status"], "completed", "{done}");
    let run_id = first["runId"].as_str().unwrap();
    let (_, calls) = api(reqwest::Method::GET, format!("/usage/runs/{run_id}"), None).await;
    let listed: u64 = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["totalTokens"].as_u64().unwrap())
        .sum();
    assert_eq!(calls["calls"].as_array().unwrap().len(), 2, "{calls}");
    let (_, run) = api(reqwest::Method::GET, format!("/runs/{run_id}"), None).await;
    assert_eq!(
        run["usage"]["total_tokens"].as_u64(),
        Some(listed),
        "the run reports the sum of its calls across the resume: {run} {calls}"
    );

    // A cap its first call already reaches: the resumed run stops at its cap and
    // reports what it spent, not zero.
    let (status, _) = api(
        reqwest::Method::PATCH,
        "/tenants/default".into(),
        Some(json!({"tokensPerRun": 1})),
    )
    .await;
    assert_eq!(status, 200);
    let second = send(&gateway, "u:capped", "Say it again.").await;
    assert_eq!(second["status"], "awaiting_review", "{second}");
    let stopped = decide_first(second.clone()).await;
    let run_id = second["runId"].as_str().unwrap();
    let (_, run) = api(reqwest::Method::GET, format!("/runs/{run_id}"), None).await;
    let (_, calls) = api(reqwest::Method::GET, format!("/usage/runs/{run_id}"), None).await;
    let spent = calls["calls"][0]["totalTokens"].as_u64().unwrap();
    assert_eq!(calls["calls"].as_array().unwrap().len(), 1, "{calls}");
    assert!(spent > 0);
    assert_eq!(
        run["usage"]["total_tokens"].as_u64(),
        Some(spent),
        "{stopped} {run}"
    );
    assert_eq!(
        env.model.requests().len(),
        3,
        "the capped run made no second call"
    );
}
