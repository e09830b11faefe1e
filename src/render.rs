//! Accepted values -> Kubernetes objects, one per file.
//!
//! Templates are minijinja, owned by the platform team. Team values reach them only as
//! data: every template runs with JSON auto-escaping, and the formatter writes every
//! `{{ expression }}` as a JSON value, which is a valid YAML flow scalar (or flow
//! collection) with exactly the same meaning. A value holding newlines, quotes, `{{ }}`,
//! `---` or `: ` therefore stays one scalar; it cannot add, remove or rename a field.
//!
//! The one thing written without encoding is text the template itself produced: a macro's
//! output or a `{% set %}` block, whose own interpolations were encoded when they were
//! rendered. The ways to pass a raw value off as such text are closed: the `safe` filter
//! is removed, `escape` encodes as JSON (the auto-escape mode), and `{% autoescape %}`
//! blocks are refused when the platform is loaded. Undefined variables are errors.
//!
//! The templates' YAML text is then parsed back and every object re-emitted in
//! canonical form (sorted keys, our quoting), so output is byte-identical for identical
//! inputs whatever whitespace a template happens to produce.

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::platform::{display_path, PlatformFiles, Settings};
use crate::values::Accepted;
use crate::yaml;

/// The header of every file we write into the GitOps repository.
pub const HEADER: &str =
    "# Rendered by gitops-render from values.yaml. Do not edit: `gitops-render verify` reports hand edits.\n";

/// The first line of every stored `values.yaml`.
pub const VALUES_HEADER: &str =
    "# The accepted values this directory was rendered from (normalised by gitops-render).\n";

/// The platform's templates, parsed once.
pub struct Templates {
    env: Environment<'static>,
    /// Archetype -> its template names, sorted.
    archetypes: BTreeMap<String, Vec<String>>,
    /// Where templates came from, for messages.
    origin: String,
}

impl Templates {
    pub fn load(files: &PlatformFiles) -> Result<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.remove_filter("safe");
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Json);
        env.set_formatter(|out, _state, value| {
            if value.is_safe() {
                // Template-made text (a macro's output); see the module comment.
                return out
                    .write_str(value.as_str().unwrap_or_default())
                    .map_err(minijinja::Error::from);
            }
            let json = serde_json::to_string(value).map_err(|e| {
                minijinja::Error::new(
                    minijinja::ErrorKind::BadSerialization,
                    format!("a value cannot be written as data: {e}"),
                )
            })?;
            out.write_str(&json).map_err(minijinja::Error::from)
        });
        let mut archetypes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (rel, text) in files.under("templates/") {
            let Some(name) = rel.strip_prefix("templates/") else {
                continue;
            };
            if !name.ends_with(".j2") {
                continue;
            }
            if let Some(line) = text.lines().position(|l| {
                let l = l.replace(' ', "");
                l.contains("{%autoescape") || l.contains("{%-autoescape")
            }) {
                return Err(Error::platform(format!(
                    "{}:{}: `autoescape` blocks are not allowed: values must stay data",
                    files.display_path(rel),
                    line + 1
                )));
            }
            env.add_template_owned(name.to_string(), text.to_string())
                .map_err(|e| template_error(&files.origin, &e))?;
            if let Some((dir, _)) = name.split_once('/') {
                if !dir.starts_with('_') && name.ends_with(".yaml.j2") {
                    archetypes
                        .entry(dir.to_string())
                        .or_default()
                        .push(name.to_string());
                }
            }
        }
        if archetypes.is_empty() {
            return Err(Error::platform(format!(
                "platform ({}) has no templates: expected templates/<archetype>/*.yaml.j2",
                files.origin
            )));
        }
        Ok(Templates {
            env,
            archetypes,
            origin: files.origin.clone(),
        })
    }

    pub fn archetypes(&self) -> impl Iterator<Item = &str> {
        self.archetypes.keys().map(String::as_str)
    }
}

fn template_error(origin: &str, e: &minijinja::Error) -> Error {
    let name = e.name().unwrap_or("?");
    let path = display_path(origin, &format!("templates/{name}"));
    let at = match e.line() {
        Some(line) => format!("{path}:{line}"),
        None => path,
    };
    let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
    Error::platform(format!("{at}: template error: {}{detail}", e.kind()))
}

/// One rendered Kubernetes object.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub kind: String,
    pub name: String,
    /// `<kind>-<name>.yaml`
    pub file: String,
    pub object: Value,
}

