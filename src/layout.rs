//! The layout of the GitOps repository, in one place: `apps/<app>/<env>/` and the names
//! of the files gitops-render keeps there beside the manifests (PRODUCT.md pins them).
//!
//! Every module that reads or writes the repository (the repository layer, the
//! operations, the server's checks) spells a path through `AppDir`, so the layout
//! cannot drift between the deploy that writes a directory and the check that reads it.
//! It sits below everything else: it knows names, not git.

use std::fmt;

/// The directory every app directory lives under.
pub const APPS: &str = "apps";
/// The accepted values, normalised: what every re-render starts from.
pub const VALUES: &str = "values.yaml";
/// Lists every manifest of the directory for kustomize (Argo CD, Flux).
pub const KUSTOMIZATION: &str = "kustomization.yaml";
/// A rollback's hold (see `repo::hold`): not a manifest, and not listed by kustomize.
pub const HOLD: &str = "HOLD";

/// `apps/<app>/<env>/`: the unit of every change, one commit each.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppDir {
    pub app: String,
    pub env: String,
}

impl AppDir {
    pub fn new(app: impl Into<String>, env: impl Into<String>) -> AppDir {
        AppDir {
            app: app.into(),
            env: env.into(),
        }
    }

    /// `apps/<app>/<env>`, without a trailing slash (as git paths are written).
    pub fn path(&self) -> String {
        format!("{APPS}/{}/{}", self.app, self.env)
    }

    /// `apps/<app>/<env>/<name>`.
    pub fn file(&self, name: &str) -> String {
        format!("{APPS}/{}/{}/{name}", self.app, self.env)
    }

    /// `apps/<app>/<env>/values.yaml`.
    pub fn values(&self) -> String {
        self.file(VALUES)
    }

    /// `apps/<app>/<env>/HOLD`.
    pub fn hold(&self) -> String {
        self.file(HOLD)
    }

    /// `apps/<app>`: what stands where an app's directory should be.
    pub fn app_path(app: &str) -> String {
        format!("{APPS}/{app}")
    }

    /// The app directory and file name of a path `apps/<app>/<env>/<file>`; `None` for
    /// anything else (deeper, shallower, outside `apps/`, or with an empty component).
    pub fn of_file(path: &str) -> Option<(AppDir, &str)> {
        match path.split('/').collect::<Vec<_>>().as_slice() {
            [APPS, app, env, file] if !app.is_empty() && !env.is_empty() && !file.is_empty() => {
                Some((AppDir::new(*app, *env), *file))
            }
            _ => None,
        }
    }

    /// Whether a file of the directory is a rendered Kubernetes object (not the values,
    /// the kustomization or a hold).
    pub fn is_manifest(name: &str) -> bool {
        name != VALUES && name != KUSTOMIZATION && name != HOLD
    }
}

/// `<app>/<env>`, as messages and commit subjects name it.
impl fmt::Display for AppDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.app, self.env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_back_into_the_directory_they_name() {
        let d = AppDir::new("payments-api", "prod");
        assert_eq!(d.path(), "apps/payments-api/prod");
        assert_eq!(d.values(), "apps/payments-api/prod/values.yaml");
        assert_eq!(
            AppDir::of_file(&d.hold()),
            Some((d.clone(), HOLD)),
            "a hold names its directory"
        );
        for other in [
            "apps/a/b",
            "apps/a/b/c/d",
            "apps//b/c",
            "other/a/b/c",
            "apps/a/b/",
        ] {
            assert_eq!(AppDir::of_file(other), None, "{other}");
        }
        assert_eq!(d.to_string(), "payments-api/prod");
    }
}
