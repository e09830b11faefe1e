//! ConfigMaps, Secrets, claims and PersistentVolumes: keys that become file names, access
//! modes, the storage a claim must request and a volume must offer.

use super::quantities::{parse_quantity_value, quantity, quantity_map};
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
    // The server keeps a ConfigMap's or Secret's values under 1 MiB in all, counted after
    // base64 decoding where the API takes base64 (binaryData, a Secret's data).
    let mut total = 0;
    for &at in maps {
        let base64 = at == "/binaryData" || (kind == "Secret" && at == "/data");
        for v in map_at(object, at).into_iter().flat_map(|m| m.values()) {
            if let Some(s) = v.as_str() {
                total += if base64 {
                    s.trim_end_matches('=').len() * 3 / 4
                } else {
                    s.len()
                };
            }
        }
    }
    if total > MAX_CONFIG_BYTES {
        let at = maps
            .iter()
            .find(|at| map_at(object, at).is_some())
            .copied()
            .unwrap_or("");
        out.push(
            Issue::error(
                "kube-config-key",
                at,
                format!("the {kind}'s values take {total} bytes; the API server allows at most {MAX_CONFIG_BYTES} (1 MiB)"),
            )
            .help("split it into several objects, or mount the large files from a volume"),
        );
    }
}

/// `kube-secret-type`: a Secret of a built-in type carries what its type promises to
/// whoever reads it (a TLS pair, a docker config that is a JSON object, a private key),
/// and the server refuses one that does not. `stringData` is merged into `data` before
/// the server checks, so a key may be in either.
pub(super) fn secret_type(object: &Value, out: &mut Vec<Issue>) {
    let Some(kind) = str_at(object, "/type") else {
        return;
    };
    let data = map_at(object, "/data");
    let plain = map_at(object, "/stringData");
    let has = |key: &str| {
        data.is_some_and(|m| m.contains_key(key)) || plain.is_some_and(|m| m.contains_key(key))
    };
    // The value as the server sees it: `stringData` wins over `data`, which is base64.
    let bytes = |key: &str| -> Option<Vec<u8>> {
        if let Some(s) = plain.and_then(|m| m.get(key)).and_then(Value::as_str) {
            return Some(s.as_bytes().to_vec());
        }
        let s = data.and_then(|m| m.get(key)).and_then(Value::as_str)?;
        use base64::Engine;
        // Not base64 is the schema walk's finding already.
        base64::engine::general_purpose::STANDARD.decode(s).ok()
    };
    let missing = |what: String, out: &mut Vec<Issue>| {
        let at = if data.is_some() { "/data" } else { "/type" };
        out.push(Issue::error(
            "kube-secret-type",
            at,
            format!("a Secret of type {kind} needs {what} in its data"),
        ));
    };
    match kind {
        "kubernetes.io/service-account-token" => {
            let named = str_at(
                object,
                "/metadata/annotations/kubernetes.io~1service-account.name",
            )
            .is_some_and(|n| !n.is_empty());
            if !named {
                out.push(Issue::error(
                    "kube-secret-type",
                    if map_at(object, "/metadata/annotations").is_some() {
                        "/metadata/annotations"
                    } else {
                        "/type"
                    },
                    "a service account token Secret needs the annotation kubernetes.io/service-account.name, naming its ServiceAccount",
                ));
            }
        }
        "kubernetes.io/tls" => {
            let absent: Vec<&str> = ["tls.crt", "tls.key"]
                .into_iter()
                .filter(|k| !has(k))
                .collect();
            if !absent.is_empty() {
                let keys: Vec<String> = absent.iter().map(|k| format!("{k:?}")).collect();
                missing(keys.join(" and "), out);
            }
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            missing(
                "\"username\" or \"password\" (either may be empty)".into(),
                out,
            );
        }
        "kubernetes.io/ssh-auth" => {
            let key = "ssh-privatekey";
            if !has(key) || bytes(key).is_some_and(|b| b.is_empty()) {
                missing(format!("a non-empty {key:?}"), out);
            }
        }
        "kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson" => {
            let key = if kind == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            if !has(key) {
                missing(format!("{key:?}"), out);
            } else if let Some(bytes) = bytes(key) {
                let at = if plain.is_some_and(|m| m.contains_key(key)) {
                    child("/stringData", key)
                } else {
                    child("/data", key)
                };
                match serde_json::from_slice::<Value>(&bytes) {
                    // Go reads `null` into a map without complaint.
                    Ok(Value::Object(_) | Value::Null) => {}
                    // The server's own words stay out: they would quote the secret.
                    Ok(_) => out.push(Issue::error(
                        "kube-secret-type",
                        at,
                        format!("{key} must hold a JSON object"),
                    )),
                    Err(e) => out.push(Issue::error(
                        "kube-secret-type",
                        at,
                        format!(
                            "{key} is not valid JSON (line {}, column {})",
                            e.line(),
                            e.column()
                        ),
                    )),
                }
            }
        }
        _ => {}
    }
}

