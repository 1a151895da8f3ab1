//! Typed identifiers. Each id validates on construction so an invalid one cannot exist.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("{kind} must not be empty")]
    Empty { kind: &'static str },
    #[error("{kind} is longer than {max} characters")]
    TooLong { kind: &'static str, max: usize },
    #[error("{kind} contains a control character")]
    ControlCharacter { kind: &'static str },
    #[error("{kind} contains whitespace")]
    Whitespace { kind: &'static str },
    #[error("{kind} {value:?} is not valid: {rule}")]
    Form {
        kind: &'static str,
        value: String,
        rule: &'static str,
    },
}

fn validate(kind: &'static str, value: &str, max: usize) -> Result<(), IdError> {
    if value.trim().is_empty() {
        return Err(IdError::Empty { kind });
    }
    if value.chars().count() > max {
        return Err(IdError::TooLong { kind, max });
    }
    if value.chars().any(char::is_control) {
        return Err(IdError::ControlCharacter { kind });
    }
    // Ids travel in headers, URLs and log fields; whitespace in one is always a mistake.
    if value.chars().any(char::is_whitespace) {
        return Err(IdError::Whitespace { kind });
    }
    Ok(())
}

/// What a name may look like, beyond [`validate`]; every id but the tenant takes any.
fn any_form(_: &str) -> Result<(), &'static str> {
    Ok(())
}

/// A tenant's name is part of paths (`<data>/tenants/<name>`), URLs and log fields:
/// lower-case letters, digits and `-`, 1 to 63 characters, starting with a letter or
/// digit. `alpha/`, `./alpha`, `..` and the like cannot be tenants.
fn tenant_form(value: &str) -> Result<(), &'static str> {
    const RULE: &str =
        "use 1 to 63 lower-case letters, digits and '-', starting with a letter or digit";
    let ok = (1..=63).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-');
    if ok { Ok(()) } else { Err(RULE) }
}

/// What [`validate`] and [`any_form`] admit, as a regular expression for documents
/// (JSON Schema `pattern`): no whitespace and no control character.
pub const ANY_FORM_PATTERN: &str = "^[^\\s\\x00-\\x1f\\x7f-\\x9f]+$";

/// What [`tenant_form`] admits, as a regular expression.
pub const TENANT_FORM_PATTERN: &str = "^[a-z0-9][a-z0-9-]{0,62}$";

/// A scheduled job's id: `cron_` and 32 lower-case hex digits.
fn cron_form(value: &str) -> Result<(), &'static str> {
    const RULE: &str = "a job id is cron_ and 32 lower-case hex digits";
    let ok = value.strip_prefix("cron_").is_some_and(|hex| {
        hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok { Ok(()) } else { Err(RULE) }
}

/// What [`cron_form`] admits, as a regular expression.
pub const CRON_FORM_PATTERN: &str = "^cron_[0-9a-f]{32}$";

/// The JSON Schema of an id: a string of 1 to `max` characters matching `pattern`.
fn id_schema(
    pattern: &str,
    max: usize,
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some(description))
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .into()
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr) => {
        string_id!($(#[$doc])* $name, $kind, $max, any_form, ANY_FORM_PATTERN);
    };
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr, $form:expr, $pattern:expr) => {
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                id_schema($pattern, $max, concat!("A ", $kind))
            }
        }

        impl utoipa::ToSchema for $name {}

        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `value`.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                validate($kind, &value, $max)?;
                $form(&value).map_err(|rule| IdError::Form {
                    kind: $kind,
                    value: value.chars().take(80).collect(),
                    rule,
                })?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }
    };
}

string_id!(
    /// A tenant: every stored row belongs to exactly one.
    TenantId, "tenant id", 63, tenant_form, TENANT_FORM_PATTERN
);
string_id!(
    /// A conversation's key, e.g. `api:default`, `cli:direct`, `sdk:summary`.
    SessionKey, "session key", 256
);
string_id!(
    /// One turn of a session (created when input is accepted).
    RunId, "run id", 64
);
string_id!(
    /// A node of the cluster (one process); a single node names itself too.
    NodeId, "node id", 128
);
string_id!(
    /// A tool call id as the model named it.
    ToolCallId, "tool call id", 256
);

string_id!(
    /// A tenant's scheduled job: `cron_` and 32 hex digits.
    CronJobId, "cron job id", 37, cron_form, CRON_FORM_PATTERN
);

impl CronJobId {
    /// A fresh, time-ordered job id.
    pub fn generate() -> Self {
        Self(format!("cron_{}", uuid::Uuid::now_v7().simple()))
    }
}

impl TenantId {
    /// The tenant a single-team deployment runs as.
    pub fn default_tenant() -> Self {
        Self("default".to_owned())
    }
}

impl RunId {
    /// A fresh, time-ordered run id.
    pub fn generate() -> Self {
        Self(format!("run_{}", uuid::Uuid::now_v7().simple()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_cannot_be_paths() {
        for bad in [
            "alpha/",
            "./alpha",
            "x/../alpha",
            "..",
            "../../..",
            ".",
            "Alpha",
            "al_pha",
            "-a",
            "a b",
            "",
        ] {
            assert!(TenantId::new(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(TenantId::new("a".repeat(64)).is_err());
        for good in ["alpha", "acme-2", "default", "7", &"a".repeat(63)] {
            assert!(TenantId::new(good).is_ok(), "{good:?}");
        }
        let text = TenantId::new("alpha/").unwrap_err().to_string();
        assert!(text.contains("lower-case letters"), "{text}");
        assert!(serde_json::from_str::<TenantId>("\"../x\"").is_err());
    }

    #[test]
    fn rejects_empty_and_control_characters() {
        assert_eq!(
            SessionKey::new("  "),
            Err(IdError::Empty {
                kind: "session key"
            })
        );
        assert!(SessionKey::new("a\nb").is_err());
        assert_eq!(
            SessionKey::new("bad key"),
            Err(IdError::Whitespace {
                kind: "session key"
            })
        );
        assert!(serde_json::from_str::<SessionKey>("\"\"").is_err());
        assert_eq!(
            SessionKey::new("api:default").map(|k| k.to_string()),
            Ok("api:default".into())
        );
    }
}
