//! `facio onboard`: a starter config and workspace.

use std::process::ExitCode;

use facio_services::config::{default_config_path, default_data_dir, onboard};

use super::Globals;

#[derive(Debug, clap::Args)]
pub struct OnboardArgs {
    /// Overwrite files that already exist.
    #[arg(long)]
    force: bool,
}

pub fn run(globals: &Globals, args: OnboardArgs) -> anyhow::Result<ExitCode> {
    let config_path = globals.config.clone().unwrap_or_else(default_config_path);
    let workspace = globals
        .workspace
        .clone()
        .unwrap_or_else(|| default_data_dir().join("workspace"));
    let report = onboard(&config_path, &workspace, args.force)?;
    for path in &report.written {
        println!("wrote {}", path.display());
    }
    for path in &report.kept {
        println!("kept  {} (exists; --force to overwrite)", path.display());
    }
    if let Some(token) = &report.management_token {
        println!("management token: {token}");
        println!(
            "inbox: http://127.0.0.1:8900/inbox (sign in with the management token; `facio serve` \
             must be running)"
        );
    }
    println!(
        "next: set a provider key (e.g. export OPENAI_API_KEY=...), then `facio agent -m \"hello\"` or `facio serve`"
    );
    Ok(ExitCode::SUCCESS)
}
