//! Every management route with the roles it admits: the one place roles are decided
//! (checked for every request before its body is read) and the source of the OpenAPI
//! document at `/api/v1/openapi.json`. The route matrix test walks this document and
//! checks each route against the running server (it exists; each role outside its
//! list gets 403; another tenant's ids get 404), so the document stays true.

use facio_services::auth::Role;
use facio_services::domain::{ANY_FORM_PATTERN, TENANT_FORM_PATTERN};
use facio_services::domain::{RunId, SessionKey, TenantId, TenantSettingsPatch};
use facio_services::policy::{Policy, PolicyRule};
use serde_json::{Map, Value, json};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::{RefOr, Schema};

use super::{
    agent, audit, channels, cluster, commands, credentials, cron, mcp, peers, placet_hook, policy,
    reviews, runs, sessions, settings, skills, tenants, tokens, usage, workspace,
};

/// The query parameters of a route, from its query type.
type Params = fn() -> Vec<Parameter>;
/// The schema of a request body, with the named schemas it refers to.
type SchemaOf = fn(&mut Vec<(String, RefOr<Schema>)>) -> RefOr<Schema>;

/// What a successful answer is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Media {
    Json,
    /// Nothing (204).
    Empty,
    /// `text/event-stream`: server-sent events, each `data:` a JSON object.
    EventStream,
    /// `application/x-ndjson`: JSON Lines.
    JsonLines,
}

/// One route.
pub(super) struct RouteDoc {
    pub method: &'static str,
    /// As routed, under `/api/v1`, with `{param}` segments.
    pub path: &'static str,
    /// Roles admitted besides `admin` (admins hold every role).
    pub roles: &'static [Role],
    /// Only callers of the system (default) tenant.
    pub system_only: bool,
    pub summary: &'static str,
    /// Its query parameters, from the handler's query type.
    query: Option<Params>,
    /// Its request body (required when there is one), from the handler's body type.
    body: Option<SchemaOf>,
    /// The success statuses.
    ok: &'static [u16],
    /// What a 200 or 201 answer holds, from the handler's answer type.
    returns: Option<SchemaOf>,
    /// What a 202 answer holds (work accepted, not finished).
    accepted: Option<SchemaOf>,
    media: Media,
}

fn params_of<T: utoipa::IntoParams>() -> Vec<Parameter> {
    T::into_params(|| Some(ParameterIn::Query))
}

fn schema_of<T: utoipa::ToSchema>(named: &mut Vec<(String, RefOr<Schema>)>) -> RefOr<Schema> {
    T::schemas(named);
    T::schema()
}

impl RouteDoc {
    /// Query parameters as `T` reads them.
    const fn query<T: utoipa::IntoParams>(mut self) -> Self {
        self.query = Some(params_of::<T> as Params);
        self
    }

    /// A JSON body as `T` reads it.
    const fn body<T: utoipa::ToSchema>(mut self) -> Self {
        self.body = Some(schema_of::<T> as SchemaOf);
        self
    }

    /// Answers with a `T` (on 200 or 201).
    const fn returns<T: utoipa::ToSchema>(mut self) -> Self {
        self.returns = Some(schema_of::<T> as SchemaOf);
        self
    }

    /// A 202 answer as `T` writes it.
    const fn accepted<T: utoipa::ToSchema>(mut self) -> Self {
        self.accepted = Some(schema_of::<T> as SchemaOf);
        self
    }

    /// Answers 201 with what it created.
    const fn created(mut self) -> Self {
        self.ok = &[201];
        self
    }

    /// Answers 204 with nothing.
    const fn deleted(mut self) -> Self {
        self.ok = &[204];
        self.media = Media::Empty;
        self
    }

    /// Answers with these statuses.
    const fn answers(mut self, ok: &'static [u16]) -> Self {
        self.ok = ok;
        self
    }

    /// Answers with server-sent events.
    const fn streams(mut self) -> Self {
        self.media = Media::EventStream;
        self
    }

    /// Answers with JSON Lines.
    const fn lines(mut self) -> Self {
        self.media = Media::JsonLines;
        self
    }
}

