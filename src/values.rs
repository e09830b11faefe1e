//! A team's values file: read strictly, typed by the platform's schema, validated, and
//! resolved for one environment.
//!
//! The order matters and each step keeps positions for the next:
//! bytes (size, UTF-8, NUL) -> YAML tree with positions (duplicates, aliases, depth)
//! -> JSON typed by the schema -> closed JSON Schema -> effective values for `--env`.
//!
//! Typing by schema is what keeps `version: 1.10` the string "1.10" and
//! `LOG_LEVEL: yes` the string "yes": a plain scalar becomes a string wherever the
//! schema expects one, and only where it expects a number or a boolean is it read as
//! one. Quoted scalars are always strings, so `replicas: "3"` is a type error rather
//! than a silent conversion.

use std::sync::Arc;

use jsonschema::error::ValidationErrorKind;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::findings::Finding;
use crate::platform::{Platform, PlatformFiles};
use crate::yaml::{self, Node, NodeKind, Positions, Style};

/// A values file larger than this is refused before it is parsed; real ones are < 2 KiB.
pub const MAX_VALUES_BYTES: usize = 64 * 1024;

const SCHEMA_PATH: &str = "schemas/values.schema.json";

/// The platform's values schema: the raw JSON (walked to type scalars and to suggest
/// field names) and its compiled validator.
pub struct ValuesSchema {
    raw: Value,
    validator: jsonschema::Validator,
}

