//! The four HITL tools as the model sees them: name, description, strict JSON schema.
//! Calling one opens a review gate; the turn waits for the human's answer.

use serde_json::{Value, json};

use super::payload::FieldType;
use super::request::MAX_REVIEW_TIMEOUT_S;
use crate::tools::{RiskTier, ToolSpec};

/// One of the tools that ask a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HitlTool {
    AskApproval,
    AskSelection,
    AskForm,
    AskTextInput,
}

impl HitlTool {
    pub const ALL: [HitlTool; 4] = [
        Self::AskApproval,
        Self::AskSelection,
        Self::AskForm,
        Self::AskTextInput,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::AskApproval => "ask_approval",
            Self::AskSelection => "ask_selection",
            Self::AskForm => "ask_form",
            Self::AskTextInput => "ask_text_input",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    pub fn spec(self) -> ToolSpec {
        let (description, parameters) = match self {
            Self::AskApproval => (APPROVAL_DESCRIPTION, approval_schema()),
            Self::AskSelection => (SELECTION_DESCRIPTION, selection_schema()),
            Self::AskForm => (FORM_DESCRIPTION, form_schema()),
            Self::AskTextInput => (TEXT_INPUT_DESCRIPTION, text_input_schema()),
        };
        ToolSpec {
            name: self.name().to_owned(),
            description: format!("{description} {RESULT_NOTE}"),
            parameters,
            // They reach a human outside the workspace.
            risk: RiskTier::SystemEffect,
        }
    }
}

/// The specs of `ask_approval`, `ask_selection`, `ask_form` and `ask_text_input`.
pub fn hitl_tool_specs() -> Vec<ToolSpec> {
    HitlTool::ALL.into_iter().map(HitlTool::spec).collect()
}

const APPROVAL_DESCRIPTION: &str = "Ask a human to approve or reject an action and wait for \
the decision. Use it before anything irreversible, costly or visible to others (payments, \
deletions, deploys, messages to third parties). Your turn pauses until a reviewer clicks a \
button. Without `options` the buttons are Approve (id \"approve\") and Reject (id \"reject\"). \
The reviewer may not see this conversation: put what you will do, why, and what follows in \
`description`. Proceed only if the selected option is the approving one.";

const SELECTION_DESCRIPTION: &str = "Ask a human to choose among alternatives you list and wait \
for the choice. `mode` \"single\" takes exactly one item, \"multi\" any number (possibly none). \
The answer is the chosen item ids in `selectedIds`.";

const FORM_DESCRIPTION: &str = "Ask a human to fill in several values at once and wait for \
them. Field types: text, number, email, url, textarea, select (needs `options`), checkbox, \
date (YYYY-MM-DD), time (HH:MM), datetime, range, password. `min`/`max` bound the value of \
number and range fields and the length of text, textarea and password fields. The answer maps \
each field `name` to its value. Use password fields for secrets such as API keys: their values \
go to the credential store and you receive only a placeholder like \
\"${credentials.API_KEY}\", which tools resolve when they run; never ask for secrets any other \
way.";

const TEXT_INPUT_DESCRIPTION: &str = "Ask a human to write or edit a text and wait for it. \
Pass a draft (an email, a report, a config) as `prefill`: the reviewer edits it and submits \
the final version, which you receive as `text` and should use as-is.";

const RESULT_NOTE: &str = "Reviews wait 24 h unless `timeoutS` says otherwise (at most \
129600 s = 36 h). The result is JSON: {\"status\":\"decided\",\"response\":{...},\
\"reviewer\":...} with the answer, {\"status\":\"timed_out\",\"action\":\"deny\"} if nobody \
answered in time, or {\"status\":\"cancelled\"} if the review was withdrawn. Treat a timeout \
or cancellation as a refusal.";

fn text(description: &str) -> Value {
    json!({ "type": "string", "minLength": 1, "description": description })
}

fn timeout() -> Value {
    json!({
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_REVIEW_TIMEOUT_S,
        "description": "Seconds to wait for a human (default 86400 = 24 h, at most 129600 = 36 h)."
    })
}

fn title() -> Value {
    text("One line naming what the reviewer decides, e.g. \"Deploy v2.1 to production?\".")
}

fn description(what: &str) -> Value {
    json!({ "type": "string", "description": what })
}

fn strict_object(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    })
}

