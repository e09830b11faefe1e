//! ConfigMaps, Secrets and claims: keys that become file names, access modes, and the
//! storage a claim must request.

use super::quantities::quantity_map;
use super::*;

/// `kube-config-key`: the keys of a ConfigMap's or Secret's data become file names in a
/// volume, so the server allows only letters, digits, `-`, `_` and `.`.
pub(super) fn config_keys(object: &Value, kind: &str, out: &mut Vec<Issue>) {
    let maps: &[&str] = if kind == "Secret" {
        &["/data", "/stringData"]
    } else {
        &["/data", "/binaryData"]
    };
    for &at in maps {
        let Some(map) = map_at(object, at) else {
            continue;
        };
        for k in map.keys() {
            let why = if k.is_empty() || k.len() > 253 {
                Some("it must have 1 to 253 characters")
            } else if !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                Some("only letters, digits, `-`, `_` and `.` are allowed")
            } else if k == "." || k == ".." || k.starts_with("..") {
                Some("it must not be `.` or `..`, or start with `..`")
            } else {
                None
            };
            if let Some(why) = why {
                out.push(Issue {
                    at_key: true,
                    ..Issue::error(
                        "kube-config-key",
                        child(at, k),
                        format!("the key {k:?} is not a valid {kind} key: {why}"),
                    )
                });
            }
        }
    }
    if kind == "ConfigMap" {
        if let (Some(data), Some(binary)) = (map_at(object, "/data"), map_at(object, "/binaryData"))
        {
            for k in binary.keys().filter(|k| data.contains_key(*k)) {
                out.push(Issue {
                    at_key: true,
                    ..Issue::error(
                        "kube-config-key",
                        child("/binaryData", k),
                        format!("the key {k:?} is in both data and binaryData; a key may be in one of them only"),
                    )
                });
            }
        }
    }
}

/// A PersistentVolumeClaim's spec (or a StatefulSet's claim template's): access modes,
/// the volume mode, and a storage request.
pub(super) fn claim_spec(object: &Value, spec: &str, out: &mut Vec<Issue>) {
    if map_at(object, spec).is_none() {
        return;
    }
    access_modes(object, &format!("{spec}/accessModes"), out);
    one_of(
        object,
        &format!("{spec}/volumeMode"),
        &["Filesystem", "Block"],
        out,
    );
    let requests = format!("{spec}/resources/requests");
    quantity_map(object, &requests, out);
    quantity_map(object, &format!("{spec}/resources/limits"), out);
    if map_at(object, &requests).is_none_or(|r| !r.contains_key("storage")) {
        out.push(Issue::error(
            "kube-required-field",
            format!("{spec}/resources"),
            "a claim must request storage: set resources.requests.storage",
        ));
    }
}

/// A volume's or claim's access modes: at least one, each a known mode, and
/// ReadWriteOncePod alone.
pub(super) fn access_modes(object: &Value, at: &str, out: &mut Vec<Issue>) {
    let modes = list_at(object, at);
    if modes.is_empty() {
        out.push(Issue::error(
            "kube-required-field",
            at,
            "at least one access mode is required: ReadWriteOnce, ReadOnlyMany, ReadWriteMany or ReadWriteOncePod",
        ));
        return;
    }
    for i in 0..modes.len() {
        one_of(
            object,
            &format!("{at}/{i}"),
            &[
                "ReadWriteOnce",
                "ReadOnlyMany",
                "ReadWriteMany",
                "ReadWriteOncePod",
            ],
            out,
        );
    }
    if modes.len() > 1 && modes.iter().any(|m| m.as_str() == Some("ReadWriteOncePod")) {
        out.push(conflict(
            at,
            "ReadWriteOncePod may not be combined with other access modes",
        ));
    }
}
