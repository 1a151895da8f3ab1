//! The file tools through their `Tool` interface, as the runtime calls them.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{ToolContext, ToolErrorKind, ToolRegistry, Workspace};
use crate::config::ToolsConfig;

fn setup() -> (tempfile::TempDir, ToolContext, ToolRegistry) {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ToolContext {
        workspace: Workspace::new(dir.path(), true).unwrap(),
        config: Arc::new(ToolsConfig::default()),
        cancel: CancellationToken::new(),
        secrets: Default::default(),
    };
    (dir, ctx, ToolRegistry::builtin())
}

async fn call(
    reg: &ToolRegistry,
    ctx: &ToolContext,
    tool: &str,
    args: Value,
) -> Result<String, super::ToolError> {
    reg.get(tool)
        .unwrap()
        .execute(ctx, args)
        .await
        .map(|o| o.content)
}

#[tokio::test]
async fn the_registry_offers_nine_tools_with_strict_schemas() {
    let names: Vec<String> = ToolRegistry::builtin()
        .specs()
        .into_iter()
        .map(|s| {
            assert_eq!(s.parameters["additionalProperties"], false, "{}", s.name);
            s.name
        })
        .collect();
    assert_eq!(
        names,
        [
            "edit_file",
            "exec",
            "glob",
            "grep",
            "list_dir",
            "patch_file",
            "read_file",
            "web_fetch",
            "write_file"
        ]
    );
}

#[tokio::test]
async fn write_read_and_page_through_a_file() {
    let (dir, ctx, reg) = setup();
    let content: String = (1..=10).map(|n| format!("line {n}\n")).collect();
    let wrote = call(
        &reg,
        &ctx,
        "write_file",
        json!({"path": "a/b.txt", "content": content}),
    )
    .await
    .unwrap();
    assert!(wrote.contains("a/b.txt"), "{wrote}");
    let page = call(
        &reg,
        &ctx,
        "read_file",
        json!({"path": "a/b.txt", "offset": 3, "limit": 2}),
    )
    .await
    .unwrap();
    assert_eq!(
        page,
        "     3\tline 3\n     4\tline 4\n[6 more lines; continue with offset 5]\n"
    );
    let missing = call(&reg, &ctx, "read_file", json!({"path": "nope.txt"}))
        .await
        .unwrap_err();
    assert_eq!(missing.kind, ToolErrorKind::NotFound);
    std::fs::write(dir.path().join("bin"), [0u8, 1, 2]).unwrap();
    assert!(
        call(&reg, &ctx, "read_file", json!({"path": "bin"}))
            .await
            .unwrap_err()
            .message
            .contains("binary")
    );
    assert!(
        call(&reg, &ctx, "read_file", json!({"path": "a"}))
            .await
            .unwrap_err()
            .message
            .contains("directory")
    );
    let bad = call(&reg, &ctx, "read_file", json!({"file": "x"}))
        .await
        .unwrap_err();
    assert_eq!(bad.kind, ToolErrorKind::InvalidArguments);
}

#[tokio::test]
async fn edit_replaces_exactly_and_explains_misses() {
    let (dir, ctx, reg) = setup();
    std::fs::write(
        dir.path().join("f.rs"),
        "let a = 1;\nlet b = 2;\nlet b = 2;\n",
    )
    .unwrap();
    call(
        &reg,
        &ctx,
        "edit_file",
        json!({"path": "f.rs", "old_text": "let a = 1;", "new_text": "let a = 10;"}),
    )
    .await
    .unwrap();
    let twice = call(
        &reg,
        &ctx,
        "edit_file",
        json!({"path": "f.rs", "old_text": "let b = 2;", "new_text": "x"}),
    )
    .await
    .unwrap_err();
    assert!(twice.message.contains("2 times"), "{}", twice.message);
    call(&reg, &ctx, "edit_file", json!({"path": "f.rs", "old_text": "let b = 2;", "new_text": "let c = 3;", "replace_all": true})).await.unwrap();
    let miss = call(
        &reg,
        &ctx,
        "edit_file",
        json!({"path": "f.rs", "old_text": "let a = 11;", "new_text": "y"}),
    )
    .await
    .unwrap_err();
    assert_eq!(miss.kind, ToolErrorKind::NoMatch);
    assert!(miss.hint.unwrap().contains("1\tlet a = 10;"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("f.rs")).unwrap(),
        "let a = 10;\nlet c = 3;\nlet c = 3;\n"
    );
}

#[tokio::test]
async fn a_patch_applies_to_every_file_or_to_none() {
    let (dir, ctx, reg) = setup();
    std::fs::write(dir.path().join("one.txt"), "alpha\nbeta\n").unwrap();
    std::fs::write(dir.path().join("two.txt"), "gamma\n").unwrap();
    let good = "--- a/one.txt\n+++ b/one.txt\n@@ -1,2 +1,2 @@\n alpha\n-beta\n+BETA\n--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+fresh\n";
    call(&reg, &ctx, "patch_file", json!({"patch": good}))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("one.txt")).unwrap(),
        "alpha\nBETA\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("new.txt")).unwrap(),
        "fresh\n"
    );
    let half_bad = "--- a/one.txt\n+++ b/one.txt\n@@ -1,2 +1,2 @@\n alpha\n-BETA\n+beta\n--- a/two.txt\n+++ b/two.txt\n@@ -1 +1 @@\n-delta\n+epsilon\n";
    let err = call(&reg, &ctx, "patch_file", json!({"patch": half_bad}))
        .await
        .unwrap_err();
    assert!(err.message.contains("two.txt"), "{}", err.message);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("one.txt")).unwrap(),
        "alpha\nBETA\n",
        "nothing written"
    );
}

#[tokio::test]
async fn list_glob_and_grep_find_what_is_there() {
    let (dir, ctx, reg) = setup();
    std::fs::create_dir_all(dir.path().join("src/.git")).unwrap();
    std::fs::write(
        dir.path().join("src/main.rs"),
        "fn main() {\n    todo!()\n}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("src/lib.rs"), "// TODO later\n").unwrap();
    std::fs::write(dir.path().join("README.md"), "readme\n").unwrap();
    assert_eq!(
        call(&reg, &ctx, "list_dir", json!({})).await.unwrap(),
        "README.md\nsrc/"
    );
    assert_eq!(
        call(&reg, &ctx, "list_dir", json!({"recursive": true}))
            .await
            .unwrap(),
        "README.md\nsrc/\nsrc/lib.rs\nsrc/main.rs"
    );
    assert_eq!(
        call(&reg, &ctx, "glob", json!({"pattern": "**/*.rs"}))
            .await
            .unwrap(),
        "src/lib.rs\nsrc/main.rs"
    );
    let found = call(
        &reg,
        &ctx,
        "grep",
        json!({"pattern": "todo", "case_insensitive": true, "glob": "*.rs", "context": 1}),
    )
    .await
    .unwrap();
    assert_eq!(
        found,
        "src/lib.rs:1:// TODO later\nsrc/main.rs-1-fn main() {\nsrc/main.rs:2:    todo!()\nsrc/main.rs-3-}"
    );
    let outside = call(&reg, &ctx, "list_dir", json!({"path": "../"}))
        .await
        .unwrap_err();
    assert_eq!(outside.kind, ToolErrorKind::OutsideWorkspace);
}
