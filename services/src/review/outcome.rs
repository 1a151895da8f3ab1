//! How a review ended, and the tool result the agent receives for it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::response::ValidatedResponse;
use super::secrets::SecretString;

/// How a review ended. Persisted with the gate; `tool_result_for` turns it into what
/// the model reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ReviewOutcome {
    /// A human answered.
    Decided {
        /// The validated answer with secrets already replaced by placeholders (build
        /// it with [`ReviewOutcome::decided`] so no raw secret can end up here).
        response: Value,
        /// Who answered, when the surface knows.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reviewer: Option<String>,
        /// A note the reviewer left beside the structured answer (Placet's
        /// `feedback`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// Nobody answered before the review expired; the gate denies.
    TimedOut,
    /// The review was withdrawn (run stopped, session reset) before an answer.
    Cancelled,
}

impl ReviewOutcome {
    /// The outcome of an answered review, and the secrets split out of it, which go
    /// to the credential store and nowhere else.
    pub fn decided(
        response: ValidatedResponse,
        reviewer: Option<String>,
        comment: Option<String>,
    ) -> (Self, Vec<(String, SecretString)>) {
        let (response, secrets) = response.split_secrets();
        let outcome = Self::Decided {
            response,
            reviewer,
            comment: comment.filter(|c| !c.trim().is_empty()),
        };
        (outcome, secrets)
    }
}

/// The compact JSON text the model receives as the HITL tool's result:
/// `{"status":"decided","response":{...},"reviewer":"alice","comment":"..."}`,
/// `{"status":"timed_out","action":"deny"}` or `{"status":"cancelled"}`.
pub fn tool_result_for(outcome: &ReviewOutcome) -> String {
    match outcome {
        ReviewOutcome::Decided {
            response,
            reviewer,
            comment,
        } => {
            // A struct, not a map, so `status` comes first for the model to read.
            let result = DecidedResult {
                status: "decided",
                response,
                reviewer: reviewer.as_deref(),
                comment: comment.as_deref(),
            };
            // Serializing strings and a JSON value cannot fail.
            serde_json::to_string(&result).unwrap_or_default()
        }
        ReviewOutcome::TimedOut => r#"{"status":"timed_out","action":"deny"}"#.to_owned(),
        ReviewOutcome::Cancelled => r#"{"status":"cancelled"}"#.to_owned(),
    }
}

#[derive(Serialize)]
struct DecidedResult<'a> {
    status: &'static str,
    response: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    reviewer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<&'a str>,
}
