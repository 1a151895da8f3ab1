//! JSON with comments (`//`, `/* */`) and trailing commas, as people write config by
//! hand. Comments and trailing commas are blanked out byte for byte, so the positions
//! `serde_json` reports are positions in the file as written.

use serde_json::Value;

/// A syntax error at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub reason: String,
}

/// Parses `text` into a JSON object; a file with nothing but whitespace and comments
/// is an empty object.
pub(super) fn parse(text: &str) -> Result<Value, SyntaxError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut bytes = strip_comments(text)?;
    blank_trailing_commas(&mut bytes);
    // Only ASCII spaces replaced whole comments or commas, and comment bytes were
    // replaced one for one, so what remains is valid UTF-8; fall back defensively.
    let stripped = String::from_utf8(bytes).map_err(|_| SyntaxError {
        line: 1,
        column: 1,
        reason: "the file is not valid UTF-8".to_owned(),
    })?;
    let Some(first) = stripped.find(|c: char| !c.is_whitespace()) else {
        return Ok(Value::Object(serde_json::Map::new()));
    };
    let value: Value = serde_json::from_str(&stripped).map_err(|err| {
        let suffix = format!(" at line {} column {}", err.line(), err.column());
        let message = err.to_string();
        SyntaxError {
            line: err.line(),
            column: err.column(),
            reason: message.strip_suffix(&suffix).unwrap_or(&message).to_owned(),
        }
    })?;
    if !value.is_object() {
        let (line, column) = position(&stripped, first);
        return Err(SyntaxError {
            line,
            column,
            reason: "the top level must be an object `{ ... }`".to_owned(),
        });
    }
    Ok(value)
}

/// Replaces every comment byte with a space (newlines kept, so lines still count).
fn strip_comments(text: &str) -> Result<Vec<u8>, SyntaxError> {
    let src = text.as_bytes();
    let mut out = src.to_vec();
    let mut i = 0;
    while i < src.len() {
        match src[i] {
            b'"' => i = skip_string(src, i),
            b'/' if src.get(i + 1) == Some(&b'/') => {
                while i < src.len() && src[i] != b'\n' {
                    out[i] = b' ';
                    i += 1;
                }
            }
            b'/' if src.get(i + 1) == Some(&b'*') => {
                let start = i;
                let Some(len) = text[i + 2..].find("*/") else {
                    let (line, column) = position(text, start);
                    return Err(SyntaxError {
                        line,
                        column,
                        reason: "unterminated /* comment".to_owned(),
                    });
                };
                let end = i + 2 + len + 2;
                for byte in &mut out[start..end] {
                    if *byte != b'\n' && *byte != b'\r' {
                        *byte = b' ';
                    }
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    Ok(out)
}

/// Blanks a comma whose next non-space byte closes an object or array.
fn blank_trailing_commas(bytes: &mut [u8]) {
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = skip_string(bytes, i),
            b',' => {
                let next = bytes[i + 1..]
                    .iter()
                    .find(|byte| !byte.is_ascii_whitespace());
                if matches!(next, Some(b'}') | Some(b']')) {
                    bytes[i] = b' ';
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
}

/// Index just past the string literal opening at `start` (or the end if unterminated;
/// `serde_json` then reports it).
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// 1-based line and column (in characters) of byte `offset`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}
