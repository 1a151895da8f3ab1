//! `/mcp`: the tenant's MCP servers. Those of `tools.mcpServers` (every tenant has
//! them) are listed and restarted here; the tenant's own are also added, replaced,
//! removed, enabled and disabled. Only the operator (the management token) adds
//! `stdio` servers, which run a command on the node.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use facio_services::config::McpServerConfig;
use facio_services::mcp::{McpActor, McpError, McpServerView};
use serde::Deserialize;

use super::Caller;
use super::json::Body;
use crate::error::ApiError;
use crate::routes::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/mcp", get(list).post(create))
        .route(
            "/mcp/{name}",
            get(show).put(replace).patch(patch).delete(remove),
        )
        .route("/mcp/{name}/enable", post(enable))
        .route("/mcp/{name}/disable", post(disable))
        .route("/mcp/{name}/restart", post(restart))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct McpServerList {
    servers: Vec<McpServerView>,
}

/// A new server: its name and its definition.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct NewMcpServer {
    #[schema(pattern = "^[A-Za-z0-9-]{1,32}$")]
    name: String,
    #[serde(flatten)]
    definition: McpServerConfig,
}

fn actor(caller: &Caller) -> McpActor {
    McpActor {
        name: caller.subject().to_owned(),
        operator: caller.subject() == crate::routes::identity::MANAGEMENT_SUBJECT,
        run: None,
        context: caller.audit_context(),
    }
}

fn refused(e: McpError) -> ApiError {
    match e {
        McpError::Invalid(m) => ApiError::invalid_request(None, m),
        McpError::NotFound(name) => {
            ApiError::not_found(format!("there is no MCP server named {name}"))
        }
        McpError::Conflict(m) => ApiError::conflict("mcp_server_exists", m),
        McpError::Forbidden(m) => ApiError::forbidden(m),
        McpError::Store(e) => super::store_error(e),
    }
}

async fn list(caller: Caller, State(state): State<AppState>) -> Json<McpServerList> {
    Json(McpServerList {
        servers: state.runtime.mcp().list(caller.tenant()).await,
    })
}

async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<McpServerView>, ApiError> {
    let hub = state.runtime.mcp();
    hub.get(caller.tenant(), &name)
        .await
        .map(Json)
        .map_err(refused)
}

