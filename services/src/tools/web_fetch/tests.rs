use std::sync::Arc;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::config::ToolsConfig;
use crate::tools::Workspace;

/// A one-route-per-path HTTP server on 127.0.0.1 answering from `routes`.
async fn serve(routes: Vec<(&'static str, String)>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let routes = routes.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let response = routes
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map(|(_, r)| r.clone())
                    .unwrap_or_else(|| {
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".into()
                    });
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    port
}

fn ok_html(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn redirect(to: &str) -> String {
    format!(
        "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
}

fn ctx(allow: &[&str]) -> (tempfile::TempDir, ToolContext) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ToolsConfig::default();
    config.web.allow_private_hosts = allow.iter().map(|s| s.to_string()).collect();
    config.web.max_redirects = 2;
    let ctx = ToolContext {
        workspace: Workspace::new(dir.path(), true).unwrap(),
        config: Arc::new(config),
        cancel: CancellationToken::new(),
        secrets: Default::default(),
        grant: Default::default(),
        records: None,
    };
    (dir, ctx)
}

#[tokio::test]
async fn html_becomes_text_and_long_pages_are_truncated() {
    let page = "<html><head><title>x</title><script>var secret=1;</script></head>\
                <body><h1>Hello &amp; welcome</h1><p>First&nbsp;para</p><style>p{}</style><p>Second</p></body></html>";
    let port = serve(vec![
        ("/", ok_html(page)),
        ("/long", ok_html(&"word ".repeat(500))),
    ])
    .await;
    let (_dir, ctx) = ctx(&["127.0.0.1"]);
    let out = WebFetchTool
        .execute(&ctx, json!({"url": format!("http://127.0.0.1:{port}/")}))
        .await
        .unwrap();
    assert!(
        out.content.contains("Hello & welcome")
            && out.content.contains("First para")
            && out.content.contains("Second"),
        "{}",
        out.content
    );
    assert!(
        !out.content.contains("secret") && !out.content.contains("<p>"),
        "{}",
        out.content
    );
    let long = WebFetchTool
        .execute(
            &ctx,
            json!({"url": format!("http://127.0.0.1:{port}/long"), "max_chars": 100}),
        )
        .await
        .unwrap();
    assert!(
        long.content.contains("[truncated: 100 of"),
        "{}",
        long.content
    );
}

#[tokio::test]
async fn internal_addresses_are_refused_even_through_redirects() {
    let port = serve(vec![
        (
            "/to-metadata",
            redirect("http://169.254.169.254/latest/meta-data/"),
        ),
        ("/loop", redirect("/loop")),
    ])
    .await;
    let (_dir, open) = ctx(&[]);
    for url in [
        "http://127.0.0.1:9/",
        "http://10.0.0.1/",
        "http://169.254.169.254/",
        "http://[::1]/",
        "http://localhost/",
        "http://[::ffff:127.0.0.1]/",
    ] {
        let err = WebFetchTool
            .execute(&open, json!({"url": url}))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ToolErrorKind::Denied, "{url}: {err:?}");
        assert!(
            err.message.contains("private or loopback"),
            "{}",
            err.message
        );
    }
    let (_dir, allowed) = ctx(&["127.0.0.1"]);
    let err = WebFetchTool
        .execute(
            &allowed,
            json!({"url": format!("http://127.0.0.1:{port}/to-metadata")}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ToolErrorKind::Denied, "{err:?}");
    let err = WebFetchTool
        .execute(
            &allowed,
            json!({"url": format!("http://127.0.0.1:{port}/loop")}),
        )
        .await
        .unwrap_err();
    assert!(err.message.contains("redirects"), "{err:?}");
    let err = WebFetchTool
        .execute(&allowed, json!({"url": "file:///etc/passwd"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ToolErrorKind::InvalidArguments);
}
