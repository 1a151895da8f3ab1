//! The management records: policies, credentials, tenants and their settings,
//! tokens, usage.

use serde_json::json;

use super::harness::{Subject, conformance};
use super::{key, tenant};
use crate::auth::Role;
use crate::domain::{RunId, TenantId, TenantSettings, Usage};
use crate::store::{NewUsage, StoreError, TokenRecord, UsageGrouping, UsageWindow};
use crate::vault::Sealed;

conformance!(
    the_policy_document_is_replaced_per_tenant,
    credentials_are_kept_per_tenant_as_ciphertext,
    tenants_settings_and_tokens_round_trip,
    usage_sums_per_window_and_group,
);

async fn the_policy_document_is_replaced_per_tenant(subject: &Subject) {
    let store = &subject.store;
    let t = tenant("t");
    assert_eq!(store.get_policy(&t).await.unwrap(), None);
    store
        .put_policy(&t, &json!({"rules": [], "enabled": true}))
        .await
        .unwrap();
    store
        .put_policy(&t, &json!({"rules": [], "enabled": false}))
        .await
        .unwrap();
    assert_eq!(
        store.get_policy(&t).await.unwrap(),
        Some(json!({"rules": [], "enabled": false}))
    );
    assert_eq!(store.get_policy(&tenant("u")).await.unwrap(), None);
}

fn sealed(n: u8) -> Sealed {
    Sealed {
        nonce: format!("nonce{n}"),
        ciphertext: format!("cipher{n}"),
    }
}

async fn credentials_are_kept_per_tenant_as_ciphertext(subject: &Subject) {
    let store = &subject.store;
    let (a, b) = (tenant("a"), tenant("b"));
    assert!(store.any_credential().await.unwrap().is_none());
    store
        .put_credential(&a, "b_key", &sealed(1), false)
        .await
        .unwrap();
    store
        .put_credential(&a, "B_KEY", &sealed(2), true)
        .await
        .unwrap();
    store
        .put_credential(&a, "b_key", &sealed(3), true)
        .await
        .unwrap();
    let refused = store
        .create_credential(&a, "b_key", &sealed(4), false)
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    store
        .create_credential(&b, "b_key", &sealed(5), false)
        .await
        .unwrap();

    assert_eq!(
        store.get_credential(&a, "b_key").await.unwrap(),
        Some((sealed(3), true))
    );
    // Sorted byte-wise, as SQLite does: upper case first.
    assert_eq!(
        store.credential_keys(&a).await.unwrap(),
        vec!["B_KEY".to_owned(), "b_key".to_owned()]
    );
    let listed = store.list_credentials(&a).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|c| (c.key.as_str(), c.sealed.clone(), c.exposed))
            .collect::<Vec<_>>(),
        vec![("B_KEY", sealed(2), true), ("b_key", sealed(3), true)]
    );
    assert!(
        store
            .set_credential_exposed(&a, "b_key", false)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_credential_exposed(&a, "nope", false)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_credential(&a, "b_key").await.unwrap(),
        Some((sealed(3), false))
    );
    assert!(store.delete_credential(&a, "b_key").await.unwrap());
    assert!(!store.delete_credential(&a, "b_key").await.unwrap());
    assert_eq!(
        store.get_credential(&b, "b_key").await.unwrap(),
        Some((sealed(5), false))
    );
    assert!(store.any_credential().await.unwrap().is_some());
}

