//! The allow-rule reading: a line's simple commands, only when the line is nothing
//! more than literal simple commands in lists and pipelines.

use brush_parser::ast;
use brush_parser::word::WordPiece;

use super::programs::{INDIRECTIONS, SHELLS, ShellInvocation, shell_invocation};
use super::words::{may_expand, unescape};
use super::{Grammar, ShellWord, basename, parse_word, shorten};

/// The line's simple commands as literal words, when the line is only literal
/// simple commands in lists and pipelines.
pub(super) fn plain_commands(
    program: &ast::Program,
    grammar: Grammar,
) -> Result<Vec<Vec<String>>, String> {
    let mut commands = Vec::new();
    for list in &program.complete_commands {
        for ast::CompoundListItem(and_or, _) in &list.0 {
            let pipelines = std::iter::once(&and_or.first).chain(and_or.additional.iter().map(
                |next| match next {
                    ast::AndOr::And(p) | ast::AndOr::Or(p) => p,
                },
            ));
            for pipeline in pipelines {
                for command in &pipeline.seq {
                    commands.push(plain_command(command, grammar)?);
                }
            }
        }
    }
    if commands.is_empty() {
        return Err("the line runs no command".into());
    }
    Ok(commands)
}

pub(super) fn plain_command(
    command: &ast::Command,
    grammar: Grammar,
) -> Result<Vec<String>, String> {
    let ast::Command::Simple(simple) = command else {
        return Err(
            "the line has a compound command, function or test (only simple commands are trusted)"
                .into(),
        );
    };
    if simple.prefix.is_some() {
        return Err("the line has a variable assignment or redirection before a command".into());
    }
    let Some(name) = &simple.word_or_name else {
        return Err("the line has a command without a name".into());
    };
    let mut words = vec![plain_word(&name.value, grammar)?];
    for item in simple.suffix.iter().flat_map(|s| &s.0) {
        match item {
            ast::CommandPrefixOrSuffixItem::Word(w) => {
                words.push(plain_word(&w.value, grammar)?);
            }
            ast::CommandPrefixOrSuffixItem::IoRedirect(_) => {
                return Err("the line has a redirection".into());
            }
            ast::CommandPrefixOrSuffixItem::AssignmentWord(..) => {
                return Err("the line has a variable assignment".into());
            }
            ast::CommandPrefixOrSuffixItem::ProcessSubstitution(..) => {
                return Err("the line has a process substitution".into());
            }
        }
    }
    let program = basename(&words[0]);
    if INDIRECTIONS.contains(&program) {
        return Err(format!("{program} runs text as commands"));
    }
    if SHELLS.contains(&program) {
        let rest: Vec<ShellWord> = words[1..]
            .iter()
            .map(|w| ShellWord::Literal(w.clone()))
            .collect();
        if !matches!(shell_invocation(&rest), ShellInvocation::Script(_)) {
            return Err(format!("{program} runs text as commands"));
        }
    }
    Ok(words)
}

/// A word made only of literal text, single quotes, double quotes around literal
/// text and escapes.
pub(super) fn plain_word(text: &str, grammar: Grammar) -> Result<String, String> {
    let not_plain = || {
        format!(
            "the word {} is only known when the line runs",
            shorten(text)
        )
    };
    let pieces = parse_word(text, grammar).ok_or_else(not_plain)?;
    let mut out = String::new();
    for piece in &pieces {
        if !plain_piece(&piece.piece, false, &mut out) {
            return Err(not_plain());
        }
    }
    Ok(out)
}

pub(super) fn plain_piece(piece: &WordPiece, quoted: bool, out: &mut String) -> bool {
    match piece {
        WordPiece::Text(text) => {
            out.push_str(text);
            quoted || !may_expand(text)
        }
        WordPiece::SingleQuotedText(text) => {
            out.push_str(text);
            true
        }
        WordPiece::DoubleQuotedSequence(pieces) => {
            pieces.iter().all(|p| plain_piece(&p.piece, true, out))
        }
        WordPiece::EscapeSequence(escape) => {
            out.push_str(&unescape(escape, quoted));
            true
        }
        _ => false,
    }
}
