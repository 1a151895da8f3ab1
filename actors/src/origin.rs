//! Where a turn's input came from.

use serde::Serialize;

/// Where a turn's input came from; recorded in the audit log and used by policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Interactive,
    Api,
    Sdk,
    /// A scheduled job's turn.
    Cron,
    /// A scheduled job's turn whose job requires approval: the policy's `skipCron`
    /// does not apply to it.
    CronReviewed,
    A2a,
    /// A message that came in through a channel (a webhook).
    Channel,
}

impl Origin {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "interactive" => Self::Interactive,
            "api" => Self::Api,
            "sdk" => Self::Sdk,
            "cron" => Self::Cron,
            "cron_reviewed" => Self::CronReviewed,
            "a2a" => Self::A2a,
            "channel" => Self::Channel,
            _ => return None,
        })
    }

    /// The policy's view of the origin.
    pub fn call_origin(self) -> facio_services::policy::CallOrigin {
        use facio_services::policy::CallOrigin;
        match self {
            Self::Interactive => CallOrigin::Interactive,
            Self::Api => CallOrigin::Api,
            Self::Sdk => CallOrigin::Sdk,
            Self::Cron => CallOrigin::Cron,
            Self::CronReviewed => CallOrigin::CronReviewed,
            Self::A2a => CallOrigin::A2a,
            Self::Channel => CallOrigin::Channel,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interactive => "interactive",
            Self::Api => "api",
            Self::Sdk => "sdk",
            Self::Cron => "cron",
            Self::CronReviewed => "cron_reviewed",
            Self::A2a => "a2a",
            Self::Channel => "channel",
        }
    }
}
