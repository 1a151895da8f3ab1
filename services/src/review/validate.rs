//! Checks a reviewer's answer against the review it answers, before anything acts on
//! it. Every surface (inbox, Placet webhook, CLI) goes through `validate_response`.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::form::validate_form;
use super::payload::{
    ApprovalPayload, ReviewPayload, ReviewType, SelectionMode, SelectionPayload, TextInputPayload,
};
use super::response::{
    ApprovalResponse, ResponseError, ReviewResponse, SelectionResponse, TextInputResponse,
    ValidatedResponse,
};
use super::secrets::split_form_secrets;

/// Validates `response` against `payload` and normalizes it; a form answer comes back
/// with its password values already split out (see [`ValidatedResponse`]).
pub fn validate_response(
    payload: &ReviewPayload,
    response: &Value,
) -> Result<ValidatedResponse, ResponseError> {
    let plain = |response| ValidatedResponse {
        response,
        secrets: Vec::new(),
    };
    match payload {
        ReviewPayload::Approval(p) => {
            validate_approval(p, object(ReviewType::Approval, response)?).map(plain)
        }
        ReviewPayload::Selection(p) => {
            validate_selection(p, object(ReviewType::Selection, response)?).map(plain)
        }
        ReviewPayload::TextInput(p) => {
            validate_text_input(p, object(ReviewType::TextInput, response)?).map(plain)
        }
        ReviewPayload::Form(p) => {
            let values = validate_form(p, object(ReviewType::Form, response)?)?;
            let (redacted, secrets) = split_form_secrets(p, values);
            Ok(ValidatedResponse {
                response: ReviewResponse::Form(redacted),
                secrets,
            })
        }
        ReviewPayload::Freeform(_) => Ok(plain(ReviewResponse::Freeform(response.clone()))),
    }
}

fn object(review_type: ReviewType, value: &Value) -> Result<&Map<String, Value>, ResponseError> {
    value.as_object().ok_or(ResponseError::NotAnObject {
        review_type: review_type.as_str(),
    })
}

fn only_keys(
    review_type: ReviewType,
    map: &Map<String, Value>,
    allowed: &[&str],
) -> Result<(), ResponseError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(ResponseError::UnknownField {
            field: unknown.clone(),
            review_type: review_type.as_str(),
        }),
        None => Ok(()),
    }
}

fn required_string<'a>(
    map: &'a Map<String, Value>,
    field: &str,
    expected: &'static str,
) -> Result<&'a str, ResponseError> {
    match map.get(field) {
        None | Some(Value::Null) => Err(ResponseError::Missing {
            field: field.to_owned(),
        }),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ResponseError::WrongType {
            field: field.to_owned(),
            expected,
        }),
    }
}

fn validate_approval(
    payload: &ApprovalPayload,
    map: &Map<String, Value>,
) -> Result<ReviewResponse, ResponseError> {
    only_keys(ReviewType::Approval, map, &["selectedOption", "comment"])?;
    let selected = required_string(map, "selectedOption", "a string (an option id)")?;
    if !payload.options.iter().any(|o| o.id == selected) {
        let known: Vec<&str> = payload.options.iter().map(|o| o.id.as_str()).collect();
        return Err(ResponseError::UnknownOption {
            value: selected.to_owned(),
            known: known.join(", "),
        });
    }
    let comment = match map.get("comment") {
        None | Some(Value::Null) => None,
        // Surfaces send an empty comment box as "": that is no comment.
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(ResponseError::WrongType {
                field: "comment".into(),
                expected: "a string",
            });
        }
    };
    if comment.is_some() && !payload.comments_allowed() {
        return Err(ResponseError::CommentNotAllowed);
    }
    Ok(ReviewResponse::Approval(ApprovalResponse {
        selected_option: selected.to_owned(),
        comment,
    }))
}

fn validate_selection(
    payload: &SelectionPayload,
    map: &Map<String, Value>,
) -> Result<ReviewResponse, ResponseError> {
    only_keys(ReviewType::Selection, map, &["selectedIds"])?;
    let wrong_type = || ResponseError::WrongType {
        field: "selectedIds".into(),
        expected: "an array of item ids (strings)",
    };
    let ids = match map.get("selectedIds") {
        None | Some(Value::Null) => {
            return Err(ResponseError::Missing {
                field: "selectedIds".into(),
            });
        }
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|id| id.as_str().map(str::to_owned).ok_or_else(wrong_type))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(wrong_type()),
    };
    if payload.mode == SelectionMode::Single && ids.len() != 1 {
        return Err(ResponseError::NotExactlyOne { count: ids.len() });
    }
    let mut seen = HashSet::new();
    for id in &ids {
        if !payload.items.iter().any(|item| &item.id == id) {
            return Err(ResponseError::UnknownItem { id: id.clone() });
        }
        if !seen.insert(id.as_str()) {
            return Err(ResponseError::DuplicateItem { id: id.clone() });
        }
    }
    Ok(ReviewResponse::Selection(SelectionResponse {
        selected_ids: ids,
    }))
}

fn validate_text_input(
    payload: &TextInputPayload,
    map: &Map<String, Value>,
) -> Result<ReviewResponse, ResponseError> {
    only_keys(ReviewType::TextInput, map, &["text"])?;
    let text = required_string(map, "text", "a string")?;
    check_length(
        "text",
        text,
        payload.min_length.map(u64::from),
        payload.max_length.map(u64::from),
    )?;
    Ok(ReviewResponse::TextInput(TextInputResponse {
        text: text.to_owned(),
    }))
}

/// Lengths are counted in characters, as a reviewer counts them, not in bytes.
pub(super) fn check_length(
    field: &str,
    text: &str,
    min: Option<u64>,
    max: Option<u64>,
) -> Result<(), ResponseError> {
    let actual = text.chars().count();
    let len = actual as u64;
    if let Some(min) = min.filter(|&min| len < min) {
        return Err(ResponseError::TooShort {
            field: field.to_owned(),
            min,
            actual,
        });
    }
    if let Some(max) = max.filter(|&max| len > max) {
        return Err(ResponseError::TooLong {
            field: field.to_owned(),
            max,
            actual,
        });
    }
    Ok(())
}
