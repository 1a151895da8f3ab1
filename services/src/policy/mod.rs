//! The tool-call policy: before any tool call runs, the runtime (not the model) decides
//! run, deny or ask a human, from the tool's risk tier and the operator's rules. Deny
//! wins over allow; a call no rule covers asks a human once (one review per call).
//! Rules and flags are the Placet `/api/v1/policy` shapes.
//!
//! Arguments are matched in a normalized form (trimmed, whitespace runs collapsed), so
//! `git  status` is `git status`; a rule's params are globs on the argument text.
//!
//! ## `exec` commands
//! The `command` of an `exec` call is read with a shell grammar, not split as text:
//! with the POSIX `sh` grammar `exec` runs it with, and with the `bash` grammar, so a
//! construct the two read differently (`((touch x))`, `[[ a || touch x ]]`) is seen
//! both ways; text handed to `bash -c` is read as bash, to `sh -c` as sh. A rule's
//! `command` glob is matched **word by word**: the pattern is split on whitespace; a
//! word that is only `*` stands for any number of words (none included); a final word
//! ending in `*` (`git status*`) stands for that word followed by any number of words,
//! so `git status*` covers `git status` and `git status --short` but not `git statusx`;
//! every other word is a glob on exactly one word (`*.rs`, `-[rf]`, `{main,dev}`). For
//! a deny rule that final `*` also globs within its word, so `rm -r*` catches `rm -rf
//! /` too: deny rules err toward matching.
//!
//! **What an allow rule trusts.** An allow rule with a `command` covers a line only
//! when both grammars read the line as the same simple commands, nothing but simple
//! commands joined by `;`, `&&`, `||`, `|`, `&` and newlines, and each of them is
//! covered by some allow rule. Every word must be literal text after quote removal (`'a
//! b'`, `"x"` and `\;` are fine); the words are compared as written, so `/usr/bin/git
//! status` or `./git status` is not `git status`. Not covered, whatever the rules say,
//! and so left to the tier decision (a human, when gates are on): any expansion or
//! substitution (`$X`, `$(...)`, backticks, `<(...)`, `$((...))`, `~`, unquoted `*`,
//! `?`, `[..]` or `{a,b}`), any redirection or here-document, an assignment (`X=1
//! cmd`), a subshell, brace group, function definition,
//! `if`/`while`/`until`/`for`/`case`/`[[ ]]`/`(( ))` compound, and any program that
//! runs text as commands: `eval`, `exec`, `source`, `.`, `builtin`, `command`, `trap`,
//! `alias`, and a shell (`sh`, `bash`, ...) given `-c`, `-s` or no script. An empty
//! line is not covered either. A rule with no `command` param covers every command line
//! its other params match.
//!
//! **Network.** `network: true` on an allow rule lets the commands it covers reach the
//! network: a call runs with network only when each of its simple commands is covered
//! by at least one allow rule granting it (a deny rule cannot carry it).
//!
//! **What a deny rule catches.** A deny rule with a `command` is matched against every
//! command the line can run, found recursively: each simple command of lists,
//! pipelines, compound commands, function bodies, substitutions, process substitutions
//! and here-documents; text another shell reads (`sh|bash|dash|zsh|... -c TEXT`, a
//! here-document or here-string fed to a shell or sourced from `/dev/stdin`, `eval
//! ARGS`, `trap`, `alias`, `env -S`, `su|runuser|script|flock|sg -c`, `watch`, `ssh
//! HOST ...`, `sg GROUP ...`, `parallel ... :::`, `find -exec ... ;`); and the command
//! a wrapper runs, with the wrapper's options and operands skipped (`env` and its
//! `NAME=value` words, `command` (not `command -v`), `builtin`, `exec`, `nice`,
//! `timeout`, `nohup`, `setsid`, `sudo`, `doas`, `stdbuf`, `time`, `busybox`, `chroot`,
//! `ionice`, `taskset`, `chrt`, `xargs`, `strace`, `ltrace`, `fakeroot`, `unshare`,
//! `numactl`, `flock`, `systemd-run`). Each layer counts: `sudo touch x` is matched as
//! `sudo touch x` and as `touch x`. Quotes and escapes are removed (`t''ouch`, `\touch`
//! and `$'\x74ouch'` are `touch`), and the program is matched both as written and by
//! its file name (`/usr/bin/touch` is `touch`). A word only known at run time (`$X`,
//! `*.txt`, input `xargs` reads) may stand for any words, so it matches any part of a
//! pattern: deny rules err toward matching. The whole line is also matched as one glob,
//! as before. A line the grammar cannot read, a program name only known at run time
//! (`$X y`, `$(echo touch) x`, `"${CMD}"`), a shell reading commands from a pipe or
//! from a script only known at run time (`bash <(...)`), `hash -p`, text nested more
//! than 8 levels deep (`sh -c` in `sh -c` ...), more than 64 open brackets or
//! compounds, a line over 64 KiB (or over 1 MiB of nested text to read), a
//! here-document tag that is not a plain word, or a here-string (`<<<`, not sh syntax)
//! read as sh is **unresolved** and matches every deny rule on `exec` that has a
//! `command`, with a reason saying so.
//!
//! A deny rule names programs; it is a tripwire, not a sandbox. It cannot see into a
//! script file (`sh build.sh`, `source x`), a copy or link of a program under another
//! name, a wrapper it does not know, a program's own configuration (git aliases and
//! hooks, a Makefile), or an interpreter doing the same work in its own language
//! (`python -c`, `perl -e`, `awk 'BEGIN{system(...)}'`). Likewise an allow rule trusts
//! the program it names with its arguments: `git status` still reads the repository's
//! configuration. The sandbox of `exec` is what confines those.