const fn route(
    method: &'static str,
    path: &'static str,
    roles: &'static [Role],
    summary: &'static str,
) -> RouteDoc {
    RouteDoc {
        method,
        path,
        roles,
        system_only: false,
        summary,
        query: None,
        body: None,
        ok: &[200],
        returns: None,
        accepted: None,
        media: Media::Json,
    }
}

const fn system(
    method: &'static str,
    path: &'static str,
    roles: &'static [Role],
    summary: &'static str,
) -> RouteDoc {
    let mut doc = route(method, path, roles, summary);
    doc.system_only = true;
    doc
}

use Role::{Client, Operator, Reviewer};

const ANYONE: &[Role] = &[Operator, Reviewer, Client];
const OPERATORS: &[Role] = &[Operator];
const READERS: &[Role] = &[Operator, Reviewer];
const RUNNERS: &[Role] = &[Operator, Client];
const ADMINS: &[Role] = &[];

pub(super) const ROUTES: &[RouteDoc] = &[
    route("get", "/health", ANYONE, "Liveness and who the caller is")
        .returns::<sessions::Health>(),
    route("get", "/agent-card", ANYONE, "The A2A agent card (as /.well-known/agent-card.json)")
        .returns::<agent::AgentCard>(),
    route("get", "/sessions", READERS, "Sessions, most recent first")
        .query::<sessions::ListQuery>()
        .returns::<sessions::SessionList>(),
    route(
        "get",
        "/sessions/{key}",
        READERS,
        "A session with its full history",
    )
    .returns::<sessions::SessionView>(),
    route(
        "delete",
        "/sessions/{key}",
        OPERATORS,
        "Delete a session's history (not while a turn runs or waits)",
    )
    .deleted(),
    route(
        "post",
        "/sessions/{key}/messages",
        RUNNERS,
        "Send a message; `?wait=S` waits for the run",
    )
    .query::<runs::WaitQuery>()
    .body::<runs::NewMessage>()
    .answers(&[200, 202])
    .returns::<runs::RunView>()
    .accepted::<runs::RunAccepted>(),
    route(
        "get",
        "/runs/{runId}",
        &[Operator, Reviewer, Client],
        "A run and its outcome",
    )
    .returns::<runs::RunView>(),
    route(
        "get",
        "/runs/{runId}/events",
        &[Operator, Reviewer, Client],
        "A run's progress as server-sent events",
    )
    .streams(),
    route(
        "get",
        "/reviews",
        READERS,
        "Reviews, filtered by status, session or run",
    )
    .returns::<reviews::ReviewList>()
    .query::<reviews::ListQuery>(),
    route(
        "get",
        "/reviews/events",
        READERS,
        "Review changes as server-sent events",
    )
    .streams(),
    route("get", "/reviews/{id}", READERS, "A review").returns::<reviews::ReviewView>(),
    route(
        "get",
        "/reviews/{id}/wait",
        READERS,
        "Wait for a review to close",
    )
    .query::<reviews::WaitQuery>()
    .returns::<reviews::ReviewView>(),
    route(
        "post",
        "/reviews/{id}/decide",
        &[Reviewer],
        "Decide a pending review (alwaysAllow: approve and add the exact rule; admins only)",
    )
    .body::<reviews::Decide>()
    .returns::<reviews::Decided>(),
    route(
        "get",
        "/reviews/{id}/rule",
        ADMINS,
        "The exact allow rule 'approve and always allow' would add for this review",
    )
    .returns::<reviews::ProposedRule>(),
    route(
        "post",
        "/placet/webhook",
        OPERATORS,
        "Placet's webhook: a user's message is a turn, a review answer a decision",
    )
    .body::<placet_hook::PlacetEvent>()
    .answers(&[202])
    .accepted::<placet_hook::Accepted>(),
    route("get", "/policy", READERS, "The tool-call policy").returns::<Policy>(),
    route("post", "/policy", OPERATORS, "Add a rule")
        .body::<PolicyRule>()
        .returns::<Policy>(),
    route("delete", "/policy", OPERATORS, "Remove a rule")
        .body::<PolicyRule>()
        .returns::<Policy>(),
    route("delete", "/policy/all", OPERATORS, "Remove every rule").returns::<Policy>(),
    route(
        "patch",
        "/policy/settings",
        OPERATORS,
        "Turn the gate on or off, skip it for cron",
    )
    .body::<policy::Settings>()
    .returns::<policy::SettingsView>(),
    route("get", "/audit", OPERATORS, "Audit events, filtered")
        .query::<audit::AuditQuery>()
        .returns::<audit::EventPage>(),
    route("get", "/audit/tail", OPERATORS, "The newest audit events")
        .query::<audit::TailQuery>()
        .returns::<audit::EventList>(),
    route(
        "get",
        "/audit/export",
        OPERATORS,
        "The tenant's audit chain as JSON Lines, checkable offline with facio audit verify --file",
    )
    .query::<audit::ExportQuery>()
    .lines(),
    route(
        "get",
        "/audit/stats",
        OPERATORS,
        "Counts by type and chain verification",
    )
    .returns::<audit::Stats>(),
    route(
        "get",
        "/audit/runs/{runId}",
        OPERATORS,
        "A run's audit events",
    )
    .returns::<audit::RunEvents>(),
    route(
        "get",
        "/usage",
        OPERATORS,
        "Tokens and cost: totals, groups and budgets",
    )
    .query::<usage::UsageQuery>()
    .returns::<usage::Summary>(),
    route(
        "get",
        "/usage/runs/{runId}",
        OPERATORS,
        "A run's model calls",
    )
    .returns::<usage::RunUsage>(),
    route("get", "/mcp", OPERATORS, "The tenant's MCP servers, with their state and tools")
        .returns::<mcp::McpServerList>(),
    route(
        "post",
        "/mcp",
        OPERATORS,
        "Add an MCP server (409 if the name is taken; stdio only with the management token)",
    )
    .body::<mcp::schema::NewMcpServerBody>()
    .created()
    .returns::<facio_services::mcp::McpServerView>(),
    route("get", "/mcp/{name}", OPERATORS, "An MCP server, its state and tools")
        .returns::<facio_services::mcp::McpServerView>(),
    route("put", "/mcp/{name}", OPERATORS, "Add or replace an MCP server")
        .body::<mcp::schema::McpServerDefinition>()
        .returns::<facio_services::mcp::McpServerView>(),
    route(
        "patch",
        "/mcp/{name}",
        OPERATORS,
        "Change some fields of an MCP server (a JSON merge patch)",
    )
    .body::<mcp::schema::McpServerPatch>()
    .returns::<facio_services::mcp::McpServerView>(),
    route("delete", "/mcp/{name}", OPERATORS, "Remove an MCP server").deleted(),
    route("post", "/mcp/{name}/enable", OPERATORS, "Connect an MCP server again")
        .returns::<facio_services::mcp::McpServerView>(),
    route("post", "/mcp/{name}/disable", OPERATORS, "Disconnect an MCP server and hide its tools")
        .returns::<facio_services::mcp::McpServerView>(),
    route("post", "/mcp/{name}/restart", OPERATORS, "Reconnect an MCP server now")
        .returns::<facio_services::mcp::McpServerView>(),
    route("get", "/a2a/peers", OPERATORS, "The tenant's A2A peers (call_agent calls them)")
        .returns::<peers::PeerList>(),
    route(
        "post",
        "/a2a/peers",
        OPERATORS,
        "Register a peer: its card is read first (422 when it cannot be); 409 if the alias is taken",
    )
    .body::<peers::NewPeer>()
    .created()
    .returns::<facio_services::a2a_client::PeerView>(),
    route("get", "/a2a/peers/{alias}", OPERATORS, "A peer and its card")
        .returns::<facio_services::a2a_client::PeerView>(),
    route("get", "/a2a/peers/{alias}/card", OPERATORS, "The peer's agent card, as read")
        .returns::<peers::Card>(),
    route("delete", "/a2a/peers/{alias}", OPERATORS, "Forget a peer").deleted(),
    route("post", "/a2a/peers/{alias}/refresh", OPERATORS, "Read a peer's card again")
        .returns::<facio_services::a2a_client::PeerView>(),
    route(
        "post",
        "/a2a/peers/{alias}/call",
        OPERATORS,
        "Send the peer a message now and get its answer (502 when it fails)",
    )
    .body::<peers::PeerMessage>()
    .returns::<facio_services::a2a_client::PeerReply>(),
    route("get", "/cron", OPERATORS, "The tenant's scheduled jobs, when each fires next and what its last instant did")
        .returns::<cron::JobList>(),
    route(
        "post",
        "/cron",
        OPERATORS,
        "Add a scheduled job (422 names a schedule that cannot fire)",
    )
    .body::<cron::NewJob>()
    .created()
    .returns::<cron::JobView>(),
    route("get", "/cron/{id}", OPERATORS, "A scheduled job").returns::<cron::JobView>(),
    route(
        "patch",
        "/cron/{id}",
        OPERATORS,
        "Change some fields of a scheduled job (a new schedule counts from now)",
    )
    .body::<cron::JobChange>()
    .returns::<cron::JobView>(),
    route("delete", "/cron/{id}", OPERATORS, "Remove a scheduled job").deleted(),
    route(
        "post",
        "/cron/{id}/run-now",
        OPERATORS,
        "Give the job's session a turn now, as its schedule would",
    )
    .answers(&[202])
    .accepted::<cron::RunNow>(),
    route("post", "/cron/{id}/pause", OPERATORS, "Stop a job firing (missed instants are skipped)")
        .returns::<cron::JobView>(),
    route("post", "/cron/{id}/resume", OPERATORS, "Let a paused job fire again, counting from now")
        .returns::<cron::JobView>(),
    route("get", "/channels", OPERATORS, "The tenant's channels (webhooks, Placet)")
        .returns::<channels::ChannelList>(),
    route("get", "/channels/{name}", OPERATORS, "A channel").returns::<channels::ChannelView>(),
    route(
        "put",
        "/channels/{name}",
        OPERATORS,
        "Add or replace a webhook channel of the tenant's (its secret a credential reference)",
    )
    .body::<channels::ChannelBody>()
    .returns::<channels::ChannelView>(),
    route("delete", "/channels/{name}", OPERATORS, "Remove a channel of the tenant's").deleted(),
    route(
        "get",
        "/channels/{name}/dead-letters",
        OPERATORS,
        "The messages a channel gave up delivering, with what was to be sent",
    )
    .returns::<channels::DeadLetters>(),
    route("get", "/credentials", OPERATORS, "Credentials, masked")
        .returns::<credentials::CredentialList>(),
    route(
        "post",
        "/credentials",
        OPERATORS,
        "Store a credential (409 if it exists)",
    )
    .body::<credentials::NewCredential>()
    .created()
    .returns::<credentials::CredentialView>(),
    route(
        "get",
        "/credentials/{key}",
        OPERATORS,
        "A credential, masked (the read is audited)",
    )
    .returns::<credentials::CredentialView>(),
    route(
        "put",
        "/credentials/{key}",
        OPERATORS,
        "Store or replace a credential",
    )
    .body::<credentials::NewValue>()
    .returns::<credentials::CredentialView>(),
    route(
        "delete",
        "/credentials/{key}",
        OPERATORS,
        "Delete a credential",
    )
    .deleted(),
    route(
        "put",
        "/credentials/{key}/exposed",
        OPERATORS,
        "Expose a credential to every command's environment, or not",
    )
    .body::<credentials::Exposure>()
    .returns::<credentials::CredentialView>(),
    system(
        "get",
        "/credentials/providers",
        OPERATORS,
        "Provider API keys: where each comes from",
    )
    .returns::<credentials::ProviderList>(),
    system(
        "post",
        "/credentials/providers",
        OPERATORS,
        "Store a provider's API key (used from the next start)",
    )
    .body::<credentials::NewProviderKey>()
    .created()
    .returns::<credentials::ProviderStored>(),
    system(
        "put",
        "/credentials/providers/{name}",
        OPERATORS,
        "Replace a provider's stored API key",
    )
    .body::<credentials::ProviderKey>()
    .returns::<credentials::ProviderStored>(),
    system(
        "delete",
        "/credentials/providers/{name}",
        OPERATORS,
        "Delete a provider's stored API key",
    )
    .deleted(),
    route(
        "get",
        "/workspace/tree",
        OPERATORS,
        "The workspace's files, `?path=&depth=`",
    )
    .query::<workspace::TreeQuery>()
    .returns::<workspace::Tree>(),
    route(
        "get",
        "/workspace/file",
        OPERATORS,
        "A workspace file (`?path=`), redacted",
    )
    .query::<workspace::FileQuery>()
    .returns::<workspace::FileView>(),
    route(
        "put",
        "/workspace/file",
        OPERATORS,
        "Write a workspace file (`?path=`)",
    )
    .query::<workspace::FileQuery>()
    .body::<workspace::NewContent>()
    .returns::<workspace::Written>(),
    route(
        "delete",
        "/workspace/file",
        OPERATORS,
        "Delete a workspace file (`?path=`)",
    )
    .query::<workspace::FileQuery>()
    .deleted(),
    route(
        "post",
        "/commands/stop",
        RUNNERS,
        "Stop a session's running and queued turns",
    )
    .body::<commands::SessionCommand>()
    .returns::<commands::Stopped>(),
    route("post", "/commands/new", RUNNERS, "Start a session afresh")
        .body::<commands::SessionCommand>()
        .returns::<commands::Cleared>(),
    route(
        "get",
        "/commands/status",
        OPERATORS,
        "Version, model, active sessions, runs and reviews",
    )
    .returns::<commands::Status>(),
    route(
        "get",
        "/skills",
        OPERATORS,
        "Skills in the tenant's workspace (skills/<name>/SKILL.md)",
    )
    .returns::<skills::SkillList>(),
    route(
        "get",
        "/scripts",
        OPERATORS,
        "Scripts in the tenant's workspace (scripts/)",
    )
    .returns::<skills::ScriptList>(),
    route(
        "get",
        "/settings",
        OPERATORS,
        "The tenant's settings and limits in effect; for the system tenant, the node's config and the keys waiting for a restart",
    )
    .returns::<settings::SettingsView>(),
    system(
        "patch",
        "/settings",
        ADMINS,
        "Change tenant settings (at once) and node settings (saved to settings.json, on restart)",
    )
    .body::<settings::Change>()
    .returns::<settings::Changed>(),
    system(
        "get",
        "/cluster",
        ADMINS,
        "The cluster's live nodes (id, advertise URL, start time, sessions held); one node when single",
    )
    .returns::<cluster::ClusterView>(),
    system("get", "/tenants", ADMINS, "Tenants").returns::<tenants::TenantList>(),
    system("post", "/tenants", ADMINS, "Create a tenant")
        .body::<tenants::NewTenant>()
        .created()
        .returns::<tenants::Created>(),
    route(
        "get",
        "/tenants/{name}",
        OPERATORS,
        "A tenant's settings (own tenant, or any for system admins)",
    )
    .returns::<tenants::TenantView>(),
    system(
        "patch",
        "/tenants/{name}",
        ADMINS,
        "Change a tenant's model allow list and budgets",
    )
    .body::<TenantSettingsPatch>()
    .returns::<tenants::TenantView>(),
    route(
        "get",
        "/tokens",
        ADMINS,
        "The tenant's issued, unexpired tokens (jti, subject, roles, expiry, revoked)",
    )
    .returns::<tokens::TokenList>(),
    route(
        "delete",
        "/tokens/{jti}",
        ADMINS,
        "Revoke a token: it is refused with 401 from then on",
    )
    .returns::<tokens::Revoked>(),
];

