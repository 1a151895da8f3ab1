//! Turns a model's HITL tool call into a validated `ReviewRequest`. The schema in
//! `specs` tells the model the rules; this enforces them, naming the argument at
//! fault so the model can correct its call.

mod error;
mod reader;

use serde_json::Value;

use super::payload::{
    ApprovalOption, ApprovalPayload, Bounds, ButtonStyle, FieldType, FormField, FormPayload,
    ReviewPayload, SelectOption, SelectionItem, SelectionMode, SelectionPayload, TextInputPayload,
};
use super::request::{DEFAULT_REVIEW_TIMEOUT_S, MAX_REVIEW_TIMEOUT_S, ReviewRequest};
use super::secrets::credential_key;
use super::specs::HitlTool;
use reader::{Args, Unique};

pub use error::ReviewArgsError;

type Result<T> = std::result::Result<T, ReviewArgsError>;

/// Validates the arguments of a HITL tool call into the review it opens.
pub fn request_from_tool_call(tool: &str, args: &Value) -> Result<ReviewRequest> {
    let tool =
        HitlTool::from_name(tool).ok_or_else(|| ReviewArgsError::UnknownTool(tool.into()))?;
    let args = Args::new(String::new(), args)?;
    let common = ["title", "description", "timeoutS"];
    let (description, payload) = match tool {
        HitlTool::AskApproval => {
            args.only(&[&common[..], &["options", "allowComment"]].concat())?;
            let description = Some(args.non_empty("description")?);
            (description, approval(&args)?)
        }
        HitlTool::AskSelection => {
            args.only(&[&common[..], &["mode", "items"]].concat())?;
            (args.optional_text("description")?, selection(&args)?)
        }
        HitlTool::AskForm => {
            args.only(&[&common[..], &["fields", "submitLabel"]].concat())?;
            (args.optional_text("description")?, form(&args)?)
        }
        HitlTool::AskTextInput => {
            let own = [
                "prefill",
                "placeholder",
                "minLength",
                "maxLength",
                "markdown",
            ];
            args.only(&[&common[..], &own[..]].concat())?;
            (args.optional_text("description")?, text_input(&args)?)
        }
    };
    Ok(ReviewRequest {
        title: args.non_empty("title")?,
        description,
        payload,
        timeout_s: timeout(&args)?,
    })
}

fn timeout(args: &Args) -> Result<u64> {
    match args.opt::<u64>("timeoutS")? {
        None => Ok(DEFAULT_REVIEW_TIMEOUT_S),
        Some(0) => Err(ReviewArgsError::TimeoutZero),
        Some(value) if value > MAX_REVIEW_TIMEOUT_S => {
            Err(ReviewArgsError::TimeoutTooLong { value })
        }
        Some(value) => Ok(value),
    }
}

fn approval(args: &Args) -> Result<ReviewPayload> {
    let options = match args.opt_list("options")? {
        None => vec![
            default_option("approve", "Approve", ButtonStyle::Primary),
            default_option("reject", "Reject", ButtonStyle::Danger),
        ],
        Some(list) => {
            let mut ids = Unique::default();
            list.iter()
                .map(|option| {
                    option.only(&["id", "label", "style"])?;
                    let id = ids.check(option, "id")?;
                    let style = match option.opt::<String>("style")? {
                        None => None,
                        Some(style) => Some(button_style(option.path("style"), style)?),
                    };
                    Ok(ApprovalOption {
                        id,
                        label: option.non_empty("label")?,
                        style,
                    })
                })
                .collect::<Result<Vec<_>>>()?
        }
    };
    Ok(ReviewPayload::Approval(ApprovalPayload {
        options,
        allow_comment: args.opt("allowComment")?,
    }))
}

fn default_option(id: &str, label: &str, style: ButtonStyle) -> ApprovalOption {
    ApprovalOption {
        id: id.into(),
        label: label.into(),
        style: Some(style),
    }
}

fn button_style(field: String, value: String) -> Result<ButtonStyle> {
    match value.as_str() {
        "primary" => Ok(ButtonStyle::Primary),
        "danger" => Ok(ButtonStyle::Danger),
        "secondary" => Ok(ButtonStyle::Secondary),
        "ghost" => Ok(ButtonStyle::Ghost),
        _ => Err(ReviewArgsError::NotOneOf {
            field,
            value,
            expected: "primary, danger, secondary, ghost",
        }),
    }
}

