//! Environment variable expansion as the OpenTelemetry Collector does it: in values only (never
//! in keys), after the YAML is parsed, so a variable's value can never change the document's
//! structure around it.
//!
//! - `${env:NAME}` and `${NAME}` expand to the variable; `${env:NAME:-default}` (and
//!   `${NAME:-default}`) to the default when the variable is unset. A set but empty variable
//!   stays empty, as in the Collector.
//! - When the reference is the whole value, the variable's text is read as YAML, so `${env:PORT}`
//!   can fill a number (`4317`), a boolean or even a list; a string-typed key still receives the
//!   text exactly as written (`0123` stays `0123`). An unset variable (or an empty one) gives an
//!   empty value.
//! - Inside a longer string (`http://${env:HOST}:4318`) the text is substituted as is.
//! - References nest: `${env:PREFIX_${env:REGION}}` expands the inner one first.
//! - `$$` is a literal `$` (so `$${env:X}` is the text `${env:X}`).
//! - `${...}` that is not a variable reference (`${1}`, as Prometheus relabelling writes) is kept
//!   as written, with a warning. Other config providers (`${file:...}`, `${http:...}`) are
//!   refused: spanpipe has none.
//!
//! Unlike the Collector, a variable's value is not expanded again: `A=${env:B}` gives the text
//! `${env:B}`, which keeps secrets holding `$` intact and keeps expansion from looping.

use crate::error::{ConfigErrorKind, WarningKind};

/// Reads an environment variable; `None` when it is unset.
pub(crate) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// How deeply references may nest inside one another.
const MAX_NESTING: usize = 8;

/// The outcome of expanding one scalar.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Expanded {
    /// Nothing to expand: the scalar keeps its text and its YAML type.
    Unchanged,
    /// The whole scalar was one reference.
    Whole(WholeValue),
    /// References inside a longer text, or `$$` escapes: the resulting string.
    Embedded(String),
}

/// The value of a reference that makes up a whole scalar.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WholeValue {
    /// Unset without default, or set to the empty string: an empty value.
    Empty,
    /// An explicitly empty default (`${env:X:-}`): the empty string.
    EmptyString,
    /// Text to be read as YAML.
    Yaml(String),
}

enum Resolution {
    Value(WholeValue),
    /// Not a variable reference: keep the text as written.
    Kept,
}

/// Expands `text`. Warnings go to `warnings`.
pub(crate) fn expand(
    text: &str,
    env: EnvLookup<'_>,
    warnings: &mut Vec<WarningKind>,
) -> Result<Expanded, ConfigErrorKind> {
    if !text.contains('$') {
        return Ok(Expanded::Unchanged);
    }
    if text.starts_with("${") && find_close(text, 2) == Some(text.len() - 1) {
        let inner = expand_to_string(&text[2..text.len() - 1], env, warnings, 1)?;
        return match resolve(&inner, text, env, warnings)? {
            Resolution::Value(value) => Ok(Expanded::Whole(value)),
            Resolution::Kept => Ok(Expanded::Unchanged),
        };
    }
    let expanded = expand_to_string(text, env, warnings, 0)?;
    Ok(if expanded == text { Expanded::Unchanged } else { Expanded::Embedded(expanded) })
}

