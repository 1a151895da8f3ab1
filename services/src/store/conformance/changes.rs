//! Operator changes and their audit events: one transaction, both or neither.

use serde_json::json;

use super::harness::{Subject, conformance};
use super::tenant;
use crate::store::{Applied, AuditEventKind, Change, NewAuditEvent};

conformance!(a_change_and_its_event_commit_together_or_not_at_all);
conformance!(integrations_are_kept_per_tenant_and_kind_and_a_name_is_taken_once);

fn policy_event(n: i64) -> NewAuditEvent {
    NewAuditEvent {
        kind: AuditEventKind::PolicyChanged,
        session_key: None,
        run_id: None,
        actor: "operator".into(),
        data: json!({"n": n}),
    }
}

/// Makes every insert of a `policy_changed` event fail, as a full disk or a lost
/// connection would fail it.
async fn refuse_policy_events(subject: &Subject) {
    let statements: &[&str] = if subject.is_postgres() {
        &[
            "CREATE FUNCTION refuse_policy_events() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'audit insert refused'; END $$",
            "CREATE TRIGGER refuse_policy_events BEFORE INSERT ON audit_events FOR EACH ROW \
             WHEN (NEW.kind = 'policy_changed') EXECUTE FUNCTION refuse_policy_events()",
        ]
    } else {
        &[
            "CREATE TRIGGER refuse_policy_events BEFORE INSERT ON audit_events \
           WHEN NEW.kind = 'policy_changed' BEGIN SELECT RAISE(ABORT, 'audit insert refused'); END",
        ]
    };
    for sql in statements {
        subject.execute(None, sql).await.unwrap();
    }
}

async fn a_change_and_its_event_commit_together_or_not_at_all(subject: &Subject) {
    let store = &subject.store;
    let t = tenant("acme");
    let events = "SELECT COUNT(*) FROM audit_events WHERE tenant_id = 'acme'";

    // The tenant is created with its event in two logs: the system's and its own.
    let logs = vec![
        (tenant("default"), policy_event(0)),
        (t.clone(), policy_event(0)),
    ];
    let created = store.apply_change(&t, Change::CreateTenant, logs).await;
    assert_eq!(created.unwrap(), Applied::Changed);
    assert!(store.tenant_exists(&t).await.unwrap());
    assert_eq!(subject.count(Some("acme"), events).await, 1);
    assert_eq!(
        subject
            .count(
                Some("default"),
                "SELECT COUNT(*) FROM audit_events WHERE tenant_id = 'default'"
            )
            .await,
        1
    );
    // Creating it again changes nothing and records nothing.
    let again = store
        .apply_change(&t, Change::CreateTenant, vec![(t.clone(), policy_event(0))])
        .await;
    assert!(again.is_err(), "{again:?}");
    assert_eq!(subject.count(Some("acme"), events).await, 1);

    let first = json!({"rules": [], "version": 1});
    let applied = store
        .apply_change(
            &t,
            Change::Policy(first.clone()),
            vec![(t.clone(), policy_event(1))],
        )
        .await
        .unwrap();
    assert_eq!(applied, Applied::Changed);
    assert_eq!(store.get_policy(&t).await.unwrap(), Some(first.clone()));
    assert_eq!(subject.count(Some("acme"), events).await, 2);

    // A change that finds nothing to change records nothing.
    let revoke = Change::RevokeToken {
        jti: "tok_nobody".into(),
        by: "operator".into(),
    };
    let missing = store
        .apply_change(&t, revoke, vec![(t.clone(), policy_event(2))])
        .await
        .unwrap();
    assert_eq!(missing, Applied::Missing);
    assert_eq!(subject.count(Some("acme"), events).await, 2);

    // An event that cannot be written: the change is not made either.
    refuse_policy_events(subject).await;
    let second = json!({"rules": [], "version": 2});
    let refused = store
        .apply_change(
            &t,
            Change::Policy(second),
            vec![(t.clone(), policy_event(3))],
        )
        .await;
    assert!(
        refused.is_err(),
        "the event could not be written: {refused:?}"
    );
    assert_eq!(
        store.get_policy(&t).await.unwrap(),
        Some(first),
        "a change whose audit event cannot be written is not made"
    );
    assert_eq!(subject.count(Some("acme"), events).await, 2);
    assert_eq!(store.verify_audit(&t).await.unwrap().first_broken, None);
}

