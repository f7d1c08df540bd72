//! The `attributes` processor: inserts, updates, deletes, hashes and extracts span attributes, with
//! the OpenTelemetry Collector's keys and semantics (`actions` of `key`, `action`, `value`,
//! `from_attribute`, `pattern`). Its main use is redaction: `delete` and `hash` remove personal
//! data before spans leave the host; `hash` replaces a value with the hex SHA-256 of it, as the
//! Collector does, so that equal values stay correlatable without being readable.
//!
//! Spans are not decoded into structs. For each span the attribute list is read through the core's
//! views together with the raw bytes of each `KeyValue`; the actions work on that list, and only a
//! span whose list changed is rewritten: its untouched attributes and every other field are copied
//! byte for byte, changed attributes are encoded anew. Spans nothing applied to keep their bytes.
//!
//! Not supported, and refused by [`ComponentConfig::validate`] with a message naming the key:
//! `from_context` (processors see no request metadata in spanpipe) and the `convert` action (whose
//! conversions of maps and arrays to strings follow Go's JSON encoding, which is not reproduced).
//!
//! Duplicate keys are invalid in OTLP but a client can send them; every action treats all
//! attributes with the key alike (a `delete` removes all of them, a `hash` hashes all of them), so
//! a duplicate cannot carry personal data past the processor. As in the Collector, `hash` with
//! both `key` and a `pattern` that also matches that key hashes its value twice.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use memchr::memmem::Finder;
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use spanpipe_config::{ComponentConfig, FieldError};
use spanpipe_core::{AnyValueView, SpanBatch, SpanView};

use crate::rewrite::{Rebuild, SpanEdit, SPAN_ATTRIBUTES};
use crate::{Output, Processor, ProcessorStats};
use spanpipe_core::wire::{len_field_size, put_len_field, put_len_header, put_varint, Fields, WireType};

/// Config of the `attributes` processor.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributesConfig {
    /// The actions, applied to every span's attributes in order. Required (at least one). Defaults
    /// to none.
    #[serde(default)]
    pub actions: Vec<AttributeActionConfig>,
}

/// One action of the `attributes` processor.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeActionConfig {
    /// The attribute to act on; required except for `delete` and `hash` with a `pattern`.
    /// Defaults to "".
    #[serde(default)]
    pub key: String,
    /// What to do: `insert`, `update`, `upsert`, `delete`, `hash` or `extract` (any letter case).
    /// Required: there is no default.
    pub action: ActionKind,
    /// The value for `insert`, `update` and `upsert`: a string, number, boolean, list or map.
    /// Defaults to unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<AttributeValue>,
    /// Take the value from this attribute of the same span instead of `value`; nothing happens to
    /// spans without it. Defaults to "".
    #[serde(default)]
    pub from_attribute: String,
    /// Not supported by spanpipe (no request metadata reaches processors); refused. Defaults to "".
    #[serde(default)]
    pub from_context: String,
    /// A regular expression: for `delete` and `hash`, also act on every attribute whose key it
    /// matches; for `extract`, the expression whose named groups become new attributes. Defaults
    /// to "".
    #[serde(default)]
    pub pattern: String,
    /// Only for `convert`, which spanpipe does not support; refused. Defaults to "".
    #[serde(default)]
    pub converted_type: String,
}

/// The action of an [`AttributeActionConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// Add the attribute where the key is absent.
    Insert,
    /// Change the value where the key is present.
    Update,
    /// Insert or update.
    Upsert,
    /// Remove the attribute.
    Delete,
    /// Replace the value with the hex SHA-256 of it.
    Hash,
    /// Add attributes from the named groups of `pattern` matched against the value.
    Extract,
    /// Change the value's type (refused: not supported).
    Convert,
}