/// Expands every reference and escape in `text` into one string.
fn expand_to_string(
    text: &str,
    env: EnvLookup<'_>,
    warnings: &mut Vec<WarningKind>,
    depth: usize,
) -> Result<String, ConfigErrorKind> {
    if depth > MAX_NESTING {
        return Err(ConfigErrorKind::TooDeep { limit: MAX_NESTING });
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        rest = &rest[dollar..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(close) = rest.starts_with("${").then(|| find_close(rest, 2)).flatten() {
            let reference = &rest[..=close];
            let inner = expand_to_string(&rest[2..close], env, warnings, depth + 1)?;
            match resolve(&inner, reference, env, warnings)? {
                Resolution::Value(WholeValue::Empty | WholeValue::EmptyString) => {}
                Resolution::Value(WholeValue::Yaml(value)) => out.push_str(&value),
                Resolution::Kept => out.push_str(reference),
            }
            rest = &rest[close + 1..];
        } else {
            // A lone `$`, or `${` that is never closed: literal text.
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` closing a `${` whose content starts at `start`, counting nested `${`.
fn find_close(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 1usize;
    let mut index = start;
    while index < bytes.len() {
        match bytes[index] {
            b'$' if bytes.get(index + 1) == Some(&b'{') => {
                depth += 1;
                index += 2;
                continue;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(index);
                }
            }
            _ => {}
        }
        index += 1;
    }
    None
}

/// Resolves the content of one `${...}` (inner references already expanded).
fn resolve(
    inner: &str,
    reference: &str,
    env: EnvLookup<'_>,
    warnings: &mut Vec<WarningKind>,
) -> Result<Resolution, ConfigErrorKind> {
    let (name, default) = if let Some(rest) = inner.strip_prefix("env:") {
        let (name, default) = split_default(rest);
        if !is_valid_name(name) {
            return Err(ConfigErrorKind::InvalidEnvironmentVariableName {
                reference: reference.to_owned(),
                name: name.to_owned(),
            });
        }
        (name, default)
    } else {
        let (name, default) = split_default(inner);
        if !is_valid_name(name) {
            if let Some((scheme, _)) = inner.split_once(':').filter(|(scheme, _)| is_scheme(scheme)) {
                return Err(ConfigErrorKind::UnsupportedExpansionScheme {
                    reference: reference.to_owned(),
                    scheme: scheme.to_owned(),
                });
            }
            warnings.push(WarningKind::NotExpanded { reference: reference.to_owned() });
            return Ok(Resolution::Kept);
        }
        (name, default)
    };
    let value = match (env(name), default) {
        (Some(value), _) if value.is_empty() => WholeValue::Empty,
        (Some(value), _) => WholeValue::Yaml(value),
        (None, Some("")) => WholeValue::EmptyString,
        (None, Some(default)) => WholeValue::Yaml(default.to_owned()),
        (None, None) => {
            warnings
                .push(WarningKind::UnsetEnvironmentVariable { name: name.to_owned(), reference: reference.to_owned() });
            WholeValue::Empty
        }
    };
    Ok(Resolution::Value(value))
}

fn split_default(text: &str) -> (&str, Option<&str>) {
    match text.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (text, None),
    }
}

/// `^[a-zA-Z_][a-zA-Z0-9_]*$`, the Collector's rule for variable names.
fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A URI scheme as the Collector matches it: `[A-Za-z][A-Za-z0-9+.-]+`.
fn is_scheme(scheme: &str) -> bool {
    let mut chars = scheme.chars();
    chars.next().is_some_and(|first| first.is_ascii_alphabetic())
        && scheme.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("collector.local".into()),
            "PORT" => Some("4317".into()),
            "EMPTY" => Some(String::new()),
            "REGION" => Some("EU".into()),
            "ENDPOINT_EU" => Some("eu.example:4317".into()),
            "DOLLARS" => Some("pa$$word".into()),
            _ => None,
        }
    }

    fn run(text: &str) -> (Result<Expanded, ConfigErrorKind>, Vec<WarningKind>) {
        let mut warnings = Vec::new();
        (expand(text, &lookup, &mut warnings), warnings)
    }

    fn whole(text: &str) -> Expanded {
        Expanded::Whole(WholeValue::Yaml(text.into()))
    }

    #[test]
    fn whole_references_keep_the_text_for_yaml_typing() {
        assert_eq!(run("${env:PORT}").0.unwrap(), whole("4317"));
        assert_eq!(run("${PORT}").0.unwrap(), whole("4317"));
        assert_eq!(run("${env:MISSING:-0.0.0.0:4317}").0.unwrap(), whole("0.0.0.0:4317"));
        assert_eq!(run("${MISSING:-8}").0.unwrap(), whole("8"));
        assert_eq!(run("${env:PORT:-1}").0.unwrap(), whole("4317"));
        assert_eq!(run("${env:MISSING:-}").0.unwrap(), Expanded::Whole(WholeValue::EmptyString));
        // A set but empty variable is empty, not the default: the Collector's rule.
        assert_eq!(run("${env:EMPTY:-x}").0.unwrap(), Expanded::Whole(WholeValue::Empty));
        // The variable's own `$` are not escapes: its value is not expanded again.
        assert_eq!(run("${env:DOLLARS}").0.unwrap(), whole("pa$$word"));
    }

    #[test]
    fn unset_variables_are_empty_with_a_warning() {
        let (result, warnings) = run("${env:MISSING}");
        assert_eq!(result.unwrap(), Expanded::Whole(WholeValue::Empty));
        assert_eq!(
            warnings,
            vec![WarningKind::UnsetEnvironmentVariable { name: "MISSING".into(), reference: "${env:MISSING}".into() }]
        );
        let (result, warnings) = run("http://${MISSING}/v1");
        assert_eq!(result.unwrap(), Expanded::Embedded("http:///v1".into()));
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn embedded_references_substitute_text() {
        assert_eq!(
            run("http://${env:HOST}:${PORT}/v1").0.unwrap(),
            Expanded::Embedded("http://collector.local:4317/v1".into())
        );
        assert_eq!(run("${env:HOST}${env:PORT}").0.unwrap(), Expanded::Embedded("collector.local4317".into()));
        assert_eq!(run("no references").0.unwrap(), Expanded::Unchanged);
        assert_eq!(run("costs $5").0.unwrap(), Expanded::Unchanged);
        assert_eq!(run("open ${ never closed").0.unwrap(), Expanded::Unchanged);
    }

    #[test]
    fn nested_references_expand_inside_out() {
        assert_eq!(run("${env:ENDPOINT_${env:REGION}}").0.unwrap(), whole("eu.example:4317"));
        assert_eq!(run("${env:MISSING:-${env:HOST}}").0.unwrap(), whole("collector.local"));
    }

    #[test]
    fn double_dollar_escapes() {
        assert_eq!(run("$${env:HOST}").0.unwrap(), Expanded::Embedded("${env:HOST}".into()));
        assert_eq!(run("pa$$word").0.unwrap(), Expanded::Embedded("pa$word".into()));
        assert_eq!(run("$$$${HOST}").0.unwrap(), Expanded::Embedded("$${HOST}".into()));
        assert_eq!(run("$$${HOST}").0.unwrap(), Expanded::Embedded("$collector.local".into()));
    }

    #[test]
    fn non_references_are_kept_with_a_warning() {
        let (result, warnings) = run("${1}");
        assert_eq!(result.unwrap(), Expanded::Unchanged);
        assert_eq!(warnings, vec![WarningKind::NotExpanded { reference: "${1}".into() }]);
        let (result, _) = run("prefix-${1}");
        assert_eq!(result.unwrap(), Expanded::Unchanged);
    }

    #[test]
    fn refuses_other_providers_and_bad_names() {
        assert!(matches!(
            run("${file:/etc/secret}").0,
            Err(ConfigErrorKind::UnsupportedExpansionScheme { scheme, .. }) if scheme == "file"
        ));
        assert!(matches!(
            run("x ${http://example.com/c.yaml}").0,
            Err(ConfigErrorKind::UnsupportedExpansionScheme { scheme, .. }) if scheme == "http"
        ));
        assert!(matches!(
            run("${env:1BAD}").0,
            Err(ConfigErrorKind::InvalidEnvironmentVariableName { name, .. }) if name == "1BAD"
        ));
        assert!(matches!(run("${env:}").0, Err(ConfigErrorKind::InvalidEnvironmentVariableName { .. })));
    }

    #[test]
    fn refuses_deep_nesting() {
        let text = format!("{}X{}", "${".repeat(MAX_NESTING + 3), "}".repeat(MAX_NESTING + 3));
        assert!(matches!(run(&text).0, Err(ConfigErrorKind::TooDeep { .. })));
    }
}
