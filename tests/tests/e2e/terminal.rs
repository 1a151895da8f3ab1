//! `facio agent` at a terminal: a gated call and the agent's questions are asked
//! inline, answered by typing, and the same turn goes on to print its answer. Driven
//! in a pseudo-terminal (stdin and stderr), with stdout a pipe so the answer is seen
//! exactly as a script would.

use std::ffi::CStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};

use facio_tests::model::Reply;
use serde_json::json;

use crate::support::{Env, PATIENCE, facio_bin, stderr, stdout, tool_results};

/// `facio agent ARGS` with its stdin and stderr on a pseudo-terminal.
struct Terminal {
    child: tokio::process::Child,
    master: File,
    /// Everything the terminal showed (prompts, and what was typed while echo was on).
    screen: Arc<Mutex<String>>,
    changed: tokio::sync::watch::Receiver<usize>,
    /// How far `expect` has read.
    seen: usize,
}

impl Terminal {
    fn spawn(env: &Env, args: &[&str]) -> Terminal {
        let (master, slave) = open_pty();
        let mut reader = master.try_clone().expect("clone the pty master");
        let child = {
            let mut command = tokio::process::Command::new(facio_bin());
            command
                .args(args)
                .arg("--config")
                .arg(env.config_path())
                .arg("--workspace")
                .arg(env.workspace())
                .env("USER", "tess")
                .env_remove("OPENAI_API_KEY")
                .env_remove("ANTHROPIC_API_KEY")
                .env_remove("VISUAL")
                .env_remove("EDITOR")
                .stdin(Stdio::from(slave.try_clone().expect("clone the pty slave")))
                .stderr(Stdio::from(slave))
                .stdout(Stdio::piped())
                .kill_on_drop(true);
            // The command (and with it this process's copies of the slave) is dropped
            // here, so the master sees the end when facio exits.
            command.spawn().expect("spawn facio agent")
        };
        let screen = Arc::new(Mutex::new(String::new()));
        let (notify, changed) = tokio::sync::watch::channel(0);
        let shared = screen.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            // Ends with an error (EIO) once no process holds the terminal any more.
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                let mut screen = shared.lock().unwrap();
                screen.push_str(&String::from_utf8_lossy(&buffer[..n]));
                let _ = notify.send(screen.len());
            }
        });
        Terminal {
            child,
            master,
            screen,
            changed,
            seen: 0,
        }
    }

    fn screen(&self) -> String {
        self.screen.lock().unwrap().clone()
    }

    /// Waits until `text` appears after what was already expected; returns what the
    /// terminal showed up to and including it.
    async fn expect(&mut self, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let screen = self.screen();
            if let Some(at) = screen[self.seen..].find(text) {
                let end = self.seen + at + text.len();
                let shown = screen[self.seen..end].to_owned();
                self.seen = end;
                return shown;
            }
            match tokio::time::timeout_at(deadline, self.changed.changed()).await {
                Ok(Ok(())) => continue,
                // The terminal closed: one last look, then give up.
                Ok(Err(_)) if self.screen().len() != screen.len() => continue,
                _ => panic!("{text:?} never appeared; the terminal showed:\n{screen}"),
            }
        }
    }

    fn type_line(&mut self, line: &str) {
        self.master
            .write_all(format!("{line}\n").as_bytes())
            .expect("type into the terminal");
    }

    async fn finish(self) -> (Output, String) {
        let screen = self.screen.clone();
        let output = tokio::time::timeout(PATIENCE, self.child.wait_with_output())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "facio agent did not exit; the terminal showed:\n{}",
                    screen.lock().unwrap()
                )
            })
            .expect("wait for facio agent");
        let shown = screen.lock().unwrap().clone();
        (output, shown)
    }
}

/// A new pseudo-terminal: (master, slave).
fn open_pty() -> (File, File) {
    // SAFETY: plain libc calls on a descriptor this function owns; the name buffer is
    // large enough and NUL-terminated by ptsname_r.
    unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        let master = File::from(OwnedFd::from_raw_fd(fd));
        assert_eq!(libc::grantpt(fd), 0, "grantpt");
        assert_eq!(libc::unlockpt(fd), 0, "unlockpt");
        let mut name = [0 as libc::c_char; 256];
        assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
        let path = CStr::from_ptr(name.as_ptr())
            .to_str()
            .expect("pty name")
            .to_owned();
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)
            .expect("open the pty slave");
        (master, slave)
    }
}

