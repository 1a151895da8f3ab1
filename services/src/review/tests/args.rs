//! The HITL tools: strict schemas for the model, and the arguments it sends turned
//! into reviews or refused with the argument named.

use serde_json::{Value, json};

use crate::review::*;
use crate::tools::{ToolError, ToolErrorKind};

#[test]
fn ask_approval_defaults_to_approve_and_reject_for_24_hours() {
    let request = request_from_tool_call(
        "ask_approval",
        &json!({ "title": "Deploy v2.1?", "description": "Rolls out to all regions." }),
    )
    .unwrap();
    assert_eq!(request.review_type(), ReviewType::Approval);
    assert_eq!(request.timeout_s, DEFAULT_REVIEW_TIMEOUT_S);
    assert_eq!(DEFAULT_REVIEW_TIMEOUT_S, 86_400);
    assert_eq!(
        serde_json::to_value(request.to_placet_review()).unwrap(),
        json!({
            "type": "approval",
            "payload": { "options": [
                { "id": "approve", "label": "Approve", "style": "primary" },
                { "id": "reject", "label": "Reject", "style": "danger" }
            ] },
            "expiresInSeconds": 86400
        })
    );

    let custom = request_from_tool_call(
        "ask_approval",
        &json!({
            "title": "Refund?", "description": "Order 42",
            "options": [{ "id": "full", "label": "Full refund", "style": "primary" }, { "id": "none", "label": "No" }],
            "allowComment": true, "timeoutS": 129600
        }),
    )
    .unwrap();
    assert_eq!(custom.timeout_s, MAX_REVIEW_TIMEOUT_S);
    let ReviewPayload::Approval(payload) = &custom.payload else {
        panic!("not an approval")
    };
    assert!(payload.comments_allowed());
    assert_eq!(payload.options[1].style, None);
    // The review it opens accepts exactly its own options.
    assert!(
        validate_response(
            &custom.payload,
            &json!({ "selectedOption": "full", "comment": "ok" })
        )
        .is_ok()
    );
    assert!(validate_response(&custom.payload, &json!({ "selectedOption": "approve" })).is_err());
}

#[test]
fn ask_selection_ask_form_and_ask_text_input_build_their_reviews() {
    let selection = request_from_tool_call(
        "ask_selection",
        &json!({ "title": "Pick", "mode": "multi", "description": "",
                 "items": [{ "id": "a", "label": "A", "description": "first" }, { "id": "b", "label": "B" }] }),
    )
    .unwrap();
    assert_eq!(
        selection.description, None,
        "an empty description is no description"
    );
    assert_eq!(
        serde_json::to_value(&selection.payload).unwrap()["payload"],
        json!({ "mode": "multi", "items": [{ "id": "a", "label": "A", "description": "first" }, { "id": "b", "label": "B" }] })
    );

    let form = request_from_tool_call(
        "ask_form",
        &json!({
            "title": "Connect the CRM", "submitLabel": "Connect", "timeoutS": 3600,
            "fields": [
                { "name": "apiKey", "type": "password", "label": "API key", "required": true, "min": 20 },
                { "name": "region", "type": "select", "label": "Region",
                  "options": [{ "value": "eu", "label": "EU" }, { "value": "us", "label": "US" }] },
                { "name": "seats", "type": "number", "label": "Seats", "min": 1, "max": 500 },
                { "name": "start", "type": "date", "label": "Start", "placeholder": "2026-06-01" }
            ]
        }),
    )
    .unwrap();
    assert_eq!(
        (form.review_type(), form.timeout_s),
        (ReviewType::Form, 3600)
    );
    let ReviewPayload::Form(payload) = &form.payload else {
        panic!("not a form")
    };
    assert_eq!(payload.submit_label.as_deref(), Some("Connect"));
    assert_eq!(payload.fields[0].field_type, FieldType::Password);
    assert!(payload.fields[0].is_required());

    let text = request_from_tool_call(
        "ask_text_input",
        &json!({ "title": "Edit the email", "prefill": "Dear Ms. Lee,", "markdown": true,
                 "minLength": 5, "maxLength": 2000, "placeholder": "..." }),
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(text.to_placet_review()).unwrap(),
        json!({
            "type": "text-input",
            "payload": { "placeholder": "...", "markdown": true, "minLength": 5, "maxLength": 2000, "prefill": "Dear Ms. Lee," },
            "expiresInSeconds": 86400
        })
    );
}

