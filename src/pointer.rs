//! JSON pointers (RFC 6901) and the local `$ref`s of JSON schemas: the one place that
//! escapes and unescapes a pointer's segments and follows `#/...` references, for the
//! values schema, the Kubernetes API schemas, CRD schemas and YAML positions alike.
//!
//! Why by hand: the rules are two substitutions each way, and `serde_json::Value::
//! pointer` already resolves a whole pointer; what the callers need is the segments one
//! at a time (to walk a schema beside a document), which no crate in the tree exposes.
//! jsonschema's `referencing` resolves remote and relative references too, but every
//! schema here is one self-contained document with `#/...` references only.

use std::borrow::Cow;

use serde_json::Value;
use serde_path_to_error::Segment;

/// One segment, escaped for a pointer: `~` as `~0`, `/` as `~1`.
pub fn escape(segment: &str) -> Cow<'_, str> {
    if segment.contains(['~', '/']) {
        Cow::Owned(segment.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(segment)
    }
}

/// One segment as written in a pointer, unescaped (`~1` first, so `~01` is `~1`).
pub fn unescape(segment: &str) -> Cow<'_, str> {
    if segment.contains('~') {
        Cow::Owned(segment.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(segment)
    }
}

/// The unescaped segments of a pointer (`""` has none; `/a~1b/0` has `a/b` and `0`).
pub fn segments(pointer: &str) -> impl Iterator<Item = Cow<'_, str>> {
    pointer.split('/').skip(1).map(unescape)
}

/// The value at `pointer` in `root`: what `serde_json::Value::pointer` finds, without
/// the new `String` it makes for every segment. The field rules of `validate` look up a
/// dozen pointers in every object, and those strings were a tenth of their time.
pub fn lookup<'v>(root: &'v Value, pointer: &str) -> Option<&'v Value> {
    if pointer.is_empty() {
        return Some(root);
    }
    if !pointer.starts_with('/') {
        return None;
    }
    segments(pointer).try_fold(root, |node, segment| match node {
        Value::Object(map) => map.get(segment.as_ref()),
        Value::Array(items) => array_index(&segment).and_then(|i| items.get(i)),
        _ => None,
    })
}

/// An array index as RFC 6901 writes it: digits, no sign, no leading zero.
fn array_index(segment: &str) -> Option<usize> {
    if segment.starts_with('+') || (segment.starts_with('0') && segment.len() != 1) {
        return None;
    }
    segment.parse().ok()
}

/// Where serde_path_to_error stopped, as a pointer: built from its segments, never by
/// parsing its display form (`a.b[0]`), which cannot tell a key holding `.` or `[`
/// (a label key such as `app.kubernetes.io/name`) from a path through it.
pub fn from_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                out.push('/');
                out.push_str(&index.to_string());
            }
            Segment::Map { key } => {
                out.push('/');
                out.push_str(&escape(key));
            }
            // An enum variant or an unknown step names no node of the document.
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

/// Follows local references (`{"$ref": "#/definitions/x"}`) from `schema` within
/// `root` until a schema without one; a reference that does not resolve, or a chain
/// longer than any real schema has (a cycle), stops at the last schema reached.
pub fn resolve_ref<'a>(root: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..32 {
        match schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|p| root.pointer(p))
        {
            Some(next) => schema = next,
            None => break,
        }
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookup_finds_what_serde_json_finds() {
        let doc = json!({"a/b": {"c~d": [10, {"": 1}]}, "0": "zero", "e": null});
        for p in [
            "",
            "/",
            "/a~1b",
            "/a~1b/c~0d",
            "/a~1b/c~0d/0",
            "/a~1b/c~0d/1/",
            "/a~1b/c~0d/01",
            "/a~1b/c~0d/+1",
            "/a~1b/c~0d/2",
            "/a~1b/c~0d/-1",
            "/0",
            "/e",
            "/e/x",
            "a",
            "/a/b",
            "/a~1b/c~0d/1",
        ] {
            assert_eq!(lookup(&doc, p), doc.pointer(p), "{p:?}");
        }
    }

    #[test]
    fn segments_round_trip() {
        for s in [
            "plain",
            "a/b",
            "~",
            "~1",
            "~0/~1",
            "app.kubernetes.io/name",
            "",
        ] {
            assert_eq!(unescape(&escape(s)), s);
        }
        assert_eq!(escape("a/b~c"), "a~1b~0c");
        assert_eq!(unescape("~01"), "~1");
        let got: Vec<_> = segments("/metadata/labels/app.kubernetes.io~1name/0").collect();
        assert_eq!(got, ["metadata", "labels", "app.kubernetes.io/name", "0"]);
        assert_eq!(segments("").count(), 0);
    }

    #[test]
    fn serde_paths_become_pointers_segment_by_segment() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Doc {
            labels: std::collections::BTreeMap<String, Vec<u32>>,
        }
        let doc = json!({"labels": {"app.kubernetes.io/name": [1, "two"]}});
        let err = serde_path_to_error::deserialize::<_, Doc>(&doc).unwrap_err();
        assert_eq!(from_path(err.path()), "/labels/app.kubernetes.io~1name/1");
    }

    #[test]
    fn references_are_followed_and_cycles_end() {
        let root = json!({
            "$defs": {
                "a": {"$ref": "#/$defs/b"},
                "b": {"type": "string"},
                "loop": {"$ref": "#/$defs/loop"},
            },
            "properties": {"x": {"$ref": "#/$defs/a"}, "y": {"$ref": "#/nowhere"}},
        });
        let x = &root["properties"]["x"];
        assert_eq!(resolve_ref(&root, x), &json!({"type": "string"}));
        let y = &root["properties"]["y"];
        assert_eq!(resolve_ref(&root, y), y);
        let l = &root["$defs"]["loop"];
        assert_eq!(resolve_ref(&root, l), l);
    }
}