#[tokio::test]
async fn a_gated_call_and_a_form_are_answered_at_the_terminal_and_the_turn_answers() {
    let env = Env::new(vec![
        Reply::tool_call("exec", json!({"command": "echo ok > approved.txt"})),
        Reply::tool_call(
            "ask_form",
            json!({"title": "Release details", "fields": [
                {"name": "version", "type": "text", "label": "Version", "required": true},
                {"name": "replicas", "type": "number", "label": "Replicas", "min": 1, "max": 10},
                {"name": "apiToken", "type": "password", "label": "API token", "required": true}]}),
        ),
        Reply::text("All done."),
    ])
    .await;

    let mut terminal = Terminal::spawn(&env, &["agent", "-m", "Ship it", "-s", "cli:term"]);

    let review = terminal.expect("[a]pprove / [r]eject").await;
    assert!(review.contains("exec needs your decision"), "{review}");
    assert!(
        review.contains(r#""command": "echo ok > approved.txt""#),
        "the arguments are not shown as JSON: {review}"
    );
    assert!(
        review.contains("why: exec affects the world outside the workspace"),
        "the policy's reason is not shown: {review}"
    );
    assert!(!env.workspace().join("approved.txt").exists());
    terminal.type_line("a");
    terminal.expect("comment (optional").await;
    terminal.type_line("");
    terminal.expect("approved by tess").await;

    let form = terminal.expect("version: ").await;
    assert!(form.contains("Release details"), "{form}");
    assert!(form.contains("Version (text, required)"), "{form}");
    terminal.type_line("2.1");
    let replicas = terminal.expect("replicas: ").await;
    assert!(replicas.contains("Replicas (number, 1–10)"), "{replicas}");
    terminal.type_line("42");
    terminal
        .expect("replicas: 42 is above the maximum 10")
        .await;
    terminal.expect("replicas: ").await;
    terminal.type_line("3");
    let token = terminal.expect("apiToken: ").await;
    assert!(token.contains("not shown as you type"), "{token}");
    terminal.type_line("s3cret-value");
    terminal.expect("answered by tess").await;

    let (output, screen) = terminal.finish().await;
    assert!(
        output.status.success(),
        "exit {:?}; the terminal showed:\n{screen}",
        output.status
    );
    assert_eq!(stdout(&output), "All done.\n", "{screen}");
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("approved.txt")).unwrap(),
        "ok\n"
    );
    assert!(
        screen.contains("✓ exec"),
        "the approved call's result is not shown: {screen}"
    );
    assert!(
        !screen.contains("s3cret-value"),
        "the password was echoed: {screen}"
    );
    let requests = env.model.requests();
    let last = requests.last().expect("the model was called");
    let results = tool_results(last);
    let answer = &results.last().expect("the form's answer").1;
    assert!(answer.contains("2.1") && answer.contains('3'), "{answer}");
    assert!(answer.contains("${credentials.API_TOKEN}"), "{answer}");
    assert!(!answer.contains("s3cret-value"), "{answer}");
}

#[tokio::test]
async fn a_call_rejected_at_the_terminal_reaches_the_model_with_the_comment() {
    let env = Env::new(vec![
        Reply::tool_call("exec", json!({"command": "echo ok > approved.txt"})),
        Reply::text("Understood, not shipping."),
    ])
    .await;

    let mut terminal = Terminal::spawn(&env, &["agent", "-m", "Ship it"]);
    terminal.expect("[a]pprove / [r]eject").await;
    terminal.type_line("r");
    terminal.expect("comment (optional").await;
    terminal.type_line("not on a Friday");
    terminal.expect("rejected by tess").await;

    let (output, screen) = terminal.finish().await;
    assert!(output.status.success(), "{screen}");
    assert_eq!(stdout(&output), "Understood, not shipping.\n", "{screen}");
    assert!(!env.workspace().join("approved.txt").exists());
    let requests = env.model.requests();
    let results = tool_results(requests.last().expect("the model was called"));
    let refusal = &results.last().expect("the call's result").1;
    assert!(
        refusal.contains("tess rejected this call: not on a Friday"),
        "{refusal}"
    );
}

#[tokio::test]
async fn without_a_terminal_the_review_id_and_how_to_decide_it_are_printed() {
    let env = Env::new(vec![
        Reply::tool_call("exec", json!({"command": "echo ok > approved.txt"})),
        Reply::tool_call("exec", json!({"command": "echo ok > approved.txt"})),
    ])
    .await;

    // --no-input, even at a terminal.
    let mut terminal = Terminal::spawn(&env, &["agent", "-m", "Ship it", "--no-input"]);
    terminal.expect("facio sessions show").await;
    let (output, screen) = terminal.finish().await;
    assert_eq!(output.status.code(), Some(3), "{screen}");
    assert_eq!(stdout(&output), "", "no answer on stdout");
    assert!(!screen.contains("[a]pprove"), "asked despite --no-input");
    let review_id = screen
        .split("waits for review ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no review id: {screen}"))
        .to_owned();
    for said in [
        "not asked here (--no-input)",
        "facio serve --config",
        &format!("facio reviews approve {review_id} --config"),
        "facio sessions show cli:direct --config",
        &format!("facio reviews reject {review_id}"),
        "/inbox",
        // This config has no management token, and the message says so.
        "set api.managementToken or $FACIO_MANAGEMENT_TOKEN",
    ] {
        assert!(screen.contains(said), "{said:?} not said: {screen}");
    }
    assert!(
        !screen.contains("the gateway runs it"),
        "the old message: {screen}"
    );

    // stdin not a terminal: the same, said so.
    let output = env
        .cli(&["agent", "-m", "Ship it", "--session", "cli:piped"])
        .await;
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("not asked here (stdin is not a terminal)"),
        "{}",
        stderr(&output)
    );
    assert!(!env.workspace().join("approved.txt").exists());

    let help = env.cli(&["agent", "--help"]).await;
    assert!(
        stdout(&help).contains("3 it stopped at a review"),
        "{}",
        stdout(&help)
    );
}