mod matching;
mod rules;
mod shell;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::tools::RiskTier;

pub use rules::{PolicyError, PolicyRule, RuleAction};

/// `enabled` and `skipCron`, as Placet sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicySettings {
    /// Master switch: when false, calls no deny rule covers run without a review.
    pub enabled: bool,
    /// Calls from scheduled (cron) turns run without a review.
    pub skip_cron: bool,
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            skip_cron: false,
        }
    }
}

/// A tenant's rules and flags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct Policy {
    pub rules: Vec<PolicyRule>,
    #[serde(flatten)]
    pub settings: PolicySettings,
    /// Seconds a review opened by this policy waits for a human before it times out
    /// and the call is denied. Default 24 h, at most 36 h.
    pub review_timeout_s: Option<u64>,
    /// The rules' globs, compiled as calls need them and kept with this document (a
    /// clone shares them: a glob's compiled form depends only on its text).
    #[serde(skip)]
    globs: Globs,
}

/// [`matching::GlobCache`] as a field: no part of what a policy is, so it never makes
/// two policies unequal and is not shown.
#[derive(Clone, Default)]
struct Globs(std::sync::Arc<matching::GlobCache>);

impl PartialEq for Globs {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Globs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Globs")
    }
}

/// Where the turn making a call came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallOrigin {
    Interactive,
    Api,
    Sdk,
    Cron,
    /// A scheduled job's turn whose job requires approval: `skipCron` does not
    /// apply to it.
    #[serde(rename = "cron_reviewed")]
    CronReviewed,
    A2a,
    Channel,
}

/// The call being decided.
#[derive(Debug, Clone, Copy)]
pub struct CallContext<'a> {
    pub tool: &'a str,
    pub risk: RiskTier,
    pub args: &'a serde_json::Value,
    pub origin: CallOrigin,
}

/// What happens to a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Run {
        reason: String,
        /// Whether an `exec` call may reach the network: an allow rule with
        /// `network: true` covers it, or the operator switched the gates off (or let
        /// scheduled turns skip them). False when a tier alone lets the call run.
        network: bool,
        /// An allow rule let the call run, not a human and not gates switched off:
        /// such a command is kept away from credentials (see the exec tool).
        by_rule: bool,
    },
    Deny {
        reason: String,
        rule: Option<PolicyRule>,
    },
    Ask {
        reason: String,
    },
}

impl Policy {
    /// The tenant's policy: the stored document when an operator saved one, else the
    /// initial policy from config. A stored document that does not parse is an error,
    /// never a silent fall back to a possibly more permissive initial policy.
    pub fn effective(
        stored: Option<serde_json::Value>,
        initial: &Policy,
    ) -> Result<Policy, serde_json::Error> {
        match stored {
            Some(doc) => serde_json::from_value(doc),
            None => Ok(initial.clone()),
        }
    }

    /// Adds a rule unless an identical one exists. Returns whether it was added.
    pub fn add(&mut self, rule: PolicyRule) -> Result<bool, PolicyError> {
        rule.validate()?;
        if self.rules.contains(&rule) {
            return Ok(false);
        }
        self.rules.push(rule);
        Ok(true)
    }

    /// Removes the rule equal to `rule`. Returns whether one was removed.
    pub fn remove(&mut self, rule: &PolicyRule) -> bool {
        let before = self.rules.len();
        self.rules.retain(|r| r != rule);
        before != self.rules.len()
    }

    pub fn decide(&self, call: &CallContext<'_>) -> Decision {
        let globs = &self.globs.0;
        let line = matching::exec_line(globs, &self.rules, call);
        if let Some((rule, detail)) = self.rules.iter().find_map(|r| {
            matching::deny_matches(globs, r, call, line.as_ref()).map(|detail| (r, detail))
        }) {
            return Decision::Deny {
                reason: format!("a deny rule for {} covers this call{detail}", rule.tool),
                rule: Some(rule.clone()),
            };
        }
        if let Some(network) = matching::allowed(globs, &self.rules, call, line.as_ref()) {
            return Decision::Run {
                reason: "an allow rule covers this call".into(),
                network,
                by_rule: true,
            };
        }
        if !self.settings.enabled {
            return Decision::Run {
                reason: "approval gates are disabled".into(),
                network: true,
                by_rule: false,
            };
        }
        if self.settings.skip_cron && call.origin == CallOrigin::Cron {
            return Decision::Run {
                reason: "scheduled turns skip approval gates".into(),
                network: true,
                by_rule: false,
            };
        }
        match call.risk {
            RiskTier::ReadOnly => Decision::Run {
                reason: format!("{} only reads", call.tool),
                network: false,
                by_rule: false,
            },
            RiskTier::WorkspaceWrite => Decision::Run {
                reason: format!("{} writes inside the workspace", call.tool),
                network: false,
                by_rule: false,
            },
            RiskTier::SystemEffect => Decision::Ask {
                reason: format!(
                    "{} affects the world outside the workspace and no rule allows it",
                    call.tool
                ),
            },
            RiskTier::Infrastructure => Decision::Ask {
                reason: format!(
                    "{} changes the runtime's infrastructure and no rule allows it",
                    call.tool
                ),
            },
        }
    }
}
