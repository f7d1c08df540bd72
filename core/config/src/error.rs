//! What loading a config reports: errors that refuse it and warnings that do not, each with the
//! dotted path of the key to change and, where the YAML gives it, the line and column.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::component_id::{ComponentId, ComponentIdError, ComponentKind};

/// A place in the YAML text, both counted from 1 as editors count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// One reason a config was refused.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// Dotted path of the key to change (`receivers.otlp.protocols.grpc.endpoint`); sequence
    /// items are written `[index]` (`service.pipelines.traces.receivers[1]`). Empty for the file
    /// as a whole.
    pub path: String,
    /// Where the offending key or value is in the YAML text, when known.
    pub location: Option<Location>,
    /// What is wrong.
    #[source]
    pub kind: ConfigErrorKind,
}

impl ConfigError {
    pub(crate) fn new(path: impl Into<String>, location: Option<Location>, kind: ConfigErrorKind) -> Self {
        Self { path: path.into(), location, kind }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_place(f, &self.path, self.location)?;
        write!(f, "{}", self.kind)
    }
}

fn write_place(f: &mut fmt::Formatter<'_>, path: &str, location: Option<Location>) -> fmt::Result {
    match (path.is_empty(), location) {
        (false, Some(location)) => write!(f, "{path} ({location}): "),
        (false, None) => write!(f, "{path}: "),
        (true, Some(location)) => write!(f, "({location}): "),
        (true, None) => Ok(()),
    }
}

