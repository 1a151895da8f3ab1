//! The person at the terminal: prompts go to stderr (stdout stays the answer), lines
//! come from stdin, and a password is read with echo turned off.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};

/// Every line `facio agent` reads: messages and answers to reviews share one reader,
/// so nothing typed ahead is lost between them.
pub struct Terminal {
    lines: Lines<BufReader<Stdin>>,
}

impl Terminal {
    pub fn new() -> Terminal {
        Terminal {
            lines: BufReader::new(tokio::io::stdin()).lines(),
        }
    }

    /// Shows `prompt` and reads one line (without its line ending); `None` when input
    /// has ended.
    pub async fn line(&mut self, prompt: &str) -> anyhow::Result<Option<String>> {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let line = self.lines.next_line().await.context("reading stdin")?;
        Ok(line.map(|l| l.trim_end_matches('\r').to_owned()))
    }

    /// Like [`Terminal::line`], with what is typed not shown.
    pub async fn secret(&mut self, prompt: &str) -> anyhow::Result<Option<String>> {
        let hidden = Hidden::start();
        let line = self.line(prompt).await;
        drop(hidden);
        // The Enter that ended the line was not echoed either.
        eprintln!();
        line
    }
}

/// Turns the terminal's echo off for as long as it lives, with `stty` on
/// stdin (the terminal), as a shell does it.
struct Hidden {
    active: bool,
}

impl Hidden {
    fn start() -> Hidden {
        Hidden {
            active: stty("-echo"),
        }
    }
}

impl Drop for Hidden {
    fn drop(&mut self) {
        if self.active {
            stty("echo");
        }
    }
}

fn stty(setting: &str) -> bool {
    Command::new("stty")
        .arg(setting)
        .stdin(Stdio::inherit())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}
