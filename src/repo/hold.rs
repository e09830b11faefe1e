//! Holds: a rollback that stays rolled back.
//!
//! A rollback writes `HOLD` into `apps/<app>/<env>/`, in the same commit, so everyone
//! reading the repository sees it next to the manifests it protects (and Argo CD or
//! Flux ignore it: kustomize applies only what `kustomization.yaml` lists). While it is
//! there, a plain deploy or promote of that app and environment is refused; one that
//! passes `--release-hold` deploys and removes it in the same commit.

use serde_json::{Map, Value};

use crate::yaml;

/// The hold's file name in `apps/<app>/<env>/`.
pub const FILE: &str = crate::layout::HOLD;

/// What a hold records: enough for the refusal to explain itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Hold {
    /// The version rolled back to.
    pub version: String,
    /// The commit whose files were restored.
    pub restored: String,
    pub actor: String,
    pub reason: Option<String>,
}

impl Hold {
    /// Two comment lines for people, then the fields as YAML written by the project's
    /// own writer (`yaml::to_yaml`), which quotes whatever a reader could misread: any
    /// text a user gave (the reason) stays one value.
    pub fn to_bytes(&self, app: &str, env: &str) -> Vec<u8> {
        let mut fields = Map::new();
        fields.insert("version".into(), Value::from(self.version.as_str()));
        fields.insert("restored".into(), Value::from(self.restored.as_str()));
        fields.insert("actor".into(), Value::from(self.actor.as_str()));
        if let Some(r) = &self.reason {
            fields.insert("reason".into(), Value::from(r.as_str()));
        }
        format!(
            "# {} is on hold after a rollback: plain deploys are refused.\n\
             # Release it with: gitops-render deploy VALUES --env {} --repo REPO --release-hold\n{}",
            one_line(&format!("{app}/{env}")),
            one_line(env),
            yaml::to_yaml(&Value::Object(fields))
        )
        .into_bytes()
    }

    /// Reads a hold file with the project's strict YAML reader. Unknown or missing
    /// fields, and a file that is not YAML at all, are tolerated: a hold edited by hand
    /// still holds (its presence is the hold; the fields only explain it).
    pub fn parse(bytes: &[u8]) -> Hold {
        let text = String::from_utf8_lossy(bytes);
        let fields = match yaml::parse_stream(&text, yaml::Limits::VALUES) {
            Ok(docs) => match docs.first().map(|d| yaml::to_json(&d.root)) {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            },
            Err(_) => Map::new(),
        };
        let get = |k: &str| match fields.get(k) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            // `version: 1.5` reads as a number; the hold meant the text.
            Some(other) => Some(other.to_string()),
        };
        Hold {
            version: get("version").unwrap_or_default(),
            restored: get("restored").unwrap_or_default(),
            actor: get("actor").unwrap_or_default(),
            reason: get("reason"),
        }
    }
}

/// The comment lines carry names only; a line break would end the comment.
fn one_line(s: &str) -> String {
    s.split(['\n', '\r']).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_reads_back_what_it_wrote() {
        let hold = Hold {
            version: "1.4.1".into(),
            restored: "abc123".into(),
            actor: "ci@payments".into(),
            reason: Some("bad release\nreally: yes # not a comment".into()),
        };
        let back = Hold::parse(&hold.to_bytes("payments-api", "prod"));
        assert_eq!(back, hold);
        // What a person may have written by hand, and what is not YAML, still hold.
        let by_hand = Hold::parse(b"version: 1.5\nactor: ops@example.com\nextra: [1]\n");
        assert_eq!(
            (by_hand.version.as_str(), by_hand.actor.as_str()),
            ("1.5", "ops@example.com")
        );
        assert_eq!(Hold::parse(b"version: [unclosed\n"), Hold::default());
    }
}
