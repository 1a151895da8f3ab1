//! Sessions that wait on a human: N sessions, each ending its turn at a review the
//! policy opens for its tool call; and how fast a decision resumes such a run.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::api::{Events, Gateway};

/// A session whose turn stopped at a pending review.
#[derive(Debug, Clone)]
pub struct Waiting {
    pub session: String,
    pub run_id: String,
    pub review_id: String,
}

/// The review and run ids in the answer of a turn that stopped at a review
/// ("A human review is pending (review ID, run ID). ...").
pub fn pending_ids(content: &str) -> Option<(String, String)> {
    let rest = content.split_once("(review ")?.1;
    let (review, rest) = rest.split_once(", run ")?;
    let run = rest.split_once(')')?.0;
    Some((review.to_owned(), run.to_owned()))
}

/// Opens `session` with one turn that must stop at a review.
pub async fn open_one(gateway: &Gateway, session: String) -> Result<Waiting, String> {
    let answer = gateway.chat(&session, "run the command").await?;
    if answer.status != 200 {
        return Err(format!("{}: {}", answer.status, answer.body));
    }
    let content = answer.content().unwrap_or_default();
    let (review_id, run_id) = pending_ids(content)
        .ok_or_else(|| format!("the turn did not stop at a review: {content}"))?;
    Ok(Waiting {
        session,
        run_id,
        review_id,
    })
}

/// What opening the sessions gave.
pub struct Opened {
    pub waiting: Vec<Waiting>,
    pub errors: usize,
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

/// Opens `keys`, at most `concurrency` at once, printing progress to stderr.
pub async fn open_all(gateway: &Gateway, keys: Vec<String>, concurrency: usize) -> Opened {
    let total = keys.len();
    let started = Instant::now();
    let mut results = futures::stream::iter(keys)
        .map(|key| open_one(gateway, key))
        .buffer_unordered(concurrency.max(1));
    let (mut waiting, mut errors, mut first_error) = (Vec::with_capacity(total), 0, None);
    let step = (total / 10).max(1);
    let mut done = 0;
    while let Some(result) = results.next().await {
        match result {
            Ok(w) => waiting.push(w),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
        done += 1;
        if done % step == 0 {
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "opened {done} / {total} ({errors} errors) in {secs:.1} s, {:.0}/s",
                done as f64 / secs
            );
        }
    }
    Opened {
        waiting,
        errors,
        first_error,
        elapsed: started.elapsed(),
    }
}

/// The pending reviews the gateway lists, up to `limit`.
pub async fn pending_reviews(gateway: &Gateway, limit: usize) -> Result<usize, String> {
    let listed = gateway
        .get_json(&format!("/api/v1/reviews?status=pending&limit={limit}"))
        .await?;
    Ok(listed["reviews"].as_array().map_or(0, Vec::len))
}

/// How one decision went, timed from just before the decision was sent.
#[derive(Debug, Clone, Copy)]
pub struct Resumed {
    /// Until the decision's 200 arrived.
    pub decided: Duration,
    /// Until the run's event stream first showed it no longer awaiting review.
    pub resumed: Duration,
    /// Until the stream's `end` event (the run finished).
    pub finished: Duration,
    pub completed: bool,
}

/// Approves `w`'s review with the run's event stream open, and times the run
/// resuming and finishing as the stream reports it.
pub async fn decide_one(gateway: &Gateway, w: &Waiting) -> Result<Resumed, String> {
    let response = gateway
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/runs/{}/events", w.run_id),
        )
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("run events: {}", response.status()));
    }
    let mut events = Events::new(response);
    let first = events
        .next()
        .await?
        .ok_or("the run's stream ended at once")?;
    let status = run_status(&first.data);
    if status != "awaiting_review" {
        return Err(format!("run {} is {status}, not awaiting review", w.run_id));
    }
    let started = Instant::now();
    let decide = async {
        let answer = gateway
            .request(
                reqwest::Method::POST,
                &format!("/api/v1/reviews/{}/decide", w.review_id),
            )
            .json(&json!({"response": {"selectedOption": "approve"}, "reviewer": "load"}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let at = Instant::now();
        let status = answer.status();
        if !status.is_success() {
            let body = answer.text().await.unwrap_or_default();
            return Err(format!("decide: {status}: {body}"));
        }
        Ok(at)
    };
    let follow = async {
        let mut resumed = None;
        loop {
            let event = tokio::time::timeout(Duration::from_secs(60), events.next())
                .await
                .map_err(|_| "no end of the run within 60 s".to_owned())??
                .ok_or("the run's stream ended without `end`")?;
            let status = run_status(&event.data);
            if status != "awaiting_review" {
                resumed.get_or_insert(event.at);
            }
            if event.name == "end" {
                return Ok::<_, String>((resumed.unwrap_or(event.at), event.at, status));
            }
        }
    };
    let (decided, followed) = tokio::join!(decide, follow);
    let (decided, (resumed, finished, status)) = (decided?, followed?);
    Ok(Resumed {
        decided: decided - started,
        resumed: resumed - started,
        finished: finished - started,
        completed: status == "completed",
    })
}

fn run_status(data: &str) -> String {
    serde_json::from_str::<Value>(data)
        .ok()
        .and_then(|run| run["status"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Decides every one of `sample`, at most `concurrency` at once.
pub async fn decide_all(
    gateway: &Gateway,
    sample: &[Waiting],
    concurrency: usize,
) -> Vec<Result<Resumed, String>> {
    futures::stream::iter(sample)
        .map(|w| decide_one(gateway, w))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_ids_of_a_pending_review_answer() {
        let content = "A human review is pending (review rv_01, run run_02). The run continues \
                       once it is decided";
        assert_eq!(
            super::pending_ids(content),
            Some(("rv_01".to_owned(), "run_02".to_owned()))
        );
        assert_eq!(super::pending_ids("ok"), None);
    }
}
