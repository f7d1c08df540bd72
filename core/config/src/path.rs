//! The dotted path of a key (`receivers.otlp.protocols.grpc.endpoint`,
//! `service.pipelines.traces.receivers[1]`), built on the stack while a document is walked so
//! that only an error or a warning turns it into a string.

use std::fmt;

use crate::error::Location;
use crate::yaml::{Node, Value};

/// A key path as a chain of borrowed parents: cheap to extend while descending.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Path<'a> {
    /// The document itself.
    Root,
    /// A mapping key under a parent.
    Key(&'a Path<'a>, &'a str),
    /// A sequence item under a parent.
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    pub(crate) fn key(&'a self, key: &'a str) -> Path<'a> {
        Path::Key(self, key)
    }

    pub(crate) fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }

    /// The location of the node at this path under `root`, or of the deepest node on the way
    /// that exists (a key left at its default has no node of its own).
    pub(crate) fn locate(&self, root: &Node) -> Location {
        let mut segments = Vec::new();
        let mut current = self;
        loop {
            match current {
                Path::Root => break,
                Path::Key(parent, key) => {
                    segments.push(Segment::Key(key));
                    current = parent;
                }
                Path::Index(parent, index) => {
                    segments.push(Segment::Index(*index));
                    current = parent;
                }
            }
        }
        segments.reverse();
        locate_segments(root, &segments)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, key) => f.write_str(key),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits a relative path as components report it (`protocols.grpc.endpoint`, `actions[2].key`)
/// into segments. Keys that themselves contain `.` cannot be told apart; locating then stops at
/// the deepest key found, which still points the reader to the right place.
pub(crate) fn split_relative(path: &str) -> Vec<Segment<'_>> {
    let mut segments = Vec::new();
    for part in path.split('.').filter(|part| !part.is_empty()) {
        let (key, mut indexes) = match part.find('[') {
            Some(bracket) => part.split_at(bracket),
            None => (part, ""),
        };
        if !key.is_empty() {
            segments.push(Segment::Key(key));
        }
        while let Some(rest) = indexes.strip_prefix('[') {
            let Some((number, after)) = rest.split_once(']') else { break };
            match number.parse() {
                Ok(index) => segments.push(Segment::Index(index)),
                Err(_) => break,
            }
            indexes = after;
        }
    }
    segments
}

/// Walks `segments` down from `node` as far as they exist and returns the location reached.
pub(crate) fn locate_segments(node: &Node, segments: &[Segment<'_>]) -> Location {
    let mut node = node;
    let mut location = node.location;
    for segment in segments {
        let next = match (segment, &node.value) {
            (Segment::Key(key), Value::Map(entries)) => {
                entries.iter().find(|entry| entry.key == *key).map(|entry| (entry.key_location, &*entry.value))
            }
            (Segment::Index(index), Value::Seq(items)) => items.get(*index).map(|item| (item.location, &**item)),
            _ => None,
        };
        let Some((key_location, child)) = next else { break };
        // A mapping value is reported at its key, where the reader's eye goes.
        location = key_location;
        node = child;
    }
    location
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_keys_dotted_and_indexes_bracketed() {
        let root = Path::Root;
        let service = root.key("service");
        let pipelines = service.key("pipelines");
        let traces = pipelines.key("traces/backend");
        let receivers = traces.key("receivers");
        let first = receivers.index(0);
        assert_eq!(first.to_string(), "service.pipelines.traces/backend.receivers[0]");
        assert_eq!(root.to_string(), "");
    }

    #[test]
    fn splits_relative_paths() {
        assert_eq!(
            split_relative("actions[2].key"),
            vec![Segment::Key("actions"), Segment::Index(2), Segment::Key("key")]
        );
        assert_eq!(split_relative("a[1][3]"), vec![Segment::Key("a"), Segment::Index(1), Segment::Index(3)]);
        assert_eq!(split_relative(""), vec![]);
        assert_eq!(split_relative("[4]"), vec![Segment::Index(4)]);
    }
}
