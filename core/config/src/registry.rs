//! The component-kind registry: which component types exist, under which kind, with which
//! config type. The binary registers every type it can build; the loader deserializes each
//! section into its registered type and the schema generator describes it.
//!
//! The loaded configs are type-erased ([`AnyComponentConfig`]) so that one [`Config`](crate::Config)
//! holds every component; the runtime downcasts each to the type it registered.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::component_id::{is_valid_type, ComponentKind};
use crate::de::{DeError, NodeDeserializer};
use crate::path::Path;
use crate::yaml::Node;
use crate::{ComponentConfig, FieldError};

/// A component config with its type erased; `downcast_ref::<T>()` on `dyn AnyComponentConfig`
/// gives it back as the type it was registered with.
pub trait AnyComponentConfig: fmt::Debug + Send + Sync + 'static {
    /// The config as [`Any`], for downcasting.
    fn as_any(&self) -> &dyn Any;
    /// [`ComponentConfig::validate`].
    fn validate(&self) -> Vec<FieldError>;
    /// [`ComponentConfig::warnings`].
    fn warnings(&self) -> Vec<FieldError>;
    /// [`ComponentConfig::listen_addresses`].
    fn listen_addresses(&self) -> Vec<(String, SocketAddr)>;
    /// [`ComponentConfig::datagram_listen_addresses`].
    fn datagram_listen_addresses(&self) -> Vec<(String, SocketAddr)>;
}

impl<T: ComponentConfig> AnyComponentConfig for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn validate(&self) -> Vec<FieldError> {
        ComponentConfig::validate(self)
    }

    fn warnings(&self) -> Vec<FieldError> {
        ComponentConfig::warnings(self)
    }

    fn listen_addresses(&self) -> Vec<(String, SocketAddr)> {
        ComponentConfig::listen_addresses(self)
    }

    fn datagram_listen_addresses(&self) -> Vec<(String, SocketAddr)> {
        ComponentConfig::datagram_listen_addresses(self)
    }
}

impl dyn AnyComponentConfig {
    /// The config as the type it was registered with, or `None` for another type.
    #[must_use]
    pub fn downcast_ref<T: ComponentConfig>(&self) -> Option<&T> {
        self.as_any().downcast_ref()
    }
}

/// Deserializes a component's section into its registered type.
type LoadFn = for<'n, 'p> fn(&'n Node, &'p Path<'p>) -> Result<Arc<dyn AnyComponentConfig>, DeError>;
/// Describes the registered type in the schema.
type SchemaFn = fn(&mut schemars::SchemaGenerator) -> schemars::Schema;

#[derive(Clone, Copy)]
pub(crate) struct RegisteredType {
    config_type: &'static str,
    pub(crate) load: LoadFn,
    pub(crate) schema: SchemaFn,
}

impl fmt::Debug for RegisteredType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.config_type)
    }
}

fn load_as<T: ComponentConfig>(node: &Node, path: &Path<'_>) -> Result<Arc<dyn AnyComponentConfig>, DeError> {
    let config = T::deserialize(NodeDeserializer::new(node, path))?;
    Ok(Arc::new(config))
}

fn schema_of<T: ComponentConfig>(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    generator.subschema_for::<T>()
}

/// Why a registration was refused; the registry is left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The type is already registered for this kind.
    #[error("{kind} type `{type_name}` is registered twice")]
    Duplicate {
        /// The kind.
        kind: ComponentKind,
        /// The type.
        type_name: &'static str,
    },
    /// The type name breaks the Collector's rule (`^[a-zA-Z][0-9a-zA-Z_]{0,62}$`), so no config
    /// could name it.
    #[error("{kind} type `{type_name}` is not a valid type name: letters, digits and `_`, starting with a letter")]
    InvalidTypeName {
        /// The kind.
        kind: ComponentKind,
        /// The type.
        type_name: &'static str,
    },
}

/// Component types by kind, each with its config type.
///
/// ```
/// # use spanpipe_config::{ComponentConfig, ComponentRegistry};
/// #[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
/// #[serde(deny_unknown_fields, default)]
/// struct BatchConfig { send_batch_size: u32 }
/// impl ComponentConfig for BatchConfig {}
///
/// let registry = ComponentRegistry::new().processor::<BatchConfig>("batch")?;
/// assert!(registry.types(spanpipe_config::ComponentKind::Processor).eq(["batch"]));
/// # Ok::<(), spanpipe_config::RegistryError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ComponentRegistry {
    types: BTreeMap<(ComponentKind, &'static str), RegisteredType>,
}

