//! The YAML document as a tree that remembers where each value was written, so that every error
//! can name its line. Built from the events of `saphyr-parser` (a pure-Rust, YAML 1.2 parser that
//! passes the YAML test suite and reports a span for every event).
//!
//! While the tree is built:
//! - environment references in values are expanded ([`crate::env`]), keys are left alone;
//! - aliases share the anchored subtree (`Rc`), and the size the document would have once every
//!   alias is expanded is counted, so a "billion laughs" document is refused rather than walked;
//! - merge keys (`<<: *defaults`) are applied, as the Collector's YAML library applies them;
//! - duplicate keys are refused (a silent "last one wins" hides mistakes);
//! - nesting is bounded, so hostile input cannot exhaust the stack.
//!
//! Scalars keep their text. Plain scalars are typed later, by the YAML 1.2 core schema, only
//! where the config type asks for a number or a boolean; a string-typed key receives the text as
//! written (`0123` stays `0123`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, StrInput, Tag};

use crate::env::{self, EnvLookup, Expanded, WholeValue};
use crate::error::{ConfigError, ConfigErrorKind, Location, Warning};
use crate::path::Path;

/// Deepest nesting of mappings and sequences accepted.
pub(crate) const MAX_DEPTH: usize = 64;
/// Most values a document may hold once its aliases are expanded.
pub(crate) const MAX_EXPANDED_VALUES: u64 = 1_000_000;

/// One value of the document.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) location: Location,
    /// How many values this subtree holds with aliases expanded.
    weight: u64,
}

#[derive(Debug)]
pub(crate) enum Value {
    /// A plain scalar: typed by its text (null, boolean, number or string).
    Plain(String),
    /// A quoted or block scalar, an `!!str`, or text built by expansion: always a string.
    Str(String),
    Seq(Vec<Rc<Node>>),
    Map(Vec<Entry>),
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_location: Location,
    pub(crate) value: Rc<Node>,
}

/// A plain scalar typed by the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
}

impl Node {
    /// The empty value, standing for an empty document.
    pub(crate) fn empty() -> Self {
        Self { value: Value::Plain(String::new()), location: Location { line: 1, column: 1 }, weight: 1 }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.value, Value::Plain(text) if resolve_plain(text) == Scalar::Null)
    }

    /// What the value is, in words, for messages.
    pub(crate) fn describe(&self) -> &'static str {
        match &self.value {
            Value::Plain(text) => match resolve_plain(text) {
                Scalar::Null => "an empty value",
                Scalar::Bool(_) => "a boolean",
                Scalar::Int(_) | Scalar::Float(_) => "a number",
                Scalar::Str(_) => "a string",
            },
            Value::Str(_) => "a string",
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
        }
    }

    /// The document as JSON, scalars typed as the core schema types them: what the JSON Schema
    /// describes.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as Json;
        match &self.value {
            Value::Plain(text) => match resolve_plain(text) {
                Scalar::Null => Json::Null,
                Scalar::Bool(value) => Json::Bool(value),
                Scalar::Int(value) => i64::try_from(value)
                    .map(Json::from)
                    .or_else(|_| u64::try_from(value).map(Json::from))
                    .unwrap_or_else(|_| Json::String(text.clone())),
                Scalar::Float(value) => {
                    serde_json::Number::from_f64(value).map_or_else(|| Json::String(text.clone()), Json::Number)
                }
                Scalar::Str(text) => Json::String(text.to_owned()),
            },
            Value::Str(text) => Json::String(text.clone()),
            Value::Seq(items) => Json::Array(items.iter().map(|item| item.to_json()).collect()),
            Value::Map(entries) => {
                Json::Object(entries.iter().map(|entry| (entry.key.clone(), entry.value.to_json())).collect())
            }
        }
    }
}

