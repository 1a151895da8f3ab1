//! The HITL tools as the model sees them: strict schemas, a human-reaching risk tier.

use serde_json::{Value, json};

use crate::review::*;
use crate::tools::RiskTier;

/// Every object schema, however deep, lists its properties, requires only known ones
/// and forbids others.
fn assert_strict(schema: &Value, path: &str) {
    if schema["type"] == "object" {
        let properties = schema["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{path}: no properties"));
        assert_eq!(schema["additionalProperties"], json!(false), "{path}");
        for required in schema["required"].as_array().expect("required list") {
            let name = required.as_str().unwrap();
            assert!(
                properties.contains_key(name),
                "{path}: {name} required but undefined"
            );
        }
        for (name, property) in properties {
            assert!(property["type"].is_string(), "{path}.{name}: no type");
            assert_strict(property, &format!("{path}.{name}"));
        }
    }
    if schema["type"] == "array" {
        assert_strict(&schema["items"], &format!("{path}[]"));
    }
}

#[test]
fn the_four_tools_have_strict_schemas_and_reach_a_human() {
    let specs = hitl_tool_specs();
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ask_approval",
            "ask_selection",
            "ask_form",
            "ask_text_input"
        ]
    );
    for spec in &specs {
        assert_eq!(spec.risk, RiskTier::SystemEffect);
        assert_eq!(spec.parameters["type"], "object");
        assert_strict(&spec.parameters, &spec.name);
        assert_eq!(
            spec.parameters["properties"]["timeoutS"]["maximum"],
            129_600
        );
        assert!(spec.description.contains("timed_out"), "{}", spec.name);
        assert_eq!(
            HitlTool::from_name(&spec.name).map(|t| t.spec()).as_ref(),
            Some(spec)
        );
    }
    let required = |i: usize| specs[i].parameters["required"].clone();
    assert_eq!(required(0), json!(["title", "description"]));
    assert_eq!(required(1), json!(["title", "mode", "items"]));
    assert_eq!(required(2), json!(["title", "fields"]));
    assert_eq!(required(3), json!(["title"]));
    let field_types =
        &specs[2].parameters["properties"]["fields"]["items"]["properties"]["type"]["enum"];
    assert_eq!(field_types.as_array().map(Vec::len), Some(12));
    assert!(specs[2].description.contains("${credentials."));
}