impl ComponentRegistry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `type_name` under `kind` with config type `T`.
    ///
    /// # Errors
    /// When the type is already registered for that kind, or its name is not a valid type.
    pub fn register<T: ComponentConfig>(
        &mut self,
        kind: ComponentKind,
        type_name: &'static str,
    ) -> Result<&mut Self, RegistryError> {
        if !is_valid_type(type_name) {
            return Err(RegistryError::InvalidTypeName { kind, type_name });
        }
        if self.types.contains_key(&(kind, type_name)) {
            return Err(RegistryError::Duplicate { kind, type_name });
        }
        let registered =
            RegisteredType { config_type: std::any::type_name::<T>(), load: load_as::<T>, schema: schema_of::<T> };
        self.types.insert((kind, type_name), registered);
        Ok(self)
    }

    /// Registers a receiver type (`receivers.<type>`).
    ///
    /// # Errors
    /// As [`register`](Self::register).
    pub fn receiver<T: ComponentConfig>(mut self, type_name: &'static str) -> Result<Self, RegistryError> {
        self.register::<T>(ComponentKind::Receiver, type_name)?;
        Ok(self)
    }

    /// Registers a processor type (`processors.<type>`).
    ///
    /// # Errors
    /// As [`register`](Self::register).
    pub fn processor<T: ComponentConfig>(mut self, type_name: &'static str) -> Result<Self, RegistryError> {
        self.register::<T>(ComponentKind::Processor, type_name)?;
        Ok(self)
    }

    /// Registers an exporter type (`exporters.<type>`).
    ///
    /// # Errors
    /// As [`register`](Self::register).
    pub fn exporter<T: ComponentConfig>(mut self, type_name: &'static str) -> Result<Self, RegistryError> {
        self.register::<T>(ComponentKind::Exporter, type_name)?;
        Ok(self)
    }

    /// Registers an extension type (`extensions.<type>`).
    ///
    /// # Errors
    /// As [`register`](Self::register).
    pub fn extension<T: ComponentConfig>(mut self, type_name: &'static str) -> Result<Self, RegistryError> {
        self.register::<T>(ComponentKind::Extension, type_name)?;
        Ok(self)
    }

    /// The types registered under `kind`, in alphabetical order.
    pub fn types(&self, kind: ComponentKind) -> impl Iterator<Item = &'static str> + '_ {
        self.entries(kind).map(|(type_name, _)| type_name)
    }

    /// Whether `type_name` is registered under `kind`.
    #[must_use]
    pub fn contains(&self, kind: ComponentKind, type_name: &str) -> bool {
        self.get(kind, type_name).is_some()
    }

    pub(crate) fn get(&self, kind: ComponentKind, type_name: &str) -> Option<&RegisteredType> {
        self.entries(kind).find(|(registered, _)| *registered == type_name).map(|(_, entry)| entry)
    }

    pub(crate) fn entries(&self, kind: ComponentKind) -> impl Iterator<Item = (&'static str, &RegisteredType)> + '_ {
        self.types
            .range((kind, "")..)
            .take_while(move |((k, _), _)| *k == kind)
            .map(|((_, name), entry)| (*name, entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields, default)]
    struct Empty {}
    impl ComponentConfig for Empty {}

    #[test]
    fn registers_by_kind_and_refuses_duplicates_and_bad_names() {
        let mut registry = ComponentRegistry::new()
            .receiver::<Empty>("otlp")
            .and_then(|registry| registry.exporter::<Empty>("otlp"))
            .and_then(|registry| registry.exporter::<Empty>("debug"))
            .unwrap();
        assert!(registry.types(ComponentKind::Exporter).eq(["debug", "otlp"]));
        assert!(registry.types(ComponentKind::Receiver).eq(["otlp"]));
        assert!(registry.types(ComponentKind::Processor).next().is_none());
        assert!(registry.contains(ComponentKind::Receiver, "otlp"));
        assert!(!registry.contains(ComponentKind::Processor, "otlp"));
        assert_eq!(
            registry.register::<Empty>(ComponentKind::Receiver, "otlp").err(),
            Some(RegistryError::Duplicate { kind: ComponentKind::Receiver, type_name: "otlp" })
        );
        assert_eq!(
            registry.register::<Empty>(ComponentKind::Receiver, "otlp/x").err(),
            Some(RegistryError::InvalidTypeName { kind: ComponentKind::Receiver, type_name: "otlp/x" })
        );
        assert!(registry.types(ComponentKind::Receiver).eq(["otlp"]));
    }
}