impl Manifest {
    pub fn resource(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// Everything that goes into `apps/<app>/<env>/`.
#[derive(Debug, Clone)]
pub struct Rendering {
    pub app: String,
    pub env: String,
    /// Sorted by file name.
    pub manifests: Vec<Manifest>,
    /// File name -> exact bytes: every manifest, `kustomization.yaml`, `values.yaml`.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Rendering {
    /// The manifests as one YAML stream, for `render` without `--out`.
    pub fn stream(&self) -> String {
        let mut out = String::new();
        for m in &self.manifests {
            out.push_str("---\n");
            out.push_str(&yaml::to_yaml(&m.object));
        }
        out
    }
}

/// The variables a template sees (the contract with the platform's templates).
pub fn context(settings: &Settings, accepted: &Accepted) -> Result<Value> {
    let v = &accepted.effective;
    let get = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let image_repo = v.get("image").and_then(Value::as_str).unwrap_or_default();
    let version = v.get("version").and_then(Value::as_str).unwrap_or_default();
    let image = if version.starts_with("sha256:") {
        format!("{image_repo}@{version}")
    } else {
        format!("{image_repo}:{version}")
    };
    let size = v.get("size").and_then(Value::as_str).unwrap_or_default();
    let resources = settings.sizes.get(size).ok_or_else(|| {
        Error::platform(format!(
            "size `{size}` is allowed by the values schema but not defined in templates/platform.yaml"
        ))
    })?;
    let (app, team, env) = (&accepted.app, &accepted.team, &accepted.env);
    let selector = json!({
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/instance": format!("{app}-{env}"),
    });
    let mut labels = selector.clone();
    let extra = json!({
        "app.kubernetes.io/version": version_label(version),
        "app.kubernetes.io/component": accepted.archetype,
        "app.kubernetes.io/part-of": team,
        "app.kubernetes.io/managed-by": "gitops-render",
        "team": team,
    });
    if let (Value::Object(l), Value::Object(e)) = (&mut labels, extra) {
        l.extend(e);
    }
    Ok(json!({
        "app": app,
        "team": team,
        "env": env,
        "archetype": accepted.archetype,
        "namespace": format!("{team}-{env}"),
        "image": image,
        "version": version,
        "replicas": get("replicas"),
        "port": get("port"),
        "size": size,
        "resources": resources,
        "env_vars": v.get("env").cloned().unwrap_or_else(|| json!({})),
        "secrets": v.get("secrets").cloned().unwrap_or_else(|| json!([])),
        "ingress": get("ingress"),
        "health": get("health"),
        "schedule": get("schedule"),
        "labels": labels,
        "selector_labels": selector,
        "values": v,
    }))
}

/// A label value for the version: tags fit as they are; a digest does not (`:` and 71
/// characters), so it becomes `sha256-` and its first 12 hex digits.
fn version_label(version: &str) -> String {
    if let Some(hex) = version.strip_prefix("sha256:") {
        return format!("sha256-{}", &hex[..hex.len().min(12)]);
    }
    let trimmed: String = version.chars().take(63).collect();
    trimmed
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// Renders the archetype's templates for accepted values. Errors here are the
/// platform's: values cannot make a template fail or emit invalid YAML.
pub fn render(
    templates: &Templates,
    settings: &Settings,
    accepted: &Accepted,
) -> Result<Rendering> {
    let names = templates
        .archetypes
        .get(&accepted.archetype)
        .ok_or_else(|| {
            Error::platform(format!(
                "no templates for archetype `{}` (expected templates/{}/*.yaml.j2)",
                accepted.archetype, accepted.archetype
            ))
        })?;
    let ctx = minijinja::Value::from(minijinja::value::Serde(context(settings, accepted)?));
    let mut manifests: BTreeMap<String, Manifest> = BTreeMap::new();
    for name in names {
        let tmpl = templates
            .env
            .get_template(name)
            .map_err(|e| template_error(&templates.origin, &e))?;
        let text = tmpl
            .render(&ctx)
            .map_err(|e| template_error(&templates.origin, &e))?;
        let docs = yaml::parse_stream(&text, yaml::Limits::MANIFESTS).map_err(|e| {
            Error::platform(format!(
                "templates/{name} rendered invalid YAML at line {} of its output: {}",
                e.pos.line, e.message
            ))
        })?;
        for doc in docs {
            let object = yaml::to_json(&doc.root);
            if object.is_null() {
                continue; // an empty document: the template rendered nothing here
            }
            let m = manifest_from(object).map_err(|why| {
                Error::platform(format!("templates/{name} rendered an object that {why}"))
            })?;
            if manifests.contains_key(&m.file) {
                return Err(Error::platform(format!(
                    "templates/{name} rendered {} twice",
                    m.resource()
                )));
            }
            manifests.insert(m.file.clone(), m);
        }
    }
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (file, m) in &manifests {
        files.insert(file.clone(), with_header(&yaml::to_yaml(&m.object)));
    }
    let kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": manifests.keys().collect::<Vec<_>>(),
    });
    files.insert(
        "kustomization.yaml".into(),
        with_header(&yaml::to_yaml(&kustomization)),
    );
    files.insert("values.yaml".into(), values_file(&accepted.normalised));
    Ok(Rendering {
        app: accepted.app.clone(),
        env: accepted.env.clone(),
        manifests: manifests.into_values().collect(),
        files,
    })
}

/// `values.yaml` as stored: the accepted values, canonical, with a header.
pub fn values_file(normalised: &Value) -> Vec<u8> {
    let mut out = String::from(VALUES_HEADER);
    out.push_str(&yaml::to_yaml(normalised));
    out.into_bytes()
}

fn with_header(body: &str) -> Vec<u8> {
    let mut out = String::with_capacity(HEADER.len() + body.len());
    out.push_str(HEADER);
    out.push_str(body);
    out.into_bytes()
}

/// Checks an object's identity and names its file.
pub fn manifest_from(object: Value) -> std::result::Result<Manifest, String> {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .ok_or("has no `kind`")?
        .to_string();
    if object.get("apiVersion").and_then(Value::as_str).is_none() {
        return Err(format!("({kind}) has no `apiVersion`"));
    }
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("({kind}) has no `metadata.name`"))?
        .to_string();
    // The name becomes a file name: only DNS-1123 characters, so no path tricks.
    let safe = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !name.starts_with('.')
        && kind.bytes().all(|b| b.is_ascii_alphanumeric());
    if !safe {
        return Err(format!("has a name unfit for a file: {kind}/{name:?}"));
    }
    let file = format!("{}-{}.yaml", kind.to_ascii_lowercase(), name);
    Ok(Manifest {
        kind,
        name,
        file,
        object,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_become_short_label_values() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(version_label(&digest), "sha256-abababababab");
        assert_eq!(version_label("1.4.2"), "1.4.2");
    }

    #[test]
    fn names_with_path_tricks_are_refused() {
        for name in ["../etc", "a/b", ".hidden", "UPPER", ""] {
            let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
            assert!(manifest_from(obj).is_err(), "{name}");
        }
    }
}