/// `path` with every `{param}` written as `{}`, so routes match whatever the params
/// are called.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "{}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The route `method path` (as matched by the router, under `/api/v1`).
pub(super) fn find(method: &str, path: &str) -> Option<&'static RouteDoc> {
    let wanted = shape(path);
    ROUTES
        .iter()
        .find(|doc| doc.method.eq_ignore_ascii_case(method) && shape(doc.path) == wanted)
}

/// The statuses every route may answer with an error, and when.
const ERRORS: &[(u16, &str)] = &[
    (
        400,
        "The request is malformed (the error's `param` names the field)",
    ),
    (401, "No valid bearer token"),
    (403, "The token's roles or tenant do not admit this route"),
    (404, "No such route or resource in the caller's tenant"),
    (
        409,
        "The resource is in a state that refuses this (busy, exists, decided)",
    ),
    (413, "The body is too large"),
    (
        422,
        "A value is well-formed but not acceptable (the error names it)",
    ),
    (429, "Over a rate limit (`Retry-After` says when to retry)"),
    (
        502,
        "A peer agent the call went to failed or answered nonsense (the error says which)",
    ),
    (
        503,
        "The node is shutting down or its store is busy (`Retry-After`)",
    ),
];

/// The schema of path parameter `name` of `path`; `providers` are the provider names
/// this node has configured.
fn path_schema(path: &str, name: &str, providers: &[String]) -> Value {
    if path.starts_with("/credentials/providers/") {
        return provider_schema(providers);
    }
    match name {
        "name" => json!({"type": "string", "pattern": TENANT_FORM_PATTERN}),
        "id" if path.starts_with("/cron/") => {
            json!({"type": "string", "pattern": facio_services::domain::CRON_FORM_PATTERN})
        }
        "key" if path.starts_with("/credentials/") => {
            json!({"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,127}$"})
        }
        _ => {
            json!({"type": "string", "minLength": 1, "maxLength": 256, "pattern": ANY_FORM_PATTERN})
        }
    }
}

