//! Every management route with the roles it admits: the one place roles are decided
//! (checked for every request before its body is read) and the source of the OpenAPI
//! document at `/api/v1/openapi.json`. The route matrix test walks this document and
//! checks each route against the running server (it exists; each role outside its
//! list gets 403; another tenant's ids get 404), so the document stays true.

use facio_services::auth::Role;
use serde_json::{Map, Value, json};

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
    }
}

const fn system(
    method: &'static str,
    path: &'static str,
    roles: &'static [Role],
    summary: &'static str,
) -> RouteDoc {
    RouteDoc {
        method,
        path,
        roles,
        system_only: true,
        summary,
    }
}

use Role::{Client, Operator, Reviewer};

const ANYONE: &[Role] = &[Operator, Reviewer, Client];
const OPERATORS: &[Role] = &[Operator];
const READERS: &[Role] = &[Operator, Reviewer];
const RUNNERS: &[Role] = &[Operator, Client];
const ADMINS: &[Role] = &[];

pub(super) const ROUTES: &[RouteDoc] = &[
    route("get", "/health", ANYONE, "Liveness and the caller's tenant"),
    route("get", "/sessions", READERS, "Sessions, most recent first"),
    route(
        "get",
        "/sessions/{key}",
        READERS,
        "A session with its full history",
    ),
    route(
        "delete",
        "/sessions/{key}",
        OPERATORS,
        "Delete a session's history (not while a turn runs or waits)",
    ),
    route(
        "post",
        "/sessions/{key}/messages",
        RUNNERS,
        "Send a message; `?wait=S` waits for the run",
    ),
    route(
        "get",
        "/runs/{runId}",
        &[Operator, Reviewer, Client],
        "A run and its outcome",
    ),
    route(
        "get",
        "/runs/{runId}/events",
        &[Operator, Reviewer, Client],
        "A run's progress as server-sent events",
    ),
    route(
        "get",
        "/reviews",
        READERS,
        "Reviews, filtered by status, session or run",
    ),
    route(
        "get",
        "/reviews/events",
        READERS,
        "Review changes as server-sent events",
    ),
    route("get", "/reviews/{id}", READERS, "A review"),
    route(
        "get",
        "/reviews/{id}/wait",
        READERS,
        "Wait for a review to close",
    ),
    route(
        "post",
        "/reviews/{id}/decide",
        &[Reviewer],
        "Decide a pending review (alwaysAllow: approve and add the exact rule; admins only)",
    ),
    route(
        "get",
        "/reviews/{id}/rule",
        ADMINS,
        "The exact allow rule 'approve and always allow' would add for this review",
    ),
    route(
        "post",
        "/placet/webhook",
        OPERATORS,
        "Placet's webhook (acknowledged)",
    ),
    route("get", "/policy", READERS, "The tool-call policy"),
    route("post", "/policy", OPERATORS, "Add a rule"),
    route("delete", "/policy", OPERATORS, "Remove a rule"),
    route("delete", "/policy/all", OPERATORS, "Remove every rule"),
    route(
        "patch",
        "/policy/settings",
        OPERATORS,
        "Turn the gate on or off, skip it for cron",
    ),
    route("get", "/audit", OPERATORS, "Audit events, filtered"),
    route("get", "/audit/tail", OPERATORS, "The newest audit events"),
    route(
        "get",
        "/audit/export",
        OPERATORS,
        "The tenant's audit chain as JSON Lines, checkable offline with facio audit verify --file",
    ),
    route(
        "get",
        "/audit/stats",
        OPERATORS,
        "Counts by type and chain verification",
    ),
    route(
        "get",
        "/audit/runs/{runId}",
        OPERATORS,
        "A run's audit events",
    ),
    route(
        "get",
        "/usage",
        OPERATORS,
        "Tokens and cost: totals, groups and budgets",
    ),
    route(
        "get",
        "/usage/runs/{runId}",
        OPERATORS,
        "A run's model calls",
    ),
    route("get", "/credentials", OPERATORS, "Credentials, masked"),
    route(
        "post",
        "/credentials",
        OPERATORS,
        "Store a credential (409 if it exists)",
    ),
    route(
        "get",
        "/credentials/{key}",
        OPERATORS,
        "A credential, masked (the read is audited)",
    ),
    route(
        "put",
        "/credentials/{key}",
        OPERATORS,
        "Store or replace a credential",
    ),
    route(
        "delete",
        "/credentials/{key}",
        OPERATORS,
        "Delete a credential",
    ),
    route(
        "put",
        "/credentials/{key}/exposed",
        OPERATORS,
        "Expose a credential to every command's environment, or not",
    ),
    system(
        "get",
        "/credentials/providers",
        OPERATORS,
        "Provider API keys: where each comes from",
    ),
    system(
        "post",
        "/credentials/providers",
        OPERATORS,
        "Store a provider's API key (used from the next start)",
    ),
    system(
        "put",
        "/credentials/providers/{name}",
        OPERATORS,
        "Replace a provider's stored API key",
    ),
    system(
        "delete",
        "/credentials/providers/{name}",
        OPERATORS,
        "Delete a provider's stored API key",
    ),
    route(
        "get",
        "/workspace/tree",
        OPERATORS,
        "The workspace's files, `?path=&depth=`",
    ),
    route(
        "get",
        "/workspace/file",
        OPERATORS,
        "A workspace file (`?path=`), redacted",
    ),
    route(
        "put",
        "/workspace/file",
        OPERATORS,
        "Write a workspace file (`?path=`)",
    ),
    route(
        "delete",
        "/workspace/file",
        OPERATORS,
        "Delete a workspace file (`?path=`)",
    ),
    route(
        "post",
        "/commands/stop",
        RUNNERS,
        "Stop a session's running and queued turns",
    ),
    route("post", "/commands/new", RUNNERS, "Start a session afresh"),
    route(
        "get",
        "/commands/status",
        OPERATORS,
        "Version, model, active sessions, runs and reviews",
    ),
    route(
        "get",
        "/skills",
        OPERATORS,
        "Skills in the tenant's workspace (skills/<name>/SKILL.md)",
    ),
    route(
        "get",
        "/scripts",
        OPERATORS,
        "Scripts in the tenant's workspace (scripts/)",
    ),
    route(
        "get",
        "/settings",
        OPERATORS,
        "The tenant's settings and limits in effect; for the system tenant, the node's config and the keys waiting for a restart",
    ),
    system(
        "patch",
        "/settings",
        ADMINS,
        "Change tenant settings (at once) and node settings (saved to settings.json, on restart)",
    ),
    system(
        "get",
        "/cluster",
        ADMINS,
        "The cluster's live nodes (id, advertise URL, start time, sessions held); one node when single",
    ),
    system("get", "/tenants", ADMINS, "Tenants"),
    system("post", "/tenants", ADMINS, "Create a tenant"),
    route(
        "get",
        "/tenants/{name}",
        OPERATORS,
        "A tenant's settings (own tenant, or any for system admins)",
    ),
    system(
        "patch",
        "/tenants/{name}",
        ADMINS,
        "Change a tenant's model allow list and budgets",
    ),
    route(
        "get",
        "/tokens",
        ADMINS,
        "The tenant's issued, unexpired tokens (jti, subject, roles, expiry, revoked)",
    ),
    route(
        "delete",
        "/tokens/{jti}",
        ADMINS,
        "Revoke a token: it is refused with 401 from then on",
    ),
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

/// The OpenAPI 3.1 document of the management API.
pub(super) fn openapi() -> Value {
    let mut paths = Map::new();
    for doc in ROUTES {
        let params: Vec<Value> = doc
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut roles: Vec<&str> = vec!["admin"];
        roles.extend(doc.roles.iter().map(|r| r.as_str()));
        let operation = json!({
            "summary": doc.summary,
            "operationId": format!("{}{}", doc.method, doc.path.replace(['/', '{', '}'], "_")),
            "parameters": params,
            "x-facio-roles": roles,
            "x-facio-system-tenant-only": doc.system_only,
            "responses": {
                "200": {"description": "Success (201 on creation, 204 on deletion)", "content": {"application/json": {}}},
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "403": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
                "409": {"$ref": "#/components/responses/Error"},
                "422": {"$ref": "#/components/responses/Error"},
                "429": {"$ref": "#/components/responses/Error"}
            }
        });
        let entry = paths
            .entry(doc.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            methods.insert(doc.method.to_owned(), operation);
        }
    }
    json!({
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
            "responses": {
                "Error": {
                    "description": "An error naming its reason",
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "required": ["error"],
                        "properties": {"error": {"type": "object", "required": ["message", "type", "code"], "properties": {
                            "message": {"type": "string"}, "type": {"type": "string"},
                            "code": {"type": "string"}, "param": {"type": ["string", "null"]}
                        }}}
                    }}}
                }
            }
        },
        "paths": paths,
    })
}