impl<'de> Deserialize<'de> for ActionKind {
    /// Any letter case, as the Collector lower-cases the action before reading it.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(match text.to_ascii_lowercase().as_str() {
            "insert" => Self::Insert,
            "update" => Self::Update,
            "upsert" => Self::Upsert,
            "delete" => Self::Delete,
            "hash" => Self::Hash,
            "extract" => Self::Extract,
            "convert" => Self::Convert,
            _ => {
                return Err(serde::de::Error::invalid_value(
                    serde::de::Unexpected::Str(&text),
                    &"one of insert, update, upsert, delete, hash, extract",
                ))
            }
        })
    }
}

/// A value written by `insert`, `update` or `upsert`, typed as YAML types it.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum AttributeValue {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Double(f64),
    /// A string.
    String(String),
    /// A list of values.
    Array(Vec<AttributeValue>),
    /// A map of values.
    Map(BTreeMap<String, AttributeValue>),
}

impl AttributeValue {
    /// The protobuf encoding of this value as an `AnyValue` message (without tag or length).
    fn encode_any_value(&self, out: &mut Vec<u8>) {
        match self {
            Self::String(text) => put_len_field(out, ANY_STRING, text.as_bytes()),
            Self::Bool(flag) => {
                out.push(ANY_BOOL_TAG);
                out.push(u8::from(*flag));
            }
            Self::Int(number) => {
                out.push(ANY_INT_TAG);
                put_varint(out, *number as u64);
            }
            Self::Double(number) => {
                out.push(ANY_DOUBLE_TAG);
                out.extend_from_slice(&number.to_bits().to_le_bytes());
            }
            Self::Array(values) => {
                let mut list = Vec::new();
                for value in values {
                    let mut element = Vec::new();
                    value.encode_any_value(&mut element);
                    put_len_field(&mut list, LIST_VALUES, &element);
                }
                put_len_field(out, ANY_ARRAY, &list);
            }
            Self::Map(entries) => {
                let mut list = Vec::new();
                for (key, value) in entries {
                    let mut key_value = Vec::new();
                    put_key(&mut key_value, key);
                    let mut any_value = Vec::new();
                    value.encode_any_value(&mut any_value);
                    put_len_field(&mut key_value, KEY_VALUE_VALUE, &any_value);
                    put_len_field(&mut list, LIST_VALUES, &key_value);
                }
                put_len_field(out, ANY_KVLIST, &list);
            }
        }
    }
}

// Field numbers of `KeyValue` and `AnyValue` (opentelemetry-proto `common/v1`).
const KEY_VALUE_KEY: u32 = 1;
const KEY_VALUE_VALUE: u32 = 2;
const KEY_VALUE_KEY_STRINDEX: u32 = 3;
const ANY_STRING: u32 = 1;
const ANY_BOOL_TAG: u8 = 2 << 3;
const ANY_INT_TAG: u8 = 3 << 3;
const ANY_DOUBLE_TAG: u8 = 4 << 3 | 1;
const ANY_ARRAY: u32 = 5;
const ANY_KVLIST: u32 = 6;
const LIST_VALUES: u32 = 1;

/// Writes a `KeyValue.key`; an empty key is proto3's default and left out.
fn put_key(out: &mut Vec<u8>, key: &str) {
    if !key.is_empty() {
        put_len_field(out, KEY_VALUE_KEY, key.as_bytes());
    }
}

fn key_field_size(key: &str) -> usize {
    if key.is_empty() {
        0
    } else {
        len_field_size(key.len())
    }
}

impl ComponentConfig for AttributesConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.actions.is_empty() {
            errors.push(FieldError::new("actions", "at least one action is required"));
        }
        for (index, action) in self.actions.iter().enumerate() {
            if let Err(error) = compile(action) {
                errors.push(FieldError::new(format!("actions[{index}].{}", error.key), error.message));
            }
        }
        errors
    }
}

