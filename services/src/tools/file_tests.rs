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
        grant: Default::default(),
        records: None,
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
async fn the_registry_offers_ten_tools_with_strict_schemas() {
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
            "read_logs",
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

/// A value with dashes: an edit of `-` into `- ` would change it into something the
/// redactor no longer recognises, were it visible to the file tools.
const DBPASS: &str = "pg-Xk29-mm41-QQzv";

fn setup_with(
    scope: Option<crate::vault::CredentialScope>,
) -> (
    tempfile::TempDir,
    tempfile::TempDir,
    ToolContext,
    ToolRegistry,
) {
    let (dir, mut ctx, reg) = setup();
    let data = tempfile::tempdir().unwrap();
    ctx.secrets = Arc::new(
        crate::vault::Secrets::with_scopes([
            (
                "DBPASS".to_owned(),
                crate::review::SecretString::new(DBPASS),
                false,
                scope,
            ),
            (
                "API_TOKEN".to_owned(),
                crate::review::SecretString::new("tok-1234567890"),
                false,
                None,
            ),
        ])
        .tracking_files(data.path().join("credential-files.json")),
    );
    (dir, data, ctx, reg)
}

fn squeezed(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

#[tokio::test]
async fn a_credential_edited_into_another_shape_is_never_read_back() {
    let (dir, _data, ctx, reg) = setup_with(None);
    call(
        &reg,
        &ctx,
        "write_file",
        json!({"path": "db.env", "content": "URL=postgres://app:${credentials.DBPASS}@db/app\nMODE=read-write\n"}),
    )
    .await
    .unwrap();
    let edited = call(
        &reg,
        &ctx,
        "edit_file",
        json!({"path": "db.env", "old_text": "-", "new_text": "- ", "replace_all": true}),
    )
    .await
    .unwrap();
    assert!(
        edited.contains("1 occurrence"),
        "only MODE's dash: {edited}"
    );
    let read = call(&reg, &ctx, "read_file", json!({"path": "db.env"}))
        .await
        .unwrap();
    assert_eq!(
        read,
        "     1\tURL=postgres://app:${credentials.DBPASS}@db/app\n     2\tMODE=read- write\n"
    );
    assert!(!squeezed(&read).contains(&squeezed(DBPASS)), "{read}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("db.env")).unwrap(),
        format!("URL=postgres://app:{DBPASS}@db/app\nMODE=read- write\n"),
        "the file still holds the intact value"
    );
    for fragment in ["Xk29", "mm41", "Xk29- mm41", "pg-"] {
        let found = call(&reg, &ctx, "grep", json!({"pattern": fragment}))
            .await
            .unwrap();
        assert_eq!(found, format!("no matches for {fragment}"));
    }
    let found = call(
        &reg,
        &ctx,
        "grep",
        json!({"pattern": "credentials\\.DBPASS"}),
    )
    .await
    .unwrap();
    assert_eq!(
        found,
        "db.env:1:URL=postgres://app:${credentials.DBPASS}@db/app"
    );
    let miss = call(
        &reg,
        &ctx,
        "edit_file",
        json!({"path": "db.env", "old_text": "URL=postgres://app:pg", "new_text": "x"}),
    )
    .await
    .unwrap_err();
    assert!(
        !miss.hint.clone().unwrap_or_default().contains(DBPASS),
        "the closest region is shown as the view: {miss:?}"
    );
    assert_eq!(
        ctx.secrets.files_with_credentials(&ctx.workspace),
        [crate::vault::CredentialFile {
            path: "db.env".into(),
            keys: vec!["DBPASS".into()]
        }]
    );

    // Breaking a placeholder apart leaves literal text, never part of the value.
    call(
        &reg,
        &ctx,
        "edit_file",
        json!({"path": "db.env", "old_text": "DBPASS}", "new_text": "DB PASS}"}),
    )
    .await
    .unwrap();
    let on_disk = std::fs::read_to_string(dir.path().join("db.env")).unwrap();
    assert_eq!(
        on_disk,
        "URL=postgres://app:${credentials.DB PASS}@db/app\nMODE=read- write\n"
    );
    assert!(
        ctx.secrets
            .files_with_credentials(&ctx.workspace)
            .is_empty(),
        "a file without a value leaves the index"
    );
}

#[tokio::test]
async fn patches_apply_to_the_placeholder_view_of_any_file() {
    let (dir, _data, ctx, reg) = setup_with(None);
    // A value that arrived some other way than the file tools is shown as a placeholder too.
    std::fs::write(
        dir.path().join("app.ini"),
        format!("[db]\npassword = {DBPASS}\nhost = db1\n"),
    )
    .unwrap();
    let patch = "--- a/app.ini\n+++ b/app.ini\n@@ -1,3 +1,3 @@\n [db]\n password = ${credentials.DBPASS}\n-host = db1\n+host = db2\n--- /dev/null\n+++ b/token.txt\n@@ -0,0 +1 @@\n+${credentials.API_TOKEN}\n";
    call(&reg, &ctx, "patch_file", json!({"patch": patch}))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("app.ini")).unwrap(),
        format!("[db]\npassword = {DBPASS}\nhost = db2\n")
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("token.txt")).unwrap(),
        "tok-1234567890\n"
    );
    // A hunk that would rewrite the value itself cannot even be written: the view has
    // no value to match.
    let raw = format!(
        "--- a/app.ini\n+++ b/app.ini\n@@ -2 +2 @@\n-password = {DBPASS}\n+password = {}\n",
        DBPASS.replace('-', "- ")
    );
    let refused = call(&reg, &ctx, "patch_file", json!({"patch": raw}))
        .await
        .unwrap_err();
    assert_eq!(refused.kind, ToolErrorKind::NoMatch);
    let mut listed = ctx.secrets.files_with_credentials(&ctx.workspace);
    listed.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(
        listed,
        [
            crate::vault::CredentialFile {
                path: "app.ini".into(),
                keys: vec!["DBPASS".into()]
            },
            crate::vault::CredentialFile {
                path: "token.txt".into(),
                keys: vec!["API_TOKEN".into()]
            }
        ]
    );
}

