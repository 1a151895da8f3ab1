//! What text is never given to the shell grammar: it recurses on nesting (and
//! must not exhaust the stack), panics on numbers it cannot hold, and loops without
//! end on some here-document tags. Each check may overestimate: text it refuses is
//! only unresolved, never trusted.

use super::MAX_DIGITS;

/// The largest number of brackets and compound keywords open at once, counted
/// without regard to quotes (an overestimate is safe: it only makes a line
/// unresolved).
pub(super) fn nesting(text: &str) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut word = String::new();
    let keyword = |word: &mut String, depth: &mut usize| {
        match word.as_str() {
            "if" | "case" | "while" | "until" | "for" | "select" => *depth += 1,
            "fi" | "esac" | "done" => *depth = depth.saturating_sub(1),
            _ => {}
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            word.push(c);
            continue;
        }
        keyword(&mut word, &mut depth);
        match c {
            '(' | '{' | '[' | '`' => depth += 1,
            ')' | '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        deepest = deepest.max(depth);
    }
    keyword(&mut word, &mut depth);
    deepest.max(depth)
}

/// Whether the text has a number the grammar cannot hold where it reads one: a file
/// descriptor before a redirection (`99999999999999999999>x`) or a directory-stack
/// tilde (`~+99999999999999999999`).
pub(super) fn has_huge_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        if !bytes[start].is_ascii_digit() {
            start += 1;
            continue;
        }
        let end = bytes[start..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .map_or(bytes.len(), |n| start + n);
        if end - start > MAX_DIGITS {
            let before = &bytes[..start];
            let tilde =
                before.ends_with(b"~") || before.ends_with(b"~+") || before.ends_with(b"~-");
            let redirect = matches!(bytes.get(end), Some(b'<' | b'>'));
            if tilde || redirect {
                return true;
            }
        }
        start = end;
    }
    false
}

/// Whether the text may hold a here-document whose end tag is not a plain word
/// (`EOF`, `'EOF'`, `"EOF"`, `\EOF`, `END_2`). The grammar loops without end on some
/// odd tags (an empty `''` tag, a carriage return, `$(`, followed by a blank at the
/// end of the text), so such text is never given to it. Quotes are not followed (so
/// `echo "a << $b"` counts): an overestimate only makes a line unresolved.
pub(super) fn has_odd_here_tag(text: &str) -> bool {
    // Line continuations are removed before the shell sees operators: `<\<newline>` is `<<`.
    let text = text.replace("\\\n", "");
    let bytes = text.as_bytes();
    for at in 0..bytes.len().saturating_sub(1) {
        if bytes[at] != b'<' || bytes[at + 1] != b'<' {
            continue;
        }
        if bytes.get(at + 2) == Some(&b'<') {
            // The start of a here-string `<<<`; the `<<` after this `<` is checked next.
            continue;
        }
        if at > 0 && bytes[at - 1] == b'<' {
            // The end of a here-string `<<<`: a here-document only when its first `<`
            // may be literal or taken by an operator before it.
            let before = at.checked_sub(2).map(|b| bytes[b]);
            if !matches!(
                before,
                Some(b'\\' | b'<' | b'>' | b'&' | b'|' | b'\'' | b'"')
            ) {
                continue;
            }
        }
        let mut tag = at + 2;
        if bytes.get(tag) == Some(&b'-') {
            tag += 1;
        }
        while matches!(bytes.get(tag), Some(b' ' | b'\t')) {
            tag += 1;
        }
        let end = bytes[tag..]
            .iter()
            .position(|b| {
                matches!(
                    b,
                    b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')'
                )
            })
            .map_or(bytes.len(), |n| tag + n);
        if !plain_here_tag(&bytes[tag..end]) {
            return true;
        }
    }
    false
}

/// A here-document tag made of letters, digits and `_ . - = + : , / @ %`, quoted or
/// escaped in any way.
fn plain_here_tag(tag: &[u8]) -> bool {
    let mut core = tag
        .iter()
        .filter(|b| !matches!(b, b'\'' | b'"' | b'\\'))
        .peekable();
    core.peek().is_some()
        && core.all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'_' | b'.' | b'-' | b'=' | b'+' | b':' | b',' | b'/' | b'@' | b'%'
                )
        })
}