/// What is wrong with a config. Each variant's message says what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not valid YAML.
    #[error("YAML syntax error: {message}")]
    Syntax {
        /// The parser's description.
        message: String,
    },
    /// The file holds more than one YAML document.
    #[error("a config file holds one YAML document; remove the second `---` and what follows")]
    MultipleDocuments,
    /// A mapping has the same key twice.
    #[error("duplicate key `{key}` (first on line {first_line}); keep one of them")]
    DuplicateKey {
        /// The key.
        key: String,
        /// Line of the first occurrence.
        first_line: usize,
    },
    /// A mapping key is a sequence or a mapping.
    #[error("a key must be a plain string, not a sequence or a mapping")]
    NonScalarKey,
    /// A YAML tag other than the core schema's.
    #[error("unsupported YAML tag `{tag}`; only the core tags (`!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!map`, `!!seq`) are understood")]
    UnsupportedTag {
        /// The tag as written.
        tag: String,
    },
    /// A merge key (`<<`) whose value is not a mapping or a list of mappings.
    #[error("a merge key `<<` takes a mapping or a list of mappings (usually aliases such as `*defaults`)")]
    InvalidMerge,
    /// Nesting beyond what any config needs; refused so that hostile input cannot exhaust the stack.
    #[error("the document nests deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// Aliases expand the document beyond a sane size (the "billion laughs" document).
    #[error("aliases expand the document to more than {limit} values")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// `${env:NAME}` with a name that cannot be an environment variable's.
    #[error("`{reference}`: `{name}` is not a valid environment variable name (letters, digits and `_`, not starting with a digit)")]
    InvalidEnvironmentVariableName {
        /// The reference as written.
        reference: String,
        /// The name in it.
        name: String,
    },
    /// `${scheme:...}` with a config provider spanpipe does not have (`file`, `http`, `yaml`, ...).
    #[error("`{reference}` uses the `{scheme}` config provider; spanpipe expands only environment variables: `${{env:NAME}}`, `${{NAME}}` or `${{env:NAME:-default}}`")]
    UnsupportedExpansionScheme {
        /// The reference as written.
        reference: String,
        /// The scheme in it.
        scheme: String,
    },
    /// A key that has no meaning at this place.
    #[error("{}", unknown_key_message(key, expected))]
    UnknownKey {
        /// The key.
        key: String,
        /// The keys allowed here.
        expected: &'static [&'static str],
    },
    /// A section that must be a mapping is something else.
    #[error("expected a mapping of {expected}, found {found}")]
    NotAMapping {
        /// What the mapping holds.
        expected: &'static str,
        /// What was found instead.
        found: &'static str,
    },
    /// A component id that is not `type` or `type/name`.
    #[error("invalid component id `{id}`: {reason}")]
    InvalidComponentId {
        /// The id as written.
        id: String,
        /// Why it was refused.
        reason: ComponentIdError,
    },
    /// Two keys of one section name the same component once surrounding spaces are removed.
    #[error("`{id}` is configured twice in this section (as `{first}` and `{second}`)")]
    DuplicateComponentId {
        /// The id.
        id: ComponentId,
        /// The first key as written.
        first: String,
        /// The second key as written.
        second: String,
    },
    /// A component type spanpipe does not have.
    #[error(
        "unknown {kind} type `{type_name}`{}; spanpipe has {}",
        did_you_mean(type_name, available),
        list_or_none(available)
    )]
    UnknownComponentType {
        /// The section's kind.
        kind: ComponentKind,
        /// The type as written.
        type_name: String,
        /// The types registered for this kind.
        available: Vec<&'static str>,
    },
    /// A non-empty `connectors` section.
    #[error("connectors are not supported by spanpipe yet (found {}); remove the `connectors` section and connect pipelines through exporters and receivers", list(ids))]
    ConnectorsUnsupported {
        /// The connector ids found.
        ids: Vec<String>,
    },
    /// A pipeline of a signal other than traces.
    #[error("spanpipe handles traces only; remove the `{signal}` pipeline or run it in an OpenTelemetry Collector")]
    UnsupportedSignal {
        /// The signal (`metrics`, `logs`, `profiles`).
        signal: String,
    },
    /// A pipeline id that is not `traces` or `traces/name`.
    #[error("invalid pipeline id `{id}`: write `traces` or `traces/<name>`")]
    InvalidPipelineId {
        /// The id as written.
        id: String,
    },
    /// A value of the wrong type or out of range, a missing required key, or an unknown key
    /// inside a component's config, as its config type reports it.
    #[error("{message}")]
    Invalid {
        /// What the config type said.
        message: String,
    },
    /// `service.pipelines` is missing or empty.
    #[error("no pipelines: add `service.pipelines.traces` with `receivers` and `exporters`")]
    NoPipelines,
    /// A pipeline without receivers.
    #[error("a pipeline needs at least one receiver")]
    NoReceivers,
    /// A pipeline without exporters.
    #[error("a pipeline needs at least one exporter")]
    NoExporters,
    /// A pipeline or `service.extensions` names a component that is not configured.
    #[error("references {kind} `{id}`, which is not configured under `{}`", kind.section())]
    UndefinedComponent {
        /// The kind of the reference.
        kind: ComponentKind,
        /// The id referenced.
        id: ComponentId,
    },
    /// A pipeline lists the same component twice.
    #[error("lists {kind} `{id}` more than once")]
    DuplicateReference {
        /// The kind of the reference.
        kind: ComponentKind,
        /// The id listed twice.
        id: ComponentId,
    },
    /// Two components would listen on the same address.
    #[error("{address} is also bound by `{other_path}` ({other_address}); give one of them another port")]
    ListenAddressConflict {
        /// This key's address.
        address: SocketAddr,
        /// The path of the key that binds first.
        other_path: String,
        /// That key's address.
        other_address: SocketAddr,
    },
    /// A component's own [`ComponentConfig::validate`](crate::ComponentConfig::validate) refused it.
    #[error("{message}")]
    Component {
        /// The component's message.
        message: String,
    },
    /// A `service` setting out of range.
    #[error("{message}")]
    Service {
        /// What to change.
        message: String,
    },
}