impl ValuesSchema {
    pub fn load(files: &PlatformFiles) -> Result<Self> {
        let text = files.get(SCHEMA_PATH)?;
        let raw: Value = serde_json::from_str(text).map_err(|e| {
            Error::platform(format!(
                "{}:{}:{}: invalid JSON: {e}",
                files.display_path(SCHEMA_PATH),
                e.line(),
                e.column()
            ))
        })?;
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&raw)
            .map_err(|e| {
                Error::platform(format!(
                    "{}: invalid JSON Schema at {}: {e}",
                    files.display_path(SCHEMA_PATH),
                    e.schema_path()
                ))
            })?;
        Ok(ValuesSchema { raw, validator })
    }

    /// Follows a local `$ref` (`#/$defs/x`) until it reaches a schema without one.
    fn deref<'a>(&'a self, schema: &'a Value) -> &'a Value {
        crate::pointer::resolve_ref(&self.raw, schema)
    }

    /// The subschema for a child of `schema`: a named property, else the schema for
    /// other properties, else the items of an array.
    fn child<'a>(&'a self, schema: &'a Value, key: Option<&str>) -> Option<&'a Value> {
        let schema = self.deref(schema);
        match key {
            Some(k) => schema
                .get("properties")
                .and_then(|p| p.get(k))
                .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object())),
            None => schema.get("items"),
        }
    }

    /// The subschema that describes the value at a JSON pointer of the instance.
    fn at_instance(&self, pointer: &str) -> Option<&Value> {
        let mut schema = &self.raw;
        for seg in pointer.split('/').skip(1) {
            let s = self.deref(schema);
            let is_array = s.get("type").and_then(Value::as_str) == Some("array");
            schema = if is_array {
                self.child(s, None)?
            } else {
                self.child(s, Some(seg))?
            };
        }
        Some(self.deref(schema))
    }

    /// The types a schema admits, from `type`, `enum`, `const` and combinators.
    fn types(&self, schema: &Value) -> Vec<&'static str> {
        let schema = self.deref(schema);
        let mut out = Vec::new();
        match schema.get("type") {
            Some(Value::String(t)) => out.push(static_type(t)),
            Some(Value::Array(ts)) => {
                out.extend(ts.iter().filter_map(Value::as_str).map(static_type))
            }
            _ => {}
        }
        if let Some(Value::Array(options)) = schema.get("enum") {
            out.extend(options.iter().map(json_type));
        }
        if let Some(c) = schema.get("const") {
            out.push(json_type(c));
        }
        for key in ["anyOf", "oneOf", "allOf"] {
            if let Some(Value::Array(branches)) = schema.get(key) {
                for b in branches {
                    out.extend(self.types(b));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The property names an object schema permits, for "did you mean".
    fn property_names(&self, schema: &Value) -> Vec<String> {
        let schema = self.deref(schema);
        let mut names: Vec<String> = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        if let Some(Value::Array(e)) = schema
            .get("propertyNames")
            .map(|p| self.deref(p))
            .and_then(|p| p.get("enum"))
        {
            names.extend(e.iter().filter_map(Value::as_str).map(str::to_string));
        }
        names
    }

    /// The schema node a validation error's schema path points at, following `$ref`s.
    fn at_schema_path(&self, path: &str) -> Option<&Value> {
        let mut node = &self.raw;
        for seg in crate::pointer::segments(path) {
            if seg == "$ref" {
                node = self.deref(node);
                continue;
            }
            node = match node {
                Value::Object(m) => m.get(seg.as_ref())?,
                Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The `description` of the nearest schema around an error's keyword: the hint
    /// the platform team wrote for that field.
    fn description_for(&self, schema_path: &str) -> Option<String> {
        let mut path = schema_path;
        loop {
            // A `description` beside a `$ref` is the more specific one: look there first.
            let node = self.at_schema_path(path);
            if let Some(d) = node
                .and_then(|s| s.get("description"))
                .or_else(|| {
                    node.map(|s| self.deref(s))
                        .and_then(|s| s.get("description"))
                })
                .and_then(Value::as_str)
            {
                return Some(d.to_string());
            }
            match path.rfind('/') {
                Some(i) if i > 0 => path = &path[..i],
                _ => return None,
            }
        }
    }
}

fn static_type(t: &str) -> &'static str {
    match t {
        "string" => "string",
        "integer" => "integer",
        "number" => "number",
        "boolean" => "boolean",
        "null" => "null",
        "array" => "array",
        _ => "object",
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A values file that passed every check, resolved for one environment.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub app: String,
    pub team: String,
    pub archetype: String,
    pub env: String,
    /// What the team wrote, typed, with `--tag` applied: stored as `values.yaml`, and the
    /// input of every later re-render.
    pub normalised: Value,
    /// Platform defaults, then the team's values, then `environments.<env>`; without
    /// `environments`. What templates and policies see as `values`.
    pub effective: Value,
    /// Where each field came from, for findings.
    pub positions: Positions,
}

impl Accepted {
    /// The source position for a dotted field path of the effective values: the
    /// environment override if that is where the value came from, else the field itself.
    pub fn locate(&self, field: &str) -> yaml::Pos {
        let first = field.split('.').next().unwrap_or("");
        let via_env = format!(
            "/environments/{}/{}",
            self.env,
            crate::pointer::escape(first)
        );
        if self.positions.contains(&via_env) {
            let rest = yaml::dotted_to_pointer(field);
            let full = format!("/environments/{}{}", self.env, rest);
            return self.positions.value(&full);
        }
        self.positions.value(&yaml::dotted_to_pointer(field))
    }
}

/// What `load` was asked to do beyond reading the file.
#[derive(Debug, Clone, Copy)]
pub struct Resolve<'a> {
    pub env: &'a str,
    /// `--tag`: replaces `version`.
    pub tag: Option<&'a str>,
}

/// Reads, types, validates and resolves one values file. `path` is how findings name
/// it. Returns the source text (when it was text) for the report, the findings, and
/// the accepted values when there were no errors.
pub fn load(
    platform: &Platform,
    path: &str,
    bytes: &[u8],
    resolve: Resolve<'_>,
) -> (Option<Arc<str>>, Vec<Finding>, Option<Accepted>) {
    let text = match decode(path, bytes) {
        Ok(t) => t,
        Err(f) => {
            let source = String::from_utf8_lossy(bytes);
            return (Some(Arc::from(source.as_ref())), vec![*f], None);
        }
    };
    let source: Arc<str> = Arc::from(text);
    match parse_and_check(platform, path, &source, resolve) {
        Ok(accepted) => (Some(source), Vec::new(), Some(accepted)),
        Err(findings) => (Some(source), findings, None),
    }
}

/// Size, encoding and NUL checks, before any parser sees the bytes.
fn decode<'a>(path: &str, bytes: &'a [u8]) -> Result<&'a str, Box<Finding>> {
    if bytes.len() > MAX_VALUES_BYTES {
        return Err(Box::new(Finding::error(
            "values-too-large",
            format!(
                "values file is {} bytes; the limit is {} bytes",
                bytes.len(),
                MAX_VALUES_BYTES
            ),
        )
        .in_file(path)
        .help("a values file holds a few fields; configuration data belongs in a ConfigMap or the image")));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
        let column = String::from_utf8_lossy(good.rsplit(|&b| b == b'\n').next().unwrap_or(b""))
            .chars()
            .count() as u32
            + 1;
        let f = Finding::error(
            "values-encoding",
            format!("invalid UTF-8 at byte {}", e.valid_up_to()),
        )
        .at(path, yaml::Pos { line, column })
        .help("save the file as UTF-8");
        Box::new(f)
    })?;
    if let Some(i) = text.find('\0') {
        let pos = pos_of_offset(text, i);
        return Err(Box::new(
            Finding::error("values-encoding", "NUL character in values file").at(path, pos),
        ));
    }
    Ok(text)
}

fn pos_of_offset(text: &str, offset: usize) -> yaml::Pos {
    let before = &text[..offset];
    let line = before.matches('\n').count() as u32 + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() as u32 + 1;
    yaml::Pos { line, column }
}

fn parse_and_check(
    platform: &Platform,
    path: &str,
    source: &str,
    resolve: Resolve<'_>,
) -> Result<Accepted, Vec<Finding>> {
    let docs = yaml::parse_stream(source, yaml::Limits::VALUES)
        .map_err(|e| vec![Finding::error(e.rule(), e.message.clone()).at(path, e.pos)])?;
    let root = match docs.as_slice() {
        [] => {
            return Err(vec![Finding::error(
                "values-shape",
                "the values file is empty",
            )
            .at(path, yaml::Pos { line: 1, column: 1 })
            .help(
                "start with `app:`, `team:`, `archetype:`, `image:` and `version:`",
            )])
        }
        [doc] => &doc.root,
        [_, second, ..] => {
            return Err(vec![Finding::error(
                "values-shape",
                format!(
                    "the values file holds {} YAML documents; it must hold exactly one",
                    docs.len()
                ),
            )
            .at(path, second.root.pos)
            .help("one values file per application; remove the `---` separator")])
        }
    };
    if !matches!(root.kind, NodeKind::Mapping(_)) {
        return Err(vec![Finding::error(
            "values-shape",
            "the values file must be a mapping of field names to values",
        )
        .at(path, root.pos)]);
    }
    let positions = Positions::of(root);
    let schema = &platform.values_schema;
    let mut instance = typed(schema, root, Some(&schema.raw));
    if let (Some(tag), Value::Object(map)) = (resolve.tag, &mut instance) {
        map.insert("version".to_string(), Value::String(tag.to_string()));
    }

    let mut findings: Vec<Finding> = schema
        .validator
        .iter_errors(&instance)
        .flat_map(|e| schema_findings(schema, path, &positions, &instance, &e, resolve.tag))
        .collect();
    if !findings.is_empty() {
        findings.sort_by_key(|f| (f.line, f.column));
        findings.dedup_by(|a, b| a.message == b.message && a.line == b.line);
        return Err(findings);
    }

    let field = |k: &str| {
        instance
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (app, team, archetype) = (field("app"), field("team"), field("archetype"));
    if let Some(envs) = instance.get("environments").and_then(Value::as_object) {
        for name in envs.keys() {
            if !platform.settings.environments.contains(name) {
                findings.push(
                    Finding::error(
                        "values-schema",
                        format!("unknown environment `{name}` under `environments`"),
                    )
                    .at(
                        path,
                        positions.key(&format!("/environments/{}", crate::pointer::escape(name))),
                    )
                    .help(format!(
                        "this platform has: {}",
                        platform.settings.environments.join(", ")
                    )),
                );
            }
        }
    }
    if !findings.is_empty() {
        return Err(findings);
    }
    let effective = effective_values(platform, &instance, &archetype, resolve.env);
    Ok(Accepted {
        app,
        team,
        archetype,
        env: resolve.env.to_string(),
        normalised: instance,
        effective,
        positions,
    })
}

/// Converts a YAML node to JSON, typing each plain scalar by what the schema expects
/// at that place (see the module comment).
fn typed(schema: &ValuesSchema, node: &Node, sub: Option<&Value>) -> Value {
    match &node.kind {
        NodeKind::Scalar { text, style, tag } => {
            let expected = sub.map(|s| schema.types(s)).unwrap_or_default();
            typed_scalar(text, *style, tag.as_deref(), &expected)
        }
        NodeKind::Sequence(items) => Value::Array(
            items
                .iter()
                .map(|i| typed(schema, i, sub.and_then(|s| schema.child(s, None))))
                .collect(),
        ),
        NodeKind::Mapping(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let child = sub.and_then(|s| schema.child(s, Some(&k.text)));
                map.insert(k.text.clone(), typed(schema, v, child));
            }
            Value::Object(map)
        }
    }
}

fn typed_scalar(text: &str, style: Style, tag: Option<&str>, expected: &[&str]) -> Value {
    let core = yaml::core_scalar(text, style, tag);
    if tag.is_some() || style != Style::Plain || core.is_null() {
        return core;
    }
    let wants = |t: &str| expected.contains(&t);
    match &core {
        // `1e3` where an integer is expected: the integer, if it is one.
        Value::Number(n) if wants("integer") && !wants("number") && n.is_f64() => {
            match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
                _ => core,
            }
        }
        Value::Number(_) | Value::Bool(_)
            if wants("string") && !wants("integer") && !wants("number") && !wants("boolean") =>
        {
            Value::String(text.to_string())
        }
        _ => core,
    }
}

