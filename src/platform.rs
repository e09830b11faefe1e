//! The platform directory: templates, schemas and policies, loaded once per process.
//!
//! The standard platform at the repository root is compiled into the binary, so the tool
//! works with nothing beside it; `--platform DIR` (or `GITOPS_RENDER_PLATFORM`) swaps in
//! a platform team's own directory of the same shape:
//!
//! ```text
//! templates/platform.yaml          environments, size classes, per-archetype defaults
//! templates/<archetype>/*.yaml.j2  one directory per archetype
//! templates/_common/*.j2           macros and includes shared by archetypes
//! schemas/values.schema.json       the closed JSON Schema of a values file
//! policies/*.rego                  Rego policies (package gitops.<area>)
//! policies/*_test.rego             their unit tests (`gitops-render policy test`)
//! policies/exceptions.yaml         waivers
//! policies/<name>.yaml             data for the policies, as data.<name> (teams.yaml ...)
//! ```
//!
//! Everything is parsed and compiled once, so a broken platform directory is an exit-2
//! error that names the file and line. The policies are the slow part (regorus parsing
//! and preparing them is about a third of a one-app check), so they load on a thread of
//! their own while the caller reads, renders and schema-checks on the other core; it
//! asks for them ([`Platform::policies`]) before it reports, so a broken policy is
//! still exit 2 whatever the values were.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::render::Templates;
use crate::validate::policy::Policies;
use crate::values::ValuesSchema;
use crate::yaml;

static BUILTIN_TEMPLATES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/templates");
static BUILTIN_SCHEMAS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/schemas");
static BUILTIN_POLICIES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/policies");

/// The platform's files as text, keyed by their path relative to the platform root with
/// forward slashes (`templates/worker/deployment.yaml.j2`).
#[derive(Debug, Clone)]
pub struct PlatformFiles {
    /// `built-in` or the directory it was read from, for messages.
    pub origin: String,
    pub files: BTreeMap<String, String>,
}

impl PlatformFiles {
    pub fn builtin() -> Self {
        let mut files = BTreeMap::new();
        for (dir, prefix) in [
            (&BUILTIN_TEMPLATES, "templates"),
            (&BUILTIN_SCHEMAS, "schemas"),
            (&BUILTIN_POLICIES, "policies"),
        ] {
            collect_embedded(dir, prefix, &mut files);
        }
        PlatformFiles {
            origin: "built-in".to_string(),
            files,
        }
    }

    pub fn from_dir(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::usage(format!(
                "platform directory {} does not exist or is not a directory",
                root.display()
            )));
        }
        let mut files = BTreeMap::new();
        for top in ["templates", "schemas", "policies"] {
            let dir = root.join(top);
            if !dir.is_dir() {
                return Err(Error::platform(format!(
                    "platform directory {} has no {top}/ directory",
                    root.display()
                )));
            }
            collect_disk(root, &dir, &mut files)?;
        }
        Ok(PlatformFiles {
            origin: root.display().to_string(),
            files,
        })
    }

    /// The files under `prefix` (a directory, with its trailing slash).
    pub fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.files
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, path: &str) -> Result<&str> {
        self.files
            .get(path)
            .map(String::as_str)
            .ok_or_else(|| Error::platform(format!("platform ({}) has no {path}", self.origin)))
    }

    /// A path as the user should see it in a message: on disk, the real path.
    pub fn display_path(&self, rel: &str) -> String {
        display_path(&self.origin, rel)
    }
}

/// `rel` (a path inside the platform) as a message should show it.
pub fn display_path(origin: &str, rel: &str) -> String {
    if origin == "built-in" {
        format!("<built-in>/{rel}")
    } else {
        PathBuf::from(origin).join(rel).display().to_string()
    }
}

fn collect_embedded(dir: &Dir<'_>, prefix: &str, out: &mut BTreeMap<String, String>) {
    for file in dir.files() {
        if let Some(text) = file.contents_utf8() {
            let rel = file.path().to_string_lossy().replace('\\', "/");
            out.insert(format!("{prefix}/{rel}"), text.to_string());
        }
    }
    for sub in dir.dirs() {
        collect_embedded(sub, prefix, out);
    }
}