/// A config is refused: every error found, one per line in [`Display`](fmt::Display), and the
/// warnings found on the way (an unset environment variable often explains an error).
#[derive(Debug)]
pub struct ConfigErrors {
    /// What was loaded: the file's path, or `config` for text.
    pub source_name: String,
    /// The errors, in the order of the file.
    pub errors: Vec<ConfigError>,
    /// The warnings.
    pub warnings: Vec<Warning>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.errors.len();
        write!(f, "{}: {count} {}", self.source_name, if count == 1 { "error" } else { "errors" })?;
        for error in &self.errors {
            write!(f, "\n  {error}")?;
        }
        for warning in &self.warnings {
            write!(f, "\n  warning: {warning}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Something worth telling that does not refuse the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Dotted path of the key concerned.
    pub path: String,
    /// Where it is in the YAML text, when known.
    pub location: Option<Location>,
    /// What it is.
    pub kind: WarningKind,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_place(f, &self.path, self.location)?;
        write!(f, "{}", self.kind)
    }
}

/// The kinds of [`Warning`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WarningKind {
    /// A configured component that no pipeline (or, for extensions, `service.extensions`) uses.
    /// The OpenTelemetry Collector ignores those, and so does spanpipe.
    #[error("{kind} `{id}` is configured but not used {}; it will not start", if matches!(kind, ComponentKind::Extension) { "in `service.extensions`" } else { "by any pipeline" })]
    UnusedComponent {
        /// Its kind.
        kind: ComponentKind,
        /// Its id.
        id: ComponentId,
    },
    /// `${env:NAME}` names a variable that is not set and has no default: it expands to nothing.
    #[error("environment variable `{name}` is not set; `{reference}` expands to an empty value")]
    UnsetEnvironmentVariable {
        /// The variable.
        name: String,
        /// The reference as written.
        reference: String,
    },
    /// A component's own warning ([`crate::ComponentConfig::warnings`]): a setting that does
    /// nothing as written.
    #[error("{message}")]
    Component {
        /// What the component says.
        message: String,
    },
    /// `${...}` that is not a variable reference (such as `${1}`), kept as written.
    #[error("`{reference}` is not an environment variable reference and is kept as written; write `$${{` for a literal `${{`")]
    NotExpanded {
        /// The text kept.
        reference: String,
    },
}

/// "unknown key `grcp`; did you mean `grpc`? Valid keys here: `grpc`, `http`".
pub(crate) fn unknown_key_message(key: &str, expected: &[&str]) -> String {
    if expected.is_empty() {
        return format!("unknown key `{key}`; no keys are allowed here");
    }
    format!("unknown key `{key}`{}; valid keys here: {}", did_you_mean(key, expected), list(expected))
}

/// "; did you mean `grpc`?" when one candidate is a likely typo of `word`, else nothing.
pub(crate) fn did_you_mean<S: AsRef<str>>(word: &str, candidates: &[S]) -> String {
    let threshold = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|candidate| (edit_distance(word, candidate.as_ref()), candidate.as_ref()))
        .filter(|&(distance, _)| distance <= threshold)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| format!(" (did you mean `{candidate}`?)"))
        .unwrap_or_default()
}

pub(crate) fn list<S: AsRef<str>>(items: &[S]) -> String {
    items.iter().map(|item| format!("`{}`", item.as_ref())).collect::<Vec<_>>().join(", ")
}

fn list_or_none<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        "none of this kind".to_owned()
    } else {
        list(items)
    }
}

/// Edit distance over characters where swapping two neighbours counts as one edit (optimal
/// string alignment), for typo suggestions on short identifiers (`grcp` is one edit from `grpc`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // distances[i][j]: distance between the first i characters of a and the first j of b.
    let mut distances = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in distances.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in distances[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = distances[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]);
            let mut best = substitution.min(distances[i - 1][j] + 1).min(distances[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(distances[i - 2][j - 2] + 1);
            }
            distances[i][j] = best;
        }
    }
    distances[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        assert_eq!(did_you_mean("grcp", &["grpc", "http"]), " (did you mean `grpc`?)");
        assert_eq!(did_you_mean("batsh", &["batch", "debug"]), " (did you mean `batch`?)");
        assert_eq!(did_you_mean("tail_sampling", &["batch", "attributes"]), "");
        assert_eq!(did_you_mean("x", &["y"]), " (did you mean `y`?)");
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_substitutions() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("endpoint", "endpoint"), 0);
        assert_eq!(edit_distance("µs", "us"), 1);
        assert_eq!(edit_distance("grcp", "grpc"), 1);
    }

    #[test]
    fn errors_print_one_per_line_with_path_and_location() {
        let errors = ConfigErrors {
            source_name: "collector.yaml".into(),
            errors: vec![
                ConfigError::new(
                    "receivers.otlp.protocols.grcp",
                    Some(Location { line: 4, column: 7 }),
                    ConfigErrorKind::UnknownKey { key: "grcp".into(), expected: &["grpc", "http"] },
                ),
                ConfigError::new("service.pipelines", None, ConfigErrorKind::NoPipelines),
            ],
            warnings: vec![],
        };
        assert_eq!(
            errors.to_string(),
            "collector.yaml: 2 errors\n  receivers.otlp.protocols.grcp (line 4, column 7): unknown key `grcp` \
             (did you mean `grpc`?); valid keys here: `grpc`, `http`\n  service.pipelines: no pipelines: add \
             `service.pipelines.traces` with `receivers` and `exporters`"
        );
    }
}
