//! Reading an `exec` command line the way `sh -c` will, with a shell grammar
//! (brush-parser), so rules see the commands the line can run rather than its text.
//!
//! Two readings come out of one parse:
//! - for deny rules, every simple command found anywhere in the line: in lists and
//!   pipelines, compound commands, function bodies, command and process
//!   substitutions, here-documents, and text handed to another shell (`sh -c`,
//!   `eval`, `trap`, `alias`, `env -S`, `su -c`, `find -exec`, ...), each with
//!   quotes and escapes removed, and again with the wrapper it runs under looked
//!   through (`sudo -u root touch x` yields `sudo -u root touch x` and `touch x`).
//!   What cannot be known before the line runs (a program name from `$X`, a text
//!   nested too deep, a line the grammar cannot read) is reported as unresolved;
//! - for allow rules, the line's simple commands when the line is nothing more than
//!   literal simple commands joined by `;`, `&&`, `||`, `|`, `&` and newlines.

use std::collections::HashSet;
use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use brush_parser::ast;
use brush_parser::word::{self, WordPiece, WordPieceWithSource};
use brush_parser::{Parser, ParserOptions};

/// Levels of text re-read as commands (`sh -c`, `eval`, substitutions) a line may
/// nest; deeper is unresolved.
pub(super) const MAX_DEPTH: usize = 8;
/// Brackets and compound keywords one text may have open at once; deeper is
/// unresolved (the grammar is recursive and must not exhaust the stack).
const MAX_NESTING: usize = 64;
/// Brackets and compound keywords open at once across the texts being read
/// (a substitution inside a substitution counts at each level).
const MAX_OPEN: usize = 2 * MAX_NESTING;
/// Bytes of a command line the grammar reads; a longer line is unresolved.
pub(super) const MAX_LEN: usize = 64 * 1024;
/// Bytes read as commands for one line, nested texts included (each read in up to
/// two grammars); more is unresolved.
const MAX_WORK: usize = 16 * MAX_LEN;
/// Digits in a row the grammar can hold as a number.
const MAX_DIGITS: usize = 18;

/// One word of a simple command as the policy sees it before the line runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum ShellWord {
    /// Text fixed before the line runs, quotes and escapes removed.
    Literal(String),
    /// Text only known when the line runs (a parameter, a substitution, a pathname
    /// or brace expansion, a tilde, input read by `xargs`): it may become any number
    /// of words.
    Expanded,
}

/// What a command line can run.
#[derive(Debug)]
pub(super) struct Reading {
    /// Every simple command found, wrappers looked through (each layer listed).
    pub commands: Vec<Vec<ShellWord>>,
    /// Why part of the line cannot be known before it runs.
    pub unresolved: Option<String>,
    /// The line's simple commands as literal words, or why the line is more than
    /// literal simple commands.
    pub plain: Result<Vec<Vec<String>>, String>,
}

/// Reads `line` as `sh -c` would, in both grammars: the `sh` one (what `exec`
/// runs) and the `bash` one (so a construct the two read differently is seen both
/// ways). Deny rules see the commands of both readings; an allow rule needs both
/// readings to be the same literal simple commands.
pub(super) fn read(line: &str) -> Reading {
    let mut reader = Reader::default();
    let mut plain: Option<Result<Vec<Vec<String>>, String>> = None;
    for grammar in [Grammar::Sh, Grammar::Bash] {
        reader.grammar = grammar;
        let this = match reader.parse(line, 0) {
            Some((program, nested)) => {
                reader.open = nested;
                reader.program(&program, 0);
                reader.open = 0;
                plain_commands(&program, grammar)
            }
            None => Err(reader
                .unresolved
                .clone()
                .unwrap_or_else(|| "the command line cannot be read".into())),
        };
        plain = Some(match (plain, this) {
            (None, this) => this,
            (Some(Err(e)), _) | (Some(Ok(_)), Err(e)) => Err(e),
            (Some(Ok(a)), Ok(b)) if a == b => Ok(a),
            (Some(Ok(_)), Ok(_)) => Err("sh and bash read the line differently".into()),
        });
    }
    let mut seen = HashSet::new();
    let commands = reader
        .commands
        .into_iter()
        .filter(|c| seen.insert(c.clone()))
        .collect();
    Reading {
        commands,
        unresolved: reader.unresolved,
        plain: plain.unwrap_or_else(|| Err("the command line cannot be read".into())),
    }
}

/// The grammar a shell reads its commands with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Grammar {
    /// POSIX `sh` (`dash`, `ash`): no `[[ ]]`, `(( ))`, `<(...)`, `<<<`, arrays.
    #[default]
    Sh,
    /// `bash` and shells close to it.
    Bash,
}

fn options(grammar: Grammar) -> ParserOptions {
    ParserOptions {
        sh_mode: grammar == Grammar::Sh,
        ..ParserOptions::default()
    }
}

/// The grammar of the commands a shell program reads.
fn grammar_of(shell: &str) -> Grammar {
    match shell {
        "sh" | "dash" | "ash" | "posh" => Grammar::Sh,
        _ => Grammar::Bash,
    }
}

