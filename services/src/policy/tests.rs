use serde_json::{Value, json};

use super::shell::{self, ShellWord};
use super::*;

fn rule(value: Value) -> PolicyRule {
    serde_json::from_value(value).unwrap()
}

fn exec(policy: &Policy, command: &str) -> Decision {
    let args = json!({"command": command});
    policy.decide(&CallContext {
        tool: "exec",
        risk: RiskTier::SystemEffect,
        args: &args,
        origin: CallOrigin::Interactive,
    })
}

fn is_run(d: &Decision) -> bool {
    matches!(d, Decision::Run { .. })
}

#[test]
fn tiers_decide_when_no_rule_applies() {
    let policy = Policy::default();
    let args = json!({});
    let decide = |tool, risk| {
        policy.decide(&CallContext {
            tool,
            risk,
            args: &args,
            origin: CallOrigin::Api,
        })
    };
    assert!(is_run(&decide("read_file", RiskTier::ReadOnly)));
    assert!(is_run(&decide("write_file", RiskTier::WorkspaceWrite)));
    assert!(matches!(
        decide("exec", RiskTier::SystemEffect),
        Decision::Ask { .. }
    ));
    assert!(matches!(
        decide("manage_mcp", RiskTier::Infrastructure),
        Decision::Ask { .. }
    ));
}

#[test]
fn deny_wins_and_altered_commands_still_hit_the_rules() {
    let mut policy = Policy::default();
    policy
        .add(rule(
            json!({"action": "allow", "tool": "exec", "params": {"command": "git status*"}}),
        ))
        .unwrap();
    policy
        .add(rule(
            json!({"action": "allow", "tool": "exec", "params": {"command": "rm *"}}),
        ))
        .unwrap();
    policy
        .add(rule(
            json!({"action": "deny", "tool": "exec", "params": {"command": "rm *"}}),
        ))
        .unwrap();
    assert!(is_run(&exec(&policy, "git status")));
    assert!(is_run(&exec(&policy, "  git   status --short ")));
    assert!(
        matches!(exec(&policy, "rm -rf build"), Decision::Deny { .. }),
        "deny wins over allow"
    );
    assert!(matches!(
        exec(&policy, "ls; rm -rf build"),
        Decision::Deny { .. }
    ));
    assert!(matches!(
        exec(&policy, "echo $(rm -rf x)"),
        Decision::Deny { .. }
    ));
    assert!(matches!(
        exec(&policy, "echo `rm x`"),
        Decision::Deny { .. }
    ));
    assert!(
        matches!(
            exec(&policy, "git status && curl evil.sh"),
            Decision::Ask { .. }
        ),
        "every segment must be allowed"
    );
    assert!(matches!(exec(&policy, "git  log"), Decision::Ask { .. }));
}

#[test]
fn flags_switch_gates_off_or_skip_cron() {
    let mut policy = Policy::default();
    policy
        .add(rule(json!({"action": "deny", "tool": "web_*"})))
        .unwrap();
    let args = json!({"url": "https://example.com"});
    let call = |origin| CallContext {
        tool: "exec",
        risk: RiskTier::SystemEffect,
        args: &args,
        origin,
    };
    policy.settings.skip_cron = true;
    assert!(is_run(&policy.decide(&call(CallOrigin::Cron))));
    // A job that requires approval is gated whatever skipCron says.
    assert!(matches!(
        policy.decide(&call(CallOrigin::CronReviewed)),
        Decision::Ask { .. }
    ));
    assert!(matches!(
        policy.decide(&call(CallOrigin::Interactive)),
        Decision::Ask { .. }
    ));
    policy.settings.enabled = false;
    assert!(is_run(&policy.decide(&call(CallOrigin::Interactive))));
    let fetch = CallContext {
        tool: "web_fetch",
        risk: RiskTier::SystemEffect,
        args: &args,
        origin: CallOrigin::Api,
    };
    assert!(
        matches!(policy.decide(&fetch), Decision::Deny { .. }),
        "a deny rule holds even with gates off"
    );
}

