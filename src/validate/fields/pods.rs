//! Pod specs, wherever they are (a Pod, a workload's template): containers, ports,
//! probes, hooks, resources, security profiles, and where the pod may be scheduled.

use super::meta::{is_qualified_name, selector, KEY_SYNTAX};
use super::network::{int_or_port_name, port_name, port_number};
use super::quantities::{parse_quantity_value, quantity, quantity_map};
use super::*;

/// `claims` are the names of a StatefulSet's claim templates: its controller adds a
/// volume of each name to every pod (replacing one of the same name), so containers may
/// mount them although the template's `volumes` do not list them.
pub(super) fn pod_spec(
    object: &Value,
    spec: &str,
    restart: &[&str],
    claims: &[&str],
    out: &mut Vec<Issue>,
) {
    if map_at(object, spec).is_none() {
        return;
    }
    one_of(object, &format!("{spec}/restartPolicy"), restart, out);
    one_of(
        object,
        &format!("{spec}/dnsPolicy"),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        out,
    );
    security_context(object, &format!("{spec}/securityContext"), out);
    sysctls(object, &format!("{spec}/securityContext/sysctls"), out);
    scheduling(object, spec, out);
    if let Some(pod) = lookup(object, spec) {
        names_and_dns(pod, spec, out);
    }
    at_least(object, &format!("{spec}/activeDeadlineSeconds"), 1, out);
    let host_network =
        lookup(object, &format!("{spec}/hostNetwork")).and_then(Value::as_bool) == Some(true);
    let mut volumes = std::collections::HashSet::new();
    let vol_at = format!("{spec}/volumes");
    for (i, v) in list_at(object, &vol_at).iter().enumerate() {
        let Some(name) = v.get("name").and_then(Value::as_str) else {
            continue;
        };
        let at = format!("{vol_at}/{i}/name");
        if !is_dns_label(name) {
            out.push(Issue::error(
                "kube-name",
                at.clone(),
                format!("the volume name {name:?} is not a valid DNS-1123 label"),
            ));
        }
        if !volumes.insert(name) {
            out.push(Issue::error(
                "kube-name",
                at,
                format!("the volume name {name:?} is used twice in the pod"),
            ));
        }
        quantity(object, &format!("{vol_at}/{i}/emptyDir/sizeLimit"), out);
        volume(object, &format!("{vol_at}/{i}"), out);
    }
    volumes.extend(claims.iter().copied());
    if lookup(object, &format!("{spec}/containers"))
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        out.push(Issue::error(
            "kube-required-field",
            format!("{spec}/containers"),
            "a pod needs at least one container",
        ));
    }
    let mut names = std::collections::HashSet::new();
    for field in ["initContainers", "containers", "ephemeralContainers"] {
        let list_ptr = format!("{spec}/{field}");
        for (i, c) in list_at(object, &list_ptr).iter().enumerate() {
            if !c.is_object() {
                continue;
            }
            let at = format!("{list_ptr}/{i}");
            if let Some(name) = c.get("name").and_then(Value::as_str) {
                if !is_dns_label(name) {
                    out.push(Issue::error(
                        "kube-name",
                        format!("{at}/name"),
                        format!("the container name {name:?} is not a valid DNS-1123 label"),
                    ));
                } else if !names.insert(name) {
                    out.push(Issue::error(
                        "kube-name",
                        format!("{at}/name"),
                        format!("the container name {name:?} is used twice in the pod"),
                    ));
                }
            }
            container(object, &at, field, &volumes, host_network, out);
        }
    }
    host_ports(object, spec, out);
}

