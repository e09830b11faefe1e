//! The hostile-string corpus: strings that would break a template or a YAML document if
//! a value were ever pasted in as text. Shared by `injection` (the output's
//! shape never changes) and `policy_paths` (every policy evaluator agrees).

pub const HOSTILE: &[&str] = &[
    "x\nkind: Secret",
    "\"\nkind: Secret\nstringData: {a: b}\nx: \"",
    "---\napiVersion: v1\nkind: Secret\nmetadata: {name: stolen}",
    "{{ app }}",
    "{% if true %}x{% endif %}",
    "{{ values | safe }}",
    "a: b",
    "- item",
    "key: value\n  nested: true",
    "'; DROP TABLE apps; --",
    "\\\" } ]",
    "${HOME} $(id) `id`",
    "&anchor *alias !!binary",
    "# not a comment",
    "| block\n  text",
    "\ttab",
    "ünï©ødé ✓ 日本",
    "{\"kind\": \"Secret\"}",
    "]]]}}}",
    "",
    " leading and trailing ",
];

/// A web-service values file with `field` set to `value` (`env.key`: the env var name).
pub fn values(field: &str, value: &str) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let mut fields: Vec<(String, String)> = vec![
        ("app".into(), q("payments-api")),
        ("team".into(), q("payments")),
        ("archetype".into(), q("web-service")),
        (
            "image".into(),
            q("registry.example.com/payments/payments-api"),
        ),
        ("version".into(), q("1.4.2")),
        ("secrets".into(), format!("[{}]", q("payments-db"))),
        (
            "ingress".into(),
            format!("{{host: {}}}", q("api.payments.apps.example.com")),
        ),
        ("health".into(), format!("{{path: {}}}", q("/healthz"))),
        ("env".into(), format!("{{LOG_LEVEL: {}}}", q("info"))),
    ];
    let set = |fields: &mut Vec<(String, String)>, k: &str, v: String| {
        fields.iter_mut().find(|(n, _)| n == k).unwrap().1 = v;
    };
    match field {
        "secrets" => set(&mut fields, "secrets", format!("[{}]", q(value))),
        "ingress.host" => set(&mut fields, "ingress", format!("{{host: {}}}", q(value))),
        "health.path" => set(&mut fields, "health", format!("{{path: {}}}", q(value))),
        "env.value" => set(&mut fields, "env", format!("{{LOG_LEVEL: {}}}", q(value))),
        "env.key" => set(
            &mut fields,
            "env",
            format!("{{{}: {}}}", q(value), q("info")),
        ),
        other => set(&mut fields, other, q(value)),
    }
    fields
        .into_iter()
        .map(|(k, v)| format!("{k}: {v}\n"))
        .collect()
}
