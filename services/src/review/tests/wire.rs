//! The review and response shapes match Placet's documented JSON byte for byte.

use serde_json::{Value, json};

use crate::review::*;

fn round_trip(review: Value) -> Review {
    let parsed: Review = serde_json::from_value(review.clone())
        .unwrap_or_else(|e| panic!("{review} does not parse: {e}"));
    assert_eq!(serde_json::to_value(&parsed).unwrap(), review);
    parsed
}

#[test]
fn every_placet_review_example_round_trips() {
    let approval = round_trip(json!({
        "type": "approval",
        "payload": {
            "options": [
                { "id": "approve", "label": "Approve", "style": "primary" },
                { "id": "reject", "label": "Reject", "style": "danger" }
            ],
            "allowComment": true
        },
        "expiresInSeconds": 3600
    }));
    assert_eq!(approval.review_type(), ReviewType::Approval);
    assert_eq!(approval.expires_in_seconds, Some(3600));

    // Placet's own examples omit the style.
    round_trip(json!({
        "type": "approval",
        "payload": { "options": [{ "id": "yes", "label": "Yes" }, { "id": "no", "label": "No" }] }
    }));

    let selection = round_trip(json!({
        "type": "selection",
        "payload": {
            "mode": "single",
            "items": [
                { "id": "option_a", "label": "Option A", "description": "First choice" },
                { "id": "option_b", "label": "Option B" }
            ]
        }
    }));
    assert!(matches!(
        selection.payload,
        ReviewPayload::Selection(SelectionPayload {
            mode: SelectionMode::Single,
            ..
        })
    ));

    let form = round_trip(json!({
        "type": "form",
        "payload": {
            "fields": [
                {
                    "name": "environment", "type": "select", "label": "Environment", "required": true,
                    "options": [{ "value": "staging", "label": "Staging" }, { "value": "prod", "label": "Production" }]
                },
                { "name": "version", "type": "text", "label": "Version", "placeholder": "e.g. 2.1.0" },
                { "name": "notify", "type": "checkbox", "label": "Send notification" },
                { "name": "instances", "type": "number", "label": "Instances", "min": 1, "max": 10 },
                { "name": "ratio", "type": "range", "label": "Ratio", "min": 0.5, "max": 2.5 }
            ],
            "submitLabel": "Deploy"
        }
    }));
    let ReviewPayload::Form(form) = form.payload else {
        panic!("not a form")
    };
    assert_eq!(form.fields[3].min, Some(1.0));
    assert_eq!(form.fields[0].field_type, FieldType::Select);

    round_trip(json!({
        "type": "text-input",
        "payload": {
            "placeholder": "Describe the issue...",
            "markdown": true,
            "minLength": 10,
            "maxLength": 2000,
            "prefill": "Dear team,"
        }
    }));
    let freeform = round_trip(json!({ "type": "freeform", "payload": {} }));
    assert_eq!(freeform.review_type(), ReviewType::Freeform);
}

#[test]
fn all_twelve_field_types_use_placet_names() {
    let names: Vec<Value> = FieldType::ALL
        .iter()
        .map(|t| serde_json::to_value(t).unwrap())
        .collect();
    assert_eq!(
        names,
        json!([
            "text", "number", "email", "url", "textarea", "select", "checkbox", "date", "time",
            "datetime", "range", "password"
        ])
        .as_array()
        .unwrap()
        .clone()
    );
    for t in FieldType::ALL {
        assert_eq!(FieldType::parse(t.as_str()), Some(t));
    }
}

#[test]
fn a_payload_that_does_not_match_its_type_is_refused() {
    let mismatched = json!({
        "type": "selection",
        "payload": { "options": [{ "id": "a", "label": "A" }] }
    });
    assert!(serde_json::from_value::<Review>(mismatched).is_err());
    let unknown_type = json!({ "type": "poll", "payload": {} });
    assert!(serde_json::from_value::<Review>(unknown_type).is_err());
    let bad_style = json!({
        "type": "approval",
        "payload": { "options": [{ "id": "a", "label": "A", "style": "loud" }] }
    });
    assert!(serde_json::from_value::<Review>(bad_style).is_err());
}

#[test]
fn response_shapes_round_trip() {
    let approval = json!({ "selectedOption": "approve", "comment": "Looks good" });
    let parsed: ApprovalResponse = serde_json::from_value(approval.clone()).unwrap();
    assert_eq!(ReviewResponse::Approval(parsed).to_json(), approval);

    let selection = json!({ "selectedIds": ["option_a"] });
    let parsed: SelectionResponse = serde_json::from_value(selection.clone()).unwrap();
    assert_eq!(ReviewResponse::Selection(parsed).to_json(), selection);

    let text = json!({ "text": "The deployment failed because..." });
    let parsed: TextInputResponse = serde_json::from_value(text.clone()).unwrap();
    assert_eq!(ReviewResponse::TextInput(parsed).to_json(), text);

    let form = json!({ "environment": "prod", "version": "2.1.0", "notify": true });
    let map = form.as_object().unwrap().clone();
    assert_eq!(ReviewResponse::Form(map).to_json(), form);

    let anything = json!([1, { "x": null }]);
    assert_eq!(
        ReviewResponse::Freeform(anything.clone()).to_json(),
        anything
    );
}

#[test]
fn a_request_serializes_with_its_type_and_becomes_a_placet_review() {
    let request = request_from_tool_call(
        "ask_selection",
        &json!({
            "title": "Which migration?",
            "description": "Two are pending.",
            "mode": "single",
            "items": [{ "id": "up", "label": "Run" }],
            "timeoutS": 600
        }),
    )
    .unwrap();
    let wire = serde_json::to_value(&request).unwrap();
    assert_eq!(
        wire,
        json!({
            "title": "Which migration?",
            "description": "Two are pending.",
            "type": "selection",
            "payload": { "mode": "single", "items": [{ "id": "up", "label": "Run" }] },
            "timeoutS": 600
        })
    );
    assert_eq!(
        serde_json::from_value::<ReviewRequest>(wire).unwrap(),
        request
    );
    assert_eq!(
        serde_json::to_value(request.to_placet_review()).unwrap(),
        json!({
            "type": "selection",
            "payload": { "mode": "single", "items": [{ "id": "up", "label": "Run" }] },
            "expiresInSeconds": 600
        })
    );
    assert_eq!(
        request.message_text(),
        "**Which migration?**\n\nTwo are pending."
    );
}

#[test]
fn review_ids_are_generated_time_ordered_and_validated() {
    let first = ReviewId::generate();
    let second = ReviewId::generate();
    assert!(first.as_str().starts_with("rev_"));
    assert_eq!(first.as_str().len(), 36);
    assert!(first < second, "v7 ids sort by creation");
    assert_eq!(ReviewId::new(first.to_string()), Ok(first.clone()));
    let json = serde_json::to_string(&first).unwrap();
    assert_eq!(serde_json::from_str::<ReviewId>(&json).unwrap(), first);

    for bad in [
        "",
        "rev_",
        "run_0190a0b2c3d4e5f60718293a4b5c6d7e",
        "rev_0190A0B2C3D4E5F60718293A4B5C6D7E",
        "rev_0190a0b2c3d4e5f60718293a4b5c6d7",
        "rev_0190a0b2-c3d4-e5f6-0718-293a4b5c6d7e",
    ] {
        assert!(ReviewId::new(bad).is_err(), "{bad:?} accepted");
    }
    assert!(serde_json::from_str::<ReviewId>("\"rev_nothex\"").is_err());
}
