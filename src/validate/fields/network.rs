//! Ports, Services, Ingresses and NetworkPolicies.

use super::meta::{is_qualified_name, labels, selector};
use ipnet::IpNet;

use super::*;

/// An IANA service name, the rule for container port names: at most 15 lower-case
/// letters, digits and `-`, at least one letter, no `-` at either end or twice in a row.
pub fn is_iana_svc_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

pub(super) fn port_number(object: &Value, pointer: &str, min: i64, out: &mut Vec<Issue>) {
    if let Some(n) = lookup(object, pointer).and_then(Value::as_i64) {
        if !(min..=65535).contains(&n) {
            let field = pointer.rsplit('/').next().unwrap_or(pointer);
            out.push(Issue::error(
                "kube-port",
                pointer,
                format!(
                    "{field} {n} is not a valid port number: it must be between {min} and 65535"
                ),
            ));
        }
    }
}

pub(super) fn port_name(object: &Value, pointer: &str, out: &mut Vec<Issue>) {
    if let Some(name) = str_at(object, pointer) {
        if !is_iana_svc_name(name) {
            let why = if name.len() > 15 {
                format!("it has {} characters; at most 15 are allowed", name.len())
            } else {
                "it must be lower-case letters, digits and `-`, with at least one letter, no `-` at either end and no `--`".to_string()
            };
            out.push(Issue::error(
                "kube-port-name",
                pointer,
                format!("the port name {name:?} is not a valid IANA service name: {why}"),
            ));
        }
    }
}

/// A `targetPort`, a probe's or hook's `port`, a NetworkPolicy port: a number 1-65535
/// or an IANA service name. A quoted number is a name to the server (int-or-string
/// keeps what JSON gave it), and a name needs a letter, so `"8080"` is refused.
pub(super) fn int_or_port_name(object: &Value, pointer: &str, out: &mut Vec<Issue>) {
    match lookup(object, pointer) {
        Some(Value::Number(_)) => port_number(object, pointer, 1, out),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            out.push(
                Issue::error(
                    "kube-port-name",
                    pointer,
                    format!("the port {s:?} is quoted, so the API server reads it as a port name, and a port name needs a letter"),
                )
                .help(format!("write the number without quotes: {s}")),
            )
        }
        Some(Value::String(_)) => port_name(object, pointer, out),
        _ => {}
    }
}

