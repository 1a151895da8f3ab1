//! A review asked at the terminal: what is being decided (the tool, its arguments,
//! the policy's reason), then the answer, typed per review type and checked with the
//! same validation every other review surface uses before it is sent.

use facio_services::review::{
    ApprovalPayload, FieldType, FormField, FormPayload, HitlTool, ReviewPayload, SelectionMode,
    SelectionPayload, TextInputPayload, validate_response,
};
use facio_services::store::ReviewRecord;
use serde_json::{Map, Value, json};

use super::terminal::Terminal;

/// Prints what the review is about on stderr.
pub fn show(review: &ReviewRecord) {
    let hitl = HitlTool::from_name(&review.tool).is_some();
    eprintln!();
    if hitl {
        eprintln!(
            "⏸ the agent asks ({}): {}",
            review.tool,
            review.request.title.trim()
        );
    } else {
        eprintln!(
            "⏸ {} needs your decision: {}",
            review.tool,
            review.request.title.trim()
        );
    }
    if let Some(reason) = review.context.get("reason").and_then(Value::as_str) {
        eprintln!("  why: {reason}");
    }
    if hitl {
        // The agent's own question: its description is what it wants to know.
        if let Some(description) = review.request.description.as_deref()
            && !description.trim().is_empty()
        {
            for line in description.trim().lines() {
                eprintln!("  {line}");
            }
        }
    } else if let Some(arguments) = review.context.get("arguments") {
        eprintln!("  arguments:");
        let pretty = serde_json::to_string_pretty(arguments).unwrap_or_default();
        for line in pretty.lines() {
            eprintln!("    {line}");
        }
    }
}

/// Asks for the answer until it is valid. `None` when input ended first.
pub async fn ask(terminal: &mut Terminal, review: &ReviewRecord) -> anyhow::Result<Option<Value>> {
    let payload = &review.request.payload;
    loop {
        let answer = match payload {
            ReviewPayload::Approval(p) => approval(terminal, p).await?,
            ReviewPayload::Selection(p) => selection(terminal, p).await?,
            ReviewPayload::Form(p) => form(terminal, p).await?,
            ReviewPayload::TextInput(p) => text_input(terminal, p).await?,
            ReviewPayload::Freeform(_) => freeform(terminal).await?,
        };
        let Some(answer) = answer else {
            return Ok(None);
        };
        match validate_response(payload, &answer) {
            Ok(_) => return Ok(Some(answer)),
            Err(e) => eprintln!("  ✗ {e}; try again"),
        }
    }
}

/// The key that picks an option: its first letter when no other option shares it,
/// else its number.
fn keys(payload: &ApprovalPayload) -> Vec<String> {
    let first = |id: &str| id.chars().next().map(|c| c.to_lowercase().to_string());
    payload
        .options
        .iter()
        .enumerate()
        .map(|(n, option)| match first(&option.id) {
            Some(key)
                if payload
                    .options
                    .iter()
                    .filter(|o| first(&o.id).as_deref() == Some(key.as_str()))
                    .count()
                    == 1 =>
            {
                key
            }
            _ => (n + 1).to_string(),
        })
        .collect()
}

async fn approval(
    terminal: &mut Terminal,
    payload: &ApprovalPayload,
) -> anyhow::Result<Option<Value>> {
    let keys = keys(payload);
    let menu = payload
        .options
        .iter()
        .zip(&keys)
        .map(|(option, key)| {
            let label = option.label.trim();
            match label.strip_prefix(|c: char| c.to_lowercase().to_string() == *key) {
                Some(rest) => format!("[{key}]{rest}"),
                None => format!("[{key}] {label}"),
            }
        })
        .collect::<Vec<_>>()
        .join(" / ");
    let chosen = loop {
        let Some(line) = terminal.line(&format!("{menu}? ")).await? else {
            return Ok(None);
        };
        let typed = line.trim().to_lowercase();
        if typed.is_empty() {
            continue;
        }
        let found = payload.options.iter().zip(&keys).position(|(option, key)| {
            typed == *key
                || typed == option.id.to_lowercase()
                || typed == option.label.trim().to_lowercase()
        });
        match found {
            Some(n) => break payload.options[n].id.clone(),
            None => eprintln!("  ✗ answer one of: {}", keys.join(", ")),
        }
    };
    let mut answer = json!({"selectedOption": chosen});
    if payload.comments_allowed() {
        let Some(comment) = terminal
            .line("comment (optional, Enter for none): ")
            .await?
        else {
            return Ok(None);
        };
        if !comment.trim().is_empty() {
            answer["comment"] = json!(comment.trim());
        }
    }
    Ok(Some(answer))
}