impl AttributesConfig {
    /// A per-core instance.
    ///
    /// # Errors
    /// The first problem [`ComponentConfig::validate`] would report.
    pub fn build(&self) -> Result<AttributesProcessor, FieldError> {
        let actions = self
            .actions
            .iter()
            .enumerate()
            .map(|(index, action)| {
                compile(action)
                    .map_err(|error| FieldError::new(format!("actions[{index}].{}", error.key), error.message))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let required: Option<Vec<&str>> = actions.iter().map(Action::required_key).collect();
        let required_keys =
            required.unwrap_or_default().into_iter().map(|key| Finder::new(key.as_bytes()).into_owned()).collect();
        Ok(AttributesProcessor { actions, required_keys, scratch: Vec::new(), stats: ProcessorStats::default() })
    }
}

/// A problem with one action: the key to change and what is wrong.
struct ActionError {
    key: &'static str,
    message: String,
}

fn refuse(key: &'static str, message: impl Into<String>) -> Result<Action, ActionError> {
    Err(ActionError { key, message: message.into() })
}

/// Where `insert`, `update` and `upsert` take their value from.
#[derive(Clone, Debug)]
enum Source {
    Value { any_value: Vec<u8>, typed: AttributeValue },
    Attribute(String),
}

/// An action ready to run.
#[derive(Clone, Debug)]
enum Action {
    Insert { key: String, source: Source },
    Update { key: String, source: Source },
    Upsert { key: String, source: Source },
    Delete { key: String, pattern: Option<Regex> },
    Hash { key: String, pattern: Option<Regex> },
    Extract { key: String, pattern: Regex, names: Vec<String> },
}

fn compile_pattern(pattern: &str) -> Result<Regex, ActionError> {
    Regex::new(pattern)
        .map_err(|error| ActionError { key: "pattern", message: format!("invalid regular expression: {error}") })
}

const CONVERT_UNSUPPORTED: &str =
    "`convert` is not supported by spanpipe; use insert, update, upsert, delete, hash or extract";

/// Checks one action as the Collector's `NewAttrProc` does, and prepares it.
fn compile(config: &AttributeActionConfig) -> Result<Action, ActionError> {
    if !config.from_context.is_empty() {
        return refuse(
            "from_context",
            "not supported: spanpipe's processors receive no request metadata; use `value` or `from_attribute`",
        );
    }
    let kind = config.action;
    let name = format!("{kind:?}").to_ascii_lowercase();
    if kind == ActionKind::Convert {
        return refuse("action", CONVERT_UNSUPPORTED);
    }
    if !config.converted_type.is_empty() {
        return refuse("converted_type", format!("only used by `convert`, not by `{name}`: remove it"));
    }
    let value_sources = usize::from(config.value.is_some()) + usize::from(!config.from_attribute.is_empty());
    let key = config.key.clone();
    match kind {
        ActionKind::Insert | ActionKind::Update | ActionKind::Upsert => {
            if key.is_empty() {
                return refuse("key", format!("required for `{name}`"));
            }
            if !config.pattern.is_empty() {
                return refuse("pattern", format!("not used by `{name}`: remove it"));
            }
            let source = match (&config.value, config.from_attribute.as_str()) {
                (Some(value), "") => {
                    let mut any_value = Vec::new();
                    value.encode_any_value(&mut any_value);
                    Source::Value { any_value, typed: value.clone() }
                }
                (None, "") => return refuse("value", format!("`{name}` needs `value` or `from_attribute`")),
                (None, attribute) => Source::Attribute(attribute.to_owned()),
                (Some(_), _) => return refuse("from_attribute", "set either `value` or `from_attribute`, not both"),
            };
            Ok(match kind {
                ActionKind::Insert => Action::Insert { key, source },
                ActionKind::Update => Action::Update { key, source },
                _ => Action::Upsert { key, source },
            })
        }
        ActionKind::Delete | ActionKind::Hash => {
            if key.is_empty() && config.pattern.is_empty() {
                return refuse("key", format!("`{name}` needs `key`, `pattern` or both"));
            }
            if value_sources > 0 {
                let field = if config.value.is_some() { "value" } else { "from_attribute" };
                return refuse(field, format!("not used by `{name}`: remove it"));
            }
            let pattern = if config.pattern.is_empty() { None } else { Some(compile_pattern(&config.pattern)?) };
            Ok(if kind == ActionKind::Delete { Action::Delete { key, pattern } } else { Action::Hash { key, pattern } })
        }
        ActionKind::Extract => {
            if key.is_empty() {
                return refuse("key", "required for `extract`");
            }
            if value_sources > 0 {
                let field = if config.value.is_some() { "value" } else { "from_attribute" };
                return refuse(field, "not used by `extract`: remove it");
            }
            if config.pattern.is_empty() {
                return refuse("pattern", "required for `extract`: a regular expression with named groups");
            }
            let pattern = compile_pattern(&config.pattern)?;
            let names: Option<Vec<String>> =
                pattern.capture_names().skip(1).map(|name| name.map(str::to_owned)).collect();
            match names {
                Some(names) if !names.is_empty() => Ok(Action::Extract { key, pattern, names }),
                Some(_) => refuse("pattern", "has no named groups: `extract` creates one attribute per `(?P<name>…)`"),
                None => {
                    refuse("pattern", "every group must be named: `extract` creates one attribute per `(?P<name>…)`")
                }
            }
        }
        ActionKind::Convert => refuse("action", CONVERT_UNSUPPORTED),
    }
}

/// A value in a span's attribute list while the actions run.
#[derive(Clone, Debug)]
enum Value<'a> {
    /// The value of an attribute of the span: `key_value` is that attribute's whole `KeyValue`
    /// message, whose fields other than the key are copied.
    FromSpan { view: AnyValueView<'a>, key_value: &'a [u8] },
    /// A configured value, already encoded as an `AnyValue`.
    Configured { any_value: &'a [u8], typed: &'a AttributeValue },
    /// A string the processor made (a hash, an extracted group).
    Text(String),
}

impl Value<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Self::FromSpan { view: AnyValueView::String(text), .. } => Some(text),
            Self::Configured { typed: AttributeValue::String(text), .. } => Some(text),
            Self::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The Collector's hash: SHA-256 of a string's bytes, of one byte for a boolean, of eight
    /// little-endian bytes for an integer or a double's bits, as lowercase hex; any other value
    /// (and the empty string) becomes the empty string.
    fn hashed(&self) -> String {
        let scalar_bytes = |bytes: &mut Vec<u8>| -> bool {
            match self {
                Self::FromSpan { view, .. } => match view {
                    AnyValueView::String(text) => bytes.extend_from_slice(text.as_bytes()),
                    AnyValueView::Bool(flag) => bytes.push(u8::from(*flag)),
                    AnyValueView::Int(number) => bytes.extend_from_slice(&number.to_le_bytes()),
                    AnyValueView::Double(number) => bytes.extend_from_slice(&number.to_bits().to_le_bytes()),
                    _ => return false,
                },
                Self::Configured { typed, .. } => match typed {
                    AttributeValue::String(text) => bytes.extend_from_slice(text.as_bytes()),
                    AttributeValue::Bool(flag) => bytes.push(u8::from(*flag)),
                    AttributeValue::Int(number) => bytes.extend_from_slice(&number.to_le_bytes()),
                    AttributeValue::Double(number) => bytes.extend_from_slice(&number.to_bits().to_le_bytes()),
                    AttributeValue::Array(_) | AttributeValue::Map(_) => return false,
                },
                Self::Text(text) => bytes.extend_from_slice(text.as_bytes()),
            }
            true
        };
        let mut input = Vec::new();
        if !scalar_bytes(&mut input) || input.is_empty() {
            return String::new();
        }
        let digest = Sha256::digest(&input);
        let mut hex = String::with_capacity(64);
        for byte in digest.iter() {
            // Writing to a String cannot fail.
            let _ = write!(hex, "{byte:02x}");
        }
        hex
    }
}