pub(super) fn service(object: &Value, out: &mut Vec<Issue>) {
    one_of(
        object,
        "/spec/type",
        &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"],
        out,
    );
    one_of(object, "/spec/sessionAffinity", &["None", "ClientIP"], out);
    one_of(
        object,
        "/spec/externalTrafficPolicy",
        &["Cluster", "Local"],
        out,
    );
    one_of(
        object,
        "/spec/internalTrafficPolicy",
        &["Cluster", "Local"],
        out,
    );
    labels(object, "/spec/selector", "kube-selector", out);
    let ports = list_at(object, "/spec/ports");
    let kind = str_at(object, "/spec/type").unwrap_or("ClusterIP");
    service_addresses(object, kind, out);
    let headless = str_at(object, "/spec/clusterIP") == Some("None");
    if headless && matches!(kind, "NodePort" | "LoadBalancer") {
        out.push(conflict(
            "/spec/clusterIP",
            format!("clusterIP may not be None (headless) for a {kind} Service"),
        ));
    }
    if kind == "ExternalName" {
        match str_at(object, "/spec/externalName") {
            None | Some("") => out.push(conflict(
                "/spec/type",
                "an ExternalName Service needs spec.externalName, the DNS name it points at",
            )),
            // A fully qualified name may end in a dot.
            Some(name) if !is_dns_subdomain(name.strip_suffix('.').unwrap_or(name)) => {
                out.push(Issue::error(
                    "kube-name",
                    "/spec/externalName",
                    format!("the externalName {name:?} is not a valid DNS-1123 subdomain (lower-case letters, digits, `-` and `.`)"),
                ))
            }
            Some(_) => {}
        }
        if str_at(object, "/spec/clusterIP").is_some_and(|ip| !ip.is_empty()) {
            out.push(conflict(
                "/spec/clusterIP",
                "an ExternalName Service has no cluster IP: remove clusterIP",
            ));
        }
    }
    if ports.is_empty() && !headless && kind != "ExternalName" {
        out.push(
            Issue::error(
                "kube-required-field",
                "/spec",
                "a Service needs at least one port, unless it is headless (clusterIP: None) or an ExternalName",
            )
            .help("add spec.ports, or set clusterIP: None for a headless Service"),
        );
    }
    let mut names = std::collections::HashSet::new();
    let mut numbers = std::collections::HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let at = format!("/spec/ports/{i}");
        if let Some(port) = p.get("port").and_then(Value::as_i64) {
            let protocol = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            if !numbers.insert((port, protocol)) {
                out.push(Issue::error(
                    "kube-port",
                    format!("{at}/port"),
                    format!("port {port}/{protocol} is listed twice in the Service"),
                ));
            }
        }
        if kind == "ClusterIP"
            && p.get("nodePort")
                .and_then(Value::as_i64)
                .is_some_and(|n| n != 0)
        {
            out.push(conflict(
                format!("{at}/nodePort"),
                "nodePort may not be set on a ClusterIP Service: only NodePort and LoadBalancer Services open a port on the nodes",
            ));
        }
        port_number(object, &format!("{at}/port"), 1, out);
        port_number(object, &format!("{at}/nodePort"), 0, out);
        int_or_port_name(object, &format!("{at}/targetPort"), out);
        one_of(
            object,
            &format!("{at}/protocol"),
            &["TCP", "UDP", "SCTP"],
            out,
        );
        if let Some(app) = p.get("appProtocol").and_then(Value::as_str) {
            if !is_qualified_name(app) {
                out.push(Issue::error(
                    "kube-port-name",
                    format!("{at}/appProtocol"),
                    format!("the appProtocol {app:?} is not a qualified name (like `http`, `kubernetes.io/h2c` or `example.com/custom`)"),
                ));
            }
        }
        match p.get("name").and_then(Value::as_str) {
            Some(name) if !is_dns_label(name) => out.push(Issue::error(
                "kube-port-name",
                format!("{at}/name"),
                format!("the Service port name {name:?} is not a valid DNS-1123 label"),
            )),
            Some(name) if !names.insert(name) => out.push(Issue::error(
                "kube-port-name",
                format!("{at}/name"),
                format!("the Service port name {name:?} is used twice"),
            )),
            None if ports.len() > 1 => out.push(Issue::error(
                "kube-port-name",
                at,
                "a Service with several ports must name each of them",
            )),
            _ => {}
        }
    }
}