async fn create(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<NewMcpServer>,
) -> Result<(StatusCode, Json<McpServerView>), ApiError> {
    let hub = state.runtime.mcp();
    let view = hub
        .put(
            caller.tenant(),
            &body.name,
            body.definition,
            false,
            &actor(&caller),
        )
        .await
        .map_err(refused)?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn replace(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Body(definition): Body<McpServerConfig>,
) -> Result<Json<McpServerView>, ApiError> {
    let hub = state.runtime.mcp();
    hub.put(caller.tenant(), &name, definition, true, &actor(&caller))
        .await
        .map(Json)
        .map_err(refused)
}

async fn patch(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Body(fields): Body<serde_json::Map<String, serde_json::Value>>,
) -> Result<Json<McpServerView>, ApiError> {
    let hub = state.runtime.mcp();
    hub.patch(caller.tenant(), &name, &fields, &actor(&caller))
        .await
        .map(Json)
        .map_err(refused)
}

async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let hub = state.runtime.mcp();
    hub.remove(caller.tenant(), &name, &actor(&caller))
        .await
        .map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn enable(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<McpServerView>, ApiError> {
    let hub = state.runtime.mcp();
    hub.set_enabled(caller.tenant(), &name, true, &actor(&caller))
        .await
        .map(Json)
        .map_err(refused)
}

async fn disable(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<McpServerView>, ApiError> {
    let hub = state.runtime.mcp();
    hub.set_enabled(caller.tenant(), &name, false, &actor(&caller))
        .await
        .map(Json)
        .map_err(refused)
}

async fn restart(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<McpServerView>, ApiError> {
    let hub = state.runtime.mcp();
    hub.restart(caller.tenant(), &name, &actor(&caller))
        .await
        .map(Json)
        .map_err(refused)
}

/// The request bodies as the document describes them: one shape per transport (what
/// the handlers read is [`McpServerConfig`], which checks the same rules).
pub(super) mod schema {
    #![allow(dead_code)]

    use std::collections::BTreeMap;

    use serde::Deserialize;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};

    /// An MCP server's definition.
    #[derive(Deserialize, utoipa::ToSchema)]
    #[serde(untagged)]
    pub enum McpServerDefinition {
        Stdio(StdioServer),
        StreamableHttp(HttpServer),
    }

    /// A new MCP server: its name and its definition.
    #[derive(Deserialize, utoipa::ToSchema)]
    #[serde(untagged)]
    pub enum NewMcpServerBody {
        Stdio(NamedStdioServer),
        StreamableHttp(NamedHttpServer),
    }

    #[derive(Deserialize, utoipa::ToSchema)]
    pub enum StdioType {
        #[serde(rename = "stdio")]
        Stdio,
    }

    #[derive(Deserialize, utoipa::ToSchema)]
    pub enum HttpType {
        #[serde(rename = "streamableHttp")]
        StreamableHttp,
    }

    #[derive(Deserialize, utoipa::ToSchema)]
    pub enum Tier {
        #[serde(rename = "read-only")]
        ReadOnly,
        #[serde(rename = "workspace-write")]
        WorkspaceWrite,
        #[serde(rename = "system-effect")]
        SystemEffect,
        #[serde(rename = "infrastructure")]
        Infrastructure,
    }

    /// Names chosen by the user mapped to strings without NUL: environment variables
    /// (no `=` in a name) or HTTP headers (token characters).
    fn string_map(names: &str) -> RefOr<Schema> {
        let value = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[^\\x00\\r\\n]*$"));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(names)),
            ))
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(Schema::Object(
                value.build(),
            )))))
            .into()
    }

    fn env_map() -> RefOr<Schema> {
        string_map("^[A-Za-z_][A-Za-z0-9_]*$")
    }

    fn header_map() -> RefOr<Schema> {
        string_map("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
    }

    macro_rules! server {
        ($stdio:ident, $http:ident $(, $name:ident)?) => {
            /// A server the node starts as a process, speaking MCP on stdin/stdout.
            #[derive(Deserialize, utoipa::ToSchema)]
            #[serde(rename_all = "camelCase", deny_unknown_fields)]
            pub struct $stdio {
                $(
                    #[schema(pattern = "^[A-Za-z0-9-]{1,32}$")]
                    $name: String,
                )?
                #[serde(rename = "type")]
                transport: StdioType,
                #[schema(pattern = "^[^\\x00]*[^\\s\\x00][^\\x00]*$")]
                command: String,
                #[serde(default)]
                args: Vec<Arg>,
                #[serde(default)]
                #[schema(schema_with = env_map)]
                env: BTreeMap<String, String>,
                #[schema(minimum = 1)]
                tool_timeout_s: Option<u64>,
                enabled_tools: Option<Vec<ToolName>>,
                risk_tier: Option<Tier>,
                enabled: Option<bool>,
            }

            /// A server reached over MCP's streamable HTTP transport.
            #[derive(Deserialize, utoipa::ToSchema)]
            #[serde(rename_all = "camelCase", deny_unknown_fields)]
            pub struct $http {
                $(
                    #[schema(pattern = "^[A-Za-z0-9-]{1,32}$")]
                    $name: String,
                )?
                #[serde(rename = "type")]
                transport: HttpType,
                #[schema(pattern = "^https?://\\S+$")]
                url: String,
                #[serde(default)]
                #[schema(schema_with = header_map)]
                headers: BTreeMap<String, String>,
                #[schema(minimum = 1)]
                tool_timeout_s: Option<u64>,
                enabled_tools: Option<Vec<ToolName>>,
                risk_tier: Option<Tier>,
                enabled: Option<bool>,
            }
        };
    }

    /// Some fields of a server's definition (a JSON merge patch: `null` removes one).
    #[derive(Deserialize, utoipa::ToSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct McpServerPatch {
        #[schema(pattern = "^[^\\x00]*[^\\s\\x00][^\\x00]*$")]
        command: Option<String>,
        args: Option<Vec<Arg>>,
        #[schema(schema_with = env_map)]
        env: Option<BTreeMap<String, String>>,
        #[schema(pattern = "^https?://\\S+$")]
        url: Option<String>,
        #[schema(schema_with = header_map)]
        headers: Option<BTreeMap<String, String>>,
        #[schema(minimum = 1)]
        tool_timeout_s: Option<u64>,
        enabled_tools: Option<Vec<ToolName>>,
        risk_tier: Option<Tier>,
        enabled: Option<bool>,
    }

    server!(StdioServer, HttpServer);
    server!(NamedStdioServer, NamedHttpServer, name);

    /// A program argument (no NUL).
    #[derive(Deserialize, utoipa::ToSchema)]
    #[schema(pattern = "^[^\\x00]*$")]
    pub struct Arg(String);

    /// A tool's name on its server.
    #[derive(Deserialize, utoipa::ToSchema)]
    #[schema(pattern = "\\S")]
    pub struct ToolName(String);
}