fn schema_findings(
    schema: &ValuesSchema,
    path: &str,
    positions: &Positions,
    instance: &Value,
    err: &jsonschema::ValidationError<'_>,
    tag: Option<&str>,
) -> Vec<Finding> {
    let pointer = err.instance_path().as_str().to_string();
    let field = pointer_to_dotted(&pointer);
    let schema_path = err.schema_path().as_str().to_string();
    // The evaluation path keeps the `$ref`s it went through (`/properties/app/$ref/...`),
    // so the description written beside the field is found, not only the shared one.
    let hint = schema
        .description_for(err.evaluation_path().as_str())
        .or_else(|| schema.description_for(&schema_path));
    let at_value = |f: Finding| f.at(path, positions.value(&pointer));
    let name = if field.is_empty() {
        "the values file".to_string()
    } else {
        format!("`{field}`")
    };
    match err.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed = schema
                .at_instance(&pointer)
                .map(|s| schema.property_names(s))
                .unwrap_or_default();
            unexpected
                .iter()
                .map(|key| {
                    let key_ptr = format!("{pointer}/{}", crate::pointer::escape(key));
                    let mut f = Finding::error(
                        "values-unknown-field",
                        format!("unknown field `{}`", join_dotted(&field, key)),
                    )
                    .at(path, positions.key(&key_ptr));
                    f.help = Some(match did_you_mean(key, &allowed) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if !allowed.is_empty() => {
                            format!("allowed here: {}", allowed.join(", "))
                        }
                        None => "remove it".to_string(),
                    });
                    f
                })
                .collect()
        }
        ValidationErrorKind::FalseSchema => {
            let archetype = instance
                .get("archetype")
                .and_then(Value::as_str)
                .unwrap_or("?");
            vec![Finding::error(
                "values-not-for-archetype",
                format!("{name} does not apply to archetype `{archetype}`"),
            )
            .at(path, positions.key(&pointer))
            .help("remove it, or choose the archetype it belongs to")]
        }
        ValidationErrorKind::Required { property } => {
            let prop = property.as_str().unwrap_or_default();
            let mut f = Finding::error(
                "values-required",
                format!("missing required field `{}`", join_dotted(&field, prop)),
            )
            .at(path, positions.value(&pointer));
            if prop == "version" {
                f.help = Some("set `version:` to an image tag or digest, or pass --tag".into());
            } else if prop == "schedule" {
                f.help = Some("a cronjob needs `schedule:`, e.g. \"*/15 * * * *\"".into());
            }
            vec![f]
        }
        ValidationErrorKind::PropertyNames { error } => {
            let key = error.instance().as_str().unwrap_or_default().to_string();
            let key_ptr = format!("{pointer}/{}", crate::pointer::escape(&key));
            let allowed = schema
                .at_instance(&pointer)
                .map(|s| schema.property_names(s))
                .unwrap_or_default();
            let mut f = Finding::error(
                "values-schema",
                format!("{name} may not have the key `{key}`: {error}"),
            )
            .at(path, positions.key(&key_ptr));
            f.help = did_you_mean(&key, &allowed)
                .map(|s| format!("did you mean `{s}`?"))
                .or(hint);
            vec![f]
        }
        ValidationErrorKind::Type { .. } => {
            let found = describe(err.instance());
            let expected = schema
                .at_instance(&pointer)
                .map(|s| schema.types(s).join(" or "))
                .unwrap_or_default();
            let mut f = at_value(Finding::error(
                "values-type",
                format!("{name} must be {}, found {found}", article(&expected)),
            ));
            if err.instance().is_string() && (expected == "integer" || expected == "boolean") {
                f.help = Some("write it without quotes".into());
            } else {
                f.help = hint;
            }
            vec![f]
        }
        ValidationErrorKind::Enum { options } => {
            let opts: Vec<String> = options
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let given = err.instance().as_str().unwrap_or_default();
            let mut f = at_value(Finding::error(
                "values-schema",
                format!(
                    "{name} must be one of {}, found {}",
                    opts.join(", "),
                    describe(err.instance())
                ),
            ));
            f.help = did_you_mean(given, &opts).map(|s| format!("did you mean `{s}`?"));
            vec![f]
        }
        _ => {
            let mut message = format!("{name}: {}", plain_message(err));
            if field == "version" && tag.is_some() {
                message.push_str(" (from --tag)");
            }
            let mut f = at_value(Finding::error("values-schema", message));
            f.help = hint;
            vec![f]
        }
    }
}