/// One attribute of the span being processed.
#[derive(Clone, Debug)]
struct Attribute<'a> {
    key: Cow<'a, str>,
    value: Value<'a>,
    /// The attribute's original `KeyValue` message, while neither its key nor its value changed.
    untouched: Option<&'a [u8]>,
}

impl Attribute<'_> {
    /// Appends the attribute as a `Span.attributes` field.
    fn encode(&self, out: &mut Vec<u8>) {
        if let Some(original) = self.untouched {
            put_len_field(out, SPAN_ATTRIBUTES, original);
            return;
        }
        let key_size = key_field_size(&self.key);
        match &self.value {
            Value::FromSpan { key_value, .. } => {
                let value_fields = || {
                    Fields::new(key_value)
                        .filter(|field| field.number != KEY_VALUE_KEY && field.number != KEY_VALUE_KEY_STRINDEX)
                };
                let value_size: usize = value_fields().map(|field| field.whole.len()).sum();
                put_len_header(out, SPAN_ATTRIBUTES, key_size + value_size);
                put_key(out, &self.key);
                for field in value_fields() {
                    out.extend_from_slice(&key_value[field.whole]);
                }
            }
            Value::Configured { any_value, .. } => {
                put_len_header(out, SPAN_ATTRIBUTES, key_size + len_field_size(any_value.len()));
                put_key(out, &self.key);
                put_len_field(out, KEY_VALUE_VALUE, any_value);
            }
            Value::Text(text) => {
                let any_value_size = len_field_size(text.len());
                put_len_header(out, SPAN_ATTRIBUTES, key_size + len_field_size(any_value_size));
                put_key(out, &self.key);
                put_len_header(out, KEY_VALUE_VALUE, any_value_size);
                put_len_field(out, ANY_STRING, text.as_bytes());
            }
        }
    }
}

