//! `/reviews`: list, get, long-poll wait and decide.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use facio_actors::{Notice, ReviewDecision, ReviewError};
use facio_services::domain::{RunId, SessionKey, TenantId};
use facio_services::review::{ReviewId, ReviewOutcome, ReviewType};
use facio_services::store::{ReviewFilter, ReviewRecord, ReviewStatus};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Caller;
use super::json::{Body, Params};
use super::store_error;
use crate::error::ApiError;
use crate::routes::AppState;

/// Longest long-poll, as Placet's own wait (30 s).
const MAX_WAIT_MS: u64 = 30_000;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/reviews", get(list))
        .route("/reviews/events", get(events))
        .route("/reviews/{id}", get(one))
        .route("/reviews/{id}/wait", get(wait))
        .route("/reviews/{id}/decide", post(decide))
        .route("/reviews/{id}/rule", get(proposed_rule))
}

/// A review as every surface shows it.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReviewView {
    id: ReviewId,
    #[serde(rename = "type")]
    kind: ReviewType,
    session_key: SessionKey,
    run_id: RunId,
    /// The gated call's id and tool.
    call_id: String,
    tool: String,
    /// Where the turn came from (`interactive`, `cron`, a channel).
    origin: String,
    title: String,
    /// Markdown.
    description: Option<String>,
    /// What the reviewer is shown, in Placet's shape for the review's type.
    #[schema(value_type = Option<Object>)]
    payload: Option<Value>,
    /// The run's recent steps and the policy's reason and risk tier.
    #[schema(value_type = Object)]
    context: Value,
    #[schema(pattern = "^(pending|decided|expired|cancelled)$")]
    status: &'static str,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    /// How it closed (`decided` with the response and reviewer, `timed_out`,
    /// `cancelled`); null while pending.
    #[schema(value_type = Option<Object>)]
    decision: Option<Value>,
}

/// `GET /reviews`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct ReviewList {
    reviews: Vec<ReviewView>,
}

/// A review as every surface shows it.
pub(crate) fn review_view(review: &ReviewRecord) -> ReviewView {
    let decision = review.outcome.as_ref().map(|outcome| match outcome {
        ReviewOutcome::Decided { response, reviewer, comment } => {
            json!({"status": "decided", "response": response, "reviewer": reviewer, "comment": comment, "decidedAt": review.decided_at})
        }
        ReviewOutcome::TimedOut => json!({"status": "timed_out", "action": "deny", "decidedAt": review.decided_at}),
        ReviewOutcome::Cancelled => json!({"status": "cancelled", "decidedAt": review.decided_at}),
    });
    let status = match review.status {
        ReviewStatus::Pending => "pending",
        ReviewStatus::Decided => "decided",
        ReviewStatus::Expired => "expired",
        ReviewStatus::Cancelled => "cancelled",
    };
    ReviewView {
        id: review.id.clone(),
        kind: review.request.review_type(),
        session_key: review.session_key.clone(),
        run_id: review.run_id.clone(),
        call_id: review.call_id.clone(),
        tool: review.tool.clone(),
        origin: review.origin.clone(),
        title: review.request.title.clone(),
        description: review.request.description.clone(),
        payload: serde_json::to_value(&review.request.payload)
            .ok()
            .and_then(|v| v.get("payload").cloned()),
        context: review.context.clone(),
        status,
        created_at: review.created_at,
        expires_at: review.expires_at,
        decision,
    }
}

