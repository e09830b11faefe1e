//! The command line's side of output formats: `--output NAME` for `output::Format`,
//! and `--rules-url`. The format enum itself lives in `output`, which (like every stage)
//! knows nothing of clap; its names are here, in the one place the command line is
//! parsed.

use clap::builder::{PossibleValue, TypedValueParser};
use clap::ValueEnum;

use crate::output::Format;

impl ValueEnum for Format {
    fn value_variants<'a>() -> &'a [Self] {
        &Format::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.as_str()))
    }
}

/// `--output` of the commands whose answer is a listing, not findings (`history`,
/// `verify`): text for people, json for tools. The same `Format`, narrowed, so there is
/// one list of formats and one spelling of each.
pub fn listing() -> impl clap::builder::TypedValueParser<Value = Format> {
    clap::builder::PossibleValuesParser::new([Format::Text.as_str(), Format::Json.as_str()]).map(
        |name| {
            if name == Format::Json.as_str() {
                Format::Json
            } else {
                Format::Text
            }
        },
    )
}

/// `--rules-url`: where docs/rules.md is published, as an absolute http(s) URL without
/// a fragment (each rule's link is `<url>#<rule-id>`, the anchor of its section).
pub fn rules_url(s: &str) -> Result<String, String> {
    let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not an absolute URL: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!("{s:?} is not an http(s) URL"));
    }
    if url.fragment().is_some() {
        return Err(format!(
            "{s:?} has a fragment; give the page, each rule's anchor (#<rule-id>) is added to it"
        ));
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_has_its_name() {
        for f in Format::ALL {
            assert_eq!(Format::from_str(f.as_str(), false), Ok(f));
        }
        assert!(Format::from_str("yaml", false).is_err());
    }

    #[test]
    fn rules_urls_are_absolute_http_pages() {
        assert_eq!(
            rules_url("https://docs.example.com/gitops-render/rules").as_deref(),
            Ok("https://docs.example.com/gitops-render/rules")
        );
        for bad in [
            "docs/rules.md",
            "file:///x",
            "https://x/rules#top",
            "not a url",
        ] {
            assert!(rules_url(bad).is_err(), "{bad}");
        }
    }
}
