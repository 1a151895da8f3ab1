//! A misbehaving model provider: rate limits are retried, a hung provider times out,
//! and neither leaves the session stuck.

use std::time::Duration;

use facio::{FacioError, RunOptions};
use facio_actors::StopReason;
use facio_tests::model::Reply;
use serde_json::json;

use crate::support::Env;

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried() {
    let env = Env::new(vec![
        Reply::Error {
            status: 429,
            message: "slow down".into(),
            retry_after: Some(1),
        },
        Reply::error(503, "overloaded"),
        Reply::text("Third time lucky."),
    ])
    .await;
    let facio = env.sdk().await;

    let started = std::time::Instant::now();
    let result = facio
        .run("hello", RunOptions::session("sdk:retry").unwrap())
        .await
        .unwrap();

    assert_eq!(result.content, "Third time lucky.");
    assert_eq!(env.model.requests().len(), 3);
    // Retry-After: 1 was honoured rather than retrying at once.
    assert!(started.elapsed() >= Duration::from_secs(1));
    facio.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_hung_provider_times_out_and_the_session_stays_usable() {
    let mut env = Env::new(vec![
        Reply::Hang,
        Reply::HangMidStream("partial ans".into()),
        Reply::text("Back again."),
    ])
    .await;
    env.set("/agents/defaults/requestTimeoutS", json!(1));
    env.set("/agents/defaults/maxRetries", json!(1));
    let facio = env.sdk().await;

    let failed = facio
        .run("hello", RunOptions::session("sdk:hung").unwrap())
        .await;
    match failed {
        Err(FacioError::TurnFailed {
            reason: StopReason::ProviderFailed(reason),
            ..
        }) => {
            assert!(
                reason.contains("timed out") || reason.contains("timeout"),
                "{reason}"
            )
        }
        other => panic!("expected a provider timeout, got {other:?}"),
    }
    assert_eq!(env.model.requests().len(), 2, "one call and one retry");

    let result = facio
        .run("are you there?", RunOptions::session("sdk:hung").unwrap())
        .await
        .unwrap();
    assert_eq!(result.content, "Back again.");
    facio.shutdown(Duration::from_secs(5)).await;
}