async fn tenants_settings_and_tokens_round_trip(subject: &Subject) {
    let store = &subject.store;
    let (acme, zeta) = (tenant("acme"), tenant("zeta"));
    assert_eq!(
        store.list_tenants().await.unwrap(),
        vec![TenantId::default_tenant()]
    );
    store.create_tenant(&zeta).await.unwrap();
    store.create_tenant(&acme).await.unwrap();
    for taken in [acme.clone(), TenantId::default_tenant()] {
        let again = store.create_tenant(&taken).await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    }
    assert_eq!(
        store.list_tenants().await.unwrap(),
        vec![TenantId::default_tenant(), acme.clone(), zeta.clone()]
    );
    assert!(store.tenant_exists(&acme).await.unwrap());
    assert!(
        store
            .tenant_exists(&TenantId::default_tenant())
            .await
            .unwrap()
    );
    assert!(!store.tenant_exists(&tenant("nobody")).await.unwrap());

    assert_eq!(
        store.tenant_settings(&acme).await.unwrap(),
        TenantSettings::default()
    );
    let settings = TenantSettings {
        models: Some(vec!["m".into()]),
        tokens_per_day: Some(100),
        ..TenantSettings::default()
    };
    store.put_tenant_settings(&acme, &settings).await.unwrap();
    assert_eq!(store.tenant_settings(&acme).await.unwrap(), settings);
    assert_eq!(
        store.tenant_settings(&zeta).await.unwrap(),
        TenantSettings::default()
    );

    let now = chrono::Utc::now();
    let token = |jti: &str, minutes: i64| TokenRecord {
        tenant: acme.clone(),
        jti: jti.into(),
        subject: Some("ci".into()),
        roles: vec![Role::Operator, Role::Reviewer],
        issued_at: Some(now + chrono::Duration::minutes(minutes)),
        expires_at: Some(now + chrono::Duration::hours(1)),
        revoked_at: None,
        revoked_by: None,
    };
    store.record_token(&token("j1", 0)).await.unwrap();
    store.record_token(&token("j2", 1)).await.unwrap();
    let twice = store.record_token(&token("j1", 0)).await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
    assert_eq!(store.token_revoked(&acme, "j1").await.unwrap(), None);
    assert_eq!(
        store.revoke_token(&acme, "j1", "alice").await.unwrap(),
        Some(true)
    );
    assert_eq!(
        store.revoke_token(&acme, "j1", "alice").await.unwrap(),
        Some(false)
    );
    assert_eq!(
        store.revoke_token(&acme, "j9", "alice").await.unwrap(),
        None
    );
    assert_eq!(
        store.revoke_token(&zeta, "j1", "alice").await.unwrap(),
        None
    );
    assert!(store.token_revoked(&acme, "j1").await.unwrap().is_some());
    let listed = store.list_tokens(&acme).await.unwrap();
    assert_eq!(
        listed.iter().map(|t| t.jti.as_str()).collect::<Vec<_>>(),
        vec!["j2", "j1"],
        "newest first"
    );
    assert_eq!(listed[1].revoked_by.as_deref(), Some("alice"));
    assert_eq!(listed[0].roles, vec![Role::Operator, Role::Reviewer]);
    assert_eq!(listed[0].issued_at, token("j2", 1).issued_at.map(micros));
    assert!(store.list_tokens(&zeta).await.unwrap().is_empty());
}

/// A time as the store keeps it (microseconds).
fn micros(at: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    at - chrono::Duration::nanoseconds(i64::from(at.timestamp_subsec_nanos() % 1_000))
}

async fn usage_sums_per_window_and_group(subject: &Subject) {
    let store = &subject.store;
    let t = tenant("t");
    let runs = [RunId::generate(), RunId::generate()];
    for (n, (model, tokens)) in [("small", 10), ("large", 100), ("small", 5)]
        .into_iter()
        .enumerate()
    {
        store
            .record_usage(
                &t,
                &NewUsage {
                    run_id: runs[n % 2].clone(),
                    session_key: key(if n == 0 { "s:1" } else { "s:2" }),
                    model: model.into(),
                    usage: Usage {
                        prompt_tokens: tokens - 1,
                        completion_tokens: 1,
                        total_tokens: tokens,
                    },
                    cost_micros: tokens * 3,
                },
            )
            .await
            .unwrap();
    }
    let all = UsageWindow::default();
    let totals = store.usage_totals(&t, &all).await.unwrap();
    assert_eq!(
        (
            totals.calls,
            totals.runs,
            totals.total_tokens,
            totals.prompt_tokens,
            totals.cost_micros
        ),
        (3, 2, 115, 112, 345)
    );
    let later = UsageWindow::since(chrono::Utc::now() + chrono::Duration::minutes(1));
    assert_eq!(store.usage_totals(&t, &later).await.unwrap().calls, 0);
    assert_eq!(
        store.usage_totals(&tenant("u"), &all).await.unwrap().calls,
        0
    );

    let by_model = store
        .usage_groups(&t, &all, UsageGrouping::Model)
        .await
        .unwrap();
    assert_eq!(
        by_model
            .iter()
            .map(|g| (g.key.as_str(), g.totals.total_tokens, g.totals.calls))
            .collect::<Vec<_>>(),
        vec![("large", 100, 1), ("small", 15, 2)]
    );
    let by_day = store
        .usage_groups(&t, &all, UsageGrouping::Day)
        .await
        .unwrap();
    assert_eq!(by_day.len(), 1);
    assert_eq!(
        by_day[0].key,
        chrono::Utc::now().format("%Y-%m-%d").to_string()
    );
    let by_session = store
        .usage_groups(&t, &all, UsageGrouping::Session)
        .await
        .unwrap();
    assert_eq!(
        by_session
            .iter()
            .map(|g| g.key.as_str())
            .collect::<Vec<_>>(),
        vec!["s:2", "s:1"]
    );
    let first_run = store.run_usage(&t, &runs[0]).await.unwrap();
    assert_eq!(
        first_run
            .iter()
            .map(|u| u.model.as_str())
            .collect::<Vec<_>>(),
        vec!["small", "small"]
    );
}