/// SSE: one `changed` event whenever a review opens or closes (and a first one on
/// connect), so pages re-read the list without polling.
async fn events(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let tenant = caller.tenant().clone();
    let notices = state.runtime.notices();
    let first = futures::stream::once(async { Ok(Event::default().event("changed").data("{}")) });
    let rest = futures::stream::unfold((notices, tenant), |(mut notices, tenant)| async move {
        // Only this tenant's changes: another tenant's ids are none of its business.
        let data = loop {
            match notices.recv().await {
                Ok(Notice::ReviewClosed {
                    review_id,
                    tenant: t,
                }) if t == tenant => {
                    break json!({"reviewId": review_id});
                }
                Ok(Notice::RunChanged { run_id, tenant: t }) if t == tenant => {
                    break json!({"runId": run_id});
                }
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break json!({}),
                Err(_) => return None,
            }
        };
        let event = Event::default().event("changed").data(data.to_string());
        Some((Ok(event), (notices, tenant)))
    });
    Ok(Sse::new(first.chain(rest)).keep_alive(KeepAlive::default()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// `pending`, `decided`, `expired` or `cancelled`; empty or absent: any.
    #[param(pattern = "^(pending|decided|expired|cancelled)?$")]
    status: Option<String>,
    #[param(value_type = Option<SessionKey>)]
    session: Option<String>,
    limit: Option<u32>,
}

async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Params(query): Params<ListQuery>,
) -> Result<Json<ReviewList>, ApiError> {
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(ReviewStatus::parse(s).ok_or_else(|| {
            ApiError::invalid_request(
                Some("status"),
                format!("status must be pending, decided, expired or cancelled, not {s:?}"),
            )
        })?),
    };
    let session_key = query
        .session
        .map(SessionKey::new)
        .transpose()
        .map_err(|e| ApiError::invalid_request(Some("session"), e.to_string()))?;
    let filter = ReviewFilter {
        status,
        session_key,
        run_id: None,
        limit: query.limit,
    };
    let reviews = state
        .runtime
        .store()
        .list_reviews(caller.tenant(), &filter)
        .await
        .map_err(store_error)?;
    Ok(Json(ReviewList {
        reviews: reviews.iter().map(review_view).collect(),
    }))
}

fn parse_id(id: String) -> Result<ReviewId, ApiError> {
    ReviewId::new(id).map_err(|e| ApiError::not_found(format!("no such review: {e}")))
}

async fn load(
    state: &AppState,
    tenant: &TenantId,
    id: &ReviewId,
) -> Result<ReviewRecord, ApiError> {
    state
        .runtime
        .store()
        .get_review(tenant, id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("review {id} does not exist")))
}