async fn integrations_are_kept_per_tenant_and_kind_and_a_name_is_taken_once(subject: &Subject) {
    let store = &subject.store;
    let (acme, other) = (tenant("acme"), tenant("other"));
    let http = json!({"type": "streamableHttp", "url": "http://127.0.0.1:1/mcp"});
    use crate::store::IntegrationKind::{A2aPeer, McpServer};
    let put = |name: &str, definition: &serde_json::Value, replace: bool| Change::PutIntegration {
        kind: McpServer,
        name: name.into(),
        definition: definition.clone(),
        replace,
    };
    assert_eq!(
        store
            .apply_change(&acme, put("docs", &http, false), Vec::new())
            .await
            .unwrap(),
        Applied::Changed
    );
    store
        .apply_change(&acme, put("zeta", &http, false), Vec::new())
        .await
        .unwrap();
    // A second add under the same name is refused and changes nothing.
    let again = json!({"type": "stdio", "command": "evil"});
    let refused = store
        .apply_change(&acme, put("docs", &again, false), Vec::new())
        .await;
    assert!(
        matches!(refused, Err(crate::store::StoreError::Conflict(_))),
        "{refused:?}"
    );
    let listed = store.integrations(&acme, McpServer).await.unwrap();
    assert_eq!(
        listed,
        vec![
            ("docs".to_owned(), http.clone()),
            ("zeta".to_owned(), http.clone())
        ]
    );
    // Another tenant sees none of them and may use the same name.
    assert!(
        store
            .integrations(&other, McpServer)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .apply_change(&other, put("docs", &again, false), Vec::new())
        .await
        .unwrap();
    // A replace keeps the place and takes the new definition.
    let disabled =
        json!({"type": "streamableHttp", "url": "http://127.0.0.1:1/mcp", "enabled": false});
    store
        .apply_change(&acme, put("docs", &disabled, true), Vec::new())
        .await
        .unwrap();
    assert_eq!(
        store.integrations(&acme, McpServer).await.unwrap()[0].1,
        disabled
    );
    // Another kind under the same name is another row.
    let peer = Change::PutIntegration {
        kind: A2aPeer,
        name: "zeta".into(),
        definition: json!({"cardUrl": "http://127.0.0.1:1/"}),
        replace: false,
    };
    store.apply_change(&acme, peer, Vec::new()).await.unwrap();
    assert_eq!(store.integrations(&acme, A2aPeer).await.unwrap().len(), 1);
    let delete = |name: &str| Change::DeleteIntegration {
        kind: McpServer,
        name: name.into(),
    };
    assert_eq!(
        store
            .apply_change(&acme, delete("docs"), Vec::new())
            .await
            .unwrap(),
        Applied::Changed
    );
    assert_eq!(
        store
            .apply_change(&acme, delete("docs"), Vec::new())
            .await
            .unwrap(),
        Applied::Missing
    );
    assert_eq!(store.integrations(&acme, McpServer).await.unwrap().len(), 1);
    assert_eq!(
        store.integrations(&other, McpServer).await.unwrap()[0].1,
        again
    );
    // One read across tenants sees every tenant's rows of one kind, each with its
    // tenant, and no other kind.
    let all = store.all_integrations(McpServer).await.unwrap();
    let mut seen: Vec<(String, String)> = all
        .iter()
        .map(|(t, name, _)| (t.to_string(), name.clone()))
        .collect();
    seen.sort();
    let mut expected: Vec<(String, String)> = store
        .integrations(&acme, McpServer)
        .await
        .unwrap()
        .into_iter()
        .map(|(name, _)| ("acme".to_owned(), name))
        .chain(
            store
                .integrations(&other, McpServer)
                .await
                .unwrap()
                .into_iter()
                .map(|(name, _)| ("other".to_owned(), name)),
        )
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
    let peers = store.all_integrations(A2aPeer).await.unwrap();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!((peers[0].0.as_str(), peers[0].1.as_str()), ("acme", "zeta"));
}
