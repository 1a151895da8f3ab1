//! Validation of a form answer, field by field, by the field's type.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::{Map, Value};

use super::payload::{FieldType, FormField, FormPayload, ReviewType};
use super::response::ResponseError;
use super::validate::check_length;

/// Checks every value against its field and returns the answer normalized: blank
/// values (absent, `null` or `""`, which is how browsers submit an untouched input)
/// of optional fields are dropped; the same for a required field is `Missing`.
pub(super) fn validate_form(
    form: &FormPayload,
    answer: &Map<String, Value>,
) -> Result<Map<String, Value>, ResponseError> {
    if let Some(unknown) = answer
        .keys()
        .find(|k| !form.fields.iter().any(|f| &f.name == *k))
    {
        return Err(ResponseError::UnknownField {
            field: unknown.clone(),
            review_type: ReviewType::Form.as_str(),
        });
    }
    let mut normalized = Map::new();
    for field in &form.fields {
        match answer.get(&field.name) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(value) => {
                check_value(field, value)?;
                normalized.insert(field.name.clone(), value.clone());
                continue;
            }
        }
        if field.is_required() {
            return Err(ResponseError::Missing {
                field: field.name.clone(),
            });
        }
    }
    Ok(normalized)
}

fn check_value(field: &FormField, value: &Value) -> Result<(), ResponseError> {
    let name = || field.name.clone();
    let wrong_type = |expected| ResponseError::WrongType {
        field: name(),
        expected,
    };
    let format = |valid: bool, problem| {
        if valid {
            Ok(())
        } else {
            Err(ResponseError::InvalidFormat {
                field: name(),
                problem,
            })
        }
    };
    let text = || value.as_str().ok_or_else(|| wrong_type("a string"));
    match field.field_type {
        FieldType::Text | FieldType::Textarea | FieldType::Password => {
            let min = field.min.map(|m| m.max(0.0).ceil() as u64);
            let max = field.max.map(|m| m.max(0.0).floor() as u64);
            check_length(&field.name, text()?, min, max)
        }
        FieldType::Number | FieldType::Range => {
            let n = value.as_f64().ok_or_else(|| wrong_type("a number"))?;
            if let Some(min) = field.min.filter(|&min| n < min) {
                return Err(ResponseError::BelowMinimum {
                    field: name(),
                    value: n,
                    min,
                });
            }
            if let Some(max) = field.max.filter(|&max| n > max) {
                return Err(ResponseError::AboveMaximum {
                    field: name(),
                    value: n,
                    max,
                });
            }
            Ok(())
        }
        FieldType::Checkbox => value
            .as_bool()
            .map(drop)
            .ok_or_else(|| wrong_type("true or false")),
        FieldType::Select => {
            let chosen = text()?;
            let options = field.options.as_deref().unwrap_or_default();
            if options.iter().any(|o| o.value == chosen) {
                Ok(())
            } else {
                Err(ResponseError::NotAnOption {
                    field: name(),
                    value: chosen.to_owned(),
                })
            }
        }
        FieldType::Email => format(
            is_email(text()?),
            "must be an email address like name@example.com",
        ),
        FieldType::Url => format(is_http_url(text()?), "must be an http:// or https:// URL"),
        FieldType::Date => format(is_date(text()?), "must be a date as YYYY-MM-DD"),
        FieldType::Time => format(is_time(text()?), "must be a time as HH:MM or HH:MM:SS"),
        FieldType::Datetime => format(
            is_datetime(text()?),
            "must be an RFC 3339 date-time or YYYY-MM-DDTHH:MM",
        ),
    }
}

/// One `@`, a non-empty local part, and a domain of dot-separated, non-empty labels
/// (so at least one dot). Deliberately simple: the reviewer typed it, a mail server
/// is the real check.
fn is_email(s: &str) -> bool {
    if s.chars().any(char::is_whitespace) {
        return false;
    }
    let mut parts = s.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !local.is_empty() && domain.contains('.') && domain.split('.').all(|label| !label.is_empty())
}

fn is_http_url(s: &str) -> bool {
    if s.trim() != s {
        return false;
    }
    reqwest::Url::parse(s).is_ok_and(|url| {
        matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty())
    })
}

/// chrono accepts single-digit months and days; the wire format does not, so the
/// shape is checked before the calendar.
fn shaped(s: &str, pattern: &str) -> bool {
    s.len() == pattern.len()
        && s.bytes().zip(pattern.bytes()).all(|(c, p)| match p {
            b'9' => c.is_ascii_digit(),
            _ => c == p,
        })
}

fn is_date(s: &str) -> bool {
    shaped(s, "9999-99-99") && NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

fn is_time(s: &str) -> bool {
    (shaped(s, "99:99") && NaiveTime::parse_from_str(s, "%H:%M").is_ok())
        || (shaped(s, "99:99:99") && NaiveTime::parse_from_str(s, "%H:%M:%S").is_ok())
}

fn is_datetime(s: &str) -> bool {
    DateTime::parse_from_rfc3339(s).is_ok()
        || (shaped(s, "9999-99-99T99:99")
            && NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").is_ok())
        || (shaped(s, "9999-99-99T99:99:99")
            && NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").is_ok())
}