/// `kube-volume`: one source per volume; file modes and paths of the files a volume
/// projects; a token's lifetime.
fn volume(object: &Value, at: &str, out: &mut Vec<Issue>) {
    let Some(v) = map_at(object, at) else {
        return;
    };
    // No source at all is an emptyDir (the API's default), so only several are refused.
    let sources: Vec<&str> = v
        .iter()
        .filter(|(k, val)| k.as_str() != "name" && !val.is_null())
        .map(|(k, _)| k.as_str())
        .collect();
    if sources.len() > 1 {
        out.push(Issue::error(
            "kube-volume",
            at,
            format!(
                "the volume has {} sources ({}); a volume has exactly one",
                sources.len(),
                sources.join(", ")
            ),
        ));
    }
    // Only the sources present are looked at: every pod's volumes come through here.
    for source in ["configMap", "secret", "downwardAPI", "projected"] {
        if v.get(source).is_some_and(Value::is_object) {
            file_mode(object, &format!("{at}/{source}/defaultMode"), out);
            if source != "projected" {
                projected_files(object, &format!("{at}/{source}"), out);
            }
        }
    }
    if !v.get("projected").is_some_and(Value::is_object) {
        return;
    }
    let sources = format!("{at}/projected/sources");
    for (i, src) in list_at(object, &sources).iter().enumerate() {
        let src_at = format!("{sources}/{i}");
        for kind in ["configMap", "secret", "downwardAPI"] {
            if src.get(kind).is_some_and(Value::is_object) {
                projected_files(object, &format!("{src_at}/{kind}"), out);
            }
        }
        for kind in ["serviceAccountToken", "clusterTrustBundle"] {
            if src.get(kind).is_some_and(Value::is_object) {
                relative_path(object, &format!("{src_at}/{kind}/path"), true, out);
            }
        }
        let ttl = format!("{src_at}/serviceAccountToken/expirationSeconds");
        between(
            object,
            &ttl,
            (600, 1 << 32),
            "10 minutes to 2^32 seconds",
            out,
        );
    }
}

/// The `items` of a configMap, secret or downwardAPI source: each file's path stays
/// inside the volume, and its mode is a file mode.
fn projected_files(object: &Value, at: &str, out: &mut Vec<Issue>) {
    let items = format!("{at}/items");
    for i in 0..list_at(object, &items).len() {
        relative_path(object, &format!("{items}/{i}/path"), true, out);
        file_mode(object, &format!("{items}/{i}/mode"), out);
    }
}

/// A path inside a volume: relative, and never climbing out with `..`. A file a volume
/// projects (`file`) is also required, and may not start with `..`, which the kubelet
/// keeps for its own (`..data`).
fn relative_path(object: &Value, at: &str, file: bool, out: &mut Vec<Issue>) {
    let Some(path) = str_at(object, at) else {
        return;
    };
    let why = if path.is_empty() {
        file.then_some("it may not be empty")
    } else if path.starts_with('/') {
        Some("it must be relative (no leading `/`)")
    } else if path.split('/').any(|seg| seg == "..") {
        Some("it may not contain `..`")
    } else if file && path.starts_with("..") {
        Some("it may not start with `..`, which the kubelet keeps for itself")
    } else {
        None
    };
    if let Some(why) = why {
        let field = at.rsplit('/').next().unwrap_or(at);
        out.push(Issue::error(
            if field == "path" {
                "kube-volume"
            } else {
                "kube-volume-mount"
            },
            at,
            format!("the {field} {path:?} is not valid: {why}"),
        ));
    }
}

/// A file mode: 0 to 0777. YAML's `0644` is octal to kubectl (and so here); a mode
/// written as decimal digits that look octal is the usual mistake.
fn file_mode(object: &Value, at: &str, out: &mut Vec<Issue>) {
    let Some(mode) = lookup(object, at).and_then(Value::as_i64) else {
        return;
    };
    if !(0..=0o777).contains(&mode) {
        let mut issue = Issue::error(
            "kube-volume",
            at,
            format!("the file mode {mode} is not between 0 and 0777 (511)"),
        );
        let text = mode.to_string();
        if let Ok(octal) = i64::from_str_radix(&text, 8).map_err(drop).and_then(|o| {
            if o <= 0o777 {
                Ok(o)
            } else {
                Err(())
            }
        }) {
            issue = issue.help(format!(
                "{mode} looks like an octal mode written without its leading zero: write `0{text}` (or {octal} in decimal)"
            ));
        }
        out.push(issue);
    }
}

/// Two containers of a pod cannot take the same port of the node (protocol, host IP and
/// port; the protocol defaults to TCP). The server compares the `containers` only.
fn host_ports(object: &Value, spec: &str, out: &mut Vec<Issue>) {
    let mut taken = std::collections::HashSet::new();
    let containers = format!("{spec}/containers");
    for (i, c) in list_at(object, &containers).iter().enumerate() {
        let ports = c
            .get("ports")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for (j, p) in ports.iter().enumerate() {
            let Some(port) = p
                .get("hostPort")
                .and_then(Value::as_i64)
                .filter(|&n| n != 0)
            else {
                continue;
            };
            let protocol = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            let ip = p.get("hostIP").and_then(Value::as_str).unwrap_or("");
            if !taken.insert((protocol, ip, port)) {
                out.push(Issue::error(
                    "kube-port",
                    format!("{containers}/{i}/ports/{j}/hostPort"),
                    format!("host port {port}/{protocol} is taken twice in the pod: each container port needs a host port of its own"),
                ));
            }
        }
    }
}

