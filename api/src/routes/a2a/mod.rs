//! The A2A endpoint (protocol v1.0, with the v0.3 method names and shapes for older
//! clients): the agent card at `/.well-known/agent-card.json`, JSON-RPC 2.0 at
//! `POST /a2a`. A task is a run and its `contextId` the run's session; everything is
//! the caller's tenant's. A question the agent asks with an `ask_*` tool puts the task
//! in `TASK_STATE_INPUT_REQUIRED` and the caller's next message with that `taskId`
//! answers it; an approval of a risky call stays with the tenant's reviewers (the task
//! shows WORKING, saying it waits for a human), so a caller never approves its own
//! side effects.

mod card;
mod send;
mod task;
mod v03;

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use facio_services::auth::{Identity, Role};
use facio_services::domain::TenantId;
use serde_json::{Value, json};

use super::AppState;
use crate::error::ApiError;

pub(crate) use card::agent_card;

/// The subject of callers holding the A2A token.
const A2A_SUBJECT: &str = "a2a-token";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/agent-card.json", get(card::public_card))
        .route("/a2a", post(endpoint))
}

/// Which protocol a request speaks: `A2A-Version: 1.0` (or 1.0.x), or none at all
/// for v0.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    V1,
    V03,
}

/// A JSON-RPC error: its code, message and (v1) reason.
#[derive(Debug, Clone)]
pub(super) struct RpcError {
    code: i64,
    message: String,
    reason: &'static str,
}

impl RpcError {
    pub(super) fn new(code: i64, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reason,
        }
    }

    pub(super) fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(-32602, "INVALID_PARAMS", message)
    }

    pub(super) fn task_not_found(id: &str) -> Self {
        Self::new(
            -32001,
            "TASK_NOT_FOUND",
            format!("task {id:?} does not exist"),
        )
    }

    pub(super) fn unsupported(message: impl Into<String>) -> Self {
        Self::new(-32004, "UNSUPPORTED_OPERATION", message)
    }

    pub(super) fn internal(message: impl Into<String>) -> Self {
        Self::new(-32603, "INTERNAL", message)
    }

    /// The `error` member of a response.
    pub(super) fn body(&self, version: Version) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if version == Version::V1 {
            error["data"] = json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": self.reason,
                "domain": "a2a-protocol.org",
            }]);
        }
        error
    }
}

impl From<ApiError> for RpcError {
    fn from(e: ApiError) -> Self {
        RpcError::internal(e.message)
    }
}

/// A verified A2A caller and the request's protocol version.
pub(super) struct Caller {
    pub identity: Identity,
    pub version: Version,
}

impl Caller {
    pub fn tenant(&self) -> &TenantId {
        &self.identity.tenant
    }
}

/// The A2A token (the default tenant, as a client), or a tenant's JWT with the role
/// client or operator. With no token of any kind configured the endpoint answers only
/// on a loopback bind, as the default tenant.
async fn identify(state: &AppState, headers: &HeaderMap) -> Result<Identity, ApiError> {
    let given = super::identity::bearer(headers);
    if let (Some(given), Some(expected)) = (given, &state.a2a_token)
        && facio_services::auth::same_secret(given.as_bytes(), expected.as_bytes())
    {
        let identity = Identity {
            subject: A2A_SUBJECT.to_owned(),
            tenant: TenantId::default_tenant(),
            roles: vec![Role::Client],
            jti: None,
        };
        super::identity::admit(state, &identity.tenant, Some(given)).await?;
        return Ok(identity);
    }
    if state.a2a_token.is_none() && !state.auth_configured() {
        if !super::identity::loopback(&state.config.api.host) {
            return Err(ApiError::unauthorized(
                "no auth is configured and the node listens beyond loopback: set api.a2aToken \
                 (FACIO_A2A_TOKEN) or auth keys before serving A2A",
            ));
        }
        let identity = Identity {
            subject: "a2a-local".to_owned(),
            tenant: TenantId::default_tenant(),
            roles: vec![Role::Client],
            jti: None,
        };
        super::identity::admit(state, &identity.tenant, None).await?;
        return Ok(identity);
    }
    if given.is_none() {
        return Err(ApiError::unauthorized(
            "missing bearer token (Authorization: Bearer <api.a2aToken or a tenant JWT>)",
        ));
    }
    let identity = super::identity::identify(state, headers).await?;
    if !identity.may(&[Role::Client, Role::Operator]) {
        return Err(ApiError::forbidden(
            "A2A calls need the role client or operator",
        ));
    }
    Ok(identity)
}