fn collect_disk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::usage(format!("cannot read {}: {e}", dir.display())))?;
    for entry in entries {
        let entry =
            entry.map_err(|e| Error::usage(format!("cannot read {}: {e}", dir.display())))?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let ty = entry
            .file_type()
            .map_err(|e| Error::usage(format!("cannot read {}: {e}", path.display())))?;
        if ty.is_dir() {
            collect_disk(root, &path, out)?;
        } else if ty.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Error::platform(format!("cannot read {} as UTF-8 text: {e}", path.display()))
            })?;
            let rel = path
                .strip_prefix(root)
                .expect("walked from root")
                .to_string_lossy()
                .replace('\\', "/");
            out.insert(rel, text);
        }
    }
    Ok(())
}

/// `templates/platform.yaml`: the platform's fixed choices.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The Kubernetes minor version the API schema check is for, e.g. "1.35". It must
    /// be the version compiled into this binary (`validate::kube::KUBERNETES_VERSION`).
    pub kubernetes_version: String,
    pub environments: Vec<String>,
    /// The environments the DORA report counts deployments in by default; absent:
    /// the last of `environments` (they are listed in promotion order).
    #[serde(default)]
    pub production: Option<Vec<String>>,
    pub sizes: BTreeMap<String, Resources>,
    #[serde(default)]
    pub defaults: BTreeMap<String, serde_json::Map<String, Value>>,
    /// Who may deploy through `serve`'s deploy API, beyond the teams registry: given to
    /// the `policies/deploy/` Rego as `input.platform`.
    #[serde(default)]
    pub deploy: DeploySettings,
}

/// `deploy:` in `templates/platform.yaml`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeploySettings {
    /// Platform admins, who may roll back any app: `<ci>:<user>` (`github:octocat`,
    /// `gitlab:alice`), as the deploy API names the person behind a token.
    #[serde(default)]
    pub admins: Vec<String>,
    /// Production deploys only from a CI environment (GitHub `environment`, GitLab
    /// `environment`) named like the target environment; a team entry's
    /// `ci_environment: true` asks the same for that team alone.
    #[serde(default)]
    pub ci_environment: bool,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub requests: CpuMemory,
    pub limits: CpuMemory,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CpuMemory {
    pub cpu: String,
    pub memory: String,
}

/// `policies/exceptions.yaml`: one waiver silences one rule for one app in one
/// environment until it expires.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExceptionsFile {
    #[serde(default)]
    waivers: Vec<WaiverEntry>,
}

/// A waiver as written; `expires` becomes a date in `load_waivers`, where a bad one is
/// reported with its file and line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiverEntry {
    rule: String,
    app: String,
    env: String,
    reason: String,
    expires: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiver {
    pub rule: String,
    pub app: String,
    /// An environment name, or `*` for all of them.
    pub env: String,
    pub reason: String,
    /// The last day the waiver applies.
    pub expires: jiff::civil::Date,
    /// Where it is written, for messages (1-based line in exceptions.yaml).
    pub line: u32,
}

/// Everything a check needs, parsed and compiled once.
pub struct Platform {
    pub origin: String,
    pub settings: Settings,
    pub values_schema: ValuesSchema,
    pub templates: Templates,
    /// Parsed and prepared on a thread of their own; [`Platform::policies`] waits for it.
    policies: Deferred<Policies>,
    pub waivers: Vec<Waiver>,
    /// The raw files, kept for `policy test`.
    pub files: PlatformFiles,
    /// The date waivers are judged by: today in UTC unless the caller pins it (the CLI
    /// and `serve` from `GITOPS_RENDER_TODAY`, resolved once at the edge).
    pub today: jiff::civil::Date,
}

impl Platform {
    /// The platform to use: `--platform DIR` / `GITOPS_RENDER_PLATFORM` if given, else
    /// the built-in one.
    pub fn resolve(dir: Option<&Path>) -> Result<Self> {
        let files = match dir {
            Some(d) => PlatformFiles::from_dir(d)?,
            None => PlatformFiles::builtin(),
        };
        Platform::load(files)
    }