/// The names a pod spec gives (its host name, the objects it refers to) and its DNS
/// settings, as `ValidatePodSpec` checks them. Every pod pays for this, so it reads the
/// spec directly and spells a pointer only for what it reports.
fn names_and_dns(pod: &Value, spec: &str, out: &mut Vec<Issue>) {
    for (field, label) in [
        ("hostname", true),
        ("subdomain", true),
        ("serviceAccountName", false),
        ("runtimeClassName", false),
        ("priorityClassName", false),
        ("nodeName", false),
    ] {
        let Some(name) = pod
            .get(field)
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        else {
            continue;
        };
        let (valid, what) = if label {
            (is_dns_label(name), "DNS-1123 label")
        } else {
            (is_dns_subdomain(name), "DNS-1123 subdomain")
        };
        if !valid {
            out.push(Issue::error(
                "kube-name",
                format!("{spec}/{field}"),
                format!("{field} {name:?} is not a valid {what}"),
            ));
        }
    }
    for (i, a) in items(pod, "hostAliases").iter().enumerate() {
        if let Some(ip) = a.get("ip").and_then(Value::as_str) {
            if !is_ip(ip) {
                out.push(Issue::error(
                    "kube-dns-config",
                    format!("{spec}/hostAliases/{i}/ip"),
                    format!("the host alias address {ip:?} is not an IP address"),
                ));
            }
        }
        for (j, h) in items(a, "hostnames").iter().enumerate() {
            if let Some(h) = h.as_str().filter(|h| !is_dns_subdomain(h)) {
                out.push(Issue::error(
                    "kube-dns-config",
                    format!("{spec}/hostAliases/{i}/hostnames/{j}"),
                    format!("the host alias name {h:?} is not a valid DNS-1123 subdomain"),
                ));
            }
        }
    }
    let none = Value::Null;
    let config = pod.get("dnsConfig").unwrap_or(&none);
    let nameservers = items(config, "nameservers");
    if pod.get("dnsPolicy").and_then(Value::as_str) == Some("None") && nameservers.is_empty() {
        out.push(conflict(
            format!("{spec}/dnsPolicy"),
            "dnsPolicy None needs dnsConfig with at least one nameserver: the pod would have no DNS at all",
        ));
    }
    if nameservers.len() > 3 {
        out.push(Issue::error(
            "kube-dns-config",
            format!("{spec}/dnsConfig/nameservers"),
            format!(
                "dnsConfig has {} nameservers; at most 3 are allowed",
                nameservers.len()
            ),
        ));
    }
    for (i, ns) in nameservers.iter().enumerate() {
        if let Some(ns) = ns.as_str().filter(|ns| !is_ip(ns)) {
            out.push(Issue::error(
                "kube-dns-config",
                format!("{spec}/dnsConfig/nameservers/{i}"),
                format!("the nameserver {ns:?} is not an IP address"),
            ));
        }
    }
    let searches: Vec<&str> = items(config, "searches")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if searches.len() > 32 {
        out.push(Issue::error(
            "kube-dns-config",
            format!("{spec}/dnsConfig/searches"),
            format!(
                "dnsConfig has {} search domains; at most 32 are allowed",
                searches.len()
            ),
        ));
    } else if searches.iter().map(|s| s.len() + 1).sum::<usize>() > 2049 {
        out.push(Issue::error(
            "kube-dns-config",
            format!("{spec}/dnsConfig/searches"),
            "dnsConfig's search domains take more than 2048 characters (with a space between each)",
        ));
    }
    for (i, o) in items(config, "options").iter().enumerate() {
        if o.get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            out.push(Issue::error(
                "kube-required-field",
                format!("{spec}/dnsConfig/options/{i}"),
                "a DNS option needs a name",
            ));
        }
    }
}

/// A pod's sysctls: names as the kernel spells them (dots or slashes between segments),
/// each once.
fn sysctls(object: &Value, at: &str, out: &mut Vec<Issue>) {
    let mut seen = std::collections::HashSet::new();
    for (i, s) in list_at(object, at).iter().enumerate() {
        let Some(name) = s.get("name").and_then(Value::as_str) else {
            continue;
        };
        let segment_ok = |seg: &str| {
            let b = seg.as_bytes();
            !b.is_empty()
                && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
                && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
                && b.iter().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_'
                })
        };
        if name.len() > 253 || !name.split(['.', '/']).all(segment_ok) {
            out.push(Issue::error(
                "kube-name",
                format!("{at}/{i}/name"),
                format!("the sysctl name {name:?} is not valid: lower-case letters, digits, `-` and `_`, in segments joined by `.` or `/`"),
            ));
        } else if !seen.insert(name) {
            out.push(Issue::error(
                "kube-name",
                format!("{at}/{i}/name"),
                format!("the sysctl {name:?} is set twice"),
            ));
        }
    }
}