/// The most a ConfigMap's or Secret's values may hold (the API's MaxSecretSize).
const MAX_CONFIG_BYTES: usize = 1024 * 1024;

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
/// A PersistentVolume: its access modes, a capacity that is storage alone, one source,
/// and the node affinity a `local` volume cannot do without.
pub(super) fn persistent_volume(object: &Value, out: &mut Vec<Issue>) {
    let Some(spec) = map_at(object, "/spec") else {
        return;
    };
    access_modes(object, "/spec/accessModes", out);
    one_of(
        object,
        "/spec/persistentVolumeReclaimPolicy",
        &["Retain", "Recycle", "Delete"],
        out,
    );
    one_of(object, "/spec/volumeMode", &["Block", "Filesystem"], out);
    match spec.get("capacity").and_then(Value::as_object) {
        None => out.push(Issue::error(
            "kube-required-field",
            "/spec",
            "a PersistentVolume needs capacity.storage, the size it offers",
        )),
        Some(capacity) => {
            for key in capacity.keys().filter(|k| *k != "storage") {
                out.push(Issue {
                    at_key: true,
                    ..Issue::error(
                        "kube-quantity",
                        child("/spec/capacity", key),
                        format!("a PersistentVolume's capacity holds storage only, not {key:?}"),
                    )
                });
            }
            match capacity.get("storage") {
                None => out.push(Issue::error(
                    "kube-required-field",
                    "/spec/capacity",
                    "a PersistentVolume needs capacity.storage, the size it offers",
                )),
                Some(q) => {
                    quantity(object, "/spec/capacity/storage", out);
                    if parse_quantity_value(q).is_some_and(|v| v <= 0.0) {
                        out.push(Issue::error(
                            "kube-quantity",
                            "/spec/capacity/storage",
                            "a PersistentVolume's storage must be more than zero",
                        ));
                    }
                }
            }
        }
    }
    // The volume plugins a PersistentVolume can name; the other spec fields describe it.
    const SOURCES: &[&str] = &[
        "awsElasticBlockStore",
        "azureDisk",
        "azureFile",
        "cephfs",
        "cinder",
        "csi",
        "fc",
        "flexVolume",
        "flocker",
        "gcePersistentDisk",
        "glusterfs",
        "hostPath",
        "iscsi",
        "local",
        "nfs",
        "photonPersistentDisk",
        "portworxVolume",
        "quobyte",
        "rbd",
        "scaleIO",
        "storageos",
        "vsphereVolume",
    ];
    let given: Vec<&str> = SOURCES
        .iter()
        .copied()
        .filter(|s| spec.get(*s).is_some_and(|v| !v.is_null()))
        .collect();
    match given.len() {
        0 => out.push(Issue::error(
            "kube-volume",
            "/spec",
            "a PersistentVolume names no volume source (csi, nfs, local, hostPath...)",
        )),
        1 => {}
        n => out.push(Issue::error(
            "kube-volume",
            "/spec",
            format!(
                "a PersistentVolume has one volume source; this one has {n} ({})",
                given.join(", ")
            ),
        )),
    }
    if given.contains(&"local") && spec.get("nodeAffinity").is_none_or(Value::is_null) {
        out.push(conflict(
            "/spec/local",
            "a local PersistentVolume needs nodeAffinity: the node its disk is on",
        ));
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn size_issues(object: Value, kind: &str) -> Vec<String> {
        let mut out = Vec::new();
        config_keys(&object, kind, &mut out);
        out.into_iter()
            .map(|i| format!("{} {}", i.pointer, i.message))
            .collect()
    }

    #[test]
    fn values_are_counted_as_the_api_server_stores_them() {
        // 800,000 bytes as base64 (1,066,668 characters) and 300,000 plain: over 1 MiB.
        let binary = "A".repeat(1_066_668);
        let over = json!({"data": {"a": "x".repeat(300_000)}, "binaryData": {"b": binary}});
        assert_eq!(
            size_issues(over, "ConfigMap"),
            ["/data the ConfigMap's values take 1100001 bytes; the API server allows at most 1048576 (1 MiB)"]
        );
        // Exactly 1 MiB once decoded, although the base64 text is longer: allowed.
        let exact = format!("{}==", "A".repeat(1_398_102));
        assert!(size_issues(json!({"data": {"k": exact}}), "Secret").is_empty());
        // A Secret's stringData is plain text.
        let plain = json!({"stringData": {"k": "x".repeat(1_048_577)}});
        assert_eq!(size_issues(plain, "Secret").len(), 1);
    }
}