/// jsonschema's message, with patterns and long instances shortened for people.
fn plain_message(err: &jsonschema::ValidationError<'_>) -> String {
    let found = describe(err.instance());
    match err.kind() {
        ValidationErrorKind::Pattern { .. }
        | ValidationErrorKind::AnyOf { .. }
        | ValidationErrorKind::Not { .. } => {
            format!("{found} is not allowed here")
        }
        ValidationErrorKind::MaxLength { limit } => {
            format!("{found} is longer than {limit} characters")
        }
        ValidationErrorKind::MinLength { limit } => {
            format!("{found} is shorter than {limit} characters")
        }
        ValidationErrorKind::Minimum { limit } => {
            format!("{found} is less than the minimum {limit}")
        }
        ValidationErrorKind::Maximum { limit } => {
            format!("{found} is more than the maximum {limit}")
        }
        ValidationErrorKind::MaxItems { limit } => format!("more than {limit} items"),
        ValidationErrorKind::MaxProperties { limit } => format!("more than {limit} entries"),
        ValidationErrorKind::UniqueItems => "items must not repeat".to_string(),
        _ => err.to_string(),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let shown: String = s.chars().take(60).collect();
            let shown = serde_json::to_string(&shown).unwrap_or_default();
            if s.chars().count() > 60 {
                format!("the string {}…", shown.trim_end_matches('"'))
            } else {
                format!("the string {shown}")
            }
        }
        Value::Null => "nothing (null)".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn article(t: &str) -> String {
    match t {
        "integer" => "an integer".into(),
        "object" => "a mapping".into(),
        "array" => "a list".into(),
        "" => "something else".into(),
        other => format!("a {other}"),
    }
}

pub fn pointer_to_dotted(pointer: &str) -> String {
    crate::pointer::segments(pointer)
        .collect::<Vec<_>>()
        .join(".")
}

fn join_dotted(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// The closest permitted name, if it is close enough to be what was meant.
pub fn did_you_mean<'a>(given: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| {
            (
                strsim::jaro_winkler(&given.to_ascii_lowercase(), &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.as_str())
}

/// Platform defaults for the archetype, then the team's values, then the environment's
/// overrides (an override's `env` adds to and replaces single variables).
fn effective_values(platform: &Platform, values: &Value, archetype: &str, env: &str) -> Value {
    let mut out = platform
        .settings
        .defaults
        .get(archetype)
        .cloned()
        .unwrap_or_default();
    let Some(team) = values.as_object() else {
        return Value::Object(out);
    };
    for (k, v) in team {
        if k == "environments" {
            continue;
        }
        // A team's `health: {path}` keeps the platform's default `port`.
        match (out.get_mut(k), v) {
            (Some(Value::Object(base)), Value::Object(given)) => {
                for (name, value) in given {
                    base.insert(name.clone(), value.clone());
                }
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(Value::Object(over)) = team.get("environments").and_then(|e| e.get(env)) {
        for (k, v) in over {
            match (k.as_str(), out.get_mut(k), v) {
                ("env", Some(Value::Object(base)), Value::Object(extra)) => {
                    for (name, value) in extra {
                        base.insert(name.clone(), value.clone());
                    }
                }
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_names_only() {
        let c = vec![
            "replicas".to_string(),
            "port".to_string(),
            "image".to_string(),
        ];
        assert_eq!(did_you_mean("replcias", &c), Some("replicas"));
        assert_eq!(did_you_mean("imgae", &c), Some("image"));
        assert_eq!(did_you_mean("database", &c), None);
    }

    #[test]
    fn scalars_follow_the_expected_type() {
        assert_eq!(
            typed_scalar("1.10", Style::Plain, None, &["string"]),
            Value::String("1.10".into())
        );
        assert_eq!(
            typed_scalar("yes", Style::Plain, None, &["string"]),
            Value::String("yes".into())
        );
        assert_eq!(
            typed_scalar("0755", Style::Plain, None, &["string"]),
            Value::String("0755".into())
        );
        assert_eq!(
            typed_scalar("true", Style::Plain, None, &["string"]),
            Value::String("true".into())
        );
        assert_eq!(
            typed_scalar("1e3", Style::Plain, None, &["integer"]),
            Value::from(1000)
        );
        assert_eq!(
            typed_scalar("3", Style::Quoted, None, &["integer"]),
            Value::String("3".into())
        );
        assert_eq!(
            typed_scalar("3", Style::Plain, None, &["integer"]),
            Value::from(3)
        );
    }
}
