//! Reading an `exec` command line the way `sh -c` will, with a shell grammar
//! (brush-parser), so rules see the commands the line can run rather than its text.
//! The line is read twice, with the `sh` grammar it runs under and with the `bash`
//! one, and two readings come out:
//! - for deny rules, every simple command found anywhere in the line: in lists and
//!   pipelines, compound commands, function bodies, command and process
//!   substitutions, here-documents, and text handed to another shell (`sh -c`,
//!   `eval`, `trap`, `alias`, `env -S`, `su -c`, `find -exec`, ...), each with
//!   quotes and escapes removed, and again with the wrapper it runs under looked
//!   through (`sudo -u root touch x` yields `sudo -u root touch x` and `touch x`).
//!   What cannot be known before the line runs (a program name from `$X`, a text
//!   nested too deep, a line the grammar cannot read) is reported as unresolved;
//! - for allow rules ([`plain`]), the line's simple commands when both grammars read
//!   it as nothing more than literal simple commands joined by `;`, `&&`, `||`, `|`,
//!   `&` and newlines.
//!
//! [`guards`] keeps text the grammar cannot safely read away from it, [`programs`]
//! knows the shells and wrappers, [`words`] removes quotes.

use std::collections::HashSet;
use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use brush_parser::ast;
use brush_parser::word::{self, WordPiece, WordPieceWithSource};
use brush_parser::{Parser, ParserOptions};

use guards::{has_huge_number, has_odd_here_tag, nesting};
use plain::plain_commands;
use programs::{
    OptionArg, SHELLS, ShellInvocation, Wrapper, looks_up_only, shell_invocation, wrapper,
};
use words::{ansi_c, has_substitution, may_expand, unbackquote, unescape};

mod guards;
mod plain;
mod programs;
mod words;

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
            if word == "-" {
                // `env -` is `env -i`.
                i += 1;
                continue;
            }
            if word.starts_with('-') {
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
            if shape.assignments && word.contains('=') {
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

fn is_stdin(fd: Option<&ast::IoFd>) -> bool {
    fd.is_none_or(|fd| *fd == 0)
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