/// Types a plain scalar by the YAML 1.2 core schema (what the Collector's YAML library mostly
/// does): `null`/`~`/empty, `true`/`false` in three casings, decimal, `0x` and `0o` integers,
/// decimals with optional exponent, `.inf` and `.nan`. Anything else is a string.
pub(crate) fn resolve_plain(text: &str) -> Scalar<'_> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        "true" | "True" | "TRUE" => return Scalar::Bool(true),
        "false" | "False" | "FALSE" => return Scalar::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Scalar::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Scalar::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Scalar::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if let Ok(value) = i128::from_str_radix(hex, 16) {
            if !hex.starts_with(['+', '-']) {
                return Scalar::Int(value);
            }
        }
    }
    if let Some(octal) = text.strip_prefix("0o") {
        if let Ok(value) = i128::from_str_radix(octal, 8) {
            if !octal.starts_with(['+', '-']) {
                return Scalar::Int(value);
            }
        }
    }
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(value) = text.parse::<i128>() {
            return Scalar::Int(value);
        }
    }
    if is_core_float(unsigned) {
        if let Ok(value) = text.parse::<f64>() {
            return Scalar::Float(value);
        }
    }
    Scalar::Str(text)
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` — the sign already removed. Rust's own float
/// parser also accepts `inf`, `nan` and `infinity`, which YAML reads as strings.
fn is_core_float(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (mantissa, None),
    };
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match fraction {
        Some(fraction) => digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty()),
        None => !whole.is_empty() && digits(whole),
    };
    let exponent_ok = exponent.is_none_or(|exponent| {
        let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        !exponent.is_empty() && digits(exponent)
    });
    mantissa_ok && exponent_ok
}

/// The result of reading a document: its root (`None` for an empty document), and what was found
/// on the way that does not stop reading.
pub(crate) struct Document {
    pub(crate) root: Option<Rc<Node>>,
    pub(crate) errors: Vec<ConfigError>,
    pub(crate) warnings: Vec<Warning>,
}

/// An error that stops reading: a syntax error, a second document, a document too deep or too
/// large. Boxed, as it is rare and the happy path should stay small.
pub(crate) type Fatal = Box<ConfigError>;

/// Reads `text`, expanding environment references through `env`.
///
/// # Errors
/// A syntax error, a second document, or a document too deep or too large: reading cannot go on.
pub(crate) fn parse(text: &str, env: EnvLookup<'_>) -> Result<Document, Fatal> {
    let mut builder = Builder::new(Some(env), None);
    let root = builder.document(text)?;
    Ok(Document { root, errors: builder.errors, warnings: builder.warnings })
}

struct Builder<'e> {
    /// `None` while reading an environment variable's value: it is not expanded again.
    env: Option<EnvLookup<'e>>,
    /// Set while reading an environment variable's value: every node is placed at the
    /// reference, since that is where the reader can change something.
    origin: Option<Location>,
    anchors: HashMap<usize, Rc<Node>>,
    expanded_values: u64,
    /// Above zero while inside a mapping key: keys are not expanded.
    in_key: usize,
    errors: Vec<ConfigError>,
    warnings: Vec<Warning>,
}

/// The events of one document, with spans.
type Events<'t> = Parser<'t, StrInput<'t>>;

impl<'e> Builder<'e> {
    fn new(env: Option<EnvLookup<'e>>, origin: Option<Location>) -> Self {
        Self {
            env,
            origin,
            anchors: HashMap::new(),
            expanded_values: 0,
            in_key: 0,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn location(&self, span: Span) -> Location {
        self.origin.unwrap_or(Location { line: span.start.line(), column: span.start.col() + 1 })
    }

    fn fatal(&self, span: Span, kind: ConfigErrorKind) -> Fatal {
        Box::new(ConfigError::new("", Some(self.location(span)), kind))
    }

    fn next<'t>(&self, events: &mut Events<'t>) -> Result<(Event<'t>, Span), Fatal> {
        match events.next_event() {
            Some(Ok(event)) => Ok(event),
            Some(Err(error)) => {
                let marker = error.marker();
                let location = self.origin.unwrap_or(Location { line: marker.line(), column: marker.col() + 1 });
                Err(Box::new(ConfigError::new(
                    "",
                    Some(location),
                    ConfigErrorKind::Syntax { message: error.info().to_owned() },
                )))
            }
            None => Err(Box::new(ConfigError::new(
                "",
                self.origin,
                ConfigErrorKind::Syntax { message: "the document ends unexpectedly".to_owned() },
            ))),
        }
    }

    fn document(&mut self, text: &str) -> Result<Option<Rc<Node>>, Fatal> {
        let mut events = Parser::new_from_str(text);
        let mut root = None;
        loop {
            let (event, span) = self.next(&mut events)?;
            match event {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => return Ok(root),
                Event::DocumentStart(_) if root.is_some() => {
                    return Err(self.fatal(span, ConfigErrorKind::MultipleDocuments));
                }
                Event::DocumentStart(_) => {
                    let (first, first_span) = self.next(&mut events)?;
                    root = Some(self.node(&mut events, first, first_span, &Path::Root, 0)?);
                }
                other => {
                    return Err(self.fatal(span, ConfigErrorKind::Syntax { message: format!("unexpected {other:?}") }));
                }
            }
        }
    }

    fn count(&mut self, values: u64, location: Location) -> Result<(), Fatal> {
        self.expanded_values = self.expanded_values.saturating_add(values);
        if self.expanded_values > MAX_EXPANDED_VALUES {
            let kind = ConfigErrorKind::TooLarge { limit: MAX_EXPANDED_VALUES };
            return Err(Box::new(ConfigError::new("", Some(location), kind)));
        }
        Ok(())
    }

    fn node<'t>(
        &mut self,
        events: &mut Events<'t>,
        event: Event<'t>,
        span: Span,
        path: &Path<'_>,
        depth: usize,
    ) -> Result<Rc<Node>, Fatal> {
        if depth > MAX_DEPTH {
            return Err(self.fatal(span, ConfigErrorKind::TooDeep { limit: MAX_DEPTH }));
        }
        let location = self.location(span);
        let (node, anchor) = match event {
            Event::Alias(anchor) => {
                let Some(node) = self.anchors.get(&anchor).cloned() else {
                    let message = "an alias refers to an anchor that is not defined before it".to_owned();
                    return Err(self.fatal(span, ConfigErrorKind::Syntax { message }));
                };
                self.count(node.weight, location)?;
                return Ok(node);
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1, location)?;
                (self.scalar(text, style, tag.as_deref(), location, path)?, anchor)
            }
            Event::SequenceStart(anchor, tag) => {
                self.check_container_tag(tag.as_deref(), "seq", location, path);
                self.count(1, location)?;
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next(events)?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    let item_path = path.index(items.len());
                    items.push(self.node(events, event, span, &item_path, depth + 1)?);
                }
                let weight = 1 + items.iter().map(|item| item.weight).fold(0, u64::saturating_add);
                (Rc::new(Node { value: Value::Seq(items), location, weight }), anchor)
            }
            Event::MappingStart(anchor, tag) => {
                self.check_container_tag(tag.as_deref(), "map", location, path);
                self.count(1, location)?;
                (self.mapping(events, location, path, depth)?, anchor)
            }
            other => {
                return Err(self.fatal(span, ConfigErrorKind::Syntax { message: format!("unexpected {other:?}") }));
            }
        };
        if anchor != 0 {
            self.anchors.insert(anchor, Rc::clone(&node));
        }
        Ok(node)
    }

    fn mapping<'t>(
        &mut self,
        events: &mut Events<'t>,
        location: Location,
        path: &Path<'_>,
        depth: usize,
    ) -> Result<Rc<Node>, Fatal> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut merges: Vec<Rc<Node>> = Vec::new();
        loop {
            let (event, span) = self.next(events)?;
            if matches!(event, Event::MappingEnd) {
                break;
            }
            let is_merge_key = matches!(&event, Event::Scalar(text, ScalarStyle::Plain, _, None) if text == "<<");
            self.in_key += 1;
            let key_node = self.node(events, event, span, path, depth + 1);
            self.in_key -= 1;
            let key_node = key_node?;
            let (value_event, value_span) = self.next(events)?;
            let key = match &key_node.value {
                Value::Plain(text) | Value::Str(text) => Some(text.clone()),
                Value::Seq(_) | Value::Map(_) => None,
            };
            let value_path = path.key(key.as_deref().unwrap_or("?"));
            let value = self.node(events, value_event, value_span, &value_path, depth + 1)?;
            let Some(key) = key else {
                self.error(path, key_node.location, ConfigErrorKind::NonScalarKey);
                continue;
            };
            if is_merge_key {
                merges.push(value);
            } else if let Some(first) = entries.iter().find(|entry| entry.key == key) {
                let kind = ConfigErrorKind::DuplicateKey { key: key.clone(), first_line: first.key_location.line };
                self.error(&path.key(&key), key_node.location, kind);
            } else {
                entries.push(Entry { key, key_location: key_node.location, value });
            }
        }
        self.merge(&mut entries, &merges, path);
        let weight = 1 + entries.iter().map(|entry| entry.value.weight).fold(0, u64::saturating_add);
        Ok(Rc::new(Node { value: Value::Map(entries), location, weight }))
    }

    /// Applies merge keys: keys written in the mapping win, then earlier merged mappings win over
    /// later ones (YAML's merge key rules).
    fn merge(&mut self, entries: &mut Vec<Entry>, merges: &[Rc<Node>], path: &Path<'_>) {
        for merge in merges {
            let sources: Vec<&Node> = match &merge.value {
                Value::Map(_) => vec![merge],
                Value::Seq(items) if items.iter().all(|item| matches!(item.value, Value::Map(_))) => {
                    items.iter().map(|item| &**item).collect()
                }
                _ => {
                    self.error(&path.key("<<"), merge.location, ConfigErrorKind::InvalidMerge);
                    continue;
                }
            };
            for source in sources {
                let Value::Map(source_entries) = &source.value else { continue };
                for entry in source_entries {
                    if entries.iter().all(|existing| existing.key != entry.key) {
                        entries.push(Entry {
                            key: entry.key.clone(),
                            key_location: entry.key_location,
                            value: Rc::clone(&entry.value),
                        });
                    }
                }
            }
        }
    }

    fn error(&mut self, path: &Path<'_>, location: Location, kind: ConfigErrorKind) {
        self.errors.push(ConfigError::new(path.to_string(), Some(location), kind));
    }

    fn check_container_tag(&mut self, tag: Option<&Tag>, expected: &str, location: Location, path: &Path<'_>) {
        if let Some(tag) = tag {
            if !(tag.is_yaml_core_schema() && tag.suffix == expected) {
                self.error(path, location, ConfigErrorKind::UnsupportedTag { tag: tag.to_string() });
            }
        }
    }

    fn scalar(
        &mut self,
        text: Cow<'_, str>,
        style: ScalarStyle,
        tag: Option<&Tag>,
        location: Location,
        path: &Path<'_>,
    ) -> Result<Rc<Node>, Fatal> {
        let forced_string = match tag {
            None => false,
            Some(tag) if tag.is_yaml_core_schema() => match tag.suffix.as_str() {
                "str" => true,
                "int" | "float" | "bool" | "null" => false,
                _ => {
                    self.error(path, location, ConfigErrorKind::UnsupportedTag { tag: tag.to_string() });
                    false
                }
            },
            // The non-specific tag `!` makes a plain scalar a string.
            Some(tag) if (tag.handle.as_str(), tag.suffix.as_str()) == ("", "!") => true,
            Some(tag) => {
                self.error(path, location, ConfigErrorKind::UnsupportedTag { tag: tag.to_string() });
                false
            }
        };
        let written = |text: String| {
            if forced_string || style != ScalarStyle::Plain {
                Value::Str(text)
            } else {
                Value::Plain(text)
            }
        };
        let Some(env) = self.env.filter(|_| self.in_key == 0) else {
            return Ok(Rc::new(Node { value: written(text.into_owned()), location, weight: 1 }));
        };
        let mut warnings = Vec::new();
        let expanded = env::expand(&text, env, &mut warnings);
        let path_text = path.to_string();
        self.warnings.extend(warnings.into_iter().map(|kind| Warning {
            path: path_text.clone(),
            location: Some(location),
            kind,
        }));
        let value = match expanded {
            Ok(Expanded::Unchanged) => written(text.into_owned()),
            Ok(Expanded::Embedded(result)) => Value::Str(result),
            Ok(Expanded::Whole(WholeValue::Empty)) => Value::Plain(String::new()),
            Ok(Expanded::Whole(WholeValue::EmptyString)) => Value::Str(String::new()),
            Ok(Expanded::Whole(WholeValue::Yaml(result))) => return self.variable_value(result, location),
            Err(kind) => {
                self.errors.push(ConfigError::new(path_text, Some(location), kind));
                written(text.into_owned())
            }
        };
        Ok(Rc::new(Node { value, location, weight: 1 }))
    }

    /// A variable's value that makes up a whole scalar is read as YAML, as the Collector reads
    /// it; text that is not valid YAML stays a string.
    fn variable_value(&mut self, text: String, location: Location) -> Result<Rc<Node>, Fatal> {
        let mut inner = Builder::new(None, Some(location));
        let node = match inner.document(&text) {
            Ok(Some(node)) if inner.errors.is_empty() => node,
            Ok(None) if inner.errors.is_empty() => {
                Rc::new(Node { value: Value::Plain(String::new()), location, weight: 1 })
            }
            _ => Rc::new(Node { value: Value::Str(text), location, weight: 1 }),
        };
        self.count(node.weight.saturating_sub(1), location)?;
        Ok(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse_ok(text: &str) -> Rc<Node> {
        let document = parse(text, &no_env).unwrap();
        assert!(document.errors.is_empty(), "{:?}", document.errors);
        document.root.unwrap()
    }

    fn parse_err(text: &str) -> ConfigError {
        match parse(text, &no_env) {
            Err(error) => *error,
            Ok(document) => document.errors.into_iter().next().expect("an error"),
        }
    }

    #[test]
    fn types_plain_scalars_by_the_core_schema() {
        let cases = [
            ("", Scalar::Null),
            ("~", Scalar::Null),
            ("NULL", Scalar::Null),
            ("True", Scalar::Bool(true)),
            ("false", Scalar::Bool(false)),
            ("4317", Scalar::Int(4317)),
            ("-12", Scalar::Int(-12)),
            ("+7", Scalar::Int(7)),
            ("0x1F", Scalar::Int(31)),
            ("0o17", Scalar::Int(15)),
            ("1.5", Scalar::Float(1.5)),
            ("-.5e3", Scalar::Float(-500.0)),
            ("1e3", Scalar::Float(1000.0)),
            ("2.", Scalar::Float(2.0)),
            ("-.inf", Scalar::Float(f64::NEG_INFINITY)),
            ("yes", Scalar::Str("yes")),
            ("on", Scalar::Str("on")),
            ("inf", Scalar::Str("inf")),
            ("nan", Scalar::Str("nan")),
            ("0x", Scalar::Str("0x")),
            ("0x-1", Scalar::Str("0x-1")),
            ("1.2.3", Scalar::Str("1.2.3")),
            ("e5", Scalar::Str("e5")),
            ("5s", Scalar::Str("5s")),
            ("localhost:4317", Scalar::Str("localhost:4317")),
        ];
        for (text, expected) in cases {
            assert_eq!(resolve_plain(text), expected, "{text:?}");
        }
        assert!(matches!(resolve_plain(".NaN"), Scalar::Float(value) if value.is_nan()));
    }

    #[test]
    fn records_locations_and_scalar_styles() {
        let root = parse_ok("a:\n  b: 'quoted'\n  c: plain\nlist:\n  - 1\n");
        let Value::Map(entries) = &root.value else { panic!("mapping expected") };
        assert_eq!(entries[0].key_location, Location { line: 1, column: 1 });
        let Value::Map(inner) = &entries[0].value.value else { panic!("mapping expected") };
        assert_eq!(inner[0].key_location, Location { line: 2, column: 3 });
        assert!(matches!(&inner[0].value.value, Value::Str(text) if text == "quoted"));
        assert_eq!(inner[0].value.location, Location { line: 2, column: 6 });
        assert!(matches!(&inner[1].value.value, Value::Plain(text) if text == "plain"));
        let Value::Seq(items) = &entries[1].value.value else { panic!("sequence expected") };
        assert_eq!(items[0].location, Location { line: 5, column: 5 });
    }

    #[test]
    fn refuses_duplicate_keys_naming_the_first() {
        let error = parse_err("a: 1\nb: 2\na: 3\n");
        assert_eq!(error.path, "a");
        assert_eq!(error.location, Some(Location { line: 3, column: 1 }));
        assert!(matches!(error.kind, ConfigErrorKind::DuplicateKey { first_line: 1, .. }));
    }

    #[test]
    fn applies_merge_keys_with_explicit_keys_winning() {
        let root = parse_ok(
            "defaults: &defaults\n  timeout: 5s\n  compression: gzip\nother: &other\n  retries: 3\n  timeout: 9s\n\
             exporter:\n  <<: [*defaults, *other]\n  compression: none\n",
        );
        let json = root.to_json();
        assert_eq!(json["exporter"], serde_json::json!({"compression": "none", "timeout": "5s", "retries": 3}));
        let error = parse_err("base: &base [1]\nx:\n  <<: *base\n");
        assert!(matches!(error.kind, ConfigErrorKind::InvalidMerge));
        assert_eq!(error.path, "x.<<");
    }

    #[test]
    fn aliases_share_anchored_values() {
        let json = parse_ok("a: &endpoint localhost:4317\nb: *endpoint\n").to_json();
        assert_eq!(json, serde_json::json!({"a": "localhost:4317", "b": "localhost:4317"}));
    }

    #[test]
    fn refuses_billion_laughs() {
        let mut text = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..8 {
            let previous = format!("*l{}", level - 1);
            let items = [previous.as_str(); 10].join(", ");
            text.push_str(&format!("l{level}: &l{level} [{items}]\n"));
        }
        assert!(matches!(parse_err(&text).kind, ConfigErrorKind::TooLarge { .. }));
    }

    #[test]
    fn refuses_deep_nesting_without_overflowing() {
        let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        assert!(parse(&nested(MAX_DEPTH), &no_env).is_ok());
        assert!(matches!(parse_err(&nested(MAX_DEPTH + 2)).kind, ConfigErrorKind::TooDeep { limit: MAX_DEPTH }));
        let mut block = String::new();
        for level in 0..=MAX_DEPTH + 1 {
            block.push_str(&format!("{}k{level}:\n", "  ".repeat(level)));
        }
        assert!(matches!(parse_err(&block).kind, ConfigErrorKind::TooDeep { limit: MAX_DEPTH }));
        // The parser's own limit stops far deeper flow nesting before any node is built.
        assert!(matches!(parse_err(&nested(100_000)).kind, ConfigErrorKind::Syntax { .. }));
    }

    #[test]
    fn reports_syntax_errors_with_their_line() {
        let error = parse_err("receivers:\n  otlp:\n    protocols: [grpc\n");
        assert!(matches!(error.kind, ConfigErrorKind::Syntax { .. }), "{error}");
        assert!(error.location.is_some_and(|location| location.line >= 3), "{error}");
    }

    #[test]
    fn refuses_a_second_document() {
        let error = parse_err("a: 1\n---\nb: 2\n");
        assert!(matches!(error.kind, ConfigErrorKind::MultipleDocuments));
        assert_eq!(error.location.map(|location| location.line), Some(2));
    }

    #[test]
    fn reads_core_tags_and_refuses_others() {
        let root = parse_ok("a: !!str 4317\nb: !!int 7\nc: ! 12\n");
        let Value::Map(entries) = &root.value else { panic!("mapping expected") };
        assert!(matches!(&entries[0].value.value, Value::Str(text) if text == "4317"));
        assert!(matches!(&entries[1].value.value, Value::Plain(text) if text == "7"));
        assert!(matches!(&entries[2].value.value, Value::Str(text) if text == "12"));
        let error = parse_err("a: !vault secret/path\n");
        assert!(matches!(error.kind, ConfigErrorKind::UnsupportedTag { .. }));
        assert_eq!(error.path, "a");
    }

    #[test]
    fn refuses_complex_keys() {
        let error = parse_err("? [a, b]\n: 1\n");
        assert!(matches!(error.kind, ConfigErrorKind::NonScalarKey));
    }

    #[test]
    fn empty_documents_have_no_root() {
        assert!(parse("", &no_env).unwrap().root.is_none());
        assert!(parse("# only a comment\n", &no_env).unwrap().root.is_none());
    }

    #[test]
    fn expands_values_but_not_keys() {
        let env = |name: &str| (name == "PORT").then(|| "4317".to_owned());
        let document = parse("${PORT}: ${PORT}\nquoted: \"${PORT}\"\nurl: http://h:${PORT}\n", &env).unwrap();
        let json = document.root.unwrap().to_json();
        assert_eq!(json, serde_json::json!({"${PORT}": 4317, "quoted": 4317, "url": "http://h:4317"}));
    }

    #[test]
    fn variable_values_are_read_as_yaml_at_the_reference() {
        let env = |name: &str| match name {
            "LIST" => Some("[a, b]".to_owned()),
            "QUOTED" => Some("\"0123\"".to_owned()),
            "BROKEN" => Some("[unclosed".to_owned()),
            "NESTED" => Some("${env:LIST}".to_owned()),
            _ => None,
        };
        let document =
            parse("list: ${LIST}\nquoted: ${QUOTED}\nbroken: ${BROKEN}\nnested: ${NESTED}\nunset: ${UNSET}\n", &env)
                .unwrap();
        let root = document.root.unwrap();
        assert_eq!(
            root.to_json(),
            serde_json::json!({"list": ["a", "b"], "quoted": "0123", "broken": "[unclosed", "nested": "${env:LIST}", "unset": null})
        );
        let Value::Map(entries) = &root.value else { panic!("mapping expected") };
        let Value::Seq(items) = &entries[0].value.value else { panic!("sequence expected") };
        assert_eq!(items[1].location, Location { line: 1, column: 7 });
        assert_eq!(document.warnings.len(), 1);
        assert_eq!(document.warnings[0].path, "unset");
    }
}