fn container(
    object: &Value,
    at: &str,
    field: &str,
    volumes: &std::collections::HashSet<&str>,
    host_network: bool,
    out: &mut Vec<Issue>,
) {
    security_context(object, &format!("{at}/securityContext"), out);
    if let Some(image) = str_at(object, &format!("{at}/image")) {
        if image.trim() != image {
            out.push(
                Issue::error(
                    "kube-image",
                    format!("{at}/image"),
                    format!("the image {image:?} has leading or trailing whitespace"),
                )
                .help(format!("write `image: {}`", image.trim())),
            );
        }
    }
    one_of(
        object,
        &format!("{at}/imagePullPolicy"),
        &["Always", "Never", "IfNotPresent"],
        out,
    );
    one_of(
        object,
        &format!("{at}/terminationMessagePolicy"),
        &["File", "FallbackToLogsOnError"],
        out,
    );
    let mut port_names = std::collections::HashSet::new();
    let ports = format!("{at}/ports");
    for (i, p) in list_at(object, &ports).iter().enumerate() {
        let pat = format!("{ports}/{i}");
        port_number(object, &format!("{pat}/containerPort"), 1, out);
        port_number(object, &format!("{pat}/hostPort"), 0, out);
        one_of(
            object,
            &format!("{pat}/protocol"),
            &["TCP", "UDP", "SCTP"],
            out,
        );
        port_name(object, &format!("{pat}/name"), out);
        // On the host's network a container's port is the node's: the two must agree
        // (an unset hostPort is given the containerPort).
        if let (true, Some(host), Some(own)) = (
            host_network,
            p.get("hostPort").and_then(Value::as_i64),
            p.get("containerPort").and_then(Value::as_i64),
        ) {
            if host != 0 && host != own {
                out.push(Issue::error(
                    "kube-port",
                    format!("{pat}/hostPort"),
                    format!("hostPort {host} differs from containerPort {own}: with hostNetwork: true they must be equal"),
                ));
            }
        }
        if let Some(name) = p.get("name").and_then(Value::as_str) {
            if !port_names.insert(name) {
                out.push(Issue::error(
                    "kube-port-name",
                    format!("{pat}/name"),
                    format!("the port name {name:?} is used twice in the container"),
                ));
            }
        }
    }
    let requests = format!("{at}/resources/requests");
    let limits = format!("{at}/resources/limits");
    quantity_map(object, &requests, out);
    quantity_map(object, &limits, out);
    for at in [&requests, &limits] {
        for r in map_at(object, at).into_iter().flat_map(|m| m.keys()) {
            if !is_container_resource(r) {
                out.push(Issue {
                    at_key: true,
                    ..Issue::error(
                        "kube-quantity",
                        child(at, r),
                        format!("{r:?} is not a resource a container can ask for: cpu, memory, ephemeral-storage, hugepages-<size>, or an extended resource with a domain (example.com/gpu)"),
                    )
                });
            }
        }
    }
    let lim = map_at(object, &limits);
    let mut compute = false;
    let mut hugepages = false;
    for at in [&requests, &limits] {
        for (r, q) in map_at(object, at).into_iter().flatten() {
            compute |= r == "cpu" || r == "memory";
            hugepages |= r.starts_with("hugepages-");
            let fraction = parse_quantity_value(q).is_some_and(|v| v.fract() != 0.0);
            if is_extended_resource(r) && fraction {
                out.push(Issue::error(
                    "kube-quantity",
                    child(at, r),
                    format!(
                        "{r} is counted in whole units: {} is not an integer",
                        show(q)
                    ),
                ));
            }
        }
    }
    if hugepages && !compute {
        out.push(Issue::error(
            "kube-quantity",
            format!("{at}/resources"),
            "a container that asks for hugepages must also ask for cpu or memory",
        ));
    }
    for (r, q) in map_at(object, &requests).into_iter().flatten() {
        let Some(want) = parse_quantity_value(q) else {
            continue;
        };
        let cap = lim.and_then(|l| l.get(r)).and_then(parse_quantity_value);
        // Hugepages and extended resources (GPUs) cannot be overcommitted: the request
        // is the limit. An absent request is given the limit, not the other way round.
        if !overcommit_allowed(r) {
            match cap {
                None if lim.is_none_or(|l| !l.contains_key(r)) => out.push(
                    Issue::error(
                        "kube-quantity",
                        child(&requests, r),
                        format!("{r} cannot be overcommitted, so a request for it needs a limit"),
                    )
                    .help(format!(
                        "set resources.limits.{r} to {} too (the request may then be left out)",
                        show(q)
                    )),
                ),
                Some(cap) if cap != want => out.push(Issue::error(
                    "kube-quantity",
                    child(&requests, r),
                    format!(
                        "{r} cannot be overcommitted: its request ({}) must equal its limit ({})",
                        show(q),
                        show(&lim.expect("has the limit")[r])
                    ),
                )),
                _ => {}
            }
            continue;
        }
        if let (Some(cap), Some(lim)) = (cap, lim) {
            if cap < want {
                out.push(Issue::error(
                    "kube-quantity",
                    child(&requests, r),
                    format!("the {r} request ({}) is more than its limit ({}): a request must be less than or equal to the limit", show(q), show(&lim[r])),
                ));
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if field == "ephemeralContainers" {
            break;
        }
        self::probe(object, &format!("{at}/{probe}"), probe, out);
    }
    for hook in ["postStart", "preStop"] {
        let h = format!("{at}/lifecycle/{hook}");
        if let Some(handler) = map_at(object, &h) {
            let set: Vec<&str> = ["exec", "httpGet", "tcpSocket", "sleep"]
                .into_iter()
                .filter(|k| handler.get(*k).is_some_and(|v| !v.is_null()))
                .collect();
            let message = match set.len() {
                0 => format!("the {hook} hook has no handler: give it one of exec, httpGet, tcpSocket or sleep"),
                1 => continue,
                n => format!("the {hook} hook has {n} handlers ({}): give it exactly one", set.join(", ")),
            };
            out.push(conflict(h, message));
        }
    }
    let env = format!("{at}/env");
    for (i, e) in list_at(object, &env).iter().enumerate() {
        if let Some(name) = e.get("name").and_then(Value::as_str) {
            if name.is_empty()
                || name
                    .bytes()
                    .any(|b| !(b' '..=b'~').contains(&b) || b == b'=')
            {
                out.push(Issue::error(
                    "kube-name",
                    format!("{env}/{i}/name"),
                    format!("the environment variable name {name:?} is not valid: it must be printable ASCII characters other than `=`"),
                ));
            }
        }
        let Some(from) = e.get("valueFrom").and_then(Value::as_object) else {
            continue;
        };
        let at = format!("{env}/{i}/valueFrom");
        if e.get("value")
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty())
        {
            out.push(conflict(
                at.clone(),
                "an environment variable may have a value or a valueFrom, not both",
            ));
        }
        let sources: Vec<&str> = from
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k.as_str())
            .collect();
        match sources.len() {
            0 => out.push(conflict(
                at,
                "valueFrom names no source: give it one of configMapKeyRef, fieldRef, fileKeyRef, resourceFieldRef or secretKeyRef",
            )),
            1 => {}
            n => out.push(conflict(
                at,
                format!(
                    "valueFrom names {n} sources ({}); it may name one",
                    sources.join(", ")
                ),
            )),
        }
    }
    let mounts = format!("{at}/volumeMounts");
    let mut paths = std::collections::HashSet::new();
    for (i, m) in list_at(object, &mounts).iter().enumerate() {
        let set = |k: &str| {
            m.get(k)
                .and_then(Value::as_str)
                .is_some_and(|p| !p.is_empty())
        };
        let (sub_path, expr) = (set("subPath"), set("subPathExpr"));
        if sub_path || expr || m.get("mountPropagation").is_some() {
            let mount = format!("{mounts}/{i}");
            relative_path(object, &format!("{mount}/subPath"), false, out);
            relative_path(object, &format!("{mount}/subPathExpr"), false, out);
            if sub_path && expr {
                out.push(conflict(
                    format!("{mount}/subPathExpr"),
                    "a volume mount may have subPath or subPathExpr, not both",
                ));
            }
            one_of(
                object,
                &format!("{mount}/mountPropagation"),
                &["None", "HostToContainer", "Bidirectional"],
                out,
            );
        }
        if let Some(path) = m.get("mountPath").and_then(Value::as_str) {
            if !paths.insert(path) {
                out.push(Issue::error(
                    "kube-volume-mount",
                    format!("{mounts}/{i}/mountPath"),
                    format!("the mount path {path:?} is used twice in the container"),
                ));
            }
        }
        if let Some(name) = m.get("name").and_then(Value::as_str) {
            if !volumes.contains(name) {
                out.push(Issue::error(
                    "kube-volume-mount",
                    format!("{mounts}/{i}/name"),
                    format!("the volume mount {name:?} names no volume of the pod: add it to the pod's `volumes`, or fix the name"),
                ));
            }
        }
    }
}

