//! Where in an OTLP request a decoding fault is, as a path of keys and indexes in the OTLP data
//! model, shared by the decoders that walk that model key by key (OTLP/JSON here, MessagePack in
//! `spanpipe-msgpack`).
//!
//! Why the path is built backwards: decoding succeeds far more often than it fails, so the
//! success path must not pay for error context. Nothing about the position is recorded while
//! decoding; when a field is refused, the error is created with an empty path and each enclosing
//! level adds its own key or array index as the error travels up through `?` (innermost first,
//! with [`PathContext`]). The path is put in reading order once, at the public boundary
//! ([`PathError::finish`]). An error allocates; a field that decodes fine does not.

use std::fmt;

/// Where in the request a fault is: keys and array indexes from the top-level object or map
/// down, displayed as `resourceSpans[0].scopeSpans[1].spans[3].traceId`.
///
/// Keys are always named in lowerCamelCase, as the OTLP specification writes them, whichever
/// spelling (`trace_id` or `traceId`) the request used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath {
    segments: Vec<PathSegment>,
}

impl FieldPath {
    /// The keys and indexes, outermost first.
    #[must_use]
    pub fn segments(&self) -> &[PathSegment] {
        &self.segments
    }

    /// Whether the path is empty (the fault is in the body's syntax or its top-level value).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, segment) in self.segments.iter().enumerate() {
            match segment {
                PathSegment::Key(key) if position == 0 => f.write_str(key)?,
                PathSegment::Key(key) => write!(f, ".{key}")?,
                PathSegment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// One step of a [`FieldPath`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathSegment {
    /// An object or map key, in its lowerCamelCase spelling.
    Key(&'static str),
    /// An array index, from zero.
    Index(usize),
}

/// A decoding error that carries a [`FieldPath`], collected on its way out. Decoders implement
/// [`PathError::path_mut`] and get the rest.
pub trait PathError: Sized {
    /// The path collected so far: innermost first until [`PathError::finish`].
    fn path_mut(&mut self) -> &mut FieldPath;

    /// Adds the enclosing key (called while the error travels outwards).
    #[cold]
    #[must_use]
    fn in_key(mut self, key: &'static str) -> Self {
        self.path_mut().segments.push(PathSegment::Key(key));
        self
    }

    /// Adds the enclosing array index (called while the error travels outwards).
    #[cold]
    #[must_use]
    fn in_index(mut self, index: usize) -> Self {
        self.path_mut().segments.push(PathSegment::Index(index));
        self
    }

    /// Puts the path, collected innermost first, in reading order: once, at the public boundary.
    #[cold]
    #[must_use]
    fn finish(mut self) -> Self {
        self.path_mut().segments.reverse();
        self
    }
}

/// Adds path context to results on their way out; a no-op unless the result is an error.
pub trait PathContext<T, E> {
    /// The error happened inside the value of `key`.
    ///
    /// # Errors
    /// The error of `self`, with `key` added.
    fn in_key(self, key: &'static str) -> Result<T, E>;

    /// The error happened inside element `index` of an array.
    ///
    /// # Errors
    /// The error of `self`, with `index` added.
    fn in_index(self, index: usize) -> Result<T, E>;
}

impl<T, E: PathError> PathContext<T, E> for Result<T, E> {
    #[inline]
    fn in_key(self, key: &'static str) -> Result<T, E> {
        self.map_err(|error| error.in_key(key))
    }

    #[inline]
    fn in_index(self, index: usize) -> Result<T, E> {
        self.map_err(|error| error.in_index(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Fault(FieldPath);

    impl PathError for Fault {
        fn path_mut(&mut self) -> &mut FieldPath {
            &mut self.0
        }
    }

    fn refused() -> Result<(), Fault> {
        Err(Fault::default())
    }

    #[test]
    fn the_path_is_collected_inside_out_and_read_outside_in() {
        let fault = refused().in_key("traceId").in_index(3).in_key("spans").in_index(0).in_key("resourceSpans");
        let fault = fault.unwrap_err().finish();
        assert_eq!(fault.0.to_string(), "resourceSpans[0].spans[3].traceId");
        assert_eq!(fault.0.segments()[1], PathSegment::Index(0));
    }

    #[test]
    fn an_empty_path_displays_as_nothing_and_success_is_untouched() {
        assert!(Fault::default().finish().0.is_empty());
        assert_eq!(Fault::default().0.to_string(), "");
        assert_eq!(Ok::<_, Fault>(7).in_key("flags").in_index(1).unwrap(), 7);
    }
}