    /// Loads the platform, its policies on a thread of their own: they are parsed and
    /// prepared while the rest loads and while the caller goes on, until it asks for them
    /// ([`Platform::policies`]).
    pub fn load(files: PlatformFiles) -> Result<Self> {
        // The policies get their own copy of their files, so the thread can own it.
        let policy_files = PlatformFiles {
            origin: files.origin.clone(),
            files: files
                .under("policies/")
                .map(|(rel, text)| (rel.to_string(), text.to_string()))
                .collect(),
        };
        let policies = Deferred::start(move || Policies::load(&policy_files));
        let settings = load_settings(&files)?;
        let values_schema = ValuesSchema::load(&files)?;
        let templates = Templates::load(&files)?;
        let waivers = load_waivers(&files)?;
        Ok(Platform {
            origin: files.origin.clone(),
            settings,
            values_schema,
            templates,
            policies,
            waivers,
            files,
            today: crate::validate::utc_today(),
        })
    }

    /// The policies, parsed and prepared: waits for the thread loading them if one was
    /// started, else loads them now. Every caller gets the same answer, errors included.
    pub fn policies(&self) -> Result<&Policies> {
        self.policies.get()
    }

    /// `result`, unless the policies are broken: then that is the answer (exit 2),
    /// whatever else the caller's work, done while they loaded, came to.
    pub fn unless_broken<T>(&self, result: Result<T>) -> Result<T> {
        self.policies()?;
        result
    }

    /// The production environments, as the platform names them (`production:`), else
    /// the last environment.
    pub fn production_environments(&self) -> Vec<String> {
        match &self.settings.production {
            Some(p) => p.clone(),
            None => self
                .settings
                .environments
                .last()
                .cloned()
                .into_iter()
                .collect(),
        }
    }

    pub fn check_env(&self, env: &str) -> Result<()> {
        if self.settings.environments.iter().any(|e| e == env) {
            Ok(())
        } else {
            Err(Error::usage(format!(
                "unknown environment `{env}`; this platform has: {}",
                self.settings.environments.join(", ")
            )))
        }
    }
}

/// A value made once, on a thread of its own, that every caller of [`Deferred::get`]
/// waits for and then shares (errors included).
struct Deferred<T> {
    value: std::sync::OnceLock<Result<T>>,
    thread: std::sync::Mutex<Option<Result<std::thread::JoinHandle<Result<T>>>>>,
}