fn probe(object: &Value, at: &str, which: &str, out: &mut Vec<Issue>) {
    let Some(p) = map_at(object, at) else {
        return;
    };
    let handlers: Vec<&str> = ["exec", "httpGet", "tcpSocket", "grpc"]
        .into_iter()
        .filter(|h| p.get(*h).is_some_and(|v| !v.is_null()))
        .collect();
    match handlers.len() {
        0 => out.push(Issue::error(
            "kube-probe",
            at,
            format!("the {which} has no handler: give it exactly one of exec, httpGet, tcpSocket or grpc"),
        )),
        1 => {}
        _ => out.push(Issue::error(
            "kube-probe",
            at,
            format!("the {which} has {} handlers ({}): give it exactly one", handlers.len(), handlers.join(", ")),
        )),
    }
    for port in ["httpGet/port", "tcpSocket/port"] {
        int_or_port_name(object, &format!("{at}/{port}"), out);
    }
    port_number(object, &format!("{at}/grpc/port"), 1, out);
    one_of(
        object,
        &format!("{at}/httpGet/scheme"),
        &["HTTP", "HTTPS"],
        out,
    );
    for (field, min) in [
        ("initialDelaySeconds", 0),
        ("timeoutSeconds", 1),
        ("periodSeconds", 1),
        ("successThreshold", 1),
        ("failureThreshold", 1),
    ] {
        if let Some(n) = p.get(field).and_then(Value::as_i64) {
            if n < min {
                out.push(Issue::error(
                    "kube-probe",
                    format!("{at}/{field}"),
                    format!("{which}.{field} is {n}; it must be at least {min}"),
                ));
            }
        }
    }
    if which != "readinessProbe" {
        if let Some(n) = p.get("successThreshold").and_then(Value::as_i64) {
            if n != 1 {
                out.push(Issue::error(
                    "kube-probe",
                    format!("{at}/successThreshold"),
                    format!("{which}.successThreshold must be 1, not {n}"),
                ));
            }
        }
    }
    // A probe's own grace period is for the restart a failed probe causes, which a
    // readiness probe never does.
    let grace = || format!("{at}/terminationGracePeriodSeconds");
    match p.get("terminationGracePeriodSeconds") {
        Some(v) if !v.is_null() && which == "readinessProbe" => out.push(Issue::error(
            "kube-probe",
            grace(),
            "a readinessProbe may not set terminationGracePeriodSeconds: a failed readiness probe restarts nothing",
        )),
        Some(v) if v.as_i64().is_some_and(|n| n < 1) => out.push(Issue::error(
            "kube-probe",
            grace(),
            format!("{which}.terminationGracePeriodSeconds is {v}; it must be at least 1"),
        )),
        _ => {}
    }
    let headers = p
        .get("httpGet")
        .map_or(&[][..], |g| items(g, "httpHeaders"));
    for (i, h) in headers.iter().enumerate() {
        let Some(name) = h.get("name").and_then(Value::as_str) else {
            continue;
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            out.push(Issue::error(
                "kube-probe",
                format!("{at}/httpGet/httpHeaders/{i}/name"),
                format!("the header name {name:?} is not a valid HTTP header name: letters, digits and `-` only"),
            ));
        }
    }
}