#[test]
fn bad_arguments_are_refused_naming_the_argument() {
    let approval = |extra: Value| {
        let mut args = json!({ "title": "T", "description": "D" });
        args.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        ("ask_approval", args)
    };
    let form = |field: Value| {
        (
            "ask_form",
            json!({ "title": "T", "fields": [{ "name": "ok", "type": "text", "label": "Ok" }, field] }),
        )
    };
    let cases: Vec<((&str, Value), &str, &str)> = vec![
        (
            ("ask_approval", json!({ "title": "T" })),
            "description",
            "description: required",
        ),
        (
            approval(json!({ "title": "  " })),
            "title",
            "title: must not be empty",
        ),
        (
            approval(json!({ "colour": "red" })),
            "colour",
            "colour: unknown argument",
        ),
        (
            approval(json!({ "options": [] })),
            "options",
            "options: must not be empty",
        ),
        (
            approval(
                json!({ "options": [{ "id": "a", "label": "A" }, { "id": "a", "label": "B" }] }),
            ),
            "options[1].id",
            "options[1].id: \"a\" is used more than once",
        ),
        (
            approval(json!({ "options": [{ "id": "a", "label": "A", "style": "loud" }] })),
            "options[0].style",
            "options[0].style: \"loud\" is not one of primary, danger, secondary, ghost",
        ),
        (
            approval(json!({ "options": [{ "id": "a" }] })),
            "options[0].label",
            "options[0].label: required",
        ),
        (
            approval(json!({ "allowComment": "yes" })),
            "allowComment",
            "allowComment: invalid type",
        ),
        (
            approval(json!({ "timeoutS": 129601 })),
            "timeoutS",
            "timeoutS: 129601 s is beyond the maximum of 129600 s (36 h)",
        ),
        (
            approval(json!({ "timeoutS": 0 })),
            "timeoutS",
            "timeoutS: must be at least 1 second",
        ),
        (
            approval(json!({ "timeoutS": -5 })),
            "timeoutS",
            "timeoutS: invalid value",
        ),
        (
            (
                "ask_selection",
                json!({ "title": "T", "mode": "single", "items": [] }),
            ),
            "items",
            "items: must not be empty",
        ),
        (
            (
                "ask_selection",
                json!({ "title": "T", "mode": "many", "items": [{ "id": "a", "label": "A" }] }),
            ),
            "mode",
            "mode: \"many\" is not one of single, multi",
        ),
        (
            ("ask_selection", json!({ "title": "T", "mode": "single" })),
            "items",
            "items: required",
        ),
        (
            (
                "ask_selection",
                json!({ "title": "T", "mode": "multi", "items": [{ "id": "a", "label": "A" }, { "id": "a", "label": "A2" }] }),
            ),
            "items[1].id",
            "items[1].id: \"a\" is used more than once",
        ),
        (
            ("ask_form", json!({ "title": "T", "fields": [] })),
            "fields",
            "fields: must not be empty",
        ),
        (
            form(json!({ "name": "x", "type": "phone", "label": "X" })),
            "fields[1].type",
            "fields[1].type: unknown field type \"phone\"",
        ),
        (
            form(json!({ "name": "ok", "type": "text", "label": "Again" })),
            "fields[1].name",
            "fields[1].name: \"ok\" is used more than once",
        ),
        (
            form(json!({ "name": "1st", "type": "text", "label": "X" })),
            "fields[1].name",
            "fields[1].name: must start with a letter",
        ),
        (
            form(json!({ "name": "env", "type": "select", "label": "Env" })),
            "fields[1].options",
            "fields[1].options: a select field needs at least one option",
        ),
        (
            form(json!({ "name": "env", "type": "select", "label": "Env", "options": [] })),
            "fields[1].options",
            "fields[1].options: must not be empty",
        ),
        (
            form(
                json!({ "name": "env", "type": "select", "label": "Env", "options": [{ "value": "a", "label": "A" }, { "value": "a", "label": "B" }] }),
            ),
            "fields[1].options[1].value",
            "fields[1].options[1].value: \"a\" is used more than once",
        ),
        (
            form(
                json!({ "name": "n", "type": "text", "label": "N", "options": [{ "value": "a", "label": "A" }] }),
            ),
            "fields[1].options",
            "fields[1].options: only select fields take options",
        ),
        (
            form(json!({ "name": "n", "type": "number", "label": "N", "min": 10, "max": 1 })),
            "fields[1].min",
            "fields[1].min: min 10 is greater than max 1",
        ),
        (
            form(json!({ "name": "d", "type": "date", "label": "D", "max": 3 })),
            "fields[1].max",
            "fields[1].max: date fields take no min or max",
        ),
        (
            form(json!({ "name": "t", "type": "text", "label": "T", "min": -1 })),
            "fields[1].min",
            "fields[1].min: a length cannot be negative",
        ),
        (
            form(json!({ "name": "n", "type": "number", "label": "N", "step": 2 })),
            "fields[1].step",
            "fields[1].step: unknown argument",
        ),
        (
            form(json!("text")),
            "fields[1]",
            "fields[1]: must be a JSON object",
        ),
        (
            (
                "ask_form",
                json!({ "title": "T", "fields": [
                { "name": "apiKey", "type": "password", "label": "A" },
                { "name": "api_key", "type": "password", "label": "B" }
            ] }),
            ),
            "fields[1].name",
            "fields[1].name: its credential key API_KEY is also apiKey's",
        ),
        (
            (
                "ask_text_input",
                json!({ "title": "T", "minLength": 10, "maxLength": 5 }),
            ),
            "minLength",
            "minLength: min 10 is greater than max 5",
        ),
        (
            (
                "ask_text_input",
                json!({ "title": "T", "maxLength": 3, "prefill": "four" }),
            ),
            "prefill",
            "prefill: 4 characters, more than maxLength 3",
        ),
        (
            ("ask_text_input", json!({ "title": "T", "options": [] })),
            "options",
            "options: unknown argument",
        ),
        (
            ("ask_text_input", json!(["T"])),
            "arguments",
            "arguments: must be a JSON object",
        ),
    ];
    for ((tool, args), field, message) in cases {
        let e = match request_from_tool_call(tool, &args) {
            Ok(request) => panic!("{tool} {args} was accepted as {request:?}"),
            Err(e) => e,
        };
        assert_eq!(e.field(), field, "{tool} {args}: {e}");
        assert!(
            e.to_string().starts_with(message),
            "{tool} {args}: got {e:?}, wanted {message}"
        );
    }
}

#[test]
fn refusals_become_tool_errors_the_model_can_act_on() {
    let e = request_from_tool_call("ask_forms", &json!({})).unwrap_err();
    assert_eq!(e, ReviewArgsError::UnknownTool("ask_forms".into()));
    assert_eq!(ToolError::from(e).kind, ToolErrorKind::UnknownTool);

    let e = request_from_tool_call("ask_approval", &json!({ "title": "T" })).unwrap_err();
    let tool_error = ToolError::from(e);
    assert_eq!(tool_error.kind, ToolErrorKind::InvalidArguments);
    assert!(
        tool_error
            .to_model_content()
            .contains("description: required")
    );
}
