//! GitHub Actions workflow commands: `::error file=F,line=N,col=C,title=T::message`.
//! Properties and messages are escaped as the runner requires, so a message cannot end
//! the command early or inject another one.

use crate::findings::{Report, Severity};

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for f in report.findings() {
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut props = Vec::new();
        if let Some(file) = &f.file {
            props.push(format!("file={}", escape_property(file)));
        }
        if let Some(line) = f.line {
            props.push(format!("line={line}"));
        }
        if let Some(col) = f.column {
            props.push(format!("col={col}"));
        }
        props.push(format!("title={}", escape_property(&f.rule)));
        let mut message = f.message.clone();
        if let Some(help) = &f.help {
            message.push_str("\nhelp: ");
            message.push_str(help);
        }
        out.push_str(&format!(
            "::{level} {}::{}\n",
            props.join(","),
            escape_data(&message)
        ));
    }
    out
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cannot_inject_commands() {
        assert_eq!(escape_data("a\n::error::x"), "a%0A::error::x");
        assert_eq!(escape_property("a,b:c"), "a%2Cb%3Ac");
    }
}
