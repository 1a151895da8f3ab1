//! `scripted-model --port N --latency-ms N --content TEXT`: a fixed-latency model on
//! the OpenAI wire, for load tests and manual runs.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(about = "A fixed-latency model speaking the OpenAI chat-completions wire")]
struct Args {
    /// Port to bind on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Milliseconds to wait before each answer.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// The answer to every request.
    #[arg(long, default_value = "ok")]
    content: String,
    /// Call this tool once per turn before answering: `NAME`, or `NAME {JSON}` with
    /// its arguments (`exec {"command": "uname -a"}`).
    #[arg(long)]
    tool: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let model = facio_tests::model::ScriptedModel::start_fixed_with_tool(
        &args.content,
        args.tool.as_deref(),
        Duration::from_millis(args.latency_ms),
        args.port,
    )
    .await?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://127.0.0.1:{}", model.port())?;
    stdout.flush().context("flush stdout")?;
    tokio::signal::ctrl_c().await?;
    Ok(())
}