/// What a container may list under `resources`: the standard names, huge pages, or an
/// extended resource named with a domain.
/// A resource outside the `kubernetes.io` domain, which a device plugin advertises
/// (`nvidia.com/gpu`), counted in whole units.
fn is_extended_resource(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.")
}

/// Whether a container may ask for less than its limit: yes for the node's own
/// resources, no for hugepages and extended resources.
fn overcommit_allowed(name: &str) -> bool {
    !is_extended_resource(name) && !name.starts_with("hugepages-")
}

fn is_container_resource(name: &str) -> bool {
    match name.split_once('/') {
        None => {
            matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
        }
        Some(_) => is_qualified_name(name),
    }
}

/// A pod's or container's `securityContext`: the seccomp and AppArmor profile types,
/// and a `localhostProfile` exactly when the type is Localhost.
fn security_context(object: &Value, at: &str, out: &mut Vec<Issue>) {
    let Some(context) = map_at(object, at) else {
        return;
    };
    // User and group IDs: the schema says int64, the server says 0 to 2^31-1. Every
    // container has a context, so a pointer is spelled only for a negative one.
    let negative = |v: Option<&Value>| v.and_then(Value::as_i64).filter(|n| *n < 0);
    for id in ["runAsUser", "runAsGroup", "fsGroup"] {
        if let Some(n) = negative(context.get(id)) {
            out.push(Issue::error(
                "kube-range",
                format!("{at}/{id}"),
                format!("{id} is {n}; it must be at least 0"),
            ));
        }
    }
    let groups = context
        .get("supplementalGroups")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for (i, g) in groups.iter().enumerate() {
        if let Some(n) = negative(Some(g)) {
            out.push(Issue::error(
                "kube-range",
                format!("{at}/supplementalGroups/{i}"),
                format!("supplementalGroups[{i}] is {n}; it must be at least 0"),
            ));
        }
    }
    for profile in ["seccompProfile", "appArmorProfile"] {
        let p = format!("{at}/{profile}");
        if map_at(object, &p).is_none() {
            continue;
        }
        one_of(
            object,
            &format!("{p}/type"),
            &["RuntimeDefault", "Unconfined", "Localhost"],
            out,
        );
        let localhost = str_at(object, &format!("{p}/type")) == Some("Localhost");
        let named = str_at(object, &format!("{p}/localhostProfile")).is_some_and(|s| !s.is_empty());
        if localhost && !named {
            out.push(conflict(
                format!("{p}/type"),
                format!(
                    "a Localhost {profile} needs localhostProfile, the profile's file on the node"
                ),
            ));
        } else if !localhost && named {
            out.push(conflict(
                format!("{p}/localhostProfile"),
                format!("localhostProfile may only be set when the {profile} type is Localhost"),
            ));
        }
    }
}