/// A Service's addresses and address families, and the fields only some types take.
fn service_addresses(object: &Value, kind: &str, out: &mut Vec<Issue>) {
    let mut ips: Vec<String> = Vec::new();
    if str_at(object, "/spec/clusterIP").is_some() {
        ips.push("/spec/clusterIP".into());
    }
    for field in ["clusterIPs", "externalIPs"] {
        for i in 0..list_at(object, &format!("/spec/{field}")).len() {
            ips.push(format!("/spec/{field}/{i}"));
        }
    }
    for at in ips {
        let Some(ip) = str_at(object, &at) else {
            continue;
        };
        let cluster = !at.starts_with("/spec/externalIPs");
        if !(is_ip(ip) || (cluster && (ip.is_empty() || ip == "None"))) {
            out.push(Issue::error(
                "kube-cidr",
                at.as_str(),
                format!(
                    "{ip:?} is not an IP address{}",
                    if cluster {
                        " (or None, for a headless Service)"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }
    let ranges = "/spec/loadBalancerSourceRanges";
    if !list_at(object, ranges).is_empty() && kind != "LoadBalancer" {
        out.push(conflict(
            ranges,
            format!(
                "loadBalancerSourceRanges only apply to a LoadBalancer Service, not a {kind} one"
            ),
        ));
    }
    for (i, r) in list_at(object, ranges).iter().enumerate() {
        // The server trims these (they came from an annotation once).
        if let Some(text) = r.as_str().filter(|t| t.trim().parse::<IpNet>().is_err()) {
            out.push(Issue::error(
                "kube-cidr",
                format!("{ranges}/{i}"),
                format!(
                    "{text:?} is not a CIDR: write an address and a prefix length, like 10.0.0.0/8"
                ),
            ));
        }
    }
    let families = list_at(object, "/spec/ipFamilies");
    for i in 0..families.len() {
        one_of(
            object,
            &format!("/spec/ipFamilies/{i}"),
            &["IPv4", "IPv6"],
            out,
        );
    }
    if families.len() == 2 && families[0] == families[1] {
        out.push(conflict(
            "/spec/ipFamilies/1",
            "ipFamilies names the same family twice",
        ));
    } else if families.len() > 2 {
        out.push(conflict(
            "/spec/ipFamilies",
            "ipFamilies may name at most two families, IPv4 and IPv6",
        ));
    }
    one_of(
        object,
        "/spec/ipFamilyPolicy",
        &["SingleStack", "PreferDualStack", "RequireDualStack"],
        out,
    );
    if families.len() > 1 && str_at(object, "/spec/ipFamilyPolicy") == Some("SingleStack") {
        out.push(conflict(
            "/spec/ipFamilyPolicy",
            "a SingleStack Service has one IP family: use PreferDualStack or RequireDualStack for two",
        ));
    }
    if str_at(object, "/spec/sessionAffinity") == Some("ClientIP") {
        let at = "/spec/sessionAffinityConfig/clientIP/timeoutSeconds";
        between(object, at, (1, 86400), "a day", out);
    }
    let local = str_at(object, "/spec/externalTrafficPolicy") == Some("Local");
    if lookup(object, "/spec/healthCheckNodePort")
        .and_then(Value::as_i64)
        .is_some_and(|n| n != 0)
        && !(kind == "LoadBalancer" && local)
    {
        out.push(conflict(
            "/spec/healthCheckNodePort",
            "healthCheckNodePort may only be set on a LoadBalancer Service with externalTrafficPolicy: Local",
        ));
    }
}

pub(super) fn ingress(object: &Value, out: &mut Vec<Issue>) {
    for (i, rule) in list_at(object, "/spec/rules").iter().enumerate() {
        let at = format!("/spec/rules/{i}");
        if let Some(host) = rule.get("host").and_then(Value::as_str) {
            let bare = host.strip_prefix("*.").unwrap_or(host);
            if !is_dns_subdomain(bare) {
                out.push(Issue::error(
                    "kube-ingress-host",
                    format!("{at}/host"),
                    format!("the host {host:?} is not a valid DNS-1123 subdomain (a `*.` wildcard is allowed as its first label)"),
                ));
            }
        }
        let paths = format!("{at}/http/paths");
        for (j, p) in list_at(object, &paths).iter().enumerate() {
            let at = format!("{paths}/{j}");
            one_of(
                object,
                &format!("{at}/pathType"),
                &["Exact", "Prefix", "ImplementationSpecific"],
                out,
            );
            if let Some(why) = ingress_path_error(p) {
                out.push(Issue::error("kube-ingress-path", format!("{at}/path"), why));
            }
            ingress_backend(object, &format!("{at}/backend"), out);
        }
    }
    ingress_backend(object, "/spec/defaultBackend", out);
}

/// Why the server refuses an Ingress path, if it does: Exact and Prefix paths are
/// absolute and clean; an ImplementationSpecific one only needs to be absolute.
fn ingress_path_error(p: &Value) -> Option<String> {
    let path = p.get("path").and_then(Value::as_str).unwrap_or("");
    let exact_or_prefix = match p.get("pathType").and_then(Value::as_str) {
        Some("Exact" | "Prefix") => true,
        Some("ImplementationSpecific") => false,
        _ => return None,
    };
    if (exact_or_prefix || !path.is_empty()) && !path.starts_with('/') {
        return Some(format!("the path {path:?} must be absolute (start with /)"));
    }
    if !exact_or_prefix {
        return None;
    }
    if let Some(seq) = ["//", "/./", "/../", "%2f", "%2F"]
        .into_iter()
        .find(|s| path.contains(s))
    {
        return Some(format!("the path {path:?} must not contain {seq:?}"));
    }
    ["/..", "/."]
        .into_iter()
        .find(|s| path.ends_with(s))
        .map(|s| format!("the path {path:?} must not end with {s:?}"))
}

/// An Ingress backend: a Service or a resource, and a Service port by name or number.
fn ingress_backend(object: &Value, at: &str, out: &mut Vec<Issue>) {
    let Some(backend) = map_at(object, at) else {
        return;
    };
    let service = backend.get("service").filter(|s| !s.is_null());
    if service.is_some() == backend.get("resource").is_some_and(|r| !r.is_null()) {
        out.push(conflict(
            at,
            "a backend names exactly one of service or resource",
        ));
    }
    let Some(service) = service.and_then(Value::as_object) else {
        return;
    };
    let port = service.get("port").and_then(Value::as_object);
    let named = port
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let numbered = port
        .and_then(|p| p.get("number"))
        .and_then(Value::as_i64)
        .is_some_and(|n| n != 0);
    if named == numbered {
        out.push(conflict(
            format!("{at}/service"),
            "a backend's Service port has a name or a number, exactly one of them",
        ));
    }
    if named {
        port_name(object, &format!("{at}/service/port/name"), out);
    }
    port_number(object, &format!("{at}/service/port/number"), 1, out);
}

pub(super) fn network_policy(object: &Value, out: &mut Vec<Issue>) {
    selector(object, "/spec/podSelector", out);
    for (direction, peers) in [("ingress", "from"), ("egress", "to")] {
        let rules = format!("/spec/{direction}");
        for i in 0..list_at(object, &rules).len() {
            let peer_list = format!("{rules}/{i}/{peers}");
            for j in 0..list_at(object, &peer_list).len() {
                for sel in ["podSelector", "namespaceSelector"] {
                    selector(object, &format!("{peer_list}/{j}/{sel}"), out);
                }
                ip_block(object, &format!("{peer_list}/{j}/ipBlock"), out);
            }
            let ports = format!("{rules}/{i}/ports");
            for j in 0..list_at(object, &ports).len() {
                one_of(
                    object,
                    &format!("{ports}/{j}/protocol"),
                    &["TCP", "UDP", "SCTP"],
                    out,
                );
                int_or_port_name(object, &format!("{ports}/{j}/port"), out);
            }
        }
    }
    for (i, t) in list_at(object, "/spec/policyTypes").iter().enumerate() {
        if t.is_string() {
            one_of(
                object,
                &format!("/spec/policyTypes/{i}"),
                &["Ingress", "Egress"],
                out,
            );
        }
    }
}

/// A NetworkPolicy peer's `ipBlock`: a CIDR, and exceptions inside it.
fn ip_block(object: &Value, at: &str, out: &mut Vec<Issue>) {
    let Some(cidr_text) = str_at(object, &format!("{at}/cidr")) else {
        return;
    };
    let Ok(cidr) = cidr_text.parse::<IpNet>() else {
        out.push(Issue::error(
            "kube-cidr",
            format!("{at}/cidr"),
            format!("{cidr_text:?} is not a CIDR: write an address and a prefix length, like 10.0.0.0/16 or 2001:db8::/64"),
        ));
        return;
    };
    for (i, e) in list_at(object, &format!("{at}/except")).iter().enumerate() {
        let Some(text) = e.as_str() else {
            continue;
        };
        // A strict subset, as the server requires: inside, and narrower.
        let why = match text.parse::<IpNet>() {
            Err(_) => "is not a CIDR",
            Ok(inner) if !cidr.contains(&inner) || inner.prefix_len() <= cidr.prefix_len() => {
                "is not inside the block's cidr"
            }
            Ok(_) => continue,
        };
        out.push(Issue::error(
            "kube-cidr",
            format!("{at}/except/{i}"),
            format!("the exception {text:?} {why} ({cidr_text})"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_service_names() {
        for ok in ["http", "metrics-9090", "h2c", "a"] {
            assert!(is_iana_svc_name(ok), "{ok}");
        }
        for bad in [
            "HTTP",
            "8080",
            "-http",
            "http-",
            "my--port",
            "prometheus-metrics",
            "",
        ] {
            assert!(!is_iana_svc_name(bad), "{bad}");
        }
    }
}
