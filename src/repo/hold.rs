//! Holds: a rollback that stays rolled back.
//!
//! A rollback writes `HOLD` into `apps/<app>/<env>/`, in the same commit, so everyone
//! reading the repository sees it next to the manifests it protects (and Argo CD or
//! Flux ignore it: kustomize applies only what `kustomization.yaml` lists). While it is
//! there, a plain deploy or promote of that app and environment is refused; one that
//! passes `--release-hold` deploys and removes it in the same commit.

use std::collections::BTreeMap;

/// The hold's file name in `apps/<app>/<env>/`.
pub const FILE: &str = "HOLD";

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
    pub fn to_bytes(&self, app: &str, env: &str) -> Vec<u8> {
        let mut out = format!(
            "# {app}/{env} is on hold after a rollback: plain deploys are refused.\n\
             # Release it with: gitops-render deploy VALUES --env {env} --repo REPO --release-hold\n\
             version: {}\nrestored: {}\nactor: {}\n",
            one_line(&self.version),
            one_line(&self.restored),
            one_line(&self.actor),
        );
        if let Some(r) = &self.reason {
            out.push_str(&format!("reason: {}\n", one_line(r)));
        }
        out.into_bytes()
    }

    /// Reads a hold file; unknown or missing fields are tolerated (a hold edited by
    /// hand still holds).
    pub fn parse(bytes: &[u8]) -> Hold {
        let text = String::from_utf8_lossy(bytes);
        let fields: BTreeMap<&str, &str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let get = |k: &str| fields.get(k).map(|v| v.to_string()).unwrap_or_default();
        Hold {
            version: get("version"),
            restored: get("restored"),
            actor: get("actor"),
            reason: fields.get("reason").map(|v| v.to_string()),
        }
    }
}

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
            reason: Some("bad release\nreally".into()),
        };
        let back = Hold::parse(&hold.to_bytes("payments-api", "prod"));
        assert_eq!(back.version, "1.4.1");
        assert_eq!(back.reason.as_deref(), Some("bad release really"));
    }
}