/// A provider name: one of those configured (any string when none is).
fn provider_schema(providers: &[String]) -> Value {
    if providers.is_empty() {
        json!({"type": "string"})
    } else {
        json!({"type": "string", "enum": providers})
    }
}

/// Unsigned integers as their whole range (`minimum` 0 up to the type's maximum)
/// instead of a signed `format` whose range is half of it.
fn unsigned_ranges(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            let unsigned = fields.get("minimum").and_then(Value::as_f64) == Some(0.0);
            let max = match fields.get("format").and_then(Value::as_str) {
                Some("int32") if unsigned => Some(json!(u32::MAX)),
                Some("int64") if unsigned => Some(json!(u64::MAX)),
                _ => None,
            };
            if let Some(max) = max {
                fields.remove("format");
                fields.entry("maximum").or_insert(max);
            }
            fields.values_mut().for_each(unsigned_ranges);
        }
        Value::Array(items) => items.iter_mut().for_each(unsigned_ranges),
        _ => {}
    }
}

/// The success answers of a route; named schemas they refer to go to `named`.
fn answers(doc: &RouteDoc, named: &mut Vec<(String, RefOr<Schema>)>) -> Map<String, Value> {
    let mut out = Map::new();
    for status in doc.ok {
        let description = match status {
            201 => "Created",
            202 => "Accepted",
            204 => "Done; no body",
            _ => "Success",
        };
        let mut answer = json!({"description": description});
        match doc.media {
            Media::Json => {
                let typed = match status {
                    200 | 201 => doc.returns,
                    202 => doc.accepted,
                    _ => None,
                };
                let schema = match typed {
                    Some(schema) => serde_json::to_value(schema(named)).unwrap_or(Value::Null),
                    None => json!({"type": "object"}),
                };
                answer["content"] = json!({"application/json": {"schema": schema}})
            }
            Media::EventStream => {
                answer["content"] = json!({"text/event-stream": {"schema": {
                    "description": "One server-sent event: its `data` is a JSON object",
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "event": {"type": "string"},
                        "id": {"type": "string"},
                        "data": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "contentSchema": {"type": "object"}
                        }
                    }
                }}})
            }
            Media::JsonLines => {
                answer["content"] = json!({"application/x-ndjson": {"schema": {
                    "type": "string",
                    "description": "JSON Lines: one audit event (a JSON object) per line"
                }}})
            }
            Media::Empty => {}
        }
        out.insert(status.to_string(), answer);
    }
    for (status, _) in ERRORS {
        out.insert(
            status.to_string(),
            json!({"$ref": format!("#/components/responses/E{status}")}),
        );
    }
    out
}

