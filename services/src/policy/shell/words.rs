//! Quote removal for the pieces of a word, and what in unquoted text expands.

/// Whether the text holds a command or process substitution.
pub(super) fn has_substitution(text: &str) -> bool {
    text.contains("$(") || text.contains('`') || text.contains("<(") || text.contains(">(")
}

/// Whether unquoted text undergoes pathname or brace expansion.
pub(super) fn may_expand(text: &str) -> bool {
    if text.contains(['*', '?', '(']) {
        return true;
    }
    if let Some(open) = text.find('[')
        && text[open..].contains(']')
    {
        return true;
    }
    if let Some(open) = text.find('{')
        && let Some(close) = text[open..].find('}')
    {
        let inner = &text[open..open + close];
        return inner.contains(',') || inner.contains("..");
    }
    false
}

/// The text an escape stands for: outside quotes the escaped character, inside
/// double quotes only `$`, `` ` ``, `"`, `\` and newline are escaped.
pub(super) fn unescape(escape: &str, quoted: bool) -> String {
    let mut chars = escape.chars();
    match (chars.next(), chars.next()) {
        (Some('\\'), Some('\n')) => String::new(),
        (Some('\\'), Some(c)) if !quoted || matches!(c, '$' | '`' | '"' | '\\') => {
            let mut text = c.to_string();
            text.extend(chars);
            text
        }
        _ => escape.to_owned(),
    }
}

/// The text of a backquoted substitution as the shell reads it again.
pub(super) fn unbackquote(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next) = chars.peek()
            && matches!(next, '$' | '`' | '\\')
        {
            out.push(next);
            chars.next();
            continue;
        }
        out.push(c);
    }
    out
}

/// The text of `$'...'` after its escapes; `None` for an escape it does not know.
pub(super) fn ansi_c(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escaped = chars.next()?;
        let simple = match escaped {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'e' | 'E' => Some('\u{1b}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            '\\' | '\'' | '"' | '?' => Some(escaped),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            continue;
        }
        let (radix, max) = match escaped {
            'x' => (16, 2),
            'u' => (16, 4),
            'U' => (16, 8),
            '0'..='7' => (8, 2),
            _ => return None,
        };
        let mut digits = String::new();
        if radix == 8 {
            digits.push(escaped);
        }
        while digits.len() < max + usize::from(radix == 8) {
            match chars.peek() {
                Some(d) if d.is_digit(radix) => {
                    digits.push(*d);
                    chars.next();
                }
                _ => break,
            }
        }
        let code = u32::from_str_radix(&digits, radix).ok()?;
        out.push(char::from_u32(code)?);
    }
    Some(out)
}
