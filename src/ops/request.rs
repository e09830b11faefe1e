//! The deploy API's request bodies (docs/deploy-api.md): one type per operation,
//! written by the `--server` client and read by `serve`, so the two cannot drift
//! apart. Each carries what the operation's flags carry; who asks and from which
//! source repository come from the caller's token, never from here. Unknown fields are
//! refused, so a misspelt option is an error rather than silently ignored.

use serde::{Deserialize, Serialize};

/// `POST /api/v1/deploy`: a values file's text and where it goes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployBody {
    pub values: String,
    /// Only labels findings (file names in the answer match a local run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_path: Option<String>,
    pub env: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sha: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub release_hold: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub fix: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
}

/// `POST /api/v1/rollback`: `rollback`'s flags.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    pub app: String,
    pub env: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sha: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
}

/// `POST /api/v1/promote`: `promote`'s flags.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteBody {
    pub app: String,
    pub from: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub release_hold: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sha: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_reads_back_as_written_and_unknown_fields_are_refused() {
        let body = DeployBody {
            values: "app: x\n".into(),
            env: "prod".into(),
            tag: Some("1.2.3".into()),
            dry_run: true,
            ..DeployBody::default()
        };
        let text = serde_json::to_string(&body).unwrap();
        assert_eq!(
            text,
            r#"{"values":"app: x\n","env":"prod","tag":"1.2.3","dry_run":true}"#
        );
        let back: DeployBody = serde_json::from_str(&text).unwrap();
        assert_eq!(back.tag.as_deref(), Some("1.2.3"));
        assert!(back.dry_run && !back.fix);
        let err =
            serde_json::from_str::<RollbackBody>(r#"{"app":"a","env":"e","too":"1"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `too`"), "{err}");
    }
}
