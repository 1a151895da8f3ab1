//! A reviewer's answer is checked against its review; every refusal names the field.

use serde_json::{Value, json};

use crate::review::*;

fn payload(review: Value) -> ReviewPayload {
    serde_json::from_value::<Review>(review).unwrap().payload
}

fn approval(allow_comment: bool) -> ReviewPayload {
    payload(json!({
        "type": "approval",
        "payload": {
            "options": [{ "id": "approve", "label": "Approve" }, { "id": "reject", "label": "Reject" }],
            "allowComment": allow_comment
        }
    }))
}

fn selection(mode: &str) -> ReviewPayload {
    payload(json!({
        "type": "selection",
        "payload": { "mode": mode, "items": [{ "id": "a", "label": "A" }, { "id": "b", "label": "B" }] }
    }))
}

fn form(fields: Value) -> ReviewPayload {
    payload(json!({ "type": "form", "payload": { "fields": fields } }))
}

fn field(name: &str, field_type: &str) -> Value {
    json!({ "name": name, "type": field_type, "label": name })
}

fn refused(payload: &ReviewPayload, answer: Value) -> ResponseError {
    match validate_response(payload, &answer) {
        Ok(ok) => panic!("{answer} was accepted as {ok:?}"),
        Err(e) => e,
    }
}

fn accepted(payload: &ReviewPayload, answer: Value) -> Value {
    match validate_response(payload, &answer) {
        Ok(ok) => ok.response().to_json(),
        Err(e) => panic!("{answer} was refused: {e}"),
    }
}

#[test]
fn approval_answers_must_pick_a_known_option_and_respect_allow_comment() {
    let strict = approval(false);
    assert_eq!(
        accepted(&strict, json!({ "selectedOption": "reject" })),
        json!({ "selectedOption": "reject" })
    );
    // An untouched comment box is no comment.
    assert_eq!(
        accepted(
            &strict,
            json!({ "selectedOption": "approve", "comment": "" })
        ),
        json!({ "selectedOption": "approve" })
    );

    let e = refused(&strict, json!({ "selectedOption": "maybe" }));
    assert_eq!(e.field(), "selectedOption");
    assert_eq!(
        e.to_string(),
        "selectedOption: \"maybe\" is not one of the options (approve, reject)"
    );
    let e = refused(
        &strict,
        json!({ "selectedOption": "approve", "comment": "ok" }),
    );
    assert_eq!(e, ResponseError::CommentNotAllowed);
    assert_eq!((e.field(), e.code()), ("comment", "comment_not_allowed"));
    assert_eq!(refused(&strict, json!({})).field(), "selectedOption");
    assert_eq!(
        refused(&strict, json!({ "selectedOption": 1 })).code(),
        "wrong_type"
    );
    assert_eq!(
        refused(&strict, json!({ "selectedOption": "approve", "extra": 1 })),
        ResponseError::UnknownField {
            field: "extra".into(),
            review_type: "approval"
        }
    );
    assert_eq!(refused(&strict, json!("approve")).code(), "not_an_object");

    let open = approval(true);
    assert_eq!(
        accepted(
            &open,
            json!({ "selectedOption": "approve", "comment": "Ship it" })
        ),
        json!({ "selectedOption": "approve", "comment": "Ship it" })
    );
    assert_eq!(
        refused(&open, json!({ "selectedOption": "approve", "comment": 5 })).field(),
        "comment"
    );
}

#[test]
fn selection_answers_respect_mode_items_and_uniqueness() {
    let single = selection("single");
    assert_eq!(
        accepted(&single, json!({ "selectedIds": ["b"] })),
        json!({ "selectedIds": ["b"] })
    );
    assert_eq!(
        refused(&single, json!({ "selectedIds": [] })),
        ResponseError::NotExactlyOne { count: 0 }
    );
    assert_eq!(
        refused(&single, json!({ "selectedIds": ["a", "b"] })),
        ResponseError::NotExactlyOne { count: 2 }
    );

    let multi = selection("multi");
    assert_eq!(
        accepted(&multi, json!({ "selectedIds": ["a", "b"] })),
        json!({ "selectedIds": ["a", "b"] })
    );
    assert_eq!(
        accepted(&multi, json!({ "selectedIds": [] })),
        json!({ "selectedIds": [] })
    );
    assert_eq!(
        refused(&multi, json!({ "selectedIds": ["a", "z"] })),
        ResponseError::UnknownItem { id: "z".into() }
    );
    let e = refused(&multi, json!({ "selectedIds": ["a", "a"] }));
    assert_eq!(e, ResponseError::DuplicateItem { id: "a".into() });
    assert_eq!(e.field(), "selectedIds");
    assert_eq!(
        refused(&multi, json!({ "selectedIds": [1] })).code(),
        "wrong_type"
    );
    assert_eq!(refused(&multi, json!({})).code(), "missing");
}

#[test]
fn form_answers_need_required_fields_and_no_unknown_ones() {
    let p = form(json!([
        { "name": "env", "type": "text", "label": "Env", "required": true },
        field("note", "text"),
        field("count", "number")
    ]));
    // Blank optional values are dropped, not passed on as "".
    assert_eq!(
        accepted(&p, json!({ "env": "prod", "note": "", "count": null })),
        json!({ "env": "prod" })
    );
    assert_eq!(
        refused(&p, json!({ "note": "x" })),
        ResponseError::Missing {
            field: "env".into()
        }
    );
    assert_eq!(refused(&p, json!({ "env": "" })).field(), "env");
    let e = refused(&p, json!({ "env": "prod", "colour": "red" }));
    assert_eq!((e.field(), e.code()), ("colour", "unknown_field"));
}