/// An item by its number, id or label.
fn item_id(payload: &SelectionPayload, typed: &str) -> String {
    if let Ok(n) = typed.parse::<usize>()
        && let Some(item) = n.checked_sub(1).and_then(|i| payload.items.get(i))
    {
        return item.id.clone();
    }
    payload
        .items
        .iter()
        .find(|item| item.id == typed || item.label.eq_ignore_ascii_case(typed))
        .map(|item| item.id.clone())
        .unwrap_or_else(|| typed.to_owned())
}

async fn selection(
    terminal: &mut Terminal,
    payload: &SelectionPayload,
) -> anyhow::Result<Option<Value>> {
    for (n, item) in payload.items.iter().enumerate() {
        match item.description.as_deref() {
            Some(description) => eprintln!("  {}) {} — {description}", n + 1, item.label),
            None => eprintln!("  {}) {}", n + 1, item.label),
        }
    }
    let prompt = match payload.mode {
        SelectionMode::Single => "choose one (its number): ",
        SelectionMode::Multi => "choose any (numbers, comma-separated): ",
    };
    let Some(line) = terminal.line(prompt).await? else {
        return Ok(None);
    };
    let ids: Vec<String> = line
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| item_id(payload, t))
        .collect();
    Ok(Some(json!({"selectedIds": ids})))
}

/// How a field is described before its prompt: type, whether it is required, bounds.
fn describe(field: &FormField) -> String {
    let mut notes = vec![field.field_type.as_str().to_owned()];
    if field.is_required() {
        notes.push("required".into());
    }
    let unit = match field.field_type.bounds() {
        facio_services::review::Bounds::Length => " characters",
        _ => "",
    };
    match (field.min, field.max) {
        (Some(min), Some(max)) => notes.push(format!("{min}–{max}{unit}")),
        (Some(min), None) => notes.push(format!("at least {min}{unit}")),
        (None, Some(max)) => notes.push(format!("at most {max}{unit}")),
        (None, None) => {}
    }
    match field.field_type {
        FieldType::Checkbox => notes.push("y or n".into()),
        FieldType::Password => notes.push("not shown as you type".into()),
        FieldType::Date => notes.push("YYYY-MM-DD".into()),
        FieldType::Time => notes.push("HH:MM".into()),
        FieldType::Datetime => notes.push("YYYY-MM-DDTHH:MM".into()),
        _ => {}
    }
    if let Some(placeholder) = field.placeholder.as_deref() {
        notes.push(format!("e.g. {placeholder}"));
    }
    notes.join(", ")
}

/// What was typed, as the JSON value the field takes. Anything that does not read as
/// the field's type is passed on as typed, so validation names the problem.
fn field_value(field: &FormField, typed: &str) -> Value {
    let text = typed.trim();
    if text.is_empty() {
        return Value::Null;
    }
    match field.field_type {
        FieldType::Number | FieldType::Range => {
            if let Ok(n) = text.parse::<i64>() {
                json!(n)
            } else if let Some(n) = text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
            {
                Value::Number(n)
            } else {
                json!(text)
            }
        }
        FieldType::Checkbox => match text.to_lowercase().as_str() {
            "y" | "yes" | "true" | "1" => json!(true),
            "n" | "no" | "false" | "0" => json!(false),
            _ => json!(text),
        },
        FieldType::Select => {
            let options = field.options.as_deref().unwrap_or_default();
            let by_number = text
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| options.get(i));
            let chosen = by_number.or_else(|| {
                options
                    .iter()
                    .find(|o| o.value == text || o.label.eq_ignore_ascii_case(text))
            });
            json!(chosen.map_or(text, |o| o.value.as_str()))
        }
        // A password is kept exactly as typed (spaces included).
        FieldType::Password => json!(typed),
        _ => json!(text),
    }
}

