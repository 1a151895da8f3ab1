//! Opening by URL and migrating: both backends report what they applied, once.

use super::harness::{drop_database, fresh_database, postgres_admin_url};
use crate::store::{Backend, migrate_store, open_store, redact_url};

/// How many migrations there are (both backends have the same, file for file).
fn migrations() -> usize {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations/sqlite");
    std::fs::read_dir(dir).unwrap().count()
}

async fn migrates_once(url: &str, backend: Backend) {
    let all = migrations();
    let first = migrate_store(url, 2).await.unwrap();
    assert_eq!(first.backend, backend);
    assert_eq!(first.applied.len(), all, "{first}");
    assert_eq!(first.applied[0], (1, "sessions".to_owned()));
    assert_eq!(first.latest, Some(i64::try_from(all).unwrap()));
    let line = first.to_string();
    assert!(
        line.contains(&format!(
            "applied {all} migrations (0001 sessions, 0002 runs"
        )),
        "{line}"
    );
    assert!(!line.contains('\n'));
    let second = migrate_store(url, 2).await.unwrap();
    assert!(second.applied.is_empty(), "{second}");
    assert!(
        second
            .to_string()
            .contains(&format!("up to date (migration {all:04})")),
        "{second}"
    );
    // The store opens on the migrated database.
    let store = open_store(url, 2).await.unwrap();
    assert!(store.audit_tenants().await.unwrap().is_empty());
}

#[tokio::test]
async fn sqlite_migrates_once_and_says_what_it_applied() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    migrates_once(&url, Backend::Sqlite).await;
    assert!(matches!(
        open_store("mysql://root:hunter2@db/x", 1).await.map(|_| ()),
        Err(crate::store::StoreError::UnsupportedUrl(_))
    ));
}

#[tokio::test]
async fn postgres_migrates_once_and_never_shows_the_password() {
    let Some(admin) = postgres_admin_url() else {
        eprintln!("skipped: FACIO_TEST_POSTGRES_URL is not set (tests/run.sh sets it)");
        return;
    };
    let database = fresh_database(&admin).await;
    migrates_once(&database.url, Backend::Postgres).await;
    let password = database
        .url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(login, _)| login.split_once(':'))
        .map(|(_, password)| password.to_owned())
        .unwrap();
    let report = migrate_store(&database.url, 2).await.unwrap();
    assert!(!report.to_string().contains(&password), "{report}");
    assert!(report.url.contains(":***@"), "{}", report.url);
    // A database that does not exist: the error names it, never the password.
    let missing = database.url.replace(&database.name, "no_such_database");
    let error = open_store(&missing, 1).await.err().unwrap().to_string();
    assert!(!error.contains(&password), "{error}");
    assert!(!redact_url(&missing).contains(&password));
    drop_database(&admin, &database.name).await;
}
