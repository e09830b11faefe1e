//! A CronJob's `schedule` as the API server reads it. The server parses it with
//! robfig/cron's standard parser (five fields, or a descriptor such as `@daily` or
//! `@every 1h30m`) and refuses what that parser refuses, so this follows that parser's
//! grammar, not the wider ones of cron crates (seconds fields, `L`, `W`, `#`), which
//! would pass schedules the server refuses. The messages are the parser's own, so a
//! finding reads like the server's refusal.

/// Why the API server refuses a CronJob's `timeZone`, or None. It loads the name from
/// the IANA database Go embeds, case-sensitively, and refuses `Local` (the controller's
/// own zone, which differs between clusters).
pub fn time_zone_error(name: &str) -> Option<String> {
    use std::collections::HashSet;
    use std::sync::OnceLock;
    static NAMES: OnceLock<HashSet<String>> = OnceLock::new();
    if name.is_empty() {
        return Some("it may not be empty: leave timeZone out for the controller's zone".into());
    }
    if name.eq_ignore_ascii_case("local") {
        return Some("it must be an explicit IANA time zone, not Local".into());
    }
    let names = NAMES.get_or_init(|| {
        let mut names: HashSet<String> = jiff::tz::TimeZoneDatabase::bundled()
            .available()
            .map(|n| n.as_str().to_string())
            .collect();
        names.insert("UTC".into());
        names
    });
    if names.contains(name) {
        return None;
    }
    let near = names.iter().find(|n| n.eq_ignore_ascii_case(name));
    Some(match near {
        Some(n) => format!("time zone names are case-sensitive: write {n}"),
        None => {
            "it is not a time zone of the IANA database (such as Europe/Berlin or America/New_York)"
                .into()
        }
    })
}

/// Why the API server refuses `schedule`, or `None` when it accepts it.
pub fn schedule_error(schedule: &str) -> Option<String> {
    // The server refuses a time zone in the schedule outright (the `timeZone` field
    // took its place), before the parser's own opinion matters.
    if schedule.contains("TZ") {
        return Some(
            "cannot use TZ or CRON_TZ in schedule, use the timeZone field instead".to_string(),
        );
    }
    if schedule.is_empty() {
        return Some("empty spec string".to_string());
    }
    if schedule.starts_with('@') {
        return descriptor(schedule).err();
    }
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    if fields.len() != 5 {
        return Some(format!(
            "expected exactly 5 fields, found {}: {schedule}",
            fields.len()
        ));
    }
    FIELDS
        .iter()
        .zip(fields)
        .find_map(|(bounds, field)| field.split(',').find_map(|e| range(e, bounds).err()))
}

/// The bounds of each of the five fields, and the names a field may use for values.
struct Bounds {
    min: i64,
    max: i64,
    names: &'static [&'static str],
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

const FIELDS: [Bounds; 5] = [
    Bounds {
        min: 0,
        max: 59,
        names: &[],
    },
    Bounds {
        min: 0,
        max: 23,
        names: &[],
    },
    Bounds {
        min: 1,
        max: 31,
        names: &[],
    },
    Bounds {
        min: 1,
        max: 12,
        names: MONTHS,
    },
    Bounds {
        min: 0,
        max: 6,
        names: DAYS,
    },
];

fn descriptor(schedule: &str) -> Result<(), String> {
    match schedule {
        "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight" | "@hourly" => {
            Ok(())
        }
        _ => match schedule.strip_prefix("@every ") {
            Some(d) if is_go_duration(d) => Ok(()),
            Some(d) => Err(format!(
                "failed to parse duration {schedule}: invalid duration {d:?}"
            )),
            None => Err(format!("unrecognized descriptor: {schedule}")),
        },
    }
}