/// The OpenAPI 3.1 document of the management API, built from the handlers' query and
/// body types.
pub(super) fn openapi(providers: &[String]) -> Value {
    let mut named: Vec<(String, RefOr<Schema>)> = Vec::new();
    let mut paths = Map::new();
    for doc in ROUTES {
        let mut params: Vec<Value> = doc
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": path_schema(doc.path, name, providers)}))
            .collect();
        if let Some(query) = doc.query {
            params.extend(
                query()
                    .into_iter()
                    .filter_map(|p| serde_json::to_value(p).ok()),
            );
        }
        let mut roles: Vec<&str> = vec!["admin"];
        roles.extend(doc.roles.iter().map(|r| r.as_str()));
        let mut operation = json!({
            "summary": doc.summary,
            "operationId": format!("{}{}", doc.method, doc.path.replace(['/', '{', '}'], "_")),
            "parameters": params,
            "x-facio-roles": roles,
            "x-facio-system-tenant-only": doc.system_only,
            "responses": answers(doc, &mut named),
        });
        if let Some(body) = doc.body {
            let mut schema = serde_json::to_value(body(&mut named)).unwrap_or(Value::Null);
            if doc.path == "/credentials/providers"
                && let Some(name) = schema.pointer_mut("/properties/name")
            {
                *name = provider_schema(providers);
            }
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": schema}}
            });
        }
        let entry = paths
            .entry(doc.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            methods.insert(doc.method.to_owned(), operation);
        }
    }
    let mut schemas = Map::new();
    for (name, schema) in named {
        schemas.insert(name, serde_json::to_value(schema).unwrap_or(Value::Null));
    }
    schemas.insert("Error".to_owned(), error_schema());
    // The ids query parameters refer to (a query type names no components).
    for (name, schema) in [
        ("RunId", <RunId as utoipa::PartialSchema>::schema()),
        (
            "SessionKey",
            <SessionKey as utoipa::PartialSchema>::schema(),
        ),
        ("TenantId", <TenantId as utoipa::PartialSchema>::schema()),
    ] {
        schemas.insert(
            name.to_owned(),
            serde_json::to_value(schema).unwrap_or(Value::Null),
        );
    }
    let mut responses = Map::new();
    for (status, description) in ERRORS {
        responses.insert(
            format!("E{status}"),
            json!({
                "description": description,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            }),
        );
    }
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Facio management API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every route works inside the caller's tenant: another tenant's ids answer 404. \
                            Roles: admin (everything), operator (manage), reviewer (decide reviews), client (run agents)."
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT or the static management token"}
            },
            "schemas": schemas,
            "responses": responses,
        },
        "paths": paths,
    });
    unsigned_ranges(&mut document);
    document
}

/// Every error answer: what went wrong, its kind and code, and the field at fault.
fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["message", "type", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "code": {"type": "string"},
                "param": {"type": ["string", "null"]}
            }
        }}
    })
}

#[cfg(test)]
mod tests {
    use super::{Media, ROUTES};

    /// Every JSON answer is described by the type its handler returns: a route
    /// added without one fails here, not in a client generated from the document.
    #[test]
    fn every_json_answer_has_its_handlers_type() {
        let untyped: Vec<String> = ROUTES
            .iter()
            .filter(|doc| matches!(doc.media, Media::Json))
            .filter(|doc| {
                doc.ok.iter().any(|status| match status {
                    200 | 201 => doc.returns.is_none(),
                    202 => doc.accepted.is_none(),
                    _ => false,
                })
            })
            .map(|doc| format!("{} {}", doc.method, doc.path))
            .collect();
        assert!(untyped.is_empty(), "answers without a type: {untyped:?}");
    }
}