async fn one(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ReviewView>, ApiError> {
    let id = parse_id(id)?;
    Ok(Json(review_view(
        &load(&state, caller.tenant(), &id).await?,
    )))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct WaitQuery {
    timeout: Option<u64>,
}

/// Answers as soon as the review closes, or with its pending state at the timeout.
async fn wait(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(query): Params<WaitQuery>,
) -> Result<Json<ReviewView>, ApiError> {
    let id = parse_id(id)?;
    let mut notices = state.runtime.notices();
    let timeout = Duration::from_millis(query.timeout.unwrap_or(MAX_WAIT_MS).min(MAX_WAIT_MS));
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let review = load(&state, caller.tenant(), &id).await?;
        if review.status != ReviewStatus::Pending {
            return Ok(Json(review_view(&review)));
        }
        loop {
            match tokio::time::timeout_at(deadline, notices.recv()).await {
                Err(_) | Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => {
                    return Ok(Json(review_view(
                        &load(&state, caller.tenant(), &id).await?,
                    )));
                }
                Ok(Ok(Notice::ReviewClosed { review_id, .. })) if review_id != id => continue,
                Ok(_) => break,
            }
        }
    }
}

/// Who decided, as the audit log keeps it: a JWT's (or a signed-in reviewer's ID
/// token's) verified subject, never a name the request merely claims. The shared
/// management token (Placet, the CLI, the inbox without sign-in) names no person, so
/// the name it passes along is kept; whoever holds that token is the system's admin
/// already, so the claim grants nothing. Once reviewers sign in with OpenID Connect
/// the token stays an operator credential: it may not decide under a typed name.
fn reviewer(
    state: &AppState,
    caller: &Caller,
    claimed: Option<String>,
) -> Result<String, ApiError> {
    let claimed = claimed
        .map(|name| name.trim().chars().take(200).collect::<String>())
        .filter(|name| !name.is_empty());
    let shared_token = caller.0.subject == super::super::identity::MANAGEMENT_SUBJECT;
    match claimed {
        Some(_) if shared_token && state.oidc.is_some() => Err(ApiError::forbidden(
            "reviewers sign in (auth.oidc is configured): the management token cannot \
             decide under a typed reviewer name; sign in at /inbox or use the reviewer's own \
             token",
        )),
        Some(name) if shared_token => Ok(name),
        _ => Ok(caller.0.subject.clone()),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Decide {
    response: Value,
    reviewer: Option<String>,
    comment: Option<String>,
    /// Approve and add the narrowest allow rule covering exactly this call (tenant
    /// admins only; see `GET /reviews/{id}/rule` for the rule it adds).
    #[serde(default, rename = "alwaysAllow")]
    always_allow: bool,
    /// Approve with edits: the arguments the call runs with instead of the proposed
    /// ones (validated against the tool's schema, re-checked by the policy).
    #[serde(default, rename = "editedArguments")]
    edited_arguments: Option<Value>,
}

/// Characters a word of an exact `exec` rule may hold: no quoting, globs,
/// expansions or shell syntax, so the rule means the command and nothing else.
fn exact_word(word: &str) -> bool {
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c))
}

/// The narrowest allow rule that covers exactly the call `review` shows: its tool,
/// and each argument as it is (an exec command word by word). `Err` says why no such
/// rule can be made (a human's question, a command with shell syntax, ...).
fn narrow_rule(review: &ReviewRecord) -> Result<facio_services::policy::PolicyRule, String> {
    use facio_services::policy::{
        CallContext, CallOrigin, Decision, Policy, PolicyRule, RuleAction,
    };
    if review.tool.starts_with("ask_") {
        return Err("this review is the agent's own question, not a gated call".into());
    }
    if review.context.get("inDoubt") == Some(&json!(true)) {
        return Err(
            "an in-doubt review is about one interrupted call; no rule comes from it".into(),
        );
    }
    let Some(arguments) = review.context.get("arguments").and_then(Value::as_object) else {
        return Err("the review shows no arguments to make a rule from".into());
    };
    let mut params = serde_json::Map::new();
    for (name, value) in arguments {
        let exact = match value {
            Value::String(text) if review.tool == "exec" && name == "command" => {
                let words: Vec<&str> = text.split_whitespace().collect();
                if words.is_empty() || !words.iter().all(|w| exact_word(w)) {
                    return Err(
                        "the command has quoting, globs or shell syntax; an exact allow rule \
                         cannot be made from it (write one with POST /policy)"
                            .into(),
                    );
                }
                Value::String(words.join(" "))
            }
            Value::String(text) if text.contains(['*', '?', '[', ']', '{', '}', '\\']) => {
                return Err(format!(
                    "argument {name} has glob characters; an exact rule cannot be made from it"
                ));
            }
            other => other.clone(),
        };
        params.insert(name.clone(), exact);
    }
    let rule = PolicyRule {
        action: RuleAction::Allow,
        tool: review.tool.clone(),
        params: Some(params),
        network: false,
    };
    rule.validate().map_err(|e| e.to_string())?;
    // It must cover the call it came from, and nothing broader than its arguments.
    let mut only = Policy::default();
    only.rules = vec![rule.clone()];
    let covers = matches!(
        only.decide(&CallContext {
            tool: &review.tool,
            risk: facio_services::tools::RiskTier::SystemEffect,
            args: &Value::Object(arguments.clone()),
            origin: CallOrigin::Interactive,
        }),
        Decision::Run { .. }
    );
    if !covers {
        return Err("no exact rule covers this call".into());
    }
    Ok(rule)
}

/// The caller's tenant's review `id`; 404 when there is none.
async fn find(state: &AppState, caller: &Caller, id: &ReviewId) -> Result<ReviewRecord, ApiError> {
    state
        .runtime
        .store()
        .get_review(caller.tenant(), id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("review {id} does not exist")))
}

fn admin(caller: &Caller) -> bool {
    caller.0.roles.contains(&facio_services::auth::Role::Admin)
}

