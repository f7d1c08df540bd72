//! Finds codecs by name and by HTTP content type.

use std::collections::HashMap;
use std::sync::Arc;

use crate::{Codec, OtlpJson, OtlpProto};

/// Why a codec could not be registered or found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Another codec already has this name.
    #[error("a codec named `{0}` is already registered")]
    DuplicateName(String),
    /// Another codec already answers to this content type.
    #[error("content type `{content_type}` is already served by codec `{existing}`")]
    DuplicateContentType {
        /// The contested media type.
        content_type: String,
        /// The codec that has it.
        existing: String,
    },
    /// No codec has this name.
    #[error("no codec named `{name}`; known codecs: {known}")]
    UnknownName {
        /// What was asked for.
        name: String,
        /// Comma-separated names that exist.
        known: String,
    },
    /// No codec answers to this content type.
    #[error("unsupported content type `{content_type}`; supported: {supported}")]
    UnsupportedContentType {
        /// The media type asked for.
        content_type: String,
        /// Comma-separated media types that are served.
        supported: String,
    },
}

/// Codecs that come and go while the process runs (codec plugins). A registry asks them only for
/// what its registered codecs do not serve, so a plugin can add media types but never take over
/// a built-in one.
pub trait DynamicCodecs: Send + Sync + std::fmt::Debug {
    /// The codec serving `media_type` (lower case, no parameters) at this moment.
    fn by_content_type(&self, media_type: &str) -> Option<Arc<dyn Codec>>;

    /// The media types served at this moment, for error messages.
    fn content_types(&self) -> Vec<String>;
}

/// Codecs by name and by media type. Cloning is cheap: codecs are shared.
#[derive(Clone, Debug, Default)]
pub struct CodecRegistry {
    by_name: HashMap<String, Arc<dyn Codec>>,
    by_content_type: HashMap<String, Arc<dyn Codec>>,
    dynamic: Option<Arc<dyn DynamicCodecs>>,
}

/// The media type of a `Content-Type` header value: parameters dropped, trimmed, lower case.
/// Borrowed when it already is in that form, which is the common case.
fn media_type(content_type: &str) -> std::borrow::Cow<'_, str> {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(essence.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(essence)
    }
}

impl CodecRegistry {
    /// A registry with no codecs.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// A registry with the built-in codecs (`otlp_proto`, `otlp_json`).
    #[must_use]
    pub fn with_builtins() -> Self {
        let mut registry = Self::empty();
        for codec in [Arc::new(OtlpProto) as Arc<dyn Codec>, Arc::new(OtlpJson)] {
            // The built-ins have distinct names and media types; registering them cannot clash.
            let registered = registry.register(codec);
            debug_assert!(registered.is_ok(), "{registered:?}");
        }
        registry
    }

    /// Adds a codec. Refused, leaving the registry unchanged, when its name or one of its media
    /// types is taken.
    ///
    /// # Errors
    /// [`RegistryError::DuplicateName`] or [`RegistryError::DuplicateContentType`].
    pub fn register(&mut self, codec: Arc<dyn Codec>) -> Result<(), RegistryError> {
        let name = codec.name().to_owned();
        if self.by_name.contains_key(&name) {
            return Err(RegistryError::DuplicateName(name));
        }
        let types: Vec<String> = codec.content_types().iter().map(|t| media_type(t).into_owned()).collect();
        for content_type in &types {
            if let Some(existing) = self.by_content_type.get(content_type) {
                let existing = existing.name().to_owned();
                return Err(RegistryError::DuplicateContentType { content_type: content_type.clone(), existing });
            }
        }
        for content_type in types {
            self.by_content_type.insert(content_type, Arc::clone(&codec));
        }
        self.by_name.insert(name, codec);
        Ok(())
    }

    /// Removes the codec named `name` and its media types; returns it if it was there.
    pub fn unregister(&mut self, name: &str) -> Option<Arc<dyn Codec>> {
        let codec = self.by_name.remove(name)?;
        self.by_content_type.retain(|_, c| !Arc::ptr_eq(c, &codec));
        Some(codec)
    }

    /// The codec named `name`.
    ///
    /// # Errors
    /// [`RegistryError::UnknownName`], listing the names that exist.
    pub fn by_name(&self, name: &str) -> Result<&Arc<dyn Codec>, RegistryError> {
        self.by_name
            .get(name)
            .ok_or_else(|| RegistryError::UnknownName { name: name.to_owned(), known: self.names().join(", ") })
    }

    /// Also serves the media types `dynamic` serves at the time of each lookup, after the
    /// registered codecs.
    pub fn set_dynamic(&mut self, dynamic: Arc<dyn DynamicCodecs>) {
        self.dynamic = Some(dynamic);
    }

    /// The codec for a `Content-Type` header value (parameters such as `charset` are ignored,
    /// case does not matter): a registered one, else one the dynamic codecs serve now.
    ///
    /// # Errors
    /// [`RegistryError::UnsupportedContentType`], listing what is served.
    pub fn by_content_type(&self, content_type: &str) -> Result<Arc<dyn Codec>, RegistryError> {
        let media_type = media_type(content_type);
        if let Some(codec) = self.by_content_type.get(media_type.as_ref()) {
            return Ok(Arc::clone(codec));
        }
        if let Some(codec) = self.dynamic.as_ref().and_then(|dynamic| dynamic.by_content_type(&media_type)) {
            return Ok(codec);
        }
        let mut supported: Vec<String> = self.by_content_type.keys().cloned().collect();
        if let Some(dynamic) = &self.dynamic {
            supported.extend(dynamic.content_types());
        }
        supported.sort_unstable();
        Err(RegistryError::UnsupportedContentType {
            content_type: content_type.to_owned(),
            supported: supported.join(", "),
        })
    }

    /// Registered codec names, sorted.
    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}
