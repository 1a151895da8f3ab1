//! Programs that run other programs: shells and the option grammar of wrappers
//! (`env`, `sudo`, `timeout`, ...), so the command a wrapper runs is found.

use super::{Grammar, ShellWord};

/// Whether `command` is given `-v` or `-V` before its operand.
pub(super) fn looks_up_only(rest: &[ShellWord]) -> bool {
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

/// Programs that read their arguments (or input) as shell commands.
pub(super) const SHELLS: [&str; 13] = [
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
pub(super) struct Wrapper {
    pub(super) name: &'static str,
    /// Options taking the next word as their value (`-u root`, `--user root`).
    pub(super) with_value: &'static [&'static str],
    /// Options whose value is itself a command line (`env -S`, `su -c`).
    pub(super) with_script: &'static [&'static str],
    /// Operands before the command (`timeout DURATION`, `chroot DIR`).
    pub(super) operands: usize,
    /// `NAME=value` words may come before the command (`env`, `sudo`): any word
    /// with a `=` is one, as `env` reads them.
    pub(super) assignments: bool,
    /// Runs no command of its own words (`su`, `flock -c`): only options matter.
    pub(super) no_command: bool,
    /// Joins the command's words into one text a shell reads (`ssh`, `sg`,
    /// `parallel`), up to a `:::` word.
    pub(super) joined: bool,
    /// The grammars of the shell reading its command text (empty: the current one).
    pub(super) reads_as: &'static [Grammar],
}

pub(super) enum OptionArg {
    None,
    Next { script: bool },
    Glued { script: bool, value: String },
}

impl Wrapper {
    pub(super) fn grammars(&self, current: Grammar) -> &'static [Grammar] {
        match (self.reads_as, current) {
            ([], Grammar::Sh) => &[Grammar::Sh],
            ([], Grammar::Bash) => &[Grammar::Bash],
            (grammars, _) => grammars,
        }
    }

    pub(super) fn option(&self, word: &str) -> OptionArg {
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
pub(super) const SH: &[Grammar] = &[Grammar::Sh];
/// Programs that hand their command text to a shell that may be either.
pub(super) const SH_AND_BASH: &[Grammar] = &[Grammar::Sh, Grammar::Bash];

pub(super) fn wrapper(program: &str) -> Option<Wrapper> {
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