/// Where a pod may run: tolerations, topology spread constraints, node and pod affinity.
fn scheduling(object: &Value, spec: &str, out: &mut Vec<Issue>) {
    let tolerations = format!("{spec}/tolerations");
    for (i, t) in list_at(object, &tolerations).iter().enumerate() {
        let at = format!("{tolerations}/{i}");
        let operator = t.get("operator").and_then(Value::as_str).unwrap_or("");
        if !operator.is_empty() {
            one_of(object, &format!("{at}/operator"), &["Exists", "Equal"], out);
        }
        if t.get("effect")
            .and_then(Value::as_str)
            .is_some_and(|e| !e.is_empty())
        {
            one_of(
                object,
                &format!("{at}/effect"),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
                out,
            );
        }
        let key = t.get("key").and_then(Value::as_str).unwrap_or("");
        if key.is_empty() && operator != "Exists" {
            out.push(conflict(
                format!("{at}/operator"),
                "a toleration without a key must have operator: Exists (it then tolerates every taint)",
            ));
        }
        if !key.is_empty() && !is_qualified_name(key) {
            out.push(Issue::error(
                "kube-label",
                format!("{at}/key"),
                format!("the toleration key {key:?} is not valid: {KEY_SYNTAX}"),
            ));
        }
        if operator == "Exists"
            && t.get("value")
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
        {
            out.push(conflict(
                format!("{at}/value"),
                "a toleration with operator: Exists has no value: remove it, or use operator: Equal",
            ));
        }
        if t.get("tolerationSeconds").is_some_and(|s| !s.is_null())
            && t.get("effect").and_then(Value::as_str) != Some("NoExecute")
        {
            out.push(conflict(
                format!("{at}/tolerationSeconds"),
                "tolerationSeconds only applies to effect: NoExecute (how long a pod stays after the taint appears)",
            ));
        }
    }
    let spread = format!("{spec}/topologySpreadConstraints");
    for (i, c) in list_at(object, &spread).iter().enumerate() {
        let at = format!("{spread}/{i}");
        at_least(object, &format!("{at}/maxSkew"), 1, out);
        at_least(object, &format!("{at}/minDomains"), 1, out);
        one_of(
            object,
            &format!("{at}/whenUnsatisfiable"),
            &["DoNotSchedule", "ScheduleAnyway"],
            out,
        );
        for policy in ["nodeAffinityPolicy", "nodeTaintsPolicy"] {
            one_of(object, &format!("{at}/{policy}"), &["Honor", "Ignore"], out);
        }
        if c.get("minDomains").is_some_and(|m| !m.is_null())
            && c.get("whenUnsatisfiable").and_then(Value::as_str) != Some("DoNotSchedule")
        {
            out.push(conflict(
                format!("{at}/minDomains"),
                "minDomains only applies to whenUnsatisfiable: DoNotSchedule",
            ));
        }
        selector(object, &format!("{at}/labelSelector"), out);
    }
    let affinity = format!("{spec}/affinity");
    // Most pods have none: spelling the dozen pointers below for each of them was most
    // of this function's work.
    if map_at(object, &affinity).is_none() {
        return;
    }
    let node = format!("{affinity}/nodeAffinity");
    let required =
        format!("{node}/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms");
    for i in 0..list_at(object, &required).len() {
        node_selector_term(object, &format!("{required}/{i}"), out);
    }
    let preferred = format!("{node}/preferredDuringSchedulingIgnoredDuringExecution");
    for i in 0..list_at(object, &preferred).len() {
        node_selector_term(object, &format!("{preferred}/{i}/preference"), out);
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        let at = format!("{affinity}/{kind}");
        let required = format!("{at}/requiredDuringSchedulingIgnoredDuringExecution");
        for i in 0..list_at(object, &required).len() {
            selector(object, &format!("{required}/{i}/labelSelector"), out);
        }
        let preferred = format!("{at}/preferredDuringSchedulingIgnoredDuringExecution");
        for i in 0..list_at(object, &preferred).len() {
            selector(
                object,
                &format!("{preferred}/{i}/podAffinityTerm/labelSelector"),
                out,
            );
        }
    }
}