/// `GET /reviews/{id}/rule`: the rule "approve and always allow" would add, shown to
/// the reviewer before it is saved.
/// `GET /reviews/{id}/rule`: the rule "approve and always allow" would add.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProposedRule {
    review_id: ReviewId,
    rule: facio_services::policy::PolicyRule,
}

/// `POST /reviews/{id}/decide`: the review as decided, and the rule it added.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Decided {
    #[serde(flatten)]
    review: ReviewView,
    /// The allow rule `alwaysAllow` added (absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    rule_added: Option<facio_services::policy::PolicyRule>,
}

async fn proposed_rule(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ProposedRule>, ApiError> {
    let id = parse_id(id)?;
    let review = find(&state, &caller, &id).await?;
    match narrow_rule(&review) {
        Ok(rule) => Ok(Json(ProposedRule {
            review_id: id,
            rule,
        })),
        Err(why) => Err(ApiError::unprocessable(None, why)),
    }
}

async fn decide(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body<Decide>,
) -> Result<Json<Decided>, ApiError> {
    let id = parse_id(id)?;
    // Changing what runs is more than deciding: a reviewer approves or rejects what the
    // agent asked; an operator (or admin) may also edit it.
    if body.edited_arguments.is_some() && !caller.0.may(&[facio_services::auth::Role::Operator]) {
        return Err(ApiError::forbidden(
            "editedArguments changes what runs: it needs the role operator or admin",
        ));
    }
    // "Approve and always allow": checked in full before anything is decided.
    let rule = if body.always_allow {
        if body.edited_arguments.is_some() {
            return Err(ApiError::unprocessable(
                Some("alwaysAllow"),
                "alwaysAllow makes a rule of the call as proposed; it does not go with \
                 editedArguments",
            ));
        }
        if !admin(&caller) {
            return Err(ApiError::forbidden(
                "alwaysAllow adds a policy rule: it needs the role admin",
            ));
        }
        if body.response.get("selectedOption").and_then(Value::as_str) != Some("approve") {
            return Err(ApiError::unprocessable(
                Some("alwaysAllow"),
                "alwaysAllow goes with the approve option",
            ));
        }
        let review = find(&state, &caller, &id).await?;
        Some(
            narrow_rule(&review)
                .map_err(|why| ApiError::unprocessable(Some("alwaysAllow"), why))?,
        )
    } else {
        None
    };
    let decision = ReviewDecision {
        response: body.response,
        reviewer: Some(reviewer(&state, &caller, body.reviewer)?),
        comment: body.comment,
        edited_arguments: body.edited_arguments,
    };
    match state
        .runtime
        .decide_review(caller.tenant(), &id, decision)
        .await
    {
        Ok(review) => {
            let mut shown = Decided {
                review: review_view(&review),
                rule_added: None,
            };
            if let Some(rule) = rule {
                let before = super::policy::load(&state, caller.tenant()).await?;
                let mut after = before.clone();
                let added = after
                    .add(rule.clone())
                    .map_err(|e| ApiError::unprocessable(Some("alwaysAllow"), e.to_string()))?;
                if added {
                    let change = json!({"change": "rule_added", "rule": rule, "fromReview": id});
                    let _saved =
                        super::policy::commit(&state, &caller, &before, &after, change).await?;
                }
                shown.rule_added = Some(rule);
            }
            Ok(Json(shown))
        }
        Err(ReviewError::NotFound(_)) => {
            Err(ApiError::not_found(format!("review {id} does not exist")))
        }
        Err(ReviewError::Closed(review)) => Err(ApiError::conflict(
            "review_closed",
            format!(
                "review {id} is already {}; a decision applies once",
                review.status.as_str()
            ),
        )),
        Err(ReviewError::Invalid(e)) => Err(ApiError::unprocessable(
            Some(&format!("response.{}", e.field())),
            e.to_string(),
        )),
        Err(ReviewError::BadEdit(why)) => Err(ApiError::unprocessable(
            Some("editedArguments"),
            format!("editedArguments: {why}"),
        )),
        Err(ReviewError::Store(e)) => Err(store_error(e)),
        Err(ReviewError::Vault(e)) => Err(ApiError::internal(format!("credential vault: {e}"))),
    }
}
