//! Reads a tool call's JSON arguments while tracking the path of each value, so every
//! refusal can name the exact argument (`fields[2].options[0].value`).

use std::collections::HashSet;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::ReviewArgsError;

type Result<T> = std::result::Result<T, ReviewArgsError>;

/// A JSON object of arguments and where it sits in the call, so every error can name
/// its full path.
pub(super) struct Args<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Args<'a> {
    pub(super) fn new(path: String, value: &'a Value) -> Result<Self> {
        match value.as_object() {
            Some(map) => Ok(Self { path, map }),
            None if path.is_empty() => Err(ReviewArgsError::NotAnObject {
                field: "arguments".into(),
            }),
            None => Err(ReviewArgsError::NotAnObject { field: path }),
        }
    }

    pub(super) fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(super) fn only(&self, allowed: &[&str]) -> Result<()> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(unknown) => Err(ReviewArgsError::UnknownArgument {
                field: self.path(unknown),
            }),
            None => Ok(()),
        }
    }

    /// `null` counts as absent: models often send it for optional arguments.
    pub(super) fn opt<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => {
                T::deserialize(value)
                    .map(Some)
                    .map_err(|e| ReviewArgsError::WrongType {
                        field: self.path(key),
                        message: e.to_string(),
                    })
            }
        }
    }

    pub(super) fn req<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        self.opt(key)?.ok_or_else(|| ReviewArgsError::Missing {
            field: self.path(key),
        })
    }

    pub(super) fn non_empty(&self, key: &str) -> Result<String> {
        let value: String = self.req(key)?;
        if value.trim().is_empty() {
            return Err(ReviewArgsError::Empty {
                field: self.path(key),
            });
        }
        Ok(value)
    }

    /// An optional text where `""` means "not given".
    pub(super) fn optional_text(&self, key: &str) -> Result<Option<String>> {
        Ok(self.opt::<String>(key)?.filter(|s| !s.trim().is_empty()))
    }

    pub(super) fn opt_list(&self, key: &str) -> Result<Option<Vec<Args<'a>>>> {
        let Some(value) = self.map.get(key).filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let Some(items) = value.as_array() else {
            return Err(ReviewArgsError::WrongType {
                field: self.path(key),
                message: "must be an array".into(),
            });
        };
        if items.is_empty() {
            return Err(ReviewArgsError::Empty {
                field: self.path(key),
            });
        }
        let list = items
            .iter()
            .enumerate()
            .map(|(i, item)| Args::new(format!("{}[{i}]", self.path(key)), item))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(list))
    }

    pub(super) fn list(&self, key: &str) -> Result<Vec<Args<'a>>> {
        self.opt_list(key)?.ok_or_else(|| ReviewArgsError::Missing {
            field: self.path(key),
        })
    }
}

/// Tracks the ids (or names, or values) of a list so a repeat is reported where it
/// occurs.
#[derive(Default)]
pub(super) struct Unique {
    seen: HashSet<String>,
}

impl Unique {
    pub(super) fn check(&mut self, entry: &Args, key: &str) -> Result<String> {
        let value = entry.non_empty(key)?;
        if !self.seen.insert(value.clone()) {
            return Err(ReviewArgsError::Duplicate {
                field: entry.path(key),
                value,
            });
        }
        Ok(value)
    }
}
