//! What a reviewer is shown: the per-type payloads, in Placet's wire shapes (field
//! names are Placet's, camelCase). Facio's inbox renders the same shapes, so one model
//! serves both surfaces.

use serde::{Deserialize, Serialize, Serializer};

/// The kind of human review; each renders a different control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ReviewType {
    Approval,
    Selection,
    Form,
    TextInput,
    Freeform,
}

impl ReviewType {
    /// The wire name (`text-input`, ...), for messages and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approval => "approval",
            Self::Selection => "selection",
            Self::Form => "form",
            Self::TextInput => "text-input",
            Self::Freeform => "freeform",
        }
    }
}

/// The payload of a review, tagged by its type. Serialized adjacently, which is
/// exactly Placet's `{"type": ..., "payload": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "kebab-case")]
pub enum ReviewPayload {
    Approval(ApprovalPayload),
    Selection(SelectionPayload),
    Form(FormPayload),
    TextInput(TextInputPayload),
    Freeform(FreeformPayload),
}

impl ReviewPayload {
    pub fn review_type(&self) -> ReviewType {
        match self {
            Self::Approval(_) => ReviewType::Approval,
            Self::Selection(_) => ReviewType::Selection,
            Self::Form(_) => ReviewType::Form,
            Self::TextInput(_) => ReviewType::TextInput,
            Self::Freeform(_) => ReviewType::Freeform,
        }
    }
}

/// How an approval button looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ButtonStyle {
    Primary,
    Danger,
    Secondary,
    Ghost,
}

/// One approval button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalOption {
    pub id: String,
    pub label: String,
    /// Absent means the surface's default look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<ButtonStyle>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalPayload {
    pub options: Vec<ApprovalOption>,
    /// Whether the reviewer may attach a comment; absent means no (Placet's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_comment: Option<bool>,
}

impl ApprovalPayload {
    pub fn comments_allowed(&self) -> bool {
        self.allow_comment.unwrap_or(false)
    }
}

/// Radio buttons (`single`) or checkboxes (`multi`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SelectionMode {
    Single,
    Multi,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectionItem {
    pub id: String,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectionPayload {
    pub mode: SelectionMode,
    pub items: Vec<SelectionItem>,
}

/// The twelve form field types Placet renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Text,
    Number,
    Email,
    Url,
    Textarea,
    Select,
    Checkbox,
    Date,
    Time,
    Datetime,
    Range,
    /// Routed to the credential store; the agent only ever sees a placeholder.
    Password,
}

impl FieldType {
    pub const ALL: [FieldType; 12] = [
        Self::Text,
        Self::Number,
        Self::Email,
        Self::Url,
        Self::Textarea,
        Self::Select,
        Self::Checkbox,
        Self::Date,
        Self::Time,
        Self::Datetime,
        Self::Range,
        Self::Password,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Number => "number",
            Self::Email => "email",
            Self::Url => "url",
            Self::Textarea => "textarea",
            Self::Select => "select",
            Self::Checkbox => "checkbox",
            Self::Date => "date",
            Self::Time => "time",
            Self::Datetime => "datetime",
            Self::Range => "range",
            Self::Password => "password",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// What `min`/`max` bound for this type: a numeric value, a length in characters,
    /// or nothing.
    pub fn bounds(self) -> Bounds {
        match self {
            Self::Number | Self::Range => Bounds::Value,
            Self::Text | Self::Textarea | Self::Password => Bounds::Length,
            _ => Bounds::None,
        }
    }
}

/// The meaning of a form field's `min`/`max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounds {
    Value,
    Length,
    None,
}

/// One choice of a `select` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectOption {
    pub value: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormField {
    /// The key of this field's value in the response.
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    /// Only for `select`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<SelectOption>>,
    /// Lower bound: the value for number/range, the length in characters for
    /// text/textarea/password.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "whole_numbers_as_integers"
    )]
    pub min: Option<f64>,
    /// Upper bound, same meaning as `min`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "whole_numbers_as_integers"
    )]
    pub max: Option<f64>,
}

impl FormField {
    pub fn is_required(&self) -> bool {
        self.required.unwrap_or(false)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormPayload {
    pub fields: Vec<FormField>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submit_label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextInputPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    /// Render a markdown preview beside the editor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markdown: Option<bool>,
    /// In characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    /// In characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Facio's addition: the draft the reviewer starts from and edits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill: Option<String>,
}

/// Freeform reviews carry no payload (`{}`); the response is any JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FreeformPayload {}

/// Bounds are read as `f64`, but `1` must go back out as `1`, not `1.0`, so the wire
/// form round-trips and surfaces that compare JSON see what they sent.
fn whole_numbers_as_integers<S: Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    // Beyond 2^53 an f64 no longer holds every integer, so only convert below it.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        Some(v) if v.fract() == 0.0 && v.abs() < EXACT => s.serialize_some(&(*v as i64)),
        Some(v) => s.serialize_some(v),
        None => s.serialize_none(),
    }
}
