//! Turns a model's HITL tool call into a validated `ReviewRequest`. The schema in
//! `specs` tells the model the rules; this enforces them, naming the argument at
//! fault so the model can correct its call.

use std::collections::HashSet;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::payload::{
    ApprovalOption, ApprovalPayload, Bounds, ButtonStyle, FieldType, FormField, FormPayload,
    ReviewPayload, SelectOption, SelectionItem, SelectionMode, SelectionPayload, TextInputPayload,
};
use super::request::{DEFAULT_REVIEW_TIMEOUT_S, MAX_REVIEW_TIMEOUT_S, ReviewRequest};
use super::secrets::credential_key;
use super::specs::HitlTool;
use crate::tools::{ToolError, ToolErrorKind};

/// Why a HITL tool call cannot open a review. Messages start with the argument path
/// (`fields[2].options`), so the model knows what to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReviewArgsError {
    #[error("{0:?} is not a review tool")]
    UnknownTool(String),
    #[error("{field}: must be a JSON object")]
    NotAnObject { field: String },
    #[error("{field}: unknown argument")]
    UnknownArgument { field: String },
    #[error("{field}: required")]
    Missing { field: String },
    #[error("{field}: {message}")]
    WrongType { field: String, message: String },
    #[error("{field}: must not be empty")]
    Empty { field: String },
    #[error("{field}: {value:?} is used more than once")]
    Duplicate { field: String, value: String },
    #[error("{field}: {value:?} is not one of {expected}")]
    NotOneOf {
        field: String,
        value: String,
        expected: &'static str,
    },
    #[error(
        "{field}: unknown field type {value:?}; expected one of text, number, email, url, \
         textarea, select, checkbox, date, time, datetime, range, password"
    )]
    UnknownFieldType { field: String, value: String },
    #[error("{field}: must start with a letter and hold only letters, digits, _ or -")]
    InvalidFieldName { field: String },
    #[error("{field}: a select field needs at least one option")]
    SelectWithoutOptions { field: String },
    #[error("{field}: only select fields take options")]
    OptionsNotAllowed { field: String },
    #[error("{field}: {field_type} fields take no min or max")]
    BoundsNotAllowed {
        field: String,
        field_type: &'static str,
    },
    #[error("{field}: a length cannot be negative")]
    NegativeLength { field: String },
    #[error("{field}: min {min} is greater than max {max}")]
    MinAboveMax { field: String, min: f64, max: f64 },
    #[error("{field}: its credential key {key} is also {other}'s")]
    CredentialKeyClash {
        field: String,
        other: String,
        key: String,
    },
    #[error("prefill: {actual} characters, more than maxLength {max}")]
    PrefillTooLong { actual: usize, max: u32 },
    #[error("timeoutS: must be at least 1 second")]
    TimeoutZero,
    #[error("timeoutS: {value} s is beyond the maximum of {MAX_REVIEW_TIMEOUT_S} s (36 h)")]
    TimeoutTooLong { value: u64 },
}

impl ReviewArgsError {
    /// The argument path at fault (`""` for an unknown tool).
    pub fn field(&self) -> &str {
        match self {
            Self::UnknownTool(_) => "",
            Self::PrefillTooLong { .. } => "prefill",
            Self::TimeoutZero | Self::TimeoutTooLong { .. } => "timeoutS",
            Self::NotAnObject { field }
            | Self::UnknownArgument { field }
            | Self::Missing { field }
            | Self::WrongType { field, .. }
            | Self::Empty { field }
            | Self::Duplicate { field, .. }
            | Self::NotOneOf { field, .. }
            | Self::UnknownFieldType { field, .. }
            | Self::InvalidFieldName { field }
            | Self::SelectWithoutOptions { field }
            | Self::OptionsNotAllowed { field }
            | Self::BoundsNotAllowed { field, .. }
            | Self::NegativeLength { field }
            | Self::MinAboveMax { field, .. }
            | Self::CredentialKeyClash { field, .. } => field,
        }
    }
}

impl From<ReviewArgsError> for ToolError {
    fn from(e: ReviewArgsError) -> Self {
        let kind = match e {
            ReviewArgsError::UnknownTool(_) => ToolErrorKind::UnknownTool,
            _ => ToolErrorKind::InvalidArguments,
        };
        ToolError::new(kind, e.to_string())
            .with_hint("fix the named argument and call the tool again; no review was opened")
    }
}

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

/// A JSON object of arguments and where it sits in the call, so every error can name
/// its full path.
struct Args<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Args<'a> {
    fn new(path: String, value: &'a Value) -> Result<Self> {
        match value.as_object() {
            Some(map) => Ok(Self { path, map }),
            None if path.is_empty() => Err(ReviewArgsError::NotAnObject {
                field: "arguments".into(),
            }),
            None => Err(ReviewArgsError::NotAnObject { field: path }),
        }
    }

    fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn only(&self, allowed: &[&str]) -> Result<()> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(unknown) => Err(ReviewArgsError::UnknownArgument {
                field: self.path(unknown),
            }),
            None => Ok(()),
        }
    }

    /// `null` counts as absent: models often send it for optional arguments.
    fn opt<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => {
                T::deserialize(value)
                    .map(Some)
                    .map_err(|e| ReviewArgsError::WrongType {
                        field: self.path(key),
                        message: e.to_string(),
                    })
            }
        }
    }

    fn req<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        self.opt(key)?.ok_or_else(|| ReviewArgsError::Missing {
            field: self.path(key),
        })
    }

    fn non_empty(&self, key: &str) -> Result<String> {
        let value: String = self.req(key)?;
        if value.trim().is_empty() {
            return Err(ReviewArgsError::Empty {
                field: self.path(key),
            });
        }
        Ok(value)
    }

    /// An optional text where `""` means "not given".
    fn optional_text(&self, key: &str) -> Result<Option<String>> {
        Ok(self.opt::<String>(key)?.filter(|s| !s.trim().is_empty()))
    }

    fn opt_list(&self, key: &str) -> Result<Option<Vec<Args<'a>>>> {
        let Some(value) = self.map.get(key).filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let Some(items) = value.as_array() else {
            return Err(ReviewArgsError::WrongType {
                field: self.path(key),
                message: "must be an array".into(),
            });
        };
        if items.is_empty() {
            return Err(ReviewArgsError::Empty {
                field: self.path(key),
            });
        }
        let list = items
            .iter()
            .enumerate()
            .map(|(i, item)| Args::new(format!("{}[{i}]", self.path(key)), item))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(list))
    }

    fn list(&self, key: &str) -> Result<Vec<Args<'a>>> {
        self.opt_list(key)?.ok_or_else(|| ReviewArgsError::Missing {
            field: self.path(key),
        })
    }
}

/// Tracks the ids (or names, or values) of a list so a repeat is reported where it
/// occurs.
#[derive(Default)]
struct Unique {
    seen: HashSet<String>,
}

impl Unique {
    fn check(&mut self, entry: &Args, key: &str) -> Result<String> {
        let value = entry.non_empty(key)?;
        if !self.seen.insert(value.clone()) {
            return Err(ReviewArgsError::Duplicate {
                field: entry.path(key),
                value,
            });
        }
        Ok(value)
    }
}