/// The span's attributes, each with its raw `KeyValue` bytes.
fn read_attributes<'a>(span: &SpanView<'a>) -> Vec<Attribute<'a>> {
    let body = span.encoded();
    let raw = Fields::new(body)
        .filter(|field| field.number == SPAN_ATTRIBUTES)
        .filter_map(|field| (field.wire_type == WireType::Len).then(|| &body[field.value]));
    // Both walk the `attributes` fields of the same bytes in wire order, so they pair up.
    raw.zip(span.attributes())
        .map(|(key_value, view)| Attribute {
            key: Cow::Borrowed(view.key),
            value: Value::FromSpan { view: view.value, key_value },
            untouched: Some(key_value),
        })
        .collect()
}

impl Action {
    /// The key whose absence from a span's bytes means this action cannot change the span; `None`
    /// when the action may apply to any span (it inserts, or matches keys by pattern).
    fn required_key(&self) -> Option<&str> {
        match self {
            Self::Insert { .. } | Self::Upsert { .. } => None,
            Self::Delete { pattern: Some(_), .. } | Self::Hash { pattern: Some(_), .. } => None,
            Self::Update { key, .. } | Self::Extract { key, .. } => Some(key),
            Self::Delete { key, pattern: None } | Self::Hash { key, pattern: None } => Some(key),
        }
    }

