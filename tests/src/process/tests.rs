use std::path::Path;
use std::time::Duration;

use super::{FacioProcess, free_port};

const WAIT: Duration = Duration::from_secs(10);

fn shell(script: &str) -> FacioProcess {
    FacioProcess::spawn(
        Path::new("/bin/sh"),
        &["-c", script],
        &[("GREETING", "hello from env")],
        Path::new("/"),
    )
    .unwrap()
}

#[tokio::test]
async fn lines_are_found_before_and_after_they_are_printed_and_sigterm_is_graceful() {
    let process = shell(
        "trap 'echo stopping on term; exit 3' TERM; echo \"$GREETING\"; pwd >&2; \
         echo ready; while :; do sleep 0.05; done",
    );
    assert!(process.pid().is_some());
    process.wait_for_line("^ready$", WAIT).await.unwrap();
    // Already printed: found in the buffer, from either stream.
    assert_eq!(
        process.wait_for_line("from env", WAIT).await.unwrap(),
        "hello from env"
    );
    assert_eq!(process.wait_for_line("^/$", WAIT).await.unwrap(), "/");

    let waiter = process.wait_for_line("stopping", WAIT);
    process.terminate().await.unwrap();
    assert_eq!(waiter.await.unwrap(), "stopping on term");
    assert_eq!(process.wait_exit(WAIT).await.unwrap().code(), Some(3));
    assert!(process.output().contains("hello from env\n"));
}

#[tokio::test]
async fn kill_stops_a_process_that_ignores_sigterm() {
    use std::os::unix::process::ExitStatusExt;

    let process = shell("trap '' TERM; echo ready; while :; do sleep 0.05; done");
    process.wait_for_line("ready", WAIT).await.unwrap();
    process.terminate().await.unwrap();
    let still_running = process.wait_exit(Duration::from_millis(300)).await;
    assert!(
        still_running.is_err(),
        "SIGTERM was ignored: {still_running:?}"
    );
    assert!(
        still_running.unwrap_err().to_string().contains("ready"),
        "the error shows the output"
    );
    process.kill().await.unwrap();
    let status = process.wait_exit(WAIT).await.unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}

#[tokio::test]
async fn a_missing_line_times_out_with_the_output_so_far() {
    let process = shell("echo only this; exit 0");
    let error = process
        .wait_for_line("never printed", Duration::from_millis(200))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("never printed"), "{error}");
    assert!(error.contains("only this"), "{error}");
    assert!(process.wait_exit(WAIT).await.unwrap().success());
}

#[test]
fn free_ports_can_be_bound() {
    let port = free_port().unwrap();
    assert_ne!(port, 0);
    std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
}