/// One element of a field: `*`, `?`, `N`, `N-M`, each with an optional `/step`.
fn range(expr: &str, b: &Bounds) -> Result<(), String> {
    let mut range_and_step = expr.split('/');
    let low_and_high: Vec<&str> = range_and_step.next().unwrap_or("").split('-').collect();
    let (start, mut end) = if low_and_high[0] == "*" || low_and_high[0] == "?" {
        (b.min, b.max)
    } else {
        let start = int_or_name(low_and_high[0], b.names, expr)?;
        match low_and_high.len() {
            1 => (start, start),
            2 => (start, int_or_name(low_and_high[1], b.names, expr)?),
            _ => return Err(format!("too many hyphens: {expr}")),
        }
    };
    let step = match (range_and_step.next(), range_and_step.next()) {
        (None, _) => 1,
        (Some(step), None) => {
            // "N/step" means "N-max/step".
            if low_and_high.len() == 1 {
                end = b.max;
            }
            non_negative(step, expr)?
        }
        (Some(_), Some(_)) => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

fn int_or_name(text: &str, names: &[&str], expr: &str) -> Result<i64, String> {
    let lower = text.to_ascii_lowercase();
    match names.iter().position(|n| *n == lower) {
        // Months count from 1, days of the week from 0 (Sunday).
        Some(i) if names.len() == 12 => Ok(i as i64 + 1),
        Some(i) => Ok(i as i64),
        None => non_negative(text, expr),
    }
}

/// Go's `strconv.Atoi` (an optional sign, then decimal digits), refusing negatives.
fn non_negative(text: &str, expr: &str) -> Result<i64, String> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    let n = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<i64>().ok()
    } else {
        None
    };
    match n {
        Some(n) if n < 0 => Err(format!("negative number ({n}) not allowed: {expr}")),
        Some(n) => Ok(n),
        None => Err(format!("failed to parse int from {text}: invalid syntax")),
    }
}

/// Go's `time.ParseDuration`: "0", or a sequence of decimal numbers, each with a unit
/// (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), optionally signed: `1h30m`, `1.5h`.
fn is_go_duration(text: &str) -> bool {
    let mut rest = text.strip_prefix(['+', '-']).unwrap_or(text);
    if rest == "0" {
        return true;
    }
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let number = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (n, tail) = rest.split_at(number);
        if !n.bytes().any(|b| b.is_ascii_digit()) || n.matches('.').count() > 1 {
            return false;
        }
        let Some(unit) = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"]
            .into_iter()
            .find(|u| tail.starts_with(u))
        else {
            return false;
        };
        rest = &tail[unit.len()..];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zones_are_names_of_the_bundled_database_spelt_with_their_case() {
        for ok in [
            "Europe/Berlin",
            "America/New_York",
            "UTC",
            "Etc/GMT+5",
            "US/Eastern",
        ] {
            assert_eq!(time_zone_error(ok), None, "{ok}");
        }
        for bad in ["america/new_york", "Local", "", "Europe/Atlantis", "CET+1"] {
            assert!(time_zone_error(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn schedules_the_api_server_accepts() {
        for s in [
            "*/5 * * * *",
            "0 0 * * *",
            "30 2 1-15/2 * MON-FRI",
            "0 9 * jan,Jul sun",
            "0 0 ? * ?",
            "59 23 31 12 6",
            "5/15 * * * *",
            "@hourly",
            "@every 1h30m",
            "@every 90s",
            "@every 1.5h",
            "0  0  *  *  *",
        ] {
            assert_eq!(schedule_error(s), None, "{s}");
        }
    }

    #[test]
    fn schedules_the_api_server_refuses_with_its_reasons() {
        for (s, why) in [
            ("61 * * * *", "end of range (61) above maximum (59): 61"),
            ("0 0 0 * *", "beginning of range (0) below minimum (1): 0"),
            ("0 0 * * 7", "end of range (7) above maximum (6): 7"),
            (
                "0 5-1 * * *",
                "beginning of range (5) beyond end of range (1): 5-1",
            ),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            (
                "0 0 * * * *",
                "expected exactly 5 fields, found 6: 0 0 * * * *",
            ),
            ("0 0 * *", "expected exactly 5 fields, found 4: 0 0 * *"),
            ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
            ("*/2/3 * * * *", "too many slashes: */2/3"),
            ("x * * * *", "failed to parse int from x: invalid syntax"),
            ("0 0 L * *", "failed to parse int from L: invalid syntax"),
            ("@reboot", "unrecognized descriptor: @reboot"),
            (
                "@every 5",
                "failed to parse duration @every 5: invalid duration \"5\"",
            ),
            ("", "empty spec string"),
            (
                "CRON_TZ=UTC 0 0 * * *",
                "cannot use TZ or CRON_TZ in schedule, use the timeZone field instead",
            ),
        ] {
            assert_eq!(schedule_error(s).as_deref(), Some(why), "{s}");
        }
    }
}