fn approval_schema() -> Value {
    let option = strict_object(
        json!({
            "id": text("Returned as `selectedOption` when this button is clicked."),
            "label": text("The button text."),
            "style": {
                "type": "string",
                "enum": ["primary", "danger", "secondary", "ghost"],
                "description": "primary for the approving choice, danger for destructive ones."
            }
        }),
        &["id", "label"],
    );
    strict_object(
        json!({
            "title": title(),
            "description": {
                "type": "string",
                "minLength": 1,
                "description": "Markdown context the reviewer decides on: the action, its reason and consequences."
            },
            "options": {
                "type": "array",
                "minItems": 1,
                "items": option,
                "description": "Custom buttons with unique ids. Default: Approve (primary), Reject (danger)."
            },
            "allowComment": {
                "type": "boolean",
                "description": "Let the reviewer add a comment to the decision (default false)."
            },
            "timeoutS": timeout()
        }),
        &["title", "description"],
    )
}

fn selection_schema() -> Value {
    let item = strict_object(
        json!({
            "id": text("Returned in `selectedIds` when chosen."),
            "label": text("What the reviewer sees."),
            "description": description("Optional detail shown under the label.")
        }),
        &["id", "label"],
    );
    strict_object(
        json!({
            "title": title(),
            "description": description("Markdown context for the choice."),
            "mode": {
                "type": "string",
                "enum": ["single", "multi"],
                "description": "single: exactly one item; multi: any number."
            },
            "items": {
                "type": "array",
                "minItems": 1,
                "items": item,
                "description": "The alternatives, with unique ids."
            },
            "timeoutS": timeout()
        }),
        &["title", "mode", "items"],
    )
}

fn form_schema() -> Value {
    let types: Vec<&str> = FieldType::ALL.iter().map(|t| t.as_str()).collect();
    let option = strict_object(
        json!({
            "value": text("The value returned when chosen."),
            "label": text("What the reviewer sees.")
        }),
        &["value", "label"],
    );
    let field = strict_object(
        json!({
            "name": text("Key of this value in the answer; letters, digits, _ or -, starting with a letter. Unique."),
            "type": { "type": "string", "enum": types },
            "label": text("What the reviewer sees."),
            "required": { "type": "boolean", "description": "Default false." },
            "placeholder": description("Hint shown in the empty input."),
            "options": {
                "type": "array",
                "minItems": 1,
                "items": option,
                "description": "Choices of a select field (required for select, not allowed otherwise)."
            },
            "min": { "type": "number", "description": "Minimum value (number, range) or length (text, textarea, password)." },
            "max": { "type": "number", "description": "Maximum value (number, range) or length (text, textarea, password)." }
        }),
        &["name", "type", "label"],
    );
    strict_object(
        json!({
            "title": title(),
            "description": description("Markdown context: what the values are for."),
            "fields": { "type": "array", "minItems": 1, "items": field },
            "submitLabel": description("Text of the submit button."),
            "timeoutS": timeout()
        }),
        &["title", "fields"],
    )
}

fn text_input_schema() -> Value {
    let length = |what: &str| json!({ "type": "integer", "minimum": 0, "description": what });
    strict_object(
        json!({
            "title": title(),
            "description": description("Markdown context: what the text is for."),
            "prefill": description("Draft the reviewer starts from and edits."),
            "placeholder": description("Hint shown when the editor is empty."),
            "minLength": length("Fewest characters accepted."),
            "maxLength": length("Most characters accepted."),
            "markdown": { "type": "boolean", "description": "Show a markdown preview (default false)." },
            "timeoutS": timeout()
        }),
        &["title"],
    )
}