impl<T: Send + 'static> Deferred<T> {
    fn start(make: impl FnOnce() -> Result<T> + Send + 'static) -> Self {
        let thread = std::thread::Builder::new()
            .name("platform".into())
            .spawn(make)
            .map_err(|e| {
                Error::internal(format!("cannot start a thread to load the platform: {e}"))
            });
        Deferred {
            value: std::sync::OnceLock::new(),
            thread: std::sync::Mutex::new(Some(thread)),
        }
    }

    fn get(&self) -> Result<&T> {
        self.value
            .get_or_init(|| {
                // Taken out first, so the lock is not held across the join.
                let thread = self.thread.lock().expect("not poisoned").take();
                match thread {
                    Some(Ok(handle)) => handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    Some(Err(e)) => Err(e),
                    // Only after the one initialiser panicked.
                    None => Err(Error::internal("loading the platform failed earlier")),
                }
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Reads a platform YAML file through our strict reader, so a duplicate key in the
/// platform's own files is caught as surely as in a team's.
pub fn read_yaml(files: &PlatformFiles, rel: &str) -> Result<Value> {
    Ok(parse_one(files, rel)?
        .map(|doc| yaml::to_json(&doc.root))
        .unwrap_or(Value::Null))
}

/// The one document of a platform YAML file (none if it is empty), with positions.
fn parse_one(files: &PlatformFiles, rel: &str) -> Result<Option<yaml::Document>> {
    let text = files.get(rel)?;
    let mut docs = yaml::parse_stream(text, yaml::Limits::MANIFESTS).map_err(|e| {
        Error::platform(format!(
            "{}:{}:{}: {}",
            files.display_path(rel),
            e.pos.line,
            e.pos.column,
            e.message
        ))
    })?;
    if docs.len() > 1 {
        return Err(Error::platform(format!(
            "{}: expected one YAML document, found {}",
            files.display_path(rel),
            docs.len()
        )));
    }
    Ok(docs.pop())
}

fn load_settings(files: &PlatformFiles) -> Result<Settings> {
    let rel = "templates/platform.yaml";
    let doc = parse_one(files, rel)?;
    let positions = doc.as_ref().map(|d| yaml::Positions::of(&d.root));
    // Every message names the line: of the field at fault, else of the document.
    let at = |pointer: &str| {
        let line = positions
            .as_ref()
            .map_or(1, |p| p.value(pointer).line.max(1));
        format!("{}:{line}", files.display_path(rel))
    };
    let value = doc
        .as_ref()
        .map(|d| yaml::to_json(&d.root))
        .unwrap_or(Value::Null);
    let settings: Settings = serde_path_to_error::deserialize(value).map_err(|e| {
        let pointer = crate::pointer::from_path(e.path());
        Error::platform(format!("{}: {}", at(&pointer), e.inner()))
    })?;
    if settings.environments.is_empty() {
        return Err(Error::platform(format!(
            "{}: `environments` is empty",
            at("/environments")
        )));
    }
    for (i, env) in settings.production.iter().flatten().enumerate() {
        if !settings.environments.contains(env) {
            return Err(Error::platform(format!(
                "{}: production environment `{env}` is not one of `environments` ({})",
                at(&format!("/production/{i}")),
                settings.environments.join(", ")
            )));
        }
    }
    let compiled = crate::validate::kube::KUBERNETES_VERSION;
    if settings.kubernetes_version != compiled {
        return Err(Error::platform(format!(
            "{}: kubernetes_version is {:?}, but this gitops-render checks against Kubernetes {compiled}",
            at("/kubernetes_version"),
            settings.kubernetes_version
        ))
        .with_hint(format!(
            "set kubernetes_version: \"{compiled}\", or use a gitops-render built for your version"
        )));
    }
    Ok(settings)
}

fn load_waivers(files: &PlatformFiles) -> Result<Vec<Waiver>> {
    let rel = "policies/exceptions.yaml";
    if !files.files.contains_key(rel) {
        return Ok(Vec::new());
    }
    let Some(doc) = parse_one(files, rel)? else {
        return Ok(Vec::new());
    };
    let value = yaml::to_json(&doc.root);
    if value.is_null() {
        return Ok(Vec::new());
    }
    let positions = yaml::Positions::of(&doc.root);
    let parsed: ExceptionsFile = serde_path_to_error::deserialize(value).map_err(|e| {
        let pointer = crate::pointer::from_path(e.path());
        Error::platform(format!(
            "{}:{}: {}",
            files.display_path(rel),
            positions.value(&pointer).line,
            e.inner()
        ))
    })?;
    let mut waivers = Vec::with_capacity(parsed.waivers.len());
    for (i, w) in parsed.waivers.into_iter().enumerate() {
        let line = positions.value(&format!("/waivers/{i}")).line;
        // A plain date only: jiff would also take a datetime here.
        let expires = (w.expires.len() == 10)
            .then(|| w.expires.parse::<jiff::civil::Date>().ok())
            .flatten()
            .ok_or_else(|| {
                Error::platform(format!(
                    "{}:{}: waiver for `{}` has expires {:?}; write a date as YYYY-MM-DD",
                    files.display_path(rel),
                    positions.value(&format!("/waivers/{i}/expires")).line,
                    w.rule,
                    w.expires
                ))
            })?;
        if w.reason.trim().is_empty() {
            return Err(Error::platform(format!(
                "{}:{}: waiver for `{}` needs a reason",
                files.display_path(rel),
                line,
                w.rule
            )));
        }
        waivers.push(Waiver {
            rule: w.rule,
            app: w.app,
            env: w.env,
            reason: w.reason,
            expires,
            line,
        });
    }
    Ok(waivers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deferred_value_is_made_once_and_every_caller_gets_it_errors_included() {
        let made = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = made.clone();
        let value = Deferred::start(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(20));
            Ok(42)
        });
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| assert_eq!(*value.get().unwrap(), 42));
            }
        });
        assert_eq!(*value.get().unwrap(), 42);
        assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 1);

        let broken: Deferred<u32> =
            Deferred::start(|| Err(Error::platform("policies/x.rego:4:3: bad")));
        for _ in 0..2 {
            let e = broken.get().unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::Platform);
            assert_eq!(e.message, "policies/x.rego:4:3: bad");
        }
    }

    #[test]
    fn the_builtin_platform_has_every_part() {
        let files = PlatformFiles::builtin();
        assert!(files.files.contains_key("templates/platform.yaml"));
        assert!(files.files.contains_key("schemas/values.schema.json"));
        assert!(files.files.contains_key("policies/teams.yaml"));
    }
}
