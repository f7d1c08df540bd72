//! Component ids as the OpenTelemetry Collector writes them: `type` or `type/name`
//! (`otlp`, `otlp/backend`), so that one type can be configured several times.

use std::fmt;
use std::str::FromStr;

/// The four kinds of component a config file configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ComponentKind {
    /// Accepts spans from clients (`receivers` section).
    Receiver,
    /// Transforms, samples or batches spans (`processors` section).
    Processor,
    /// Sends spans on (`exporters` section).
    Exporter,
    /// Serves something beside the pipelines, such as health checks (`extensions` section).
    Extension,
}

impl ComponentKind {
    /// All kinds, in the order of the file.
    pub const ALL: [ComponentKind; 4] = [Self::Receiver, Self::Processor, Self::Exporter, Self::Extension];

    /// The top-level section that configures this kind (`receivers`).
    #[must_use]
    pub const fn section(self) -> &'static str {
        match self {
            Self::Receiver => "receivers",
            Self::Processor => "processors",
            Self::Exporter => "exporters",
            Self::Extension => "extensions",
        }
    }

    /// The kind's name in messages (`receiver`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Receiver => "receiver",
            Self::Processor => "processor",
            Self::Exporter => "exporter",
            Self::Extension => "extension",
        }
    }
}

impl fmt::Display for ComponentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `type[/name]`: the component type (which config type and which implementation) and an
/// optional name that tells several components of one type apart.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComponentId {
    type_name: String,
    name: Option<String>,
}

/// Why a component id was refused. The rules are the Collector's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ComponentIdError {
    /// Nothing but spaces.
    #[error("the id is empty")]
    Empty,
    /// The type does not match `^[a-zA-Z][0-9a-zA-Z_]{0,62}$`.
    #[error("the type must start with a letter and hold only letters, digits and `_`, at most 63 characters")]
    InvalidType,
    /// `type/` with nothing after the slash.
    #[error("the name after `/` is empty")]
    EmptyName,
    /// A name with spaces, control characters or symbols.
    #[error("the name after `/` must not contain spaces, control characters or symbols such as `$`, `+`, `<`")]
    InvalidName,
}

/// Longest component type the Collector accepts.
const MAX_TYPE_LENGTH: usize = 63;

impl ComponentId {
    /// Parses `type` or `type/name`. Spaces around the type and the name are removed, as the
    /// Collector removes them.
    ///
    /// # Errors
    /// When the type or the name breaks the Collector's rules ([`ComponentIdError`]).
    pub fn parse(text: &str) -> Result<Self, ComponentIdError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ComponentIdError::Empty);
        }
        let (type_name, name) = match text.split_once('/') {
            Some((type_name, name)) => (type_name.trim(), Some(name.trim())),
            None => (text, None),
        };
        if !is_valid_type(type_name) {
            return Err(ComponentIdError::InvalidType);
        }
        let name = match name {
            None => None,
            Some("") => return Err(ComponentIdError::EmptyName),
            Some(name) if name.chars().any(is_refused_in_name) => return Err(ComponentIdError::InvalidName),
            Some(name) => Some(name.to_owned()),
        };
        Ok(Self { type_name: type_name.to_owned(), name })
    }

    /// The type (`otlp` in `otlp/backend`).
    #[must_use]
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The name (`backend` in `otlp/backend`), if any.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

/// The Collector's type rule: `^[a-zA-Z][0-9a-zA-Z_]{0,62}$`. Also what the registry accepts.
pub(crate) fn is_valid_type(type_name: &str) -> bool {
    let mut chars = type_name.chars();
    chars.next().is_some_and(|first| first.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && type_name.len() <= MAX_TYPE_LENGTH
}

/// The Collector refuses names with Unicode separators, control characters and symbols
/// (`^[^\pZ\pC\pS]+$`). Without Unicode category tables this refuses every whitespace and control
/// character and the ASCII symbols; a non-ASCII symbol such as `©` passes.
fn is_refused_in_name(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '`' | '|' | '~')
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{}/{name}", self.type_name),
            None => f.write_str(&self.type_name),
        }
    }
}

impl FromStr for ComponentId {
    type Err = ComponentIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl<'de> serde::Deserialize<'de> for ComponentId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text)
            .map_err(|reason| serde::de::Error::custom(format!("invalid component id `{text}`: {reason}")))
    }
}

impl serde::Serialize for ComponentId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl schemars::JsonSchema for ComponentId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ComponentId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A component id: its type, optionally followed by `/` and a name (`otlp`, `otlp/backend`).",
            "type": "string",
            "pattern": "^[a-zA-Z][0-9a-zA-Z_]{0,62}(/.+)?$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_type_and_optional_name() {
        let plain = ComponentId::parse("otlp").unwrap();
        assert_eq!((plain.type_name(), plain.name()), ("otlp", None));
        let named = ComponentId::parse("otlp/backend.eu-1").unwrap();
        assert_eq!((named.type_name(), named.name()), ("otlp", Some("backend.eu-1")));
        assert_eq!(named.to_string(), "otlp/backend.eu-1");
        // Only the first slash separates: the rest belongs to the name, as in the Collector.
        assert_eq!(ComponentId::parse("otlp/a/b").unwrap().name(), Some("a/b"));
        assert_eq!(ComponentId::parse(" batch / fast ").unwrap().to_string(), "batch/fast");
    }

    #[test]
    fn refuses_what_the_collector_refuses() {
        let cases = [
            ("", ComponentIdError::Empty),
            ("  ", ComponentIdError::Empty),
            ("1otlp", ComponentIdError::InvalidType),
            ("ot-lp", ComponentIdError::InvalidType),
            ("/name", ComponentIdError::InvalidType),
            ("otlp/", ComponentIdError::EmptyName),
            ("otlp/a b", ComponentIdError::InvalidName),
            ("otlp/$x", ComponentIdError::InvalidName),
        ];
        for (text, expected) in cases {
            assert_eq!(ComponentId::parse(text), Err(expected), "{text:?}");
        }
        assert!(ComponentId::parse(&"a".repeat(63)).is_ok());
        assert_eq!(ComponentId::parse(&"a".repeat(64)), Err(ComponentIdError::InvalidType));
    }
}