    /// Applies the action; returns whether the list changed.
    fn apply<'a>(&'a self, attributes: &mut Vec<Attribute<'a>>) -> bool {
        match self {
            Self::Insert { key, source } => {
                if attributes.iter().any(|attribute| attribute.key == key.as_str()) {
                    return false;
                }
                let Some(value) = source_value(source, attributes) else { return false };
                attributes.push(Attribute { key: Cow::Borrowed(key), value, untouched: None });
                true
            }
            Self::Update { key, source } => {
                let Some(value) = source_value(source, attributes) else { return false };
                replace_values(attributes, key, &value)
            }
            Self::Upsert { key, source } => {
                let Some(value) = source_value(source, attributes) else { return false };
                if replace_values(attributes, key, &value) {
                    return true;
                }
                attributes.push(Attribute { key: Cow::Borrowed(key), value, untouched: None });
                true
            }
            Self::Delete { key, pattern } => {
                let before = attributes.len();
                attributes.retain(|attribute| {
                    let named = !key.is_empty() && attribute.key == key.as_str();
                    !(named || pattern.as_ref().is_some_and(|pattern| pattern.is_match(&attribute.key)))
                });
                attributes.len() != before
            }
            Self::Hash { key, pattern } => {
                let mut changed = false;
                for attribute in attributes.iter_mut() {
                    let named = usize::from(!key.is_empty() && attribute.key == key.as_str());
                    let matched = usize::from(pattern.as_ref().is_some_and(|pattern| pattern.is_match(&attribute.key)));
                    for _ in 0..named + matched {
                        attribute.value = Value::Text(attribute.value.hashed());
                        attribute.untouched = None;
                        changed = true;
                    }
                }
                changed
            }
            Self::Extract { key, pattern, names } => {
                let Some(source) = attributes.iter().find(|attribute| attribute.key == key.as_str()) else {
                    return false;
                };
                let Some(text) = source.value.as_str() else { return false };
                let Some(captures) = pattern.captures(text) else { return false };
                let extracted: Vec<String> = (1..=names.len())
                    .map(|group| captures.get(group).map_or_else(String::new, |found| found.as_str().to_owned()))
                    .collect();
                for (name, text) in names.iter().zip(extracted) {
                    let value = Value::Text(text);
                    if !replace_values(attributes, name, &value) {
                        attributes.push(Attribute { key: Cow::Borrowed(name), value, untouched: None });
                    }
                }
                true
            }
        }
    }
}

/// The value an action writes: the configured one, or that of the first attribute named
/// `from_attribute` (none when the span lacks it).
fn source_value<'a>(source: &'a Source, attributes: &[Attribute<'a>]) -> Option<Value<'a>> {
    match source {
        Source::Value { any_value, typed } => Some(Value::Configured { any_value, typed }),
        Source::Attribute(name) => {
            attributes.iter().find(|attribute| attribute.key == name.as_str()).map(|attribute| attribute.value.clone())
        }
    }
}

/// Gives every attribute named `key` the value `value`; returns whether there was any.
fn replace_values<'a>(attributes: &mut [Attribute<'a>], key: &str, value: &Value<'a>) -> bool {
    let mut found = false;
    for attribute in attributes.iter_mut().filter(|attribute| attribute.key == key) {
        attribute.value = value.clone();
        attribute.untouched = None;
        found = true;
    }
    found
}

/// The `attributes` processor of one core.
#[derive(Clone, Debug)]
pub struct AttributesProcessor {
    actions: Vec<Action>,
    /// When every action needs a key to be present, finders of those keys: a span whose bytes
    /// contain none of them has no attribute any action would touch, and is passed on without
    /// reading its attributes. Empty when some action may apply to any span.
    required_keys: Vec<Finder<'static>>,
    /// Reused buffer for the encoded attributes of one span.
    scratch: Vec<u8>,
    stats: ProcessorStats,
}

impl AttributesProcessor {
    /// Another instance with the same actions and fresh counters (one per core).
    #[must_use]
    pub fn fresh(&self) -> Self {
        Self {
            actions: self.actions.clone(),
            required_keys: self.required_keys.clone(),
            scratch: Vec::new(),
            stats: ProcessorStats::default(),
        }
    }
}

impl Processor for AttributesProcessor {
    fn process(&mut self, batch: SpanBatch, _now: Instant, out: &mut Output) {
        self.stats.record_in(batch.len());
        let mut rebuild = Rebuild::with_capacity(batch.len());
        for span in batch.spans() {
            let untouchable = !self.required_keys.is_empty()
                && self.required_keys.iter().all(|key| key.find(span.encoded()).is_none());
            if untouchable {
                rebuild.keep();
                continue;
            }
            let mut attributes = read_attributes(&span);
            let mut changed = false;
            for action in &self.actions {
                changed |= action.apply(&mut attributes);
            }
            if !changed {
                rebuild.keep();
                continue;
            }
            self.scratch.clear();
            for attribute in &attributes {
                attribute.encode(&mut self.scratch);
            }
            rebuild.replace(span.encoded(), SpanEdit { trace_state: None, attributes: Some(&self.scratch) });
        }
        crate::emit_rebuilt(&mut self.stats, &batch, rebuild, out);
    }