async fn form(terminal: &mut Terminal, payload: &FormPayload) -> anyhow::Result<Option<Value>> {
    let mut answer = Map::new();
    for field in &payload.fields {
        eprintln!("  {} ({})", field.label.trim(), describe(field));
        if let Some(options) = field.options.as_deref() {
            for (n, option) in options.iter().enumerate() {
                eprintln!("    {}) {}", n + 1, option.label);
            }
        }
        // Each field is checked as it is typed, with the form's own rules for it.
        let alone = ReviewPayload::Form(FormPayload {
            fields: vec![field.clone()],
            submit_label: None,
        });
        let value = loop {
            let prompt = format!("{}: ", field.name);
            let typed = if field.field_type == FieldType::Password {
                terminal.secret(&prompt).await?
            } else {
                terminal.line(&prompt).await?
            };
            let Some(typed) = typed else {
                return Ok(None);
            };
            let value = field_value(field, &typed);
            let mut single = Map::new();
            if !value.is_null() {
                single.insert(field.name.clone(), value.clone());
            }
            match validate_response(&alone, &Value::Object(single)) {
                Ok(_) => break value,
                Err(e) => eprintln!("  ✗ {e}; try again"),
            }
        };
        if !value.is_null() {
            answer.insert(field.name.clone(), value);
        }
    }
    Ok(Some(Value::Object(answer)))
}

async fn text_input(
    terminal: &mut Terminal,
    payload: &TextInputPayload,
) -> anyhow::Result<Option<Value>> {
    let mut limits = Vec::new();
    if let Some(min) = payload.min_length {
        limits.push(format!("at least {min} characters"));
    }
    if let Some(max) = payload.max_length {
        limits.push(format!("at most {max} characters"));
    }
    if !limits.is_empty() {
        eprintln!("  ({})", limits.join(", "));
    }
    let prefill = payload.prefill.as_deref().filter(|p| !p.is_empty());
    let editor = editor();
    match prefill {
        Some(prefill) => {
            eprintln!("  draft:");
            for line in prefill.lines() {
                eprintln!("  │ {line}");
            }
            let edit = if editor.is_some() {
                ", /edit to change it in your editor"
            } else {
                ""
            };
            eprintln!("  Enter keeps the draft; type a line to replace it{edit}");
        }
        None => {
            if let Some(placeholder) = payload.placeholder.as_deref() {
                eprintln!("  e.g. {placeholder}");
            }
            if editor.is_some() {
                eprintln!("  type the text, or /edit to write it in your editor");
            }
        }
    }
    let Some(line) = terminal.line("text: ").await? else {
        return Ok(None);
    };
    let text = match line.trim() {
        "" => prefill.unwrap_or_default().to_owned(),
        "/edit" if editor.is_some() => {
            let editor = editor.unwrap_or_default();
            match edit_in(&editor, prefill.unwrap_or_default()) {
                Ok(text) => text,
                Err(e) => {
                    eprintln!("  ✗ {e}");
                    prefill.unwrap_or_default().to_owned()
                }
            }
        }
        _ => line,
    };
    Ok(Some(json!({"text": text})))
}

async fn freeform(terminal: &mut Terminal) -> anyhow::Result<Option<Value>> {
    let Some(line) = terminal
        .line("answer (JSON, or plain text as a string): ")
        .await?
    else {
        return Ok(None);
    };
    let line = line.trim();
    Ok(Some(
        serde_json::from_str(line).unwrap_or_else(|_| json!(line)),
    ))
}

/// `$VISUAL`, else `$EDITOR`.
fn editor() -> Option<String> {
    ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .find(|e| !e.trim().is_empty())
}

/// Opens `draft` in the editor and returns what was saved (without the final newline
/// editors add).
fn edit_in(editor: &str, draft: &str) -> anyhow::Result<String> {
    use anyhow::Context;
    use std::io::Write;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let file = std::env::temp_dir().join(format!("facio-review-{}-{stamp}.md", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)
        .and_then(|mut f| f.write_all(draft.as_bytes()))
        .context("writing the draft for the editor")?;
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&file)
        .status();
    let text = std::fs::read_to_string(&file);
    let _ = std::fs::remove_file(&file);
    let status = status.with_context(|| format!("cannot start the editor {editor}"))?;
    if !status.success() {
        anyhow::bail!("the editor {editor} failed; the draft is kept");
    }
    let text = text.context("reading the edited draft")?;
    Ok(text.strip_suffix('\n').unwrap_or(&text).to_owned())
}
