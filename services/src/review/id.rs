//! `ReviewId`: the id of one human review, `rev_<uuid v7 simple>`, time-ordered so
//! listings sort by creation without a second column.

use std::fmt;

use serde::{Deserialize, Serialize};

const PREFIX: &str = "rev_";
/// A simple-format uuid is 32 lowercase hex digits.
const UUID_DIGITS: usize = 32;

/// Why a string is not a review id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("review id must be `rev_` followed by 32 lowercase hex digits, got {0:?}")]
pub struct ReviewIdError(pub String);

/// The id of one human review (one gate).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReviewId(String);

impl utoipa::PartialSchema for ReviewId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("A review id"))
            .pattern(Some("^rev_[0-9a-f]{32}$"))
            .into()
    }
}

impl utoipa::ToSchema for ReviewId {}

impl ReviewId {
    /// A fresh, time-ordered review id.
    pub fn generate() -> Self {
        Self(format!("{PREFIX}{}", uuid::Uuid::now_v7().simple()))
    }

    /// Validates and wraps `value`; ids come back from URLs and webhooks, so the shape
    /// is checked rather than trusted.
    pub fn new(value: impl Into<String>) -> Result<Self, ReviewIdError> {
        let value = value.into();
        let well_formed = value.strip_prefix(PREFIX).is_some_and(|digits| {
            digits.len() == UUID_DIGITS
                && digits
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if well_formed {
            Ok(Self(value))
        } else {
            Err(ReviewIdError(value))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ReviewId {
    type Error = ReviewIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<ReviewId> for String {
    fn from(id: ReviewId) -> String {
        id.0
    }
}

impl fmt::Display for ReviewId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ReviewId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReviewId({:?})", self.0)
    }
}

impl std::str::FromStr for ReviewId {
    type Err = ReviewIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}