#[tokio::test]
async fn a_scoped_credential_is_refused_outside_its_tools() {
    let scope = crate::vault::CredentialScope {
        tools: Some(vec!["exec".into()]),
        commands: Some(vec!["psql *".into()]),
    };
    let (dir, _data, ctx, reg) = setup_with(Some(scope));
    let refused = call(
        &reg,
        &ctx,
        "write_file",
        json!({"path": "leak.txt", "content": "${credentials.DBPASS}"}),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.kind, ToolErrorKind::InvalidArguments);
    assert_eq!(
        refused.message,
        "credential DBPASS is scoped to tools [exec], commands [\"psql *\"]: it cannot be used in write_file"
    );
    assert!(!dir.path().join("leak.txt").exists());

    // A file that already holds the value can be edited around it, and keeps it; an
    // edit cannot add another copy.
    std::fs::write(dir.path().join("pg.env"), format!("PW={DBPASS}\nA=1\n")).unwrap();
    call(
        &reg,
        &ctx,
        "edit_file",
        json!({"path": "pg.env", "old_text": "A=1", "new_text": "A=2"}),
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("pg.env")).unwrap(),
        format!("PW={DBPASS}\nA=2\n")
    );
    let copy = call(
        &reg,
        &ctx,
        "edit_file",
        json!({"path": "pg.env", "old_text": "A=2", "new_text": "B=${credentials.DBPASS}"}),
    )
    .await
    .unwrap_err();
    assert!(
        copy.message.contains("cannot be used in edit_file"),
        "{}",
        copy.message
    );
    let patch = "--- /dev/null\n+++ b/copy.env\n@@ -0,0 +1 @@\n+${credentials.DBPASS}\n";
    let patched = call(&reg, &ctx, "patch_file", json!({"patch": patch}))
        .await
        .unwrap_err();
    assert!(
        patched.message.contains("patch_file"),
        "{}",
        patched.message
    );
    assert!(!dir.path().join("copy.env").exists());
}

#[tokio::test]
async fn an_encoded_value_is_redacted_in_the_view_and_kept_as_it_was() {
    use base64::Engine;
    let (dir, _data, ctx, reg) = setup_with(None);
    let encoded = base64::engine::general_purpose::STANDARD.encode(DBPASS);
    std::fs::write(
        dir.path().join("k8s.yaml"),
        format!("data:\n  password: {encoded}\n  note: [REDACTED:DBPASS] was here\n"),
    )
    .unwrap();
    let read = call(&reg, &ctx, "read_file", json!({"path": "k8s.yaml"}))
        .await
        .unwrap();
    assert!(read.contains("password: [REDACTED:DBPASS]"), "{read}");
    // A blind edit of every letter cannot reach the encoding, and the literal marker
    // stays literal.
    call(
        &reg,
        &ctx,
        "edit_file",
        json!({"path": "k8s.yaml", "old_text": "a", "new_text": "a ", "replace_all": true}),
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("k8s.yaml")).unwrap(),
        format!("da ta :\n  pa ssword: {encoded}\n  note: [REDACTED:DBPASS] wa s here\n")
    );
    let dropped = call(
        &reg,
        &ctx,
        "edit_file",
        json!({"path": "k8s.yaml", "old_text": "  pa ssword: [REDACTED:DBPASS]\n", "new_text": ""}),
    )
    .await
    .unwrap_err();
    assert!(
        dropped
            .message
            .contains("cannot be added, copied or removed"),
        "{}",
        dropped.message
    );
    let found = call(&reg, &ctx, "grep", json!({"pattern": &encoded[..6]}))
        .await
        .unwrap();
    assert!(found.starts_with("no matches"), "{found}");
}
