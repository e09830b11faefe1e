//! Resource quantities as the API server reads them.

use super::*;

/// A resource quantity as the API server reads it: a signed decimal number with an
/// optional binary (Ki..Ei), decimal (n, u, m, k, M..E) or exponent (e3, E-2) suffix.
/// Returns its value, for comparisons.
pub fn parse_quantity(s: &str) -> Option<f64> {
    let (sign, body) = match s.as_bytes().first()? {
        b'+' => (1.0, &s[1..]),
        b'-' => (-1.0, &s[1..]),
        _ => (1.0, s),
    };
    let end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(end);
    if number.is_empty()
        || number.matches('.').count() > 1
        || !number.bytes().any(|b| b.is_ascii_digit())
    {
        return None;
    }
    let n: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exp => {
            let digits = exp.strip_prefix(['e', 'E'])?;
            let digits = digits.strip_prefix('+').unwrap_or(digits);
            let unsigned = digits.strip_prefix('-').unwrap_or(digits);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            10f64.powi(digits.parse().ok()?)
        }
    };
    Some(sign * n * scale)
}

pub(super) fn parse_quantity_value(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => parse_quantity(s),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

pub(super) fn quantity(object: &Value, pointer: &str, out: &mut Vec<Issue>) {
    let Some(v) = lookup(object, pointer) else {
        return;
    };
    let field = pointer.rsplit('/').next().unwrap_or(pointer);
    match v {
        Value::String(s) => match parse_quantity(s) {
            None => out.push(
                Issue::error(
                    "kube-quantity",
                    pointer,
                    format!("{field}: {s:?} is not a quantity"),
                )
                .help("write a number with an optional unit: `500m` or `2` CPUs, `128Mi` or `1Gi` of memory"),
            ),
            Some(n) if n < 0.0 => out.push(Issue::error(
                "kube-quantity",
                pointer,
                format!("{field}: {s:?} is negative; it must be greater than or equal to 0"),
            )),
            Some(_) => {}
        },
        Value::Number(n) if n.as_f64().is_some_and(|f| f < 0.0) => out.push(Issue::error(
            "kube-quantity",
            pointer,
            format!("{field}: {n} is negative; it must be greater than or equal to 0"),
        )),
        _ => {}
    }
}

pub(super) fn quantity_map(object: &Value, pointer: &str, out: &mut Vec<Issue>) {
    if let Some(map) = map_at(object, pointer) {
        for k in map.keys() {
            quantity(object, &child(pointer, k), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_as_the_api_server_reads_them() {
        for (s, v) in [
            ("1", 1.0),
            ("500m", 0.5),
            ("128Mi", 134217728.0),
            ("1e3", 1000.0),
            ("1.5Gi", 1.5 * 1073741824.0),
            (".5", 0.5),
            ("+2k", 2000.0),
        ] {
            assert_eq!(parse_quantity(s), Some(v), "{s}");
        }
        for s in ["lots", "", "1.2.3", "1Gb", "Mi", "1 Gi", "1e", "0x10"] {
            assert_eq!(parse_quantity(s), None, "{s}");
        }
    }
}