#[test]
fn rules_round_trip_the_placet_shapes_and_dedupe() {
    let text = r#"{"action":"allow","tool":"exec","params":{"command":"git status*"}}"#;
    let r = rule(serde_json::from_str(text).unwrap());
    assert_eq!(serde_json::to_string(&r).unwrap(), text);
    let mut policy = Policy::default();
    assert!(policy.add(r.clone()).unwrap());
    assert!(!policy.add(r.clone()).unwrap());
    assert_eq!(
        serde_json::to_value(&policy).unwrap(),
        json!({"rules": [serde_json::from_str::<Value>(text).unwrap()], "enabled": true, "skipCron": false, "reviewTimeoutS": null})
    );
    assert!(policy.remove(&r));
    assert!(policy.rules.is_empty());
    assert_eq!(
        rule(json!({"action": "deny", "tool": " "})).validate(),
        Err(PolicyError::EmptyTool)
    );
    assert!(
        rule(json!({"action": "deny", "tool": "exec", "params": {"command": "a[b"}}))
            .validate()
            .is_err()
    );
    assert!(serde_json::from_value::<PolicyRule>(json!({"action": "maybe", "tool": "x"})).is_err());
}

fn policy(rules: Value, enabled: bool) -> Policy {
    let mut policy = Policy::default();
    for r in rules.as_array().unwrap() {
        policy.add(rule(r.clone())).unwrap();
    }
    policy.settings.enabled = enabled;
    policy
}

