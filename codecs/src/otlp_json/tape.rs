//! A minimal, allocation-free reader over simd-json's tape.
//!
//! simd-json's tape is a flat `Vec<Node>`: scalars and strings are one node each; an object or
//! array is a header node that knows how many nodes its contents take, followed by those nodes
//! (for objects, alternating key strings and values). Walking it needs no hashing and no
//! allocation, and skipping a value we do not care about (an unknown key) is one slice split,
//! however deeply the value nests — so unknown fields cost nothing and cannot recurse.
//!
//! The walker only uses checked slice operations: a tape that does not match its own counts
//! (which simd-json never produces) ends iteration early instead of panicking.

use simd_json::{Node, StaticNode};

use super::error::JsonType;

/// One JSON value on the tape: its header node and the nodes of its contents.
#[derive(Clone, Copy, Debug)]
pub(super) struct Value<'t, 'i> {
    node: Node<'i>,
    contents: &'t [Node<'i>],
}

/// Splits the first value (header and contents) off `nodes`.
#[inline]
fn split_value<'t, 'i>(nodes: &'t [Node<'i>]) -> Option<(Value<'t, 'i>, &'t [Node<'i>])> {
    let (&node, rest) = nodes.split_first()?;
    let contents_len = match node {
        Node::Object { count, .. } | Node::Array { count, .. } => count,
        _ => 0,
    };
    let (contents, rest) = rest.split_at_checked(contents_len)?;
    Some((Value { node, contents }, rest))
}

impl<'t, 'i> Value<'t, 'i> {
    /// The top-level value of a tape.
    pub(super) fn root(tape: &'t [Node<'i>]) -> Option<Self> {
        split_value(tape).map(|(value, _)| value)
    }

    /// The header node (the scalar itself for scalars).
    #[inline]
    pub(super) fn node(&self) -> Node<'i> {
        self.node
    }

    /// The JSON type, for error messages.
    pub(super) fn json_type(&self) -> JsonType {
        match self.node {
            Node::String(_) => JsonType::String,
            Node::Object { .. } => JsonType::Object,
            Node::Array { .. } => JsonType::Array,
            Node::Static(StaticNode::Null) => JsonType::Null,
            Node::Static(StaticNode::Bool(_)) => JsonType::Bool,
            Node::Static(_) => JsonType::Number,
        }
    }

    #[inline]
    pub(super) fn is_null(&self) -> bool {
        matches!(self.node, Node::Static(StaticNode::Null))
    }

    /// The key/value pairs, if this is an object.
    #[inline]
    pub(super) fn object_entries(&self) -> Option<Entries<'t, 'i>> {
        match self.node {
            Node::Object { len, .. } => Some(Entries { rest: self.contents, remaining: len }),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    #[inline]
    pub(super) fn array_elements(&self) -> Option<Elements<'t, 'i>> {
        match self.node {
            Node::Array { len, .. } => Some(Elements { rest: self.contents, remaining: len }),
            _ => None,
        }
    }
}

/// The key/value pairs of an object, in document order (duplicates included).
#[derive(Clone, Debug)]
pub(super) struct Entries<'t, 'i> {
    rest: &'t [Node<'i>],
    remaining: usize,
}

impl<'t, 'i> Iterator for Entries<'t, 'i> {
    type Item = (&'i str, Value<'t, 'i>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let (&key, rest) = self.rest.split_first()?;
        let Node::String(key) = key else {
            self.remaining = 0;
            return None;
        };
        let (value, rest) = split_value(rest)?;
        self.rest = rest;
        Some((key, value))
    }
}

/// The elements of an array, in order. The default is an empty list.
#[derive(Clone, Debug, Default)]
pub(super) struct Elements<'t, 'i> {
    rest: &'t [Node<'i>],
    remaining: usize,
}

impl<'t, 'i> Iterator for Elements<'t, 'i> {
    type Item = Value<'t, 'i>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let (value, rest) = split_value(self.rest)?;
        self.rest = rest;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_and_types(json: &str) -> Vec<(String, JsonType)> {
        let mut bytes = json.as_bytes().to_vec();
        let tape = simd_json::to_tape(&mut bytes).unwrap();
        let root = Value::root(&tape.0).unwrap();
        root.object_entries().unwrap().map(|(key, value)| (key.to_owned(), value.json_type())).collect()
    }

    #[test]
    fn skips_nested_values_of_any_depth() {
        let found =
            keys_and_types(r#"{"a":{"x":[1,{"y":[[],{}]}],"z":null},"b":[[[]]],"c":"s","d":1.5,"e":true,"f":null}"#);
        let expected = [
            ("a", JsonType::Object),
            ("b", JsonType::Array),
            ("c", JsonType::String),
            ("d", JsonType::Number),
            ("e", JsonType::Bool),
            ("f", JsonType::Null),
        ];
        assert_eq!(found, expected.map(|(k, t)| (k.to_owned(), t)));
    }

    #[test]
    fn iterates_array_elements_with_nested_contents() {
        let mut bytes = br#"[{"a":[1,2]},[],3,{"b":{}}]"#.to_vec();
        let tape = simd_json::to_tape(&mut bytes).unwrap();
        let root = Value::root(&tape.0).unwrap();
        let types: Vec<JsonType> = root.array_elements().unwrap().map(|v| v.json_type()).collect();
        assert_eq!(types, [JsonType::Object, JsonType::Array, JsonType::Number, JsonType::Object]);
    }
}
