//! Child processes under test: output captured line by line, lines awaited without
//! polling, signals for graceful and hard stops.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

/// A free TCP port on 127.0.0.1 (bound and released; good enough for a child to take).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[derive(Default)]
struct Output {
    lines: Mutex<Vec<String>>,
    changed: Notify,
}

impl Output {
    fn lines(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running child process (killed when dropped).
pub struct FacioProcess {
    child: tokio::sync::Mutex<Child>,
    pid: Option<u32>,
    output: Arc<Output>,
}

impl FacioProcess {
    /// Starts `bin ARGS` in `cwd` with extra `env`, capturing stdout and stderr.
    pub fn spawn(
        bin: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        cwd: &Path,
    ) -> anyhow::Result<FacioProcess> {
        let mut command = Command::new(bin);
        command
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("NO_COLOR", "1")
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        let output = Arc::new(Output::default());
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(capture(stdout, output.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(capture(stderr, output.clone()));
        }
        Ok(FacioProcess {
            pid: child.id(),
            child: tokio::sync::Mutex::new(child),
            output,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        self.output.lines().join("\n")
    }

    /// The first line (already printed or still to come) matching `pattern`.
    pub async fn wait_for_line(&self, pattern: &str, timeout: Duration) -> anyhow::Result<String> {
        let regex = regex::Regex::new(pattern).context("line pattern")?;
        let search = async {
            loop {
                let changed = self.output.changed.notified();
                if let Some(line) = self.output.lines().iter().find(|l| regex.is_match(l)) {
                    return line.clone();
                }
                changed.await;
            }
        };
        match tokio::time::timeout(timeout, search).await {
            Ok(line) => Ok(line),
            Err(_) => bail!(
                "no line matching {pattern:?} within {timeout:?}; output so far:\n{}",
                self.output()
            ),
        }
    }

    /// Sends SIGTERM (a graceful stop).
    pub async fn terminate(&self) -> anyhow::Result<()> {
        self.signal(libc::SIGTERM)
    }

    /// Sends SIGKILL (a crash, as far as the process can tell).
    pub async fn kill(&self) -> anyhow::Result<()> {
        self.signal(libc::SIGKILL)?;
        self.child.lock().await.wait().await?;
        Ok(())
    }

    fn signal(&self, signal: libc::c_int) -> anyhow::Result<()> {
        let pid = self
            .pid
            .context("the process has no pid (already reaped)")?;
        let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
        // SAFETY: kill(2) on our own child's pid with a valid signal number.
        if unsafe { libc::kill(pid, signal) } != 0 {
            bail!("kill({pid}, {signal}): {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let mut child = self.child.lock().await;
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => bail!(
                "the process did not exit within {timeout:?}; output:\n{}",
                self.output()
            ),
        }
    }
}

async fn capture(stream: impl AsyncRead + Unpin, output: Arc<Output>) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        output.lines().push(line);
        output.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests;