/// The largest number of brackets and compound keywords open at once, counted
/// without regard to quotes (an overestimate is safe: it only makes a line
/// unresolved).
fn nesting(text: &str) -> usize {
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
fn has_huge_number(text: &str) -> bool {
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
fn has_odd_here_tag(text: &str) -> bool {
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

/// Runs a grammar function, turning a panic inside it into `None`.
fn guarded<T>(read: impl FnOnce() -> Option<T>) -> Option<T> {
    catch_unwind(AssertUnwindSafe(read)).ok().flatten()
}

fn parse_word(text: &str, grammar: Grammar) -> Option<Vec<WordPieceWithSource>> {
    if has_huge_number(text) {
        return None;
    }
    guarded(|| word::parse(text, &options(grammar)).ok())
}

#[derive(Default)]
struct Reader {
    commands: Vec<Vec<ShellWord>>,
    unresolved: Option<String>,
    /// Brackets and compound keywords open in the texts being read.
    open: usize,
    /// The grammar of the text being read.
    grammar: Grammar,
    /// Bytes given to the grammar so far.
    parsed: usize,
}

/// Where a simple command's standard input comes from, as far as it matters to a
/// shell reading commands from it.
enum Input {
    /// Inherited or a pipe: unknown text.
    Unknown,
    /// A here-document or here-string known before the line runs.
    Text(String),
    /// A file, or a here-document with expansions.
    Other,
}

impl Reader {
    fn fail(&mut self, why: impl Into<String>) {
        if self.unresolved.is_none() {
            self.unresolved = Some(why.into());
        }
    }

    fn parse(&mut self, text: &str, depth: usize) -> Option<(ast::Program, usize)> {
        if depth > MAX_DEPTH {
            self.fail(format!(
                "commands are nested more than {MAX_DEPTH} levels deep"
            ));
            return None;
        }
        if text.len() > MAX_LEN {
            self.fail(format!(
                "the command line is longer than {} KiB",
                MAX_LEN / 1024
            ));
            return None;
        }
        self.parsed += text.len();
        if self.parsed > MAX_WORK {
            self.fail(format!(
                "the command holds more than {} KiB of text to read as commands",
                MAX_WORK / 1024
            ));
            return None;
        }
        if self.grammar == Grammar::Sh && text.contains("<<<") {
            self.fail("a here-string `<<<` is not sh syntax");
            return None;
        }
        let nested = nesting(text);
        if nested > MAX_NESTING || self.open + nested > MAX_OPEN {
            self.fail(format!(
                "the command nests more than {MAX_NESTING} brackets or compound commands"
            ));
            return None;
        }
        if has_odd_here_tag(text) {
            self.fail("a here-document has an end tag that is not a plain word");
            return None;
        }
        if has_huge_number(text) {
            self.fail(format!(
                "the command has a file descriptor or directory-stack number of more than {MAX_DIGITS} digits"
            ));
            return None;
        }
        let options = options(self.grammar);
        let parsed =
            guarded(|| Some(Parser::new(Cursor::new(text.as_bytes()), &options).parse_program()));
        match parsed {
            Some(Ok(program)) => Some((program, nested)),
            Some(Err(e)) => {
                self.fail(format!("the shell grammar cannot read the command ({e})"));
                None
            }
            None => {
                self.fail("the shell grammar cannot read the command");
                None
            }
        }
    }

    /// Reads text another shell reads as commands, in each of `grammars`.
    fn script_as(&mut self, text: &str, depth: usize, grammars: &[Grammar]) {
        let current = self.grammar;
        for grammar in grammars {
            self.grammar = *grammar;
            self.script(text, depth);
        }
        self.grammar = current;
    }

    /// Reads text the shell will itself read as commands.
    fn script(&mut self, text: &str, depth: usize) {
        if let Some((program, nested)) = self.parse(text, depth) {
            self.open += nested;
            self.program(&program, depth);
            self.open -= nested;
        }
    }

    fn program(&mut self, program: &ast::Program, depth: usize) {
        for list in &program.complete_commands {
            self.list(list, depth);
        }
    }

    fn list(&mut self, list: &ast::CompoundList, depth: usize) {
        for ast::CompoundListItem(and_or, _) in &list.0 {
            self.pipeline(&and_or.first, depth);
            for next in &and_or.additional {
                match next {
                    ast::AndOr::And(p) | ast::AndOr::Or(p) => self.pipeline(p, depth),
                }
            }
        }
    }

    fn pipeline(&mut self, pipeline: &ast::Pipeline, depth: usize) {
        for command in &pipeline.seq {
            self.command(command, depth);
        }
    }

    fn command(&mut self, command: &ast::Command, depth: usize) {
        match command {
            ast::Command::Simple(simple) => self.simple(simple, depth),
            ast::Command::Compound(compound, redirects) => {
                self.compound(compound, depth);
                self.redirects(redirects.iter().flat_map(|r| &r.0), depth);
            }
            ast::Command::Function(function) => {
                let ast::FunctionBody(body, redirects) = &function.body;
                self.compound(body, depth);
                self.redirects(redirects.iter().flat_map(|r| &r.0), depth);
            }
            ast::Command::ExtendedTest(test, redirects) => {
                self.test(&test.expr, depth);
                self.redirects(redirects.iter().flat_map(|r| &r.0), depth);
            }
        }
    }

    fn test(&mut self, expr: &ast::ExtendedTestExpr, depth: usize) {
        match expr {
            ast::ExtendedTestExpr::And(a, b) | ast::ExtendedTestExpr::Or(a, b) => {
                self.test(a, depth);
                self.test(b, depth);
            }
            ast::ExtendedTestExpr::Not(a) | ast::ExtendedTestExpr::Parenthesized(a) => {
                self.test(a, depth);
            }
            ast::ExtendedTestExpr::UnaryTest(_, w) => {
                self.word(&w.value, depth);
            }
            ast::ExtendedTestExpr::BinaryTest(_, a, b) => {
                self.word(&a.value, depth);
                self.word(&b.value, depth);
            }
        }
    }

    fn arithmetic(&mut self, expr: &ast::UnexpandedArithmeticExpr) {
        if has_substitution(&expr.value) {
            self.fail("an arithmetic expression holds a command substitution");
        }
    }

    fn compound(&mut self, compound: &ast::CompoundCommand, depth: usize) {
        match compound {
            ast::CompoundCommand::Arithmetic(a) => self.arithmetic(&a.expr),
            ast::CompoundCommand::ArithmeticForClause(f) => {
                for expr in [&f.initializer, &f.condition, &f.updater]
                    .into_iter()
                    .flatten()
                {
                    self.arithmetic(expr);
                }
                self.list(&f.body.list, depth);
            }
            ast::CompoundCommand::BraceGroup(b) => self.list(&b.list, depth),
            ast::CompoundCommand::Subshell(s) => self.list(&s.list, depth),
            ast::CompoundCommand::ForClause(f) => {
                for value in f.values.iter().flatten() {
                    self.word(&value.value, depth);
                }
                self.list(&f.body.list, depth);
            }
            ast::CompoundCommand::CaseClause(c) => {
                self.word(&c.value.value, depth);
                for item in &c.cases {
                    for pattern in &item.patterns {
                        self.word(&pattern.value, depth);
                    }
                    if let Some(list) = &item.cmd {
                        self.list(list, depth);
                    }
                }
            }
            ast::CompoundCommand::IfClause(i) => {
                self.list(&i.condition, depth);
                self.list(&i.then, depth);
                for clause in i.elses.iter().flatten() {
                    if let Some(condition) = &clause.condition {
                        self.list(condition, depth);
                    }
                    self.list(&clause.body, depth);
                }
            }
            ast::CompoundCommand::WhileClause(w) | ast::CompoundCommand::UntilClause(w) => {
                self.list(&w.0, depth);
                self.list(&w.1.list, depth);
            }
            ast::CompoundCommand::Coprocess(c) => {
                if let Some(name) = &c.name {
                    self.word(&name.value, depth);
                }
                self.command(&c.body, depth);
            }
        }
    }

    fn redirects<'a>(
        &mut self,
        redirects: impl Iterator<Item = &'a ast::IoRedirect>,
        depth: usize,
    ) -> Input {
        let mut input = Input::Unknown;
        for redirect in redirects {
            match redirect {
                ast::IoRedirect::File(fd, kind, target) => {
                    match target {
                        ast::IoFileRedirectTarget::Filename(w)
                        | ast::IoFileRedirectTarget::Duplicate(w) => {
                            self.word(&w.value, depth);
                        }
                        ast::IoFileRedirectTarget::ProcessSubstitution(_, s) => {
                            self.list(&s.list, depth + 1);
                        }
                        ast::IoFileRedirectTarget::Fd(_) => {}
                    }
                    let reads = matches!(
                        kind,
                        ast::IoFileRedirectKind::Read
                            | ast::IoFileRedirectKind::ReadAndWrite
                            | ast::IoFileRedirectKind::DuplicateInput
                    );
                    if reads && is_stdin(fd.as_ref()) {
                        input = Input::Other;
                    }
                }
                ast::IoRedirect::HereDocument(fd, doc) => {
                    let text = if doc.requires_expansion {
                        self.heredoc(&doc.doc.value, depth)
                    } else {
                        Some(doc.doc.value.clone())
                    };
                    if is_stdin(fd.as_ref()) {
                        input = text.map_or(Input::Other, Input::Text);
                    }
                }
                ast::IoRedirect::HereString(fd, w) => {
                    let text = match self.word(&w.value, depth) {
                        ShellWord::Literal(text) => Input::Text(text),
                        ShellWord::Expanded => Input::Other,
                    };
                    if is_stdin(fd.as_ref()) {
                        input = text;
                    }
                }
                ast::IoRedirect::OutputAndError(w, _) => {
                    self.word(&w.value, depth);
                }
            }
        }
        input
    }

    /// Walks the substitutions of an expanding here-document; its text when it has
    /// no expansion at all.
    fn heredoc(&mut self, body: &str, depth: usize) -> Option<String> {
        if has_huge_number(body) {
            self.fail("a here-document cannot be read");
            return None;
        }
        let options = options(self.grammar);
        let Some(pieces) = guarded(|| word::parse_heredoc(body, &options).ok()) else {
            self.fail("a here-document cannot be read");
            return None;
        };
        let mut text = String::new();
        let mut literal = true;
        for piece in &pieces {
            self.piece(&piece.piece, true, &mut text, &mut literal, depth);
        }
        literal.then_some(text)
    }

    /// One word: its nested commands are read, and its text returned when it is
    /// fixed before the line runs.
    fn word(&mut self, text: &str, depth: usize) -> ShellWord {
        let Some(pieces) = parse_word(text, self.grammar) else {
            self.fail(format!("the word {} cannot be read", shorten(text)));
            return ShellWord::Expanded;
        };
        let mut out = String::new();
        let mut literal = true;
        for piece in &pieces {
            self.piece(&piece.piece, false, &mut out, &mut literal, depth);
        }
        if literal {
            ShellWord::Literal(out)
        } else {
            ShellWord::Expanded
        }
    }

    fn piece(
        &mut self,
        piece: &WordPiece,
        quoted: bool,
        out: &mut String,
        literal: &mut bool,
        depth: usize,
    ) {
        match piece {
            WordPiece::Text(text) => {
                if !quoted && may_expand(text) {
                    *literal = false;
                }
                out.push_str(text);
            }
            WordPiece::SingleQuotedText(text) => out.push_str(text),
            WordPiece::AnsiCQuotedText(text) => match ansi_c(text) {
                Some(text) => out.push_str(&text),
                None => *literal = false,
            },
            WordPiece::DoubleQuotedSequence(pieces)
            | WordPiece::GettextDoubleQuotedSequence(pieces) => {
                for inner in pieces {
                    self.piece(&inner.piece, true, out, literal, depth);
                }
            }
            WordPiece::EscapeSequence(escape) => out.push_str(&unescape(escape, quoted)),
            WordPiece::TildeExpansion(_) => *literal = false,
            WordPiece::ParameterExpansion(_) => {
                *literal = false;
                if has_substitution(&format!("{piece:?}")) {
                    self.fail("a parameter expansion holds a command substitution");
                }
            }
            WordPiece::ArithmeticExpression(expr) => {
                *literal = false;
                self.arithmetic(expr);
            }
            WordPiece::CommandSubstitution(text) => {
                *literal = false;
                self.script(text, depth + 1);
            }
            WordPiece::BackquotedCommandSubstitution(text) => {
                *literal = false;
                self.script(&unbackquote(text), depth + 1);
            }
        }
    }

    fn simple(&mut self, simple: &ast::SimpleCommand, depth: usize) {
        let mut words = Vec::new();
        let mut redirects = Vec::new();
        for item in simple.prefix.iter().flat_map(|p| &p.0) {
            self.item(item, None, &mut redirects, depth);
        }
        if let Some(name) = &simple.word_or_name {
            words.push(self.word(&name.value, depth));
        }
        for item in simple.suffix.iter().flat_map(|s| &s.0) {
            self.item(item, Some(&mut words), &mut redirects, depth);
        }
        let input = self.redirects(redirects.into_iter(), depth);
        if !words.is_empty() {
            self.resolve(words, &input, depth, 0);
        }
    }

    /// One prefix or suffix item: words go to `words` (suffix only), redirects to
    /// `redirects`, substitutions are read.
    fn item<'a>(
        &mut self,
        item: &'a ast::CommandPrefixOrSuffixItem,
        words: Option<&mut Vec<ShellWord>>,
        redirects: &mut Vec<&'a ast::IoRedirect>,
        depth: usize,
    ) {
        match item {
            ast::CommandPrefixOrSuffixItem::IoRedirect(r) => redirects.push(r),
            ast::CommandPrefixOrSuffixItem::Word(w) => {
                let word = self.word(&w.value, depth);
                if let Some(words) = words {
                    words.push(word);
                }
            }
            ast::CommandPrefixOrSuffixItem::AssignmentWord(_, w) => {
                // The whole `NAME=value` text: as an argument (`env X=1 cmd`,
                // `declare x=$(cmd)`) it is one word.
                let word = self.word(&w.value, depth);
                if let Some(words) = words {
                    words.push(word);
                }
            }
            ast::CommandPrefixOrSuffixItem::ProcessSubstitution(_, s) => {
                self.list(&s.list, depth + 1);
                if let Some(words) = words {
                    words.push(ShellWord::Expanded);
                }
            }
        }
    }

    /// Records a simple command and looks through the wrapper or shell it names.
    fn resolve(&mut self, words: Vec<ShellWord>, input: &Input, depth: usize, layer: usize) {
        if layer > MAX_DEPTH * 4 {
            self.fail("commands are wrapped too many times");
            return;
        }
        let Some(ShellWord::Literal(name)) = words.first() else {
            self.fail("the program name is only known when the command runs");
            self.commands.push(words);
            return;
        };
        let program = basename(name).to_owned();
        let rest = &words[1..];
        self.commands.push(words.clone());
        if program == "command" && looks_up_only(rest) {
            // `command -v NAME` prints where NAME is; it runs nothing.
        } else if let Some(shape) = wrapper(&program) {
            self.wrapped(&shape, rest, input, depth, layer);
        } else if SHELLS.contains(&program.as_str()) {
            self.shell(rest, input, depth, grammar_of(&program));
        } else {
            match program.as_str() {
                "eval" => match literal_words(rest) {
                    Some(args) => self.script(&args.join(" "), depth + 1),
                    None => self.fail("eval is given text only known when the command runs"),
                },
                "trap" => self.trap(rest, depth),
                "alias" => {
                    for word in rest {
                        match word {
                            ShellWord::Literal(w) => {
                                if let Some((_, value)) = w.split_once('=') {
                                    self.script(value, depth + 1);
                                }
                            }
                            ShellWord::Expanded => {
                                self.fail("an alias is only known when the command runs");
                            }
                        }
                    }
                }
                "find" => self.find(rest, input, depth, layer),
                "watch" => self.watch(rest, depth),
                "source" | "." => {
                    if let Some(file) = rest.first() {
                        self.script_file(file, input, depth, self.grammar);
                    }
                }
                "hash" => {
                    let renames = rest.iter().any(|w| match w {
                        ShellWord::Literal(w) => w.starts_with('-') && w.contains('p'),
                        ShellWord::Expanded => true,
                    });
                    if renames {
                        self.fail("hash -p makes a name run another program");
                    }
                }
                _ => {}
            }
        }
    }

    fn wrapped(
        &mut self,
        shape: &Wrapper,
        rest: &[ShellWord],
        input: &Input,
        depth: usize,
        layer: usize,
    ) {
        let mut i = 0;
        let mut operands = shape.operands;
        while i < rest.len() {
            let ShellWord::Literal(word) = &rest[i] else {
                self.fail(format!(
                    "{} is given text only known when the command runs",
                    shape.name
                ));
                return;
            };
            if word == "--" {
                i += 1;
                break;
            }
            if word.starts_with('-') && word.len() > 1 {
                match shape.option(word) {
                    OptionArg::None => i += 1,
                    OptionArg::Next { script } => {
                        if script {
                            match rest.get(i + 1) {
                                Some(ShellWord::Literal(text)) => {
                                    self.script_as(text, depth + 1, shape.grammars(self.grammar));
                                }
                                Some(ShellWord::Expanded) => self.fail(format!(
                                    "{} is given a command only known when it runs",
                                    shape.name
                                )),
                                None => {}
                            }
                        }
                        i += 2;
                    }
                    OptionArg::Glued { script, value } => {
                        if script {
                            self.script_as(&value, depth + 1, shape.grammars(self.grammar));
                        }
                        i += 1;
                    }
                }
                continue;
            }
            if shape.assignments && is_assignment(word) {
                i += 1;
                continue;
            }
            if shape.no_command {
                return;
            }
            if operands > 0 {
                operands -= 1;
                i += 1;
                continue;
            }
            break;
        }
        if shape.no_command || i >= rest.len() {
            return;
        }
        if shape.joined {
            let words = rest[i..]
                .iter()
                .take_while(|w| !matches!(w, ShellWord::Literal(w) if w.starts_with(":::")));
            match literal_words(&words.cloned().collect::<Vec<_>>()) {
                Some(words) => {
                    self.script_as(&words.join(" "), depth + 1, shape.grammars(self.grammar));
                }
                None => self.fail(format!(
                    "{} is given a command only known when it runs",
                    shape.name
                )),
            }
            return;
        }
        let mut inner = rest[i..].to_vec();
        if shape.name == "xargs" {
            inner.push(ShellWord::Expanded);
        }
        self.resolve(inner, input, depth, layer + 1);
    }

    /// `sh`, `bash`, ...: `-c TEXT` is read; with no script file, commands come from
    /// standard input.
    fn shell(&mut self, rest: &[ShellWord], input: &Input, depth: usize, grammar: Grammar) {
        match shell_invocation(rest) {
            ShellInvocation::Command(Some(ShellWord::Literal(text))) => {
                self.script_as(&text, depth + 1, &[grammar]);
            }
            ShellInvocation::Command(Some(ShellWord::Expanded)) => {
                self.fail("a shell is given a command only known when it runs");
            }
            ShellInvocation::Command(None) => {}
            ShellInvocation::Script(file) => self.script_file(&file, input, depth, grammar),
            ShellInvocation::Stdin => match input {
                Input::Text(text) => self.script_as(text, depth + 1, &[grammar]),
                Input::Other | Input::Unknown => {
                    self.fail("a shell reads commands from its input");
                }
            },
            ShellInvocation::Unknown => {
                self.fail("a shell is given options only known when it runs");
            }
        }
    }

    /// A script file a shell runs: unknown unless it is the standard input.
    fn script_file(&mut self, file: &ShellWord, input: &Input, depth: usize, grammar: Grammar) {
        match file {
            ShellWord::Expanded => {
                self.fail("a shell runs a script only known when the command runs");
            }
            ShellWord::Literal(path) if path.starts_with("/dev/") || path.starts_with("/proc/") => {
                match input {
                    Input::Text(text) => self.script_as(text, depth + 1, &[grammar]),
                    Input::Other | Input::Unknown => {
                        self.fail("a shell reads commands from its input");
                    }
                }
            }
            ShellWord::Literal(_) => {}
        }
    }

    fn trap(&mut self, rest: &[ShellWord], depth: usize) {
        let mut args = rest.iter();
        let first = match args.next() {
            Some(ShellWord::Literal(w)) if w == "--" => args.next(),
            Some(ShellWord::Literal(w)) if w.starts_with('-') => return,
            other => other,
        };
        match first {
            Some(ShellWord::Literal(text)) => self.script(text, depth + 1),
            Some(ShellWord::Expanded) => {
                self.fail("trap is given a command only known when it runs");
            }
            None => {}
        }
    }

    /// `find ... -exec CMD ... ;` (and `-execdir`, `-ok`, `-okdir`).
    fn find(&mut self, rest: &[ShellWord], input: &Input, depth: usize, layer: usize) {
        let mut i = 0;
        while i < rest.len() {
            let starts = matches!(&rest[i], ShellWord::Literal(w)
                if matches!(w.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir"));
            i += 1;
            if !starts {
                continue;
            }
            let end = rest[i..]
                .iter()
                .position(|w| matches!(w, ShellWord::Literal(w) if w == ";" || w == "+"))
                .map_or(rest.len(), |p| i + p);
            if end > i {
                self.resolve(rest[i..end].to_vec(), input, depth, layer + 1);
            }
            i = end;
        }
    }

    /// `watch [options] CMD...`: the words are joined and run by `sh -c`.
    fn watch(&mut self, rest: &[ShellWord], depth: usize) {
        let mut i = 0;
        while let Some(ShellWord::Literal(w)) = rest.get(i) {
            if !w.starts_with('-') {
                break;
            }
            let takes_value = matches!(w.as_str(), "-n" | "--interval" | "-q" | "--equexit");
            i += if takes_value { 2 } else { 1 };
            if w == "--" {
                break;
            }
        }
        if i >= rest.len() {
            return;
        }
        match literal_words(&rest[i..]) {
            Some(words) => self.script_as(&words.join(" "), depth + 1, &[Grammar::Sh]),
            None => self.fail("watch is given a command only known when it runs"),
        }
    }
}

/// Whether `command` is given `-v` or `-V` before its operand.
fn looks_up_only(rest: &[ShellWord]) -> bool {
    for word in rest {
        match word {
            ShellWord::Literal(w) if w == "--" => return false,
            ShellWord::Literal(w) if w.starts_with('-') => {
                if w.contains(['v', 'V']) {
                    return true;
                }
            }
            _ => return false,
        }
    }
    false
}

fn is_stdin(fd: Option<&ast::IoFd>) -> bool {
    fd.is_none_or(|fd| *fd == 0)
}

/// Whether the text holds a command or process substitution.
fn has_substitution(text: &str) -> bool {
    text.contains("$(") || text.contains('`') || text.contains("<(") || text.contains(">(")
}

/// Whether unquoted text undergoes pathname or brace expansion.
fn may_expand(text: &str) -> bool {
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
fn unescape(escape: &str, quoted: bool) -> String {
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
fn unbackquote(text: &str) -> String {
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
fn ansi_c(text: &str) -> Option<String> {
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

fn shorten(text: &str) -> String {
    let short: String = text.chars().take(40).collect();
    if short.len() < text.len() {
        format!("{short:?}...")
    } else {
        format!("{short:?}")
    }
}

fn literal_words(words: &[ShellWord]) -> Option<Vec<&str>> {
    words
        .iter()
        .map(|w| match w {
            ShellWord::Literal(text) => Some(text.as_str()),
            ShellWord::Expanded => None,
        })
        .collect()
}

/// The program name without its directory: `/usr/bin/touch` is `touch`.
pub(super) fn basename(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    }
}

/// Programs that read their arguments (or input) as shell commands.
const SHELLS: [&str; 13] = [
    "sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "yash", "posh", "rbash", "fish", "csh",
    "tcsh",
];

/// Builtins that run text as commands or change what a later word means; a line
/// using them is never covered by an allow rule.
pub(super) const INDIRECTIONS: [&str; 8] = [
    "eval", "exec", "source", ".", "builtin", "command", "trap", "alias",
];

/// How a shell is asked to find its commands.
#[derive(Debug, PartialEq)]
pub(super) enum ShellInvocation {
    /// `-c TEXT` (the text, when given).
    Command(Option<ShellWord>),
    /// A script file operand.
    Script(ShellWord),
    /// No `-c` and no script: commands come from standard input.
    Stdin,
    /// An option word only known when the line runs.
    Unknown,
}

pub(super) fn shell_invocation(rest: &[ShellWord]) -> ShellInvocation {
    let mut command = false;
    let mut stdin = false;
    let mut i = 0;
    while i < rest.len() {
        let ShellWord::Literal(word) = &rest[i] else {
            return ShellInvocation::Unknown;
        };
        if word == "--" || word == "-" {
            i += 1;
            break;
        }
        if let Some(long) = word.strip_prefix("--") {
            i += if matches!(long, "rcfile" | "init-file") {
                2
            } else {
                1
            };
            continue;
        }
        let Some(cluster) = word.strip_prefix(['-', '+']) else {
            break;
        };
        i += 1;
        for c in cluster.chars() {
            match c {
                'c' => command = true,
                's' => stdin = true,
                'o' | 'O' => i += 1,
                _ => {}
            }
        }
    }
    if command {
        return ShellInvocation::Command(rest.get(i).cloned());
    }
    match rest.get(i) {
        Some(file) if !stdin => ShellInvocation::Script(file.clone()),
        _ => ShellInvocation::Stdin,
    }
}

/// The option grammar of a program that runs another program.
struct Wrapper {
    name: &'static str,
    /// Options taking the next word as their value (`-u root`, `--user root`).
    with_value: &'static [&'static str],
    /// Options whose value is itself a command line (`env -S`, `su -c`).
    with_script: &'static [&'static str],
    /// Operands before the command (`timeout DURATION`, `chroot DIR`).
    operands: usize,
    /// `NAME=value` words may come before the command (`env`, `sudo`).
    assignments: bool,
    /// Runs no command of its own words (`su`, `flock -c`): only options matter.
    no_command: bool,
    /// Joins the command's words into one text a shell reads (`ssh`, `sg`,
    /// `parallel`), up to a `:::` word.
    joined: bool,
    /// The grammars of the shell reading its command text (empty: the current one).
    reads_as: &'static [Grammar],
}

enum OptionArg {
    None,
    Next { script: bool },
    Glued { script: bool, value: String },
}

impl Wrapper {
    fn grammars(&self, current: Grammar) -> &'static [Grammar] {
        match (self.reads_as, current) {
            ([], Grammar::Sh) => &[Grammar::Sh],
            ([], Grammar::Bash) => &[Grammar::Bash],
            (grammars, _) => grammars,
        }
    }

    fn option(&self, word: &str) -> OptionArg {
        let takes = |name: &str| {
            let script = self.with_script.contains(&name);
            (self.with_value.contains(&name) || script).then_some(script)
        };
        if word.starts_with("--") {
            if let Some((name, value)) = word.split_once('=') {
                return match takes(name) {
                    Some(script) => OptionArg::Glued {
                        script,
                        value: value.to_owned(),
                    },
                    None => OptionArg::None,
                };
            }
            return match takes(word) {
                Some(script) => OptionArg::Next { script },
                None => OptionArg::None,
            };
        }
        // A short cluster: the first option taking a value takes the rest of the
        // word, or the next word when it ends the cluster.
        for (at, c) in word.char_indices().skip(1) {
            if let Some(script) = takes(&format!("-{c}")) {
                let value = &word[at + c.len_utf8()..];
                return if value.is_empty() {
                    OptionArg::Next { script }
                } else {
                    OptionArg::Glued {
                        script,
                        value: value.to_owned(),
                    }
                };
            }
        }
        OptionArg::None
    }
}

/// Programs that hand their command text to `/bin/sh`.
const SH: &[Grammar] = &[Grammar::Sh];
/// Programs that hand their command text to a shell that may be either.
const SH_AND_BASH: &[Grammar] = &[Grammar::Sh, Grammar::Bash];

fn wrapper(program: &str) -> Option<Wrapper> {
    let shape = |name, with_value, with_script, operands, assignments, no_command| Wrapper {
        name,
        with_value,
        with_script,
        operands,
        assignments,
        no_command,
        joined: false,
        reads_as: &[],
    };
    let joined = |name, with_value, with_script, operands, reads_as| Wrapper {
        joined: true,
        reads_as,
        ..shape(name, with_value, with_script, operands, false, false)
    };
    Some(match program {
        "env" => shape(
            "env",
            &["-u", "--unset", "-C", "--chdir", "-a", "--argv0"],
            &["-S", "--split-string"],
            0,
            true,
            false,
        ),
        "command" => shape("command", &[], &[], 0, false, false),
        "builtin" => shape("builtin", &[], &[], 0, false, false),
        "exec" => shape("exec", &["-a"], &[], 0, false, false),
        "nice" => shape("nice", &["-n", "--adjustment"], &[], 0, false, false),
        "timeout" => shape(
            "timeout",
            &["-s", "--signal", "-k", "--kill-after"],
            &[],
            1,
            false,
            false,
        ),
        "nohup" => shape("nohup", &[], &[], 0, false, false),
        "setsid" => shape("setsid", &[], &[], 0, false, false),
        "sudo" => shape(
            "sudo",
            &[
                "-u",
                "--user",
                "-g",
                "--group",
                "-C",
                "--close-from",
                "-D",
                "--chdir",
                "-h",
                "--host",
                "-p",
                "--prompt",
                "-r",
                "--role",
                "-t",
                "--type",
                "-T",
                "--command-timeout",
                "-U",
                "--other-user",
                "-R",
                "--chroot",
            ],
            &[],
            0,
            true,
            false,
        ),
        "doas" => shape("doas", &["-u", "-C"], &[], 0, false, false),
        "stdbuf" => shape(
            "stdbuf",
            &["-i", "-o", "-e", "--input", "--output", "--error"],
            &[],
            0,
            false,
            false,
        ),
        "time" => shape(
            "time",
            &["-f", "--format", "-o", "--output"],
            &[],
            0,
            false,
            false,
        ),
        "busybox" => shape("busybox", &[], &[], 0, false, false),
        "chroot" => shape("chroot", &["--userspec", "--groups"], &[], 1, false, false),
        "ionice" => shape(
            "ionice",
            &[
                "-c",
                "--class",
                "-n",
                "--classdata",
                "-p",
                "--pid",
                "-P",
                "--pgid",
                "-u",
                "--uid",
            ],
            &[],
            0,
            false,
            false,
        ),
        "taskset" => shape("taskset", &[], &[], 1, false, false),
        "chrt" => shape("chrt", &["-T", "-P", "-D"], &[], 1, false, false),
        "xargs" => shape(
            "xargs",
            &[
                "-a",
                "--arg-file",
                "-d",
                "--delimiter",
                "-E",
                "-I",
                "-L",
                "--max-lines",
                "-n",
                "--max-args",
                "-P",
                "--max-procs",
                "-s",
                "--max-chars",
                "--process-slot-var",
            ],
            &[],
            0,
            false,
            false,
        ),
        "strace" | "ltrace" => shape(
            "strace",
            &[
                "-e", "-o", "-p", "-s", "-u", "-E", "-a", "-b", "-I", "-O", "-P", "-S", "-X",
            ],
            &[],
            0,
            false,
            false,
        ),
        "fakeroot" => shape(
            "fakeroot",
            &["-l", "--lib", "--faked", "-s", "-i"],
            &[],
            0,
            false,
            false,
        ),
        "unshare" => shape(
            "unshare",
            &[
                "--propagation",
                "-S",
                "--setuid",
                "-G",
                "--setgid",
                "-R",
                "--root",
                "-w",
                "--wd",
            ],
            &[],
            0,
            false,
            false,
        ),
        "numactl" => shape(
            "numactl",
            &[
                "-N",
                "-m",
                "-C",
                "-p",
                "-i",
                "--cpunodebind",
                "--membind",
                "--physcpubind",
                "--preferred",
                "--interleave",
            ],
            &[],
            0,
            false,
            false,
        ),
        "flock" => Wrapper {
            reads_as: SH,
            ..shape(
                "flock",
                &["-w", "--timeout", "-E", "--conflict-exit-code"],
                &["-c", "--command"],
                1,
                false,
                false,
            )
        },
        "su" | "runuser" => Wrapper {
            reads_as: SH_AND_BASH,
            ..shape(
                "su",
                &[
                    "-g",
                    "--group",
                    "-G",
                    "--supp-group",
                    "-s",
                    "--shell",
                    "-w",
                    "--whitelist-environment",
                ],
                &["-c", "--command"],
                0,
                false,
                true,
            )
        },
        "script" => Wrapper {
            reads_as: SH_AND_BASH,
            ..shape(
                "script",
                &[
                    "-E",
                    "--echo",
                    "-I",
                    "--log-in",
                    "-O",
                    "--log-out",
                    "-B",
                    "--log-io",
                    "-T",
                    "--log-timing",
                    "-m",
                    "--logging-format",
                ],
                &["-c", "--command"],
                0,
                false,
                true,
            )
        },
        "ssh" => joined(
            "ssh",
            &[
                "-b", "-c", "-D", "-E", "-e", "-F", "-I", "-i", "-J", "-L", "-l", "-m", "-O", "-o",
                "-p", "-Q", "-R", "-S", "-W", "-w", "-B",
            ],
            &[],
            1,
            SH_AND_BASH,
        ),
        "sg" => joined("sg", &[], &["-c"], 1, SH),
        "parallel" => joined(
            "parallel",
            &[
                "-j",
                "--jobs",
                "-a",
                "--arg-file",
                "-S",
                "--sshlogin",
                "-n",
                "--max-args",
                "-I",
                "--colsep",
                "-d",
                "--delimiter",
                "--joblog",
                "--results",
                "--tmpdir",
                "--delay",
                "-E",
            ],
            &[],
            0,
            SH_AND_BASH,
        ),
        "systemd-run" => shape(
            "systemd-run",
            &[
                "-p",
                "--property",
                "-u",
                "--unit",
                "-E",
                "--setenv",
                "--uid",
                "--gid",
                "-M",
                "--machine",
                "-H",
                "--host",
                "--slice",
                "--description",
                "--working-directory",
                "--on-calendar",
                "--on-active",
            ],
            &[],
            0,
            false,
            false,
        ),
        _ => return None,
    })
}

/// The line's simple commands as literal words, when the line is only literal
/// simple commands in lists and pipelines.
fn plain_commands(program: &ast::Program, grammar: Grammar) -> Result<Vec<Vec<String>>, String> {
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

fn plain_command(command: &ast::Command, grammar: Grammar) -> Result<Vec<String>, String> {
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
fn plain_word(text: &str, grammar: Grammar) -> Result<String, String> {
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

fn plain_piece(piece: &WordPiece, quoted: bool, out: &mut String) -> bool {
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
