//! `web_fetch`: an http(s) page as readable text. Private, loopback, link-local and
//! similar addresses are refused (every redirect hop is checked again) unless the
//! operator allows the host, and the connection is pinned to the address that was
//! checked, so a DNS answer that changes between check and connect cannot slip in.

mod address;
mod html;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Url;
use serde::Deserialize;
use serde_json::json;

use super::exec::head_and_tail;
use super::{
    RiskTier, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput, ToolSpec, parse_args,
};

pub struct WebFetchTool;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    url: String,
    max_chars: Option<usize>,
}

#[async_trait]
impl Tool for WebFetchTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "web_fetch".into(),
            description: "Fetch an http(s) URL and return its content as text (HTML is \
                converted to readable text). Private and local network addresses are refused."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "url": {"type": "string", "description": "http:// or https:// URL"},
                    "max_chars": {"type": "integer", "minimum": 1, "description": "Most characters to return"}
                },
                "required": ["url"],
                "additionalProperties": false
            }),
            risk: RiskTier::SystemEffect,
        }
    }

    async fn execute(
        &self,
        ctx: &ToolContext,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        let args: Args = parse_args(args)?;
        let web = &ctx.config.web;
        let mut url = Url::parse(&args.url)
            .map_err(|e| invalid(format!("{:?} is not a URL: {e}", args.url)))?;
        let max_chars = args
            .max_chars
            .unwrap_or(web.fetch_max_chars)
            .min(web.fetch_max_chars)
            .max(1);
        let timeout = Duration::from_secs(web.timeout_s.max(1));
        for _ in 0..=web.max_redirects {
            let addr = address::vet(&url, &web.allow_private_hosts).await?;
            let response = fetch_once(&url, addr, timeout, &ctx.cancel).await?;
            if response.status().is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| network(format!("{url} redirected without a Location")))?;
                url = url
                    .join(location)
                    .map_err(|e| network(format!("bad redirect {location:?}: {e}")))?;
                continue;
            }
            let status = response.status();
            let is_html = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.contains("html"));
            let body = response
                .text()
                .await
                .map_err(|e| network(format!("reading {url}: {e}")))?;
            let text = if is_html { html::to_text(&body) } else { body };
            // Redacted before it is cut, so a cut cannot split a secret past the redactor.
            let text = ctx.secrets.redact(&text);
            let mut out = format!("URL: {url}\nStatus: {}\n\n", status.as_u16());
            let total = text.chars().count();
            if total > max_chars {
                out.push_str(&text.chars().take(max_chars).collect::<String>());
                out.push_str(&format!("\n[truncated: {max_chars} of {total} characters]"));
            } else {
                out.push_str(&text);
            }
            if !status.is_success() {
                return Err(network(format!("{url} answered {status}"))
                    .with_hint(head_and_tail(&out, 2000)));
            }
            return Ok(ToolOutput::text(out));
        }
        Err(network(format!(
            "more than {} redirects",
            web.max_redirects
        )))
    }
}

async fn fetch_once(
    url: &Url,
    addr: SocketAddr,
    timeout: Duration,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<reqwest::Response, ToolError> {
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_owned();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .resolve(&host, addr)
        .user_agent(concat!("facio/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| network(format!("HTTP client: {e}")))?;
    tokio::select! {
        result = client.get(url.clone()).send() => result.map_err(|e| network(format!("fetching {url}: {e}"))),
        () = cancel.cancelled() => Err(ToolError::new(ToolErrorKind::Cancelled, "the turn was cancelled")),
    }
}

fn invalid(message: String) -> ToolError {
    ToolError::new(ToolErrorKind::InvalidArguments, message)
}

fn network(message: String) -> ToolError {
    ToolError::new(ToolErrorKind::Network, message)
}
