//! `facio reviews list|show|approve|reject|answer`: a reviewer's terminal, talking to
//! a running gateway's management API (the gateway resumes the waiting run).

use std::process::ExitCode;

use anyhow::{Context, bail};
use facio_services::config::Config;
use serde_json::{Value, json};

use super::Globals;

#[derive(Debug, clap::Args)]
pub struct Connection {
    /// Gateway URL (default: http://<api.host>:<api.port> from the config).
    #[arg(long, global = true)]
    url: Option<String>,
    /// Management token (default: $FACIO_MANAGEMENT_TOKEN, else api.managementToken).
    #[arg(long, global = true, hide_env_values = true)]
    token: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum ReviewsCommand {
    /// Reviews, newest first.
    List {
        /// pending, decided, expired or cancelled.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        session: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// One review with its context, as JSON.
    Show {
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Approve an approval review (or pick another of its options with --option).
    Approve {
        id: String,
        #[arg(long, default_value = "approve")]
        option: String,
        #[arg(long)]
        comment: Option<String>,
        /// Recorded as the reviewer (default: $USER, else $LOGNAME; with a JWT the
        /// gateway records the token's verified subject instead).
        #[arg(long)]
        reviewer: Option<String>,
        /// Also add the exact allow rule for this call (admins; see
        /// `GET /api/v1/reviews/ID/rule`), so the same call runs unasked from now on.
        #[arg(long)]
        always_allow: bool,
        /// Approve with edits: the arguments (a JSON object) the call runs with instead.
        #[arg(long, value_name = "JSON")]
        edit: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Reject an approval review.
    Reject {
        id: String,
        #[arg(long)]
        comment: Option<String>,
        #[arg(long)]
        reviewer: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Answer any review with its response JSON, e.g. '{"text":"..."}' or '{"selectedIds":["a"]}'.
    Answer {
        id: String,
        response: String,
        #[arg(long)]
        reviewer: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
}

struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn new(globals: &Globals, connection: Connection) -> anyhow::Result<Api> {
        let config = Config::load(globals.config.as_deref())?;
        let base = connection
            .url
            .unwrap_or_else(|| format!("http://{}:{}", config.api.host, config.api.port));
        let token = connection
            .token
            .or_else(|| std::env::var("FACIO_MANAGEMENT_TOKEN").ok())
            .or(config.api.management_token)
            .context("no management token: pass --token, set FACIO_MANAGEMENT_TOKEN or api.managementToken")?;
        Ok(Api {
            client: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut request = self.client.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the gateway at {}", self.base))?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = value["error"]["message"].as_str().unwrap_or("no details");
            bail!("{status}: {message}");
        }
        Ok(value)
    }
}

/// Who is recorded as deciding: `--reviewer`, else `$USER`, else `$LOGNAME`. With
/// neither the decision is refused rather than made under a made-up name. (A JWT's
/// verified subject wins over all of them on the gateway.)
fn reviewer(given: Option<String>) -> anyhow::Result<String> {
    given
        .filter(|name| !name.trim().is_empty())
        .or_else(super::os_user)
        .ok_or_else(|| anyhow::anyhow!("say who decides: pass --reviewer NAME (or set $USER)"))
}

/// The decide body of an approval answer.
fn approval(option: &str, comment: Option<String>, who: Option<String>) -> anyhow::Result<Value> {
    let mut response = json!({"selectedOption": option});
    if let Some(comment) = comment {
        response["comment"] = json!(comment);
    }
    Ok(json!({"response": response, "reviewer": reviewer(who)?}))
}

pub async fn run(globals: &Globals, command: ReviewsCommand) -> anyhow::Result<ExitCode> {
    let (connection, path, body) = match command {
        ReviewsCommand::List {
            status,
            session,
            connection,
        } => {
            let mut query = vec![];
            if let Some(status) = status {
                query.push(format!("status={status}"));
            }
            if let Some(session) = session {
                query.push(format!("session={session}"));
            }
            let api = Api::new(globals, connection)?;
            let list = api
                .call(
                    reqwest::Method::GET,
                    &format!("/reviews?{}", query.join("&")),
                    None,
                )
                .await?;
            let reviews = list["reviews"].as_array().cloned().unwrap_or_default();
            if reviews.is_empty() {
                println!("no reviews");
            }
            for r in reviews {
                println!(
                    "{}  {:<10}  {:<9}  {}  {}",
                    r["id"].as_str().unwrap_or_default(),
                    r["type"].as_str().unwrap_or_default(),
                    r["status"].as_str().unwrap_or_default(),
                    r["sessionKey"].as_str().unwrap_or_default(),
                    r["title"].as_str().unwrap_or_default()
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        ReviewsCommand::Show { id, connection } => {
            let api = Api::new(globals, connection)?;
            let review = api
                .call(reqwest::Method::GET, &format!("/reviews/{id}"), None)
                .await?;
            println!("{}", serde_json::to_string_pretty(&review)?);
            return Ok(ExitCode::SUCCESS);
        }
        ReviewsCommand::Approve {
            id,
            option,
            comment,
            reviewer: who,
            always_allow,
            edit,
            connection,
        } => {
            let mut body = approval(&option, comment, who)?;
            if always_allow {
                body["alwaysAllow"] = json!(true);
            }
            if let Some(edit) = edit {
                let edited: Value = serde_json::from_str(&edit)
                    .map_err(|e| anyhow::anyhow!("--edit is not JSON: {e}"))?;
                body["editedArguments"] = edited;
            }
            (connection, id, body)
        }
        ReviewsCommand::Reject {
            id,
            comment,
            reviewer: who,
            connection,
        } => (connection, id, approval("reject", comment, who)?),
        ReviewsCommand::Answer {
            id,
            response,
            reviewer: who,
            connection,
        } => {
            let response: Value =
                serde_json::from_str(&response).context("the response is not valid JSON")?;
            (
                connection,
                id,
                json!({"response": response, "reviewer": reviewer(who)?}),
            )
        }
    };
    let api = Api::new(globals, connection)?;
    let decided = api
        .call(
            reqwest::Method::POST,
            &format!("/reviews/{path}/decide"),
            Some(body),
        )
        .await?;
    println!(
        "review {} {} by {}",
        decided["id"].as_str().unwrap_or_default(),
        decided["status"].as_str().unwrap_or_default(),
        decided["decision"]["reviewer"]
            .as_str()
            .unwrap_or("unknown")
    );
    Ok(ExitCode::SUCCESS)
}