#[test]
fn form_values_are_checked_by_field_type() {
    let p = form(json!([
        { "name": "instances", "type": "number", "label": "n", "min": 1, "max": 10 },
        { "name": "ratio", "type": "range", "label": "r", "min": 0.5, "max": 2.5 },
        field("email", "email"),
        field("site", "url"),
        { "name": "env", "type": "select", "label": "e",
          "options": [{ "value": "staging", "label": "Staging" }, { "value": "prod", "label": "Prod" }] },
        field("notify", "checkbox"),
        field("day", "date"),
        field("at", "time"),
        field("when", "datetime"),
        { "name": "name", "type": "text", "label": "n", "min": 2, "max": 5 },
        { "name": "notes", "type": "textarea", "label": "n", "max": 3 }
    ]));

    let all_good = json!({
        "instances": 10, "ratio": 0.5, "email": "ops@example.com", "site": "https://example.com/a?b=c",
        "env": "prod", "notify": false, "day": "2026-02-28", "at": "09:30", "when": "2026-05-26T10:00:00+02:00",
        "name": "héllo", "notes": "日本語"
    });
    assert_eq!(accepted(&p, all_good.clone()), all_good);
    for (name, good) in [
        ("at", json!("23:59:59")),
        ("when", json!("2026-05-26T10:00")),
        ("when", json!("2026-05-26T10:00:30")),
        ("when", json!("2026-05-26T08:00:00Z")),
        ("site", json!("http://localhost:8080")),
        ("email", json!("first.last+tag@mail.example.co.uk")),
    ] {
        accepted(&p, json!({ name: good }));
    }

    let problems = [
        (json!({ "instances": "3" }), "instances", "wrong_type"),
        (json!({ "instances": 0 }), "instances", "below_minimum"),
        (json!({ "instances": 11 }), "instances", "above_maximum"),
        (json!({ "ratio": 2.6 }), "ratio", "above_maximum"),
        (
            json!({ "email": "ops.example.com" }),
            "email",
            "invalid_format",
        ),
        (
            json!({ "email": "a@b@example.com" }),
            "email",
            "invalid_format",
        ),
        (
            json!({ "email": "ops@localhost" }),
            "email",
            "invalid_format",
        ),
        (
            json!({ "email": "ops@example." }),
            "email",
            "invalid_format",
        ),
        (
            json!({ "email": "@example.com" }),
            "email",
            "invalid_format",
        ),
        (
            json!({ "email": "o ps@example.com" }),
            "email",
            "invalid_format",
        ),
        (
            json!({ "site": "ftp://example.com" }),
            "site",
            "invalid_format",
        ),
        (json!({ "site": "example.com" }), "site", "invalid_format"),
        (
            json!({ "site": "javascript:alert(1)" }),
            "site",
            "invalid_format",
        ),
        (json!({ "env": "dev" }), "env", "not_an_option"),
        (json!({ "env": 1 }), "env", "wrong_type"),
        (json!({ "notify": "true" }), "notify", "wrong_type"),
        (json!({ "day": "2026-02-30" }), "day", "invalid_format"),
        (json!({ "day": "2026-2-3" }), "day", "invalid_format"),
        (json!({ "day": "26.05.2026" }), "day", "invalid_format"),
        (json!({ "at": "24:00" }), "at", "invalid_format"),
        (json!({ "at": "9:30" }), "at", "invalid_format"),
        (
            json!({ "when": "2026-05-26 10:00" }),
            "when",
            "invalid_format",
        ),
        (json!({ "when": "tomorrow" }), "when", "invalid_format"),
        (json!({ "name": "é" }), "name", "too_short"),
        (json!({ "name": "abcdef" }), "name", "too_long"),
        (json!({ "notes": "日本語!" }), "notes", "too_long"),
    ];
    for (answer, field, code) in problems {
        let e = refused(&p, answer.clone());
        assert_eq!((e.field(), e.code()), (field, code), "{answer}: {e}");
        assert!(e.to_string().starts_with(&format!("{field}: ")), "{e}");
    }
    assert_eq!(
        refused(&p, json!({ "instances": 0 })).to_string(),
        "instances: 0 is below the minimum 1"
    );
    assert_eq!(
        refused(&p, json!({ "name": "abcdef" })).to_string(),
        "name: 6 characters, at most 5 allowed"
    );
}

#[test]
fn text_input_length_is_counted_in_characters() {
    let p = payload(json!({
        "type": "text-input",
        "payload": { "minLength": 3, "maxLength": 4, "prefill": "draft" }
    }));
    // Four characters, twelve bytes.
    assert_eq!(
        accepted(&p, json!({ "text": "日本語!" })),
        json!({ "text": "日本語!" })
    );
    assert_eq!(
        refused(&p, json!({ "text": "ab" })),
        ResponseError::TooShort {
            field: "text".into(),
            min: 3,
            actual: 2
        }
    );
    assert_eq!(refused(&p, json!({ "text": "abcde" })).code(), "too_long");
    assert_eq!(refused(&p, json!({})).field(), "text");
    assert_eq!(refused(&p, json!({ "text": "abc", "x": 1 })).field(), "x");
}

#[test]
fn freeform_takes_any_json() {
    let p = payload(json!({ "type": "freeform", "payload": {} }));
    for answer in [json!({ "anything": [1, 2] }), json!("text"), json!(null)] {
        assert_eq!(accepted(&p, answer.clone()), answer);
    }
}
