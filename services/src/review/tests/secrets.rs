//! Password answers reach the credential store only: the agent, the stored outcome,
//! Debug output and the tool result see a `${credentials.KEY}` placeholder.

use serde_json::json;

use crate::review::*;

const RAW: &str = "sk-live-0123456789abcdef";
const OTHER_RAW: &str = "hunter2-db-password";

fn credentials_form() -> ReviewPayload {
    serde_json::from_value::<Review>(json!({
        "type": "form",
        "payload": { "fields": [
            { "name": "apiKey", "type": "password", "label": "API key", "required": true },
            { "name": "db-password", "type": "password", "label": "Database password" },
            { "name": "backup_password", "type": "password", "label": "Backup (optional)" },
            { "name": "region", "type": "text", "label": "Region" }
        ] }
    }))
    .unwrap()
    .payload
}

#[test]
fn credential_keys_are_upper_snake_case_of_the_field_name() {
    for (name, key) in [
        ("apiKey", "API_KEY"),
        ("api_key", "API_KEY"),
        ("db-password", "DB_PASSWORD"),
        ("GITHUB_TOKEN", "GITHUB_TOKEN"),
        ("smtp2Password", "SMTP2_PASSWORD"),
        ("openai api key", "OPENAI_API_KEY"),
    ] {
        assert_eq!(credential_key(name), key, "{name}");
    }
    assert_eq!(credential_placeholder("API_KEY"), "${credentials.API_KEY}");
}

#[test]
fn password_values_are_replaced_by_placeholders_and_never_printed() {
    let answer =
        json!({ "apiKey": RAW, "db-password": OTHER_RAW, "backup_password": "", "region": "eu" });
    let validated = validate_response(&credentials_form(), &answer).unwrap();
    assert!(validated.has_secrets());

    let debug = format!("{validated:?}");
    assert!(
        !debug.contains(RAW) && !debug.contains(OTHER_RAW),
        "{debug}"
    );
    assert!(debug.contains("[REDACTED]"));
    let shown = validated.response().to_json().to_string();
    assert!(
        !shown.contains(RAW) && !shown.contains(OTHER_RAW),
        "{shown}"
    );

    let (outcome, secrets) = ReviewOutcome::decided(validated, Some("alice".into()), None);
    let ReviewOutcome::Decided { response, .. } = &outcome else {
        panic!("not decided")
    };
    assert_eq!(
        response,
        &json!({
            "apiKey": "${credentials.API_KEY}",
            "db-password": "${credentials.DB_PASSWORD}",
            "region": "eu"
        })
    );
    let stored = serde_json::to_string(&outcome).unwrap();
    let for_model = tool_result_for(&outcome);
    for text in [&stored, &for_model, &format!("{outcome:?}")] {
        assert!(!text.contains(RAW) && !text.contains(OTHER_RAW), "{text}");
    }

    // The raw values come out only here, keyed for the credential store; an empty
    // optional password produces no credential.
    let raw: Vec<(&str, &str)> = secrets
        .iter()
        .map(|(k, v)| (k.as_str(), v.expose_secret()))
        .collect();
    assert_eq!(raw, [("API_KEY", RAW), ("DB_PASSWORD", OTHER_RAW)]);
    assert_eq!(
        format!("{:?} {}", secrets[0].1, secrets[0].1),
        "[REDACTED] [REDACTED]"
    );
    assert!(!format!("{secrets:?}").contains(RAW));
}

#[test]
fn split_secrets_works_on_a_bare_form_answer() {
    let ReviewPayload::Form(form) = credentials_form() else {
        panic!("not a form")
    };
    let answer = json!({ "apiKey": RAW, "region": "eu" });
    let (redacted, secrets) = split_secrets(&form, answer.as_object().unwrap().clone());
    assert_eq!(
        redacted,
        json!({ "apiKey": "${credentials.API_KEY}", "region": "eu" })
    );
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].0, "API_KEY");
    assert_eq!(secrets[0].1.expose_secret(), RAW);
}

#[test]
fn a_required_password_left_empty_is_refused() {
    let e = validate_response(&credentials_form(), &json!({ "apiKey": "" })).unwrap_err();
    assert_eq!(
        e,
        ResponseError::Missing {
            field: "apiKey".into()
        }
    );
}

#[test]
fn tool_results_are_compact_json_for_the_model() {
    let decided = ReviewOutcome::Decided {
        response: json!({ "selectedOption": "approve" }),
        reviewer: Some("alice".into()),
        comment: Some("go ahead".into()),
    };
    assert_eq!(
        tool_result_for(&decided),
        r#"{"status":"decided","response":{"selectedOption":"approve"},"reviewer":"alice","comment":"go ahead"}"#
    );
    let anonymous = ReviewOutcome::Decided {
        response: json!({ "text": "final" }),
        reviewer: None,
        comment: None,
    };
    assert_eq!(
        tool_result_for(&anonymous),
        r#"{"status":"decided","response":{"text":"final"}}"#
    );
    assert_eq!(
        tool_result_for(&ReviewOutcome::TimedOut),
        r#"{"status":"timed_out","action":"deny"}"#
    );
    assert_eq!(
        tool_result_for(&ReviewOutcome::Cancelled),
        r#"{"status":"cancelled"}"#
    );
    // Outcomes persist and reload unchanged.
    for outcome in [
        decided,
        anonymous,
        ReviewOutcome::TimedOut,
        ReviewOutcome::Cancelled,
    ] {
        let stored = serde_json::to_value(&outcome).unwrap();
        assert_eq!(
            serde_json::from_value::<ReviewOutcome>(stored).unwrap(),
            outcome
        );
    }
}