fn selection(args: &Args) -> Result<ReviewPayload> {
    let mode = match args.req::<String>("mode")?.as_str() {
        "single" => SelectionMode::Single,
        "multi" => SelectionMode::Multi,
        other => {
            return Err(ReviewArgsError::NotOneOf {
                field: "mode".into(),
                value: other.into(),
                expected: "single, multi",
            });
        }
    };
    let mut ids = Unique::default();
    let items = args
        .list("items")?
        .iter()
        .map(|item| {
            item.only(&["id", "label", "description"])?;
            Ok(SelectionItem {
                id: ids.check(item, "id")?,
                label: item.non_empty("label")?,
                description: item.optional_text("description")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ReviewPayload::Selection(SelectionPayload { mode, items }))
}

fn form(args: &Args) -> Result<ReviewPayload> {
    let mut names = Unique::default();
    let mut credential_keys: Vec<(String, String)> = Vec::new();
    let fields = args
        .list("fields")?
        .iter()
        .map(|field| {
            let parsed = form_field(field, &mut names)?;
            if parsed.field_type == FieldType::Password {
                let key = credential_key(&parsed.name);
                if let Some((_, other)) = credential_keys.iter().find(|(k, _)| *k == key) {
                    return Err(ReviewArgsError::CredentialKeyClash {
                        field: field.path("name"),
                        other: other.clone(),
                        key,
                    });
                }
                credential_keys.push((key, parsed.name.clone()));
            }
            Ok(parsed)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ReviewPayload::Form(FormPayload {
        fields,
        submit_label: args.optional_text("submitLabel")?,
    }))
}

fn form_field(field: &Args, names: &mut Unique) -> Result<FormField> {
    field.only(&[
        "name",
        "type",
        "label",
        "required",
        "placeholder",
        "options",
        "min",
        "max",
    ])?;
    let name = names.check(field, "name")?;
    let valid_name = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name {
        return Err(ReviewArgsError::InvalidFieldName {
            field: field.path("name"),
        });
    }
    let type_name = field.req::<String>("type")?;
    let field_type =
        FieldType::parse(&type_name).ok_or_else(|| ReviewArgsError::UnknownFieldType {
            field: field.path("type"),
            value: type_name,
        })?;
    let options = select_options(field, field_type)?;
    let (min, max) = (field.opt::<f64>("min")?, field.opt::<f64>("max")?);
    match field_type.bounds() {
        Bounds::None if min.is_some() || max.is_some() => {
            let key = if min.is_some() { "min" } else { "max" };
            return Err(ReviewArgsError::BoundsNotAllowed {
                field: field.path(key),
                field_type: field_type.as_str(),
            });
        }
        Bounds::Length => {
            if let Some(key) = [("min", min), ("max", max)]
                .into_iter()
                .find_map(|(key, v)| v.filter(|v| *v < 0.0).map(|_| key))
            {
                return Err(ReviewArgsError::NegativeLength {
                    field: field.path(key),
                });
            }
        }
        _ => {}
    }
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        return Err(ReviewArgsError::MinAboveMax {
            field: field.path("min"),
            min,
            max,
        });
    }
    Ok(FormField {
        name,
        field_type,
        label: field.non_empty("label")?,
        required: field.opt("required")?,
        placeholder: field.optional_text("placeholder")?,
        options,
        min,
        max,
    })
}

fn select_options(field: &Args, field_type: FieldType) -> Result<Option<Vec<SelectOption>>> {
    let list = field.opt_list("options")?;
    match (field_type, list) {
        (FieldType::Select, None) => Err(ReviewArgsError::SelectWithoutOptions {
            field: field.path("options"),
        }),
        (FieldType::Select, Some(list)) => {
            let mut values = Unique::default();
            let options = list
                .iter()
                .map(|option| {
                    option.only(&["value", "label"])?;
                    Ok(SelectOption {
                        value: values.check(option, "value")?,
                        label: option.non_empty("label")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Some(options))
        }
        (_, Some(_)) => Err(ReviewArgsError::OptionsNotAllowed {
            field: field.path("options"),
        }),
        (_, None) => Ok(None),
    }
}

fn text_input(args: &Args) -> Result<ReviewPayload> {
    let min_length = args.opt::<u32>("minLength")?;
    let max_length = args.opt::<u32>("maxLength")?;
    if let (Some(min), Some(max)) = (min_length, max_length)
        && min > max
    {
        return Err(ReviewArgsError::MinAboveMax {
            field: "minLength".into(),
            min: min.into(),
            max: max.into(),
        });
    }
    let prefill = args.opt::<String>("prefill")?;
    if let (Some(prefill), Some(max)) = (&prefill, max_length) {
        let actual = prefill.chars().count();
        if actual > max as usize {
            return Err(ReviewArgsError::PrefillTooLong { actual, max });
        }
    }
    Ok(ReviewPayload::TextInput(TextInputPayload {
        placeholder: args.optional_text("placeholder")?,
        markdown: args.opt("markdown")?,
        min_length,
        max_length,
        prefill,
    }))
}
