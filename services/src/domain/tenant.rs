//! A tenant's own settings: which models it may use, how many tokens it may spend and
//! how fast it may call.

use serde::{Deserialize, Deserializer, Serialize};

/// Stored per tenant; absent fields fall back to the deployment's config
/// (`limits.tokensPerDay`, `limits.tokensPerMonth`; every model allowed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantSettings {
    /// The models this tenant's runs may call (as configured in `agents.defaults.model`
    /// or named by a client); `"*"` matches every model. `None`: every model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// Most tokens per UTC day; 0 means no budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<u64>,
    /// Most tokens per UTC calendar month; 0 means no budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_month: Option<u64>,
    /// Most tokens one run may use; 0 means no cap. Overrides `limits.maxTokensPerRun`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_run: Option<u64>,
    /// Requests per minute for the whole tenant (all its tokens); 0 means no limit.
    /// Overrides
    /// `limits.tenants.<name>` and `limits.tenantRequestsPerMinute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Requests per minute for each of the tenant's tokens; 0 means no limit. Overrides
    /// `limits.tokenRequestsPerMinute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute_per_token: Option<u32>,
}

impl TenantSettings {
    /// What changed from `self` to `after`, as the audit log records it: the names
    /// of the settings that changed and, for each, its value before and after (`null`
    /// for unset).
    pub fn changes(&self, after: &TenantSettings) -> serde_json::Value {
        let (before, after) = (object(self), object(after));
        let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
        keys.sort();
        keys.dedup();
        let null = serde_json::Value::Null;
        let (mut was, mut is, mut changed) =
            (serde_json::Map::new(), serde_json::Map::new(), Vec::new());
        for key in keys {
            let (old, new) = (
                before.get(key).unwrap_or(&null),
                after.get(key).unwrap_or(&null),
            );
            if old != new {
                changed.push(serde_json::Value::String(key.clone()));
                was.insert(key.clone(), old.clone());
                is.insert(key.clone(), new.clone());
            }
        }
        serde_json::json!({"changed": changed, "before": was, "after": is})
    }

    /// Whether runs of this tenant may call `model`.
    pub fn allows_model(&self, model: &str) -> bool {
        self.models
            .as_ref()
            .is_none_or(|models| models.iter().any(|m| m == model || m == "*"))
    }

    /// Applies a partial update (see [`TenantSettingsPatch`]).
    pub fn merge(&mut self, patch: TenantSettingsPatch) {
        fn apply<T>(field: &mut Option<T>, change: Option<Option<T>>) {
            if let Some(value) = change {
                *field = value;
            }
        }
        apply(&mut self.models, patch.models);
        apply(&mut self.tokens_per_day, patch.tokens_per_day);
        apply(&mut self.tokens_per_month, patch.tokens_per_month);
        apply(&mut self.tokens_per_run, patch.tokens_per_run);
        apply(&mut self.requests_per_minute, patch.requests_per_minute);
        apply(
            &mut self.requests_per_minute_per_token,
            patch.requests_per_minute_per_token,
        );
    }
}

/// A partial change of [`TenantSettings`]: an absent field stays as it is, `null`
/// removes the tenant's own value (the config's applies again), a value replaces it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantSettingsPatch {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub models: Option<Option<Vec<String>>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub tokens_per_day: Option<Option<u64>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub tokens_per_month: Option<Option<u64>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub tokens_per_run: Option<Option<u64>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub requests_per_minute: Option<Option<u32>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub requests_per_minute_per_token: Option<Option<u32>>,
}

impl TenantSettingsPatch {
    /// The patch that puts back, in `before`, what this one changes (and nothing else).
    pub fn reverse(&self, before: &TenantSettings) -> TenantSettingsPatch {
        fn back<T: Clone, U>(change: &Option<U>, old: &Option<T>) -> Option<Option<T>> {
            change.as_ref().map(|_| old.clone())
        }
        TenantSettingsPatch {
            models: back(&self.models, &before.models),
            tokens_per_day: back(&self.tokens_per_day, &before.tokens_per_day),
            tokens_per_month: back(&self.tokens_per_month, &before.tokens_per_month),
            tokens_per_run: back(&self.tokens_per_run, &before.tokens_per_run),
            requests_per_minute: back(&self.requests_per_minute, &before.requests_per_minute),
            requests_per_minute_per_token: back(
                &self.requests_per_minute_per_token,
                &before.requests_per_minute_per_token,
            ),
        }
    }
}

/// A field that is present, even as `null` (absent fields take the default, `None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Settings as a JSON object (empty if they cannot be shown, which a struct of plain
/// fields never is).
fn object(settings: &TenantSettings) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(settings) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_each_changed_setting_with_its_value_before_and_after() {
        let before = TenantSettings {
            tokens_per_day: Some(10),
            models: Some(vec!["a".to_owned()]),
            ..TenantSettings::default()
        };
        let after = TenantSettings {
            tokens_per_day: Some(10),
            models: Some(vec!["a".to_owned(), "b".to_owned()]),
            tokens_per_run: Some(5),
            ..TenantSettings::default()
        };
        assert_eq!(
            before.changes(&after),
            serde_json::json!({
                "changed": ["models", "tokensPerRun"],
                "before": {"models": ["a"], "tokensPerRun": null},
                "after": {"models": ["a", "b"], "tokensPerRun": 5},
            })
        );
        assert_eq!(before.changes(&before)["changed"], serde_json::json!([]));
    }

    #[test]
    fn a_patch_keeps_absent_fields_clears_nulls_and_sets_values() {
        let mut settings = TenantSettings {
            tokens_per_day: Some(10),
            requests_per_minute: Some(5),
            ..TenantSettings::default()
        };
        let patch: TenantSettingsPatch =
            serde_json::from_str(r#"{"requestsPerMinute": null, "tokensPerRun": 7}"#).unwrap();
        settings.merge(patch);
        assert_eq!(settings.tokens_per_day, Some(10));
        assert_eq!(settings.requests_per_minute, None);
        assert_eq!(settings.tokens_per_run, Some(7));
        assert!(serde_json::from_str::<TenantSettingsPatch>(r#"{"bogus": 1}"#).is_err());
        let before = settings.clone();
        let patch: TenantSettingsPatch =
            serde_json::from_str(r#"{"tokensPerDay": 99, "models": ["m"]}"#).unwrap();
        let reverse = patch.reverse(&before);
        settings.merge(patch);
        settings.tokens_per_run = Some(8);
        settings.merge(reverse);
        assert_eq!(settings.tokens_per_day, Some(10));
        assert_eq!(settings.models, None);
        assert_eq!(
            settings.tokens_per_run,
            Some(8),
            "a change made meanwhile stays"
        );
    }
}
