//! A serde `Deserializer` over the located YAML tree: config types deserialize with their own
//! derives, and every error comes back with the full dotted path of the key and its line —
//! including unknown keys, whose path ends with the unknown key itself.
//!
//! Rules a config type can rely on:
//! - A plain scalar is typed only when the type asks: `4317` fills a `u16` or a `String`
//!   (`"4317"`), `true` a `bool` or a `String`. A quoted scalar is always a string.
//! - An empty value (`batch:` or `key: ~`) is an empty mapping for a struct or a map (so every
//!   field takes its default), an empty list for a sequence, `None` for an `Option`. For a
//!   scalar it is an error that says to write a value or remove the key.
//! - Enums are written as a plain string (`verbosity: basic`) or, for variants with data, a
//!   mapping of one key.

use std::fmt;

use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeSeed, Expected, IntoDeserializer, Unexpected, Visitor};

use crate::error::{did_you_mean, list, unknown_key_message, ConfigError, ConfigErrorKind, Location};
use crate::path::Path;
use crate::yaml::{resolve_plain, Entry, Node, Scalar, Value};

/// An error from a config type's `Deserialize`, placed at the key it concerns.
#[derive(Debug)]
pub(crate) struct DeError {
    message: String,
    place: Option<(String, Location)>,
}

impl DeError {
    /// Places the error at `path`/`location` unless a deeper node already placed it.
    fn at(mut self, path: &Path<'_>, location: Location) -> Self {
        if self.place.is_none() {
            self.place = Some((path.to_string(), location));
        }
        self
    }

    /// The error as the loader reports it; `path` is used if the error was never placed.
    pub(crate) fn into_config_error(self, path: &Path<'_>) -> ConfigError {
        let (path, location) = match self.place {
            Some((path, location)) => (path, Some(location)),
            None => (path.to_string(), None),
        };
        ConfigError::new(path, location, ConfigErrorKind::Invalid { message: self.message })
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.place {
            Some((path, location)) => write!(f, "{path} ({location}): {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self { message: message.to_string(), place: None }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self::custom(unknown_key_message(field, expected))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::custom(format!(
            "unknown value `{variant}`{}; expected one of {}",
            did_you_mean(variant, expected),
            list(expected)
        ))
    }

    fn missing_field(field: &'static str) -> Self {
        Self::custom(format!("missing required key `{field}`"))
    }
}

/// Deserializes one node found at `path`.
pub(crate) struct NodeDeserializer<'n, 'p> {
    node: &'n Node,
    path: &'p Path<'p>,
}

impl<'n, 'p> NodeDeserializer<'n, 'p> {
    pub(crate) fn new(node: &'n Node, path: &'p Path<'p>) -> Self {
        Self { node, path }
    }

    fn place<T>(&self, result: Result<T, DeError>) -> Result<T, DeError> {
        result.map_err(|error| error.at(self.path, self.node.location))
    }

    fn unexpected(&self) -> Unexpected<'n> {
        match &self.node.value {
            Value::Plain(text) => match resolve_plain(text) {
                Scalar::Null => Unexpected::Unit,
                Scalar::Bool(value) => Unexpected::Bool(value),
                Scalar::Int(value) => i64::try_from(value)
                    .map(Unexpected::Signed)
                    .or_else(|_| u64::try_from(value).map(Unexpected::Unsigned))
                    .unwrap_or(Unexpected::Str(text)),
                Scalar::Float(value) => Unexpected::Float(value),
                Scalar::Str(text) => Unexpected::Str(text),
            },
            Value::Str(text) => Unexpected::Str(text),
            Value::Seq(_) => Unexpected::Seq,
            Value::Map(_) => Unexpected::Map,
        }
    }

    fn invalid_type(&self, expected: &dyn Expected) -> DeError {
        if self.node.is_null() {
            return de::Error::custom(format!(
                "empty value where {expected} is expected; write a value, or remove the key to use its default"
            ));
        }
        de::Error::invalid_type(self.unexpected(), expected)
    }

    /// The text of a non-empty scalar.
    fn scalar_text(&self) -> Option<&'n str> {
        match &self.node.value {
            Value::Str(text) => Some(text),
            Value::Plain(text) if !self.node.is_null() => Some(text),
            _ => None,
        }
    }

    /// For numbers and booleans: typed like `deserialize_any`, so the visitor's own error names
    /// what it wanted; an empty value gets the "write a value" error.
    fn typed_scalar<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            let error = self.invalid_type(&visitor);
            return self.place(Err(error));
        }
        de::Deserializer::deserialize_any(self, visitor)
    }

    fn visit_entries<'de, V: Visitor<'de>>(&self, entries: &'n [Entry], visitor: V) -> Result<V::Value, DeError> {
        let access = MapAccess { entries: entries.iter(), pending: None, path: self.path };
        self.place(visitor.visit_map(access))
    }

    fn visit_items<'de, V: Visitor<'de>>(
        &self,
        items: &'n [std::rc::Rc<Node>],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let access = SeqAccess { items: items.iter().enumerate(), path: self.path };
        self.place(visitor.visit_seq(access))
    }
}