/// A node selector term's requirements: In and NotIn take values, Exists and
/// DoesNotExist none, Gt and Lt one integer.
fn node_selector_term(object: &Value, term: &str, out: &mut Vec<Issue>) {
    for list in ["matchExpressions", "matchFields"] {
        let exprs = format!("{term}/{list}");
        for (i, e) in list_at(object, &exprs).iter().enumerate() {
            let at = format!("{exprs}/{i}");
            one_of(
                object,
                &format!("{at}/operator"),
                &["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"],
                out,
            );
            let values = e.get("values").and_then(Value::as_array);
            let count = values.map_or(0, Vec::len);
            let one_integer = matches!(values.map(Vec::as_slice), Some([Value::String(v)]) if v.parse::<i64>().is_ok());
            let why = match e.get("operator").and_then(Value::as_str) {
                Some("In" | "NotIn") if count == 0 => "In and NotIn need at least one value",
                Some("Exists" | "DoesNotExist") if count > 0 => {
                    "Exists and DoesNotExist take no values"
                }
                Some("Gt" | "Lt") if !one_integer => "Gt and Lt take exactly one value, an integer",
                _ => continue,
            };
            out.push(Issue::error("kube-selector", at, why.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_ip_fields_take_what_older_objects_have() {
        for ok in ["10.0.0.10", "fd00::10", "::1", "010.001.000.010"] {
            assert!(is_ip(ok), "{ok}");
        }
        for bad in [
            "gateway",
            "10.0.0",
            "10.0.0.256",
            "1.2.3.4.5",
            "",
            "10.0.0.1/32",
        ] {
            assert!(!is_ip(bad), "{bad}");
        }
    }

    #[test]
    fn sysctl_names_are_kernel_spellings_set_once() {
        let pod = serde_json::json!({"spec": {"securityContext": {"sysctls": [
            {"name": "net.ipv4.ip_local_port_range"},
            {"name": "net/ipv4/conf/eth0.100/forwarding"},
            {"name": "kernel.shm_rmid_forced"},
            {"name": "net.ipv4.ip_local_port_range"},
            {"name": "net..core"},
            {"name": "-net.core"},
        ]}}});
        let mut out = Vec::new();
        sysctls(&pod, "/spec/securityContext/sysctls", &mut out);
        let at: Vec<&str> = out.iter().map(|i| i.pointer.as_str()).collect();
        assert_eq!(
            at,
            [
                "/spec/securityContext/sysctls/3/name",
                "/spec/securityContext/sysctls/4/name",
                "/spec/securityContext/sysctls/5/name"
            ]
        );
    }
}