/// The resolved commands of a line, expanded words shown as `…`.
fn commands(line: &str) -> Vec<String> {
    shell::read(line)
        .commands
        .iter()
        .map(|words| {
            words
                .iter()
                .map(|w| match w {
                    ShellWord::Literal(text) => text.as_str(),
                    ShellWord::Expanded => "…",
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn commands_are_read_with_the_shell_grammar() {
    assert_eq!(
        commands("a ; b && c || d | e\nf & g"),
        ["a", "b", "c", "d", "e", "f", "g"]
    );
    assert_eq!(
        commands("echo $(whoami) `id`"),
        ["whoami", "id", "echo … …"]
    );
    assert_eq!(
        commands(r#"sudo -u root env -i A=b t''ouch "x y" \z"#),
        [
            "sudo -u root env -i A=b touch x y z",
            "env -i A=b touch x y z",
            "touch x y z"
        ]
    );
    assert_eq!(
        commands("timeout -s KILL 5 nice -n 5 ls"),
        ["timeout -s KILL 5 nice -n 5 ls", "nice -n 5 ls", "ls"]
    );
    assert_eq!(commands("echo 'a;b' \"c|d\""), ["echo a;b c|d"]);
    assert_eq!(
        commands("find . -name '*.o' -exec rm {} \\; -print"),
        ["find . -name *.o -exec rm {} ; -print", "rm {}"]
    );
    assert_eq!(
        commands("ls | xargs -n1 rm"),
        ["ls", "xargs -n1 rm", "rm …"]
    );
    let reading = shell::read("git status");
    assert_eq!(reading.plain, Ok(vec![vec!["git".into(), "status".into()]]));
    assert!(reading.unresolved.is_none());
}

#[test]
fn allow_rules_cover_only_literal_simple_commands() {
    let policy = policy(
        json!([{"action": "allow", "tool": "exec", "params": {"command": "git status*"}},
               {"action": "allow", "tool": "exec", "params": {"command": "ls *"}}]),
        true,
    );
    for covered in [
        "git status",
        "git status --short",
        "git status; ls -la && git status 'a b' || ls",
        "git status | ls\ngit status & ls",
        r#"git "status" \-s"#,
    ] {
        assert!(is_run(&exec(&policy, covered)), "{covered:?} is covered");
    }
    for bypass in [
        "git status $(git status $(touch p))",
        "git status `touch p`",
        "git status \"$(touch p)\"",
        "git status <(touch p)",
        "git status >(touch p)",
        "git status $((x=1))",
        "git status $X",
        "git status ${X:-a}",
        "git status ~",
        "git status *",
        "git status {a,b}",
        "git status > out",
        "git status 2> err",
        "git status >> /outside/x",
        "git status < f",
        "git status 2>&1",
        "git status <<EOF\nx\nEOF",
        "git status <<< x",
        "git statusx",
        "git  statusx --short",
        "gitstatus",
        "/usr/bin/git status",
        "./git status",
        "X=1 git status",
        "(git status)",
        "{ git status; }",
        "f() { git status; }",
        "if git status; then ls; fi",
        "while git status; do ls; done",
        "for i in 1; do git status; done",
        "case x in x) git status;; esac",
        "[[ -f x ]] && git status",
        "eval git status",
        "exec git status",
        "command git status",
        "source x; git status",
        ". x; git status",
        "sh -c 'git status'",
        "bash -c \"git status\"",
        "git status; rm -rf x",
        "git status && curl evil.sh",
        "git status 'unterminated",
        "git status a#$(touch p)",
        "git status \\\n$(touch p)",
        "git status\u{a0}$(touch p)",
        "git status $'\\x41'",
        "git status &> out",
        "git status a=(1 2)",
        "",
    ] {
        assert!(
            matches!(exec(&policy, bypass), Decision::Ask { .. }),
            "{bypass:?} must go to a human, got {:?}",
            exec(&policy, bypass)
        );
    }
}

#[test]
fn deny_rules_see_through_quotes_wrappers_and_nested_shells() {
    let policy = policy(
        json!([{"action": "deny", "tool": "exec", "params": {"command": "touch *"}}]),
        false,
    );
    for evasion in [
        "touch x",
        "\\touch x",
        "t''ouch x",
        "t\"\"ouch x",
        "$'\\x74ouch' x",
        "/usr/bin/touch x",
        "command touch x",
        "builtin command touch x",
        "env touch x",
        "env -i A=b touch x",
        "env -u HOME -- touch x",
        "env -S 'touch x'",
        "env !=env touch x",
        "env a-b=1 touch x",
        "env - touch x",
        "X=1 touch x",
        "(touch x)",
        "{ touch x; }",
        "sh -c 'touch x'",
        "bash -c \"touch x\"",
        "dash -ec 'touch x'",
        "sh -c 'sh -c \"touch x\"'",
        "sh <<EOF\ntouch x\nEOF",
        "bash <<< 'touch x'",
        "nice -n 5 touch x",
        "nice -5 touch x",
        "timeout 5 touch x",
        "timeout -k 1 5s touch x",
        "xargs touch",
        "echo x | xargs -I{} touch {}",
        "sudo touch x",
        "sudo -u root -- touch x",
        "doas -u root touch x",
        "exec touch x",
        "nohup touch x",
        "setsid touch x",
        "stdbuf -oL touch x",
        "stdbuf -o L touch x",
        "time touch x",
        "/usr/bin/time -f %e touch x",
        "busybox touch x",
        "chroot / touch x",
        "ionice -c 3 touch x",
        "taskset -c 0 touch x",
        "echo $(touch x)",
        "echo `touch x`",
        "echo \"$(touch x)\"",
        "echo ok; touch x",
        "ls && touch x",
        "ls | touch x",
        "ls & touch x",
        "if true; then touch x; fi",
        "if false; then :; elif true; then touch x; fi",
        "while true; do touch x; break; done",
        "until false; do touch x; done",
        "f(){ touch x; }; f",
        "function f { touch x; }",
        "for i in 1; do touch x; done",
        "for i in $(touch x); do :; done",
        "case a in a) touch x;; esac",
        "cat <(touch x)",
        "echo > >(touch x)",
        "cat <<EOF\n$(touch x)\nEOF",
        "eval touch x",
        "eval 'touch x'",
        "trap 'touch x' EXIT",
        "alias t=touch",
        "find . -exec touch x ';'",
        "watch -n 1 touch x",
        "su -c 'touch x'",
        "flock /tmp/l touch x",
        "[[ $(touch x) ]]",
        "coproc touch x",
        "A=$(touch x) ls",
        "ls > $(touch x)",
        "! touch x",
        "a=(1 $(touch x)) ls",
        "declare -a a=(1 $(touch x))",
        "fish -c 'touch x'",
        "ssh -p 22 localhost touch x",
        "sg staff 'touch x'",
        "parallel 'touch {}' ::: x",
        "systemd-run --user touch x",
        "source /dev/stdin <<< 'touch x'",
        "sh /dev/stdin <<EOF\ntouch x\nEOF",
        "bash <(echo touch x)",
        ". <(echo touch x)",
        "hash -p /usr/bin/touch ls; ls x",
        "( ( touch x ) )",
        "((touch x))",
        "[[ a || touch x ]]",
        "[[ a ]] || touch x",
        "bash -c '[[ a ]] || touch x'",
        "sh -c '((touch x))'",
        "ls # comment\ntouch x",
        "ls; \\\n touch x",
    ] {
        assert!(
            matches!(exec(&policy, evasion), Decision::Deny { .. }),
            "{evasion:?} must be denied, got {:?}",
            exec(&policy, evasion)
        );
    }
    for harmless in [
        "echo touch",
        "ls touch",
        "git status",
        "echo 'touch x'",
        "cat <<'EOF'\n$(touch x)\nEOF",
        "command -v touch",
        "ls # $(touch x)",
        "echo 12345678901234567890123",
        "echo \"a << b\"",
        "bash -c '[[ touch ]] && ((touch))'",
        "ls \\\ntouch x",
    ] {
        assert!(
            is_run(&exec(&policy, harmless)),
            "{harmless:?} runs, got {:?}",
            exec(&policy, harmless)
        );
    }
}

#[test]
fn unresolvable_commands_match_deny_rules_and_say_why() {
    let policy = policy(
        json!([{"action": "deny", "tool": "exec", "params": {"command": "touch *"}},
               {"action": "allow", "tool": "exec", "params": {"command": "*"}}]),
        false,
    );
    let nested = (0..10).fold("touch x".to_owned(), |inner, _| {
        format!("sh -c {}", shell_quote(&inner))
    });
    let braces = format!("{}ls{}", "{ ".repeat(70), "; }".repeat(70));
    for unknown in [
        "$X y",
        "$(echo touch) x",
        "\"${CMD}\" x",
        "${CMD:-touch} x",
        "t*ch x",
        "{touch,x}",
        "~/bin/tool x",
        "echo \"unterminated",
        "echo $((",
        "sh -c \"$CMD\"",
        "echo touch x | sh",
        "eval \"$CMD\"",
        "env $OPTS ls",
        "echo ${X:-$(ls)}",
        nested.as_str(),
        braces.as_str(),
    ] {
        match exec(&policy, unknown) {
            Decision::Deny { reason, .. } => assert!(
                reason.contains("could not be resolved") || reason.contains("runs `"),
                "{unknown:?}: {reason}"
            ),
            other => panic!("{unknown:?} must be denied, got {other:?}"),
        }
    }
    match exec(&policy, "$X y") {
        Decision::Deny { reason, .. } => assert!(
            reason.contains("could not be resolved")
                && reason.contains("program name is only known when the command runs"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    let shallow = (0..7).fold("ls".to_owned(), |inner, _| {
        format!("sh -c {}", shell_quote(&inner))
    });
    assert!(is_run(&exec(&policy, &shallow)), "{shallow}");
    assert!(is_run(&exec(&policy, "echo $HOME; ls *.rs")));
}

/// Single-quotes `text` for a shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[test]
fn command_patterns_match_whole_words() {
    let policy = policy(
        json!([{"action": "deny", "tool": "exec", "params": {"command": "rm -r*"}},
               {"action": "deny", "tool": "exec", "params": {"command": "git push * --force"}},
               {"action": "deny", "tool": "exec", "params": {"command": "curl*"}},
               {"action": "allow", "tool": "exec", "params": {"command": "cargo test*"}},
               {"action": "allow", "tool": "exec", "params": {"command": "cargo b?ild --release"}},
               {"action": "allow", "tool": "exec", "params": {"command": "echo * done"}}]),
        true,
    );
    let denied = |line: &str| matches!(exec(&policy, line), Decision::Deny { .. });
    assert!(denied("rm -r x") && denied("rm -rf /") && denied("rm -r"));
    assert!(!denied("rm x") && !denied("rmdir -r x"));
    assert!(denied("git push origin main --force") && denied("git push x --force"));
    assert!(denied("git push $REMOTE"), "an expansion may be any words");
    assert!(!denied("git push origin main"));
    assert!(denied("curl") && denied("curl https://x") && denied("curlx"));
    assert!(is_run(&exec(&policy, "cargo test")));
    assert!(is_run(&exec(&policy, "cargo test -p facio --lib")));
    assert!(!is_run(&exec(&policy, "cargo testx")));
    assert!(!is_run(&exec(&policy, "cargo tester -p x")));
    assert!(is_run(&exec(&policy, "cargo build --release")));
    assert!(!is_run(&exec(&policy, "cargo build --release --x")));
    assert!(is_run(&exec(&policy, "echo done")));
    assert!(is_run(&exec(&policy, "echo a b c done")));
    assert!(!is_run(&exec(&policy, "echo a b c")));
    assert!(
        rule(json!({"action": "deny", "tool": "exec", "params": {"command": "a {b c}"}}))
            .validate()
            .is_err(),
        "each word of a command pattern is a glob"
    );
}

#[test]
fn network_is_granted_only_when_every_command_is_allowed_it() {
    let policy = policy(
        json!([{"action": "allow", "tool": "exec", "params": {"command": "git fetch*"}, "network": true},
               {"action": "allow", "tool": "exec", "params": {"command": "curl *"}, "network": true},
               {"action": "allow", "tool": "exec", "params": {"command": "git status*"}},
               {"action": "allow", "tool": "read_file", "network": true}]),
        true,
    );
    let network = |line: &str| match exec(&policy, line) {
        Decision::Run { network, .. } => Some(network),
        _ => None,
    };
    assert_eq!(network("git fetch origin"), Some(true));
    assert_eq!(network("git fetch && curl https://x"), Some(true));
    assert_eq!(network("git fetch && git status"), Some(false));
    assert_eq!(network("git fetch $(id)"), None);
    let args = json!({"path": "x"});
    let read = policy.decide(&CallContext {
        tool: "read_file",
        risk: RiskTier::ReadOnly,
        args: &args,
        origin: CallOrigin::Api,
    });
    assert_eq!(
        read,
        Decision::Run {
            reason: "an allow rule covers this call".into(),
            network: false,
            by_rule: true,
        },
        "network means nothing outside exec"
    );
    let text =
        r#"{"action":"allow","tool":"exec","params":{"command":"git fetch*"},"network":true}"#;
    assert_eq!(
        serde_json::to_string(&rule(serde_json::from_str(text).unwrap())).unwrap(),
        text
    );
    let deny = rule(json!({"action": "deny", "tool": "exec", "network": true}));
    assert_eq!(deny.validate(), Err(PolicyError::NetworkOnDeny));
    assert!(
        PolicyError::NetworkOnDeny
            .to_string()
            .contains("only an allow rule can grant network")
    );
    assert!(
        serde_json::from_value::<PolicyRule>(json!({"action": "allow", "tool": "x", "net": true}))
            .is_err()
    );
}

#[test]
fn odd_inputs_never_panic_and_stay_fast() {
    let policy = policy(
        json!([{"action": "deny", "tool": "exec", "params": {"command": "touch *"}},
               {"action": "allow", "tool": "exec", "params": {"command": "echo *"}}]),
        true,
    );
    let mut odd: Vec<String> = [
        "'",
        "\"",
        "`",
        "$(",
        "$((",
        "$((1+",
        "${",
        "${x",
        "<<EOF",
        "cat <<EOF\nx",
        "cat <<-EOF\n\tx\n\tEOF",
        "((",
        "))",
        "{",
        "}",
        "[[",
        "]]",
        "case",
        "if",
        "fi",
        "done",
        "do",
        "for",
        "&&",
        "||",
        ";;",
        "|",
        "&",
        ";",
        "\\",
        "\0",
        "a\0b",
        "echo \0",
        "$'\\x'",
        "$'\\u{110000}'",
        "$'\\U0011FFFF'",
        "~+99999999999999999999",
        "echo 99999999999999999999>x",
        "echo {1..99999999999999999999}",
        "echo $((99999999999999999999))",
        "<(",
        ">(",
        "<()",
        "$[1+1]",
        "!",
        "!!",
        "coproc",
        "function",
        "function f",
        "select x in a; do :; done",
        "time",
        "time -p",
        "exec",
        "eval",
        "sh -c",
        "env -S",
        "xargs",
        "find -exec",
        "sudo --",
        "a=(1 2 3) ls",
        "declare -a x=(1)",
        "echo @(a|b)",
        "echo !(x)",
        "echo ${x//a/b}",
        "echo ${!x}",
        "echo ${#x[@]}",
        "\u{feff}touch x",
        "touch\u{a0}x",
        "cat <<'' ",
        "cat <<\"\" ",
        "<<\r ",
        "<<\u{c} ",
        "cat <<''\nx\n\n",
        "cat <<$'' ",
        "echo $((1<<2))",
        "cat <<'\"' ",
        "cat <<$( ",
        "cat <<\r x ",
        "cat <\\\n<'' ",
        "a\\<<<'' ",
        "cat <<\\\n\r ",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let deep = format!("{}touch x{}", "{ ".repeat(60), "; }".repeat(60));
    assert!(
        matches!(exec(&policy, &deep), Decision::Deny { reason, .. } if reason.contains("runs `touch x`")),
        "60 nested groups are still read"
    );
    odd.push("x".repeat(100_000));
    odd.push("echo a; ".repeat(8_000));
    odd.push("{ ".repeat(5_000));
    odd.push(format!("{}ls{}", "$(".repeat(5_000), ")".repeat(5_000)));
    odd.push(format!("{}ls{}", "\"$(".repeat(2_000), ")\"".repeat(2_000)));
    odd.push(format!("[[ {}a{} ]]", "(".repeat(3_000), ")".repeat(3_000)));
    odd.push("if ".repeat(3_000));
    odd.push("`".repeat(3_001));
    odd.push("eval ".repeat(3_000) + "touch x");
    odd.push("sudo ".repeat(3_000) + "touch x");
    odd.push("watch ".repeat(3_000) + "touch x");
    odd.push("find -exec ".repeat(3_000) + "touch x");
    // Random text from shell metacharacters.
    let alphabet: Vec<char> = "ab $(){}[]`'\"\\;&|<>~+-=*?!#\n09@%^:,.\0"
        .chars()
        .collect();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..3_000 {
        let len = (seed % 40) as usize;
        let text: String = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                alphabet[(seed % alphabet.len() as u64) as usize]
            })
            .collect();
        odd.push(text);
    }
    for text in &odd {
        let started = std::time::Instant::now();
        let _ = exec(&policy, text);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{} chars took {:?}",
            text.len(),
            started.elapsed()
        );
    }
    for long in ["x".repeat(100_000), "touch x; ".repeat(10_000)] {
        assert!(
            matches!(exec(&policy, &long), Decision::Deny { .. }),
            "a line too long to read matches the deny rule"
        );
    }
}

#[test]
fn allow_globs_stay_inside_their_path_segment_and_urls_are_matched_by_their_parts() {
    let mut policy = Policy::default();
    for value in [
        json!({"action": "allow", "tool": "exec", "params": {"command": "bash tools/*.sh"}}),
        json!({"action": "allow", "tool": "write_file", "params": {"path": "web/*"}}),
        json!({"action": "allow", "tool": "web_fetch", "params": {"url": "https://*.example.com/*"}}),
    ] {
        policy.add(rule(value)).unwrap();
    }
    assert!(is_run(&exec(&policy, "bash tools/a.sh")));
    for sneaky in [
        "bash tools/sub/x.sh",
        "bash tools/../evil.sh",
        "bash tools/./../x.sh",
    ] {
        assert!(
            matches!(exec(&policy, sneaky), Decision::Ask { .. }),
            "{sneaky} must ask"
        );
    }
    let call = |tool: &'static str, args: &Value| {
        policy.decide(&CallContext {
            tool,
            risk: RiskTier::SystemEffect,
            args,
            origin: CallOrigin::Interactive,
        })
    };
    assert!(is_run(&call(
        "write_file",
        &json!({"path": "web/index.html"})
    )));
    for path in ["web/../.git/hooks/pre-commit", "web/a/b.html", "web/.."] {
        let args = json!({"path": path});
        assert!(
            matches!(call("write_file", &args), Decision::Ask { .. }),
            "{path}"
        );
    }
    assert!(is_run(&call(
        "web_fetch",
        &json!({"url": "https://api.example.com/v1/x"})
    )));
    for url in [
        "https://evil.net/.example.com/x",
        "https://evil.net?.example.com/x",
        "https://evil.net#.example.com/x",
        "https://api.example.com@evil.net/x",
        "https://api.example.com:8443/x",
        "http://api.example.com/x",
        "not a url",
    ] {
        let args = json!({"url": url});
        assert!(
            matches!(call("web_fetch", &args), Decision::Ask { .. }),
            "{url}"
        );
    }
}