macro_rules! typed_scalars {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
                self.typed_scalar(visitor)
            }
        )*
    };
}

impl<'de, 'n, 'p> de::Deserializer<'de> for NodeDeserializer<'n, 'p> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.value {
            Value::Plain(text) => match resolve_plain(text) {
                Scalar::Null => visitor.visit_unit(),
                Scalar::Bool(value) => visitor.visit_bool(value),
                Scalar::Int(value) => match (u64::try_from(value), i64::try_from(value)) {
                    (Ok(unsigned), _) => visitor.visit_u64(unsigned),
                    (_, Ok(signed)) => visitor.visit_i64(signed),
                    _ if value >= 0 => visitor.visit_u128(value.unsigned_abs()),
                    _ => visitor.visit_i128(value),
                },
                Scalar::Float(value) => visitor.visit_f64(value),
                Scalar::Str(text) => visitor.visit_str(text),
            },
            Value::Str(text) => visitor.visit_str(text),
            Value::Seq(items) => return self.visit_items(items, visitor),
            Value::Map(entries) => return self.visit_entries(entries, visitor),
        };
        self.place(result)
    }

    typed_scalars! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.scalar_text() {
            Some(text) => visitor.visit_str(text),
            None => Err(self.invalid_type(&visitor)),
        };
        self.place(result)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.scalar_text() {
            Some(text) => visitor.visit_bytes(text.as_bytes()),
            None => Err(self.invalid_type(&visitor)),
        };
        self.place(result)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            let result = visitor.visit_none();
            return self.place(result);
        }
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = if self.node.is_null() { visitor.visit_unit() } else { Err(self.invalid_type(&visitor)) };
        self.place(result)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Seq(items) => self.visit_items(items, visitor),
            _ if self.node.is_null() => self.visit_items(&[], visitor),
            _ => self.place(Err(self.invalid_type(&visitor))),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Map(entries) => self.visit_entries(entries, visitor),
            _ if self.node.is_null() => self.visit_entries(&[], visitor),
            _ => self.place(Err(self.invalid_type(&visitor))),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let result = match (&self.node.value, self.scalar_text()) {
            (_, Some(variant)) => visitor.visit_enum(EnumAccess { variant, value: None, path: self.path }),
            (Value::Map(entries), None) if entries.len() == 1 => {
                let entry = &entries[0];
                let path = self.path.key(&entry.key);
                let access = EnumAccess { variant: &entry.key, value: Some(&entry.value), path: &path };
                return self.place(visitor.visit_enum(access));
            }
            _ => Err(self.invalid_type(&visitor)),
        };
        self.place(result)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct MapAccess<'n, 'p> {
    entries: std::slice::Iter<'n, Entry>,
    pending: Option<&'n Entry>,
    path: &'p Path<'p>,
}