    fn stats(&self) -> &ProcessorStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(kind: ActionKind) -> AttributeActionConfig {
        AttributeActionConfig {
            key: String::new(),
            action: kind,
            value: None,
            from_attribute: String::new(),
            from_context: String::new(),
            pattern: String::new(),
            converted_type: String::new(),
        }
    }

    fn error_key(config: AttributeActionConfig) -> &'static str {
        match compile(&config) {
            Ok(action) => panic!("accepted {config:?} as {action:?}"),
            Err(error) => error.key,
        }
    }

    #[test]
    fn refuses_actions_the_collector_refuses_naming_the_key() {
        let with = |kind, edit: fn(&mut AttributeActionConfig)| {
            let mut config = action(kind);
            edit(&mut config);
            config
        };
        assert_eq!(error_key(with(ActionKind::Insert, |_| {})), "key");
        assert_eq!(error_key(with(ActionKind::Insert, |c| c.key = "k".into())), "value");
        assert_eq!(
            error_key(with(ActionKind::Upsert, |c| {
                c.key = "k".into();
                c.value = Some(AttributeValue::Int(1));
                c.from_attribute = "other".into();
            })),
            "from_attribute"
        );
        assert_eq!(
            error_key(with(ActionKind::Update, |c| {
                c.key = "k".into();
                c.value = Some(AttributeValue::Int(1));
                c.pattern = "x".into();
            })),
            "pattern"
        );
        assert_eq!(error_key(with(ActionKind::Delete, |_| {})), "key");
        assert_eq!(
            error_key(with(ActionKind::Hash, |c| {
                c.key = "k".into();
                c.value = Some(AttributeValue::Bool(true));
            })),
            "value"
        );
        assert_eq!(error_key(with(ActionKind::Delete, |c| c.pattern = "(".into())), "pattern");
        assert_eq!(error_key(with(ActionKind::Extract, |c| c.key = "k".into())), "pattern");
        assert_eq!(
            error_key(with(ActionKind::Extract, |c| {
                c.key = "k".into();
                c.pattern = "^(?P<a>x)(y)$".into();
            })),
            "pattern"
        );
        assert_eq!(
            error_key(with(ActionKind::Extract, |c| {
                c.key = "k".into();
                c.pattern = "^xy$".into();
            })),
            "pattern"
        );
        assert_eq!(error_key(with(ActionKind::Convert, |c| c.key = "k".into())), "action");
        assert_eq!(
            error_key(with(ActionKind::Insert, |c| {
                c.key = "k".into();
                c.from_context = "metadata.tenant".into();
            })),
            "from_context"
        );
    }

    #[test]
    fn hashes_like_the_collector() {
        let configured = |value: AttributeValue| {
            let mut any_value = Vec::new();
            value.encode_any_value(&mut any_value);
            Value::Configured { any_value: Box::leak(any_value.into_boxed_slice()), typed: Box::leak(Box::new(value)) }
                .hashed()
        };
        // sha256("user@example.com")
        assert_eq!(
            configured(AttributeValue::String("user@example.com".into())),
            "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514"
        );
        // sha256([0x01])
        assert_eq!(
            configured(AttributeValue::Bool(true)),
            "4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a"
        );
        assert_eq!(configured(AttributeValue::String(String::new())), "");
        assert_eq!(configured(AttributeValue::Array(vec![AttributeValue::Int(1)])), "");
        assert_eq!(
            Value::Text("user@example.com".into()).hashed(),
            configured(AttributeValue::String("user@example.com".into()))
        );
    }
}