fn version(headers: &HeaderMap) -> Result<Version, RpcError> {
    let Some(value) = headers.get("a2a-version") else {
        return Ok(Version::V03);
    };
    let text = value.to_str().unwrap_or_default().trim();
    match text {
        "1" | "1.0" => Ok(Version::V1),
        t if t.starts_with("1.0.") => Ok(Version::V1),
        "0.3" => Ok(Version::V03),
        t if t.starts_with("0.3.") => Ok(Version::V03),
        other => Err(RpcError::new(
            -32009,
            "VERSION_NOT_SUPPORTED",
            format!("A2A-Version {other:?} is not supported: this agent speaks 1.0 and 0.3"),
        )),
    }
}

/// A JSON-RPC response with `result`.
pub(super) fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn failure(id: &Value, error: &RpcError, version: Version) -> Response {
    // HTTP 200: clients read the error from the body (a non-2xx answer hides it).
    Json(json!({"jsonrpc": "2.0", "id": id, "error": error.body(version)})).into_response()
}

/// `POST /a2a`.
async fn endpoint(
    State(state): State<AppState>,
    onward: crate::cluster::Onward,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let headers = onward.headers.clone();
    let identity = identify(&state, &headers).await?;
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            let error = RpcError::new(-32700, "PARSE_ERROR", format!("the body is not JSON: {e}"));
            return Ok(failure(&Value::Null, &error, Version::V1));
        }
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let version = match version(&headers) {
        Ok(version) => version,
        Err(error) => return Ok(failure(&id, &error, Version::V1)),
    };
    if request.get("jsonrpc") != Some(&json!("2.0")) || !request["method"].is_string() {
        let error = RpcError::new(
            -32600,
            "INVALID_REQUEST",
            "a JSON-RPC 2.0 request has \"jsonrpc\": \"2.0\" and a method",
        );
        return Ok(failure(&id, &error, version));
    }
    if !matches!(id, Value::String(_) | Value::Number(_) | Value::Null) {
        let error = RpcError::new(-32600, "INVALID_REQUEST", "id must be a string or a number");
        return Ok(failure(&id, &error, version));
    }
    let method = request["method"].as_str().unwrap_or_default().to_owned();
    let params = request.get("params").cloned().unwrap_or_else(|| json!({}));
    if !params.is_object() {
        let error = RpcError::invalid_params("params must be an object");
        return Ok(failure(&id, &error, version));
    }
    let caller = Arc::new(Caller { identity, version });
    let call = Call {
        state,
        caller,
        id,
        params,
        onward,
        body,
    };
    let answer = match method.as_str() {
        "SendMessage" | "message/send" => send::send(call).await,
        "SendStreamingMessage" | "message/stream" => send::stream(call).await,
        "GetTask" | "tasks/get" => task::get(call).await,
        "ListTasks" | "tasks/list" => task::list(call).await,
        "CancelTask" | "tasks/cancel" => task::cancel(call).await,
        "SubscribeToTask" | "tasks/resubscribe" => send::subscribe(call).await,
        "CreateTaskPushNotificationConfig"
        | "GetTaskPushNotificationConfig"
        | "ListTaskPushNotificationConfigs"
        | "ListTaskPushNotificationConfig"
        | "DeleteTaskPushNotificationConfig"
        | "tasks/pushNotificationConfig/set"
        | "tasks/pushNotificationConfig/get"
        | "tasks/pushNotificationConfig/list"
        | "tasks/pushNotificationConfig/delete" => Err((
            call.id,
            RpcError::new(
                -32003,
                "PUSH_NOTIFICATION_NOT_SUPPORTED",
                "push notifications are not supported: follow a task with SubscribeToTask",
            ),
        )),
        "GetExtendedAgentCard" | "agent/getAuthenticatedExtendedCard" => Err((
            call.id,
            RpcError::new(
                -32007,
                "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
                "this agent has no extended card",
            ),
        )),
        other => Err((
            call.id,
            RpcError::new(-32601, "METHOD_NOT_FOUND", format!("no method {other:?}")),
        )),
    };
    Ok(match answer {
        Ok(response) => response,
        Err((id, error)) => failure(&id, &error, version),
    })
}

/// One JSON-RPC call, as the method handlers take it.
pub(super) struct Call {
    pub state: AppState,
    pub caller: Arc<Caller>,
    pub id: Value,
    pub params: Value,
    /// The request as received, to pass on to the session's owner in a cluster.
    pub onward: crate::cluster::Onward,
    pub body: axum::body::Bytes,
}

/// What a method handler answers: a response, or the error for the call's id.
pub(super) type Answer = Result<Response, (Value, RpcError)>;

impl Call {
    /// The call's answer with `value` as its result (in the caller's version).
    pub fn answer(&self, value: Value) -> Answer {
        Ok(Json(result(&self.id, value)).into_response())
    }

    pub fn fail(&self, error: RpcError) -> (Value, RpcError) {
        (self.id.clone(), error)
    }
}