impl<'de> de::MapAccess<'de> for MapAccess<'_, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.next() else { return Ok(None) };
        self.pending = Some(entry);
        let key: StrDeserializer<'_, DeError> = entry.key.as_str().into_deserializer();
        seed.deserialize(key).map(Some).map_err(|error| error.at(&self.path.key(&entry.key), entry.key_location))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some(entry) = self.pending.take() else {
            return Err(de::Error::custom("a mapping value was read before its key"));
        };
        let path = self.path.key(&entry.key);
        // A type that refuses a value after reading it (a custom `Deserialize`) returns its error
        // here, unplaced: it belongs to this value.
        seed.deserialize(NodeDeserializer::new(&entry.value, &path))
            .map_err(|error| error.at(&path, entry.value.location))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct SeqAccess<'n, 'p> {
    items: std::iter::Enumerate<std::slice::Iter<'n, std::rc::Rc<Node>>>,
    path: &'p Path<'p>,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'_, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some((index, item)) = self.items.next() else { return Ok(None) };
        let path = self.path.index(index);
        seed.deserialize(NodeDeserializer::new(item, &path)).map(Some).map_err(|error| error.at(&path, item.location))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// An enum written as a plain string (`value: None`) or as a mapping of one key.
struct EnumAccess<'n, 'p> {
    variant: &'n str,
    value: Option<&'n Node>,
    path: &'p Path<'p>,
}

impl<'de, 'n, 'p> de::EnumAccess<'de> for EnumAccess<'n, 'p> {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let variant: StrDeserializer<'_, DeError> = self.variant.into_deserializer();
        let value = seed.deserialize(variant)?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for EnumAccess<'_, '_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.value {
            Some(node) if !node.is_null() => {
                Err(de::Error::custom(format!("`{}` takes no settings; write it as a plain value", self.variant)))
            }
            _ => Ok(()),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        match self.value {
            Some(node) => seed
                .deserialize(NodeDeserializer::new(node, self.path))
                .map_err(|error| error.at(self.path, node.location)),
            None => Err(self.needs_settings()),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Some(node) => de::Deserializer::deserialize_seq(NodeDeserializer::new(node, self.path), visitor),
            None => Err(self.needs_settings()),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.value {
            Some(node) => de::Deserializer::deserialize_map(NodeDeserializer::new(node, self.path), visitor),
            None => Err(self.needs_settings()),
        }
    }
}

impl EnumAccess<'_, '_> {
    fn needs_settings(&self) -> DeError {
        de::Error::custom(format!("`{}` needs settings; write it as a mapping `{}: ...`", self.variant, self.variant))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;
    use crate::yaml;

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Protocols {
        grpc: Option<Server>,
        http: Option<Server>,
    }

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Server {
        endpoint: String,
        max_recv_msg_size_mib: u16,
        compression: Option<Compression>,
        tags: Vec<String>,
        headers: BTreeMap<String, String>,
        enabled: bool,
        ratio: f64,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Compression {
        Gzip,
        Zstd { level: i32 },
    }

    fn load<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Box<ConfigError>> {
        let document = yaml::parse(text, &|_| None).unwrap();
        let root = document.root.unwrap();
        let base = Path::Root;
        let path = base.key("receivers");
        T::deserialize(NodeDeserializer::new(&root, &path)).map_err(|error| Box::new(error.into_config_error(&path)))
    }

    #[test]
    fn fills_typed_fields_from_plain_and_quoted_scalars() {
        let server: Server = load(
            "endpoint: 4317\nmax_recv_msg_size_mib: 16\ncompression: gzip\ntags: [a, 1, true]\n\
             headers: {x: 1}\nenabled: true\nratio: 1\n",
        )
        .unwrap();
        assert_eq!(server.endpoint, "4317");
        assert_eq!(server.max_recv_msg_size_mib, 16);
        assert_eq!(server.compression, Some(Compression::Gzip));
        assert_eq!(server.tags, ["a", "1", "true"]);
        assert_eq!(server.headers.get("x").map(String::as_str), Some("1"));
        assert!(server.enabled);
        assert!((server.ratio - 1.0).abs() < f64::EPSILON);
        let server: Server = load("compression: {zstd: {level: 3}}\n").unwrap();
        assert_eq!(server.compression, Some(Compression::Zstd { level: 3 }));
    }

    #[test]
    fn empty_values_are_defaults_for_containers_and_none_for_options() {
        let protocols: Protocols = load("grpc:\n  tags:\n  headers: ~\nhttp:\n").unwrap();
        assert_eq!(protocols.grpc, Some(Server::default()));
        assert_eq!(protocols.http, None);
    }

    #[test]
    fn unknown_keys_are_reported_at_their_own_path() {
        let error = load::<Protocols>("grpc:\n  endpoint: x\n  endpiont: y\n").unwrap_err();
        assert_eq!(error.path, "receivers.grpc.endpiont");
        assert_eq!(error.location, Some(Location { line: 3, column: 3 }));
        assert_eq!(
            error.kind.to_string(),
            "unknown key `endpiont` (did you mean `endpoint`?); valid keys here: `endpoint`, `max_recv_msg_size_mib`, \
             `compression`, `tags`, `headers`, `enabled`, `ratio`"
        );
    }

    #[test]
    fn type_errors_name_the_value_path_and_line() {
        let error = load::<Protocols>("http:\n  max_recv_msg_size_mib: 70000\n").unwrap_err();
        assert_eq!(error.path, "receivers.http.max_recv_msg_size_mib");
        assert_eq!(error.location, Some(Location { line: 2, column: 26 }));
        assert!(error.kind.to_string().contains("70000"), "{error}");

        let error = load::<Protocols>("http:\n  enabled: \"yes\"\n").unwrap_err();
        assert_eq!(error.path, "receivers.http.enabled");
        assert_eq!(error.kind.to_string(), "invalid type: string \"yes\", expected a boolean");

        let error = load::<Protocols>("http:\n  tags: [a, [b]]\n").unwrap_err();
        assert_eq!(error.path, "receivers.http.tags[1]");

        let error = load::<Protocols>("http:\n  endpoint:\n").unwrap_err();
        assert_eq!(error.path, "receivers.http.endpoint");
        assert!(error.kind.to_string().starts_with("empty value where a string is expected"), "{error}");

        let error = load::<Protocols>("http: [1]\n").unwrap_err();
        assert_eq!(error.path, "receivers.http");
        assert_eq!(error.kind.to_string(), "invalid type: sequence, expected struct Server");
    }

    #[test]
    fn enum_errors_suggest_the_variant() {
        let error = load::<Protocols>("grpc:\n  compression: gzp\n").unwrap_err();
        assert_eq!(error.path, "receivers.grpc.compression");
        assert_eq!(
            error.kind.to_string(),
            "unknown value `gzp` (did you mean `gzip`?); expected one of `gzip`, `zstd`"
        );
        let error = load::<Protocols>("grpc:\n  compression: zstd\n").unwrap_err();
        assert!(error.kind.to_string().contains("needs settings"), "{error}");
        let error = load::<Protocols>("grpc:\n  compression: {zstd: {level: x}}\n").unwrap_err();
        assert_eq!(error.path, "receivers.grpc.compression.zstd.level");
    }

    #[test]
    fn errors_of_custom_deserialize_impls_are_placed_at_their_value() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Pipeline {
            receivers: Vec<crate::ComponentId>,
            timeout: crate::GoDuration,
        }
        let error = load::<Pipeline>("receivers: [otlp, \"bad id\"]\ntimeout: 1s\n").unwrap_err();
        assert_eq!(error.path, "receivers.receivers[1]");
        assert_eq!(error.location, Some(Location { line: 1, column: 19 }));
        let error = load::<Pipeline>("receivers: []\ntimeout: soon\n").unwrap_err();
        assert_eq!(error.path, "receivers.timeout");
        assert_eq!(error.location, Some(Location { line: 2, column: 10 }));
    }

    #[test]
    fn missing_required_keys_are_reported_at_the_struct() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Required {
            endpoint: String,
        }
        let error = load::<Required>("{}\n").unwrap_err();
        assert_eq!(error.path, "receivers");
        assert_eq!(error.kind.to_string(), "missing required key `endpoint`");
    }
}
