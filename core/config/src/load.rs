//! Loading a config file: YAML with environment expansion, each section deserialized into its
//! registered type, then the semantic checks. Every error found is reported, not only the first:
//! each component's section is read on its own, so one bad component does not hide another.

use std::collections::HashMap;
use std::path::Path as FilePath;

use serde::de::DeserializeOwned;

use crate::component_id::{ComponentId, ComponentKind};
use crate::de::NodeDeserializer;
use crate::env::EnvLookup;
use crate::error::{ConfigError, ConfigErrorKind, ConfigErrors, Warning};
use crate::model::{Config, PipelineId, SERVICE_KEYS};
use crate::path::Path;
use crate::registry::ComponentRegistry;
use crate::validate::validate;
use crate::yaml::{self, Entry, Node, Value};

/// The top-level keys of a config file.
const TOP_LEVEL_KEYS: &[&str] =
    &["receivers", "processors", "exporters", "extensions", "connectors", "service", "plugins"];

/// Loads config files against a registry.
///
/// Environment references are read from the process environment unless another source is given
/// with [`with_env`](Self::with_env) (tests, or a control plane that passes its own variables).
pub struct Loader<'a> {
    registry: &'a ComponentRegistry,
    env: EnvSource<'a>,
}

/// Where a loader reads environment variables.
type EnvSource<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

impl std::fmt::Debug for Loader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader").field("registry", self.registry).finish_non_exhaustive()
    }
}

/// A loaded config and its warnings.
pub type Loaded = (Config, Vec<Warning>);

impl<'a> Loader<'a> {
    /// A loader for configs whose components are registered in `registry`.
    #[must_use]
    pub fn new(registry: &'a ComponentRegistry) -> Self {
        Self {
            registry,
            env: Box::new(|name| std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())),
        }
    }

    /// Reads environment variables through `lookup` instead of the process environment.
    #[must_use]
    pub fn with_env(self, lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Self { env: Box::new(lookup), ..self }
    }

    /// Loads and validates the file at `path`.
    ///
    /// # Errors
    /// Every problem found, each with its key path and line; see [`ConfigErrors`].
    pub fn load_file(&self, path: impl AsRef<FilePath>) -> Result<Loaded, ConfigErrors> {
        let path = path.as_ref();
        let source_name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) if is_jsonc(path) => match crate::jsonc::to_yaml_compatible(&text) {
                Ok(text) => self.load(&text, source_name),
                Err(error) => Err(ConfigErrors { source_name, errors: vec![*error], warnings: Vec::new() }),
            },
            Ok(text) => self.load(&text, source_name),
            Err(source) => Err(ConfigErrors {
                source_name,
                errors: vec![ConfigError::new("", None, ConfigErrorKind::Read { file: path.to_owned(), source })],
                warnings: Vec::new(),
            }),
        }
    }

    /// Loads and validates config text.
    ///
    /// # Errors
    /// Every problem found, each with its key path and line; see [`ConfigErrors`].
    pub fn load_str(&self, text: &str) -> Result<Loaded, ConfigErrors> {
        self.load(text, "config".to_owned())
    }

    /// The document after environment expansion, as JSON with plain scalars typed by the YAML
    /// core schema: what the JSON Schema of [`ComponentRegistry::json_schema`] describes. Lets a
    /// tool check a file against the schema, as editors do.
    ///
    /// JSON must give every value one type where the loader lets the key decide: `port: 0042`
    /// reads as the number 42 here, while a string-typed key receives the text `0042`. The same
    /// holds for a variable's value.
    ///
    /// # Errors
    /// When the text is not valid YAML or an expansion fails.
    pub fn document_as_json(&self, text: &str) -> Result<serde_json::Value, ConfigErrors> {
        let errors = |errors, warnings| ConfigErrors { source_name: "config".to_owned(), errors, warnings };
        let document = yaml::parse(text, &*self.env).map_err(|error| errors(vec![*error], Vec::new()))?;
        if !document.errors.is_empty() {
            return Err(errors(document.errors, document.warnings));
        }
        Ok(document.root.map_or(serde_json::Value::Null, |root| root.to_json()))
    }

    fn load(&self, text: &str, source_name: String) -> Result<Loaded, ConfigErrors> {
        let env: EnvLookup<'_> = &*self.env;
        let document = match yaml::parse(text, env) {
            Ok(document) => document,
            Err(error) => return Err(ConfigErrors { source_name, errors: vec![*error], warnings: Vec::new() }),
        };
        let empty = Node::empty();
        let root = document.root.as_deref().unwrap_or(&empty);
        let mut loading = Loading {
            registry: self.registry,
            config: Config::default(),
            defined: Defined::default(),
            errors: document.errors,
            warnings: document.warnings,
        };
        if loading.root(root) {
            validate(&loading.config, &loading.defined, root, &mut loading.errors, &mut loading.warnings);
        }
        if loading.errors.is_empty() {
            Ok((loading.config, loading.warnings))
        } else {
            loading.errors.sort_by_key(|error| error.location);
            Err(ConfigErrors { source_name, errors: loading.errors, warnings: loading.warnings })
        }
    }
}

/// Whether `path` is JSON with comments (`.jsonc`, or `.json`, which may hold them too): read
/// through [`crate::jsonc`] first. Everything else is YAML (of which plain JSON is a part).
fn is_jsonc(path: &FilePath) -> bool {
    path.extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("jsonc") || extension.eq_ignore_ascii_case("json"))
}

/// Loads and validates the file at `path`, reading environment variables from the process.
///
/// # Errors
/// Every problem found; see [`ConfigErrors`].
pub fn load_file(path: impl AsRef<FilePath>, registry: &ComponentRegistry) -> Result<Loaded, ConfigErrors> {
    Loader::new(registry).load_file(path)
}

/// Loads and validates config text, reading environment variables from the process.
///
/// # Errors
/// Every problem found; see [`ConfigErrors`].
pub fn load_str(text: &str, registry: &ComponentRegistry) -> Result<Loaded, ConfigErrors> {
    Loader::new(registry).load_str(text)
}

/// What the file defines, including what was refused, so that one mistake is reported once: a
/// pipeline naming a component whose config was refused is not also told it is missing, and a
/// file whose only pipeline was refused is not also told it has none.
#[derive(Debug, Default)]
pub(crate) struct Defined {
    /// The ids of each section, each with its key as written.
    pub(crate) components: HashMap<ComponentKind, Vec<(ComponentId, String)>>,
    /// How many pipelines are written under `service.pipelines`; `None` when `service` or
    /// `service.pipelines` is not a mapping (already reported), so not known.
    pub(crate) pipelines: Option<usize>,
}

impl Defined {
    pub(crate) fn contains(&self, kind: ComponentKind, id: &ComponentId) -> bool {
        self.components.get(&kind).is_some_and(|ids| ids.iter().any(|(defined, _)| defined == id))
    }

    pub(crate) fn ids(&self, kind: ComponentKind) -> impl Iterator<Item = &(ComponentId, String)> {
        self.components.get(&kind).into_iter().flatten()
    }
}

struct Loading<'r> {
    registry: &'r ComponentRegistry,
    config: Config,
    defined: Defined,
    errors: Vec<ConfigError>,
    warnings: Vec<Warning>,
}

impl Loading<'_> {
    /// Reads the sections; `false` when the document is not a mapping at all, which leaves
    /// nothing to validate.
    fn root(&mut self, root: &Node) -> bool {
        let top = Path::Root;
        if !matches!(root.value, Value::Map(_)) && !root.is_null() {
            self.entries(root, &top, "sections");
            return false;
        }
        self.defined.pipelines = Some(0);
        for entry in self.entries(root, &top, "sections") {
            let path = top.key(&entry.key);
            match entry.key.as_str() {
                "receivers" => self.components(ComponentKind::Receiver, &entry.value),
                "processors" => self.components(ComponentKind::Processor, &entry.value),
                "exporters" => self.components(ComponentKind::Exporter, &entry.value),
                "extensions" => self.components(ComponentKind::Extension, &entry.value),
                "connectors" => {
                    let ids: Vec<String> =
                        self.entries(&entry.value, &path, "connectors").iter().map(|e| e.key.clone()).collect();
                    if !ids.is_empty() {
                        self.error(&path, entry, ConfigErrorKind::ConnectorsUnsupported { ids });
                    }
                }
                "service" => self.service(&entry.value),
                "plugins" => {
                    if let Some(plugins) = self.deserialize(&entry.value, &path) {
                        self.config.plugins = plugins;
                    }
                }
                key => self.error(
                    &path,
                    entry,
                    ConfigErrorKind::UnknownKey { key: key.to_owned(), expected: TOP_LEVEL_KEYS },
                ),
            }
        }
        true
    }

    fn error(&mut self, path: &Path<'_>, entry: &Entry, kind: ConfigErrorKind) {
        self.errors.push(ConfigError::new(path.to_string(), Some(entry.key_location), kind));
    }

    /// The entries of a mapping; an empty value has none. Anything else is an error.
    fn entries<'n>(&mut self, node: &'n Node, path: &Path<'_>, expected: &'static str) -> &'n [Entry] {
        match &node.value {
            Value::Map(entries) => entries,
            _ if node.is_null() => &[],
            _ => {
                let kind = ConfigErrorKind::NotAMapping { expected, found: node.describe() };
                self.errors.push(ConfigError::new(path.to_string(), Some(node.location), kind));
                &[]
            }
        }
    }

    fn deserialize<T: DeserializeOwned>(&mut self, node: &Node, path: &Path<'_>) -> Option<T> {
        T::deserialize(NodeDeserializer::new(node, path))
            .map_err(|error| self.errors.push(error.into_config_error(path)))
            .ok()
    }

    fn components(&mut self, kind: ComponentKind, node: &Node) {
        let section = Path::Root;
        let section = section.key(kind.section());
        for entry in self.entries(node, &section, "components by id (`type` or `type/name`)") {
            let path = section.key(&entry.key);
            let id = match ComponentId::parse(&entry.key) {
                Ok(id) => id,
                Err(reason) => {
                    self.error(&path, entry, ConfigErrorKind::InvalidComponentId { id: entry.key.clone(), reason });
                    continue;
                }
            };
            let defined = self.defined.components.entry(kind).or_default();
            if let Some((_, first)) = defined.iter().find(|(defined_id, _)| *defined_id == id) {
                let kind =
                    ConfigErrorKind::DuplicateComponentId { id, first: first.clone(), second: entry.key.clone() };
                self.error(&path, entry, kind);
                continue;
            }
            defined.push((id.clone(), entry.key.clone()));
            let Some(registered) = self.registry.get(kind, id.type_name()) else {
                let available = self.registry.types(kind).collect();
                let type_name = id.type_name().to_owned();
                self.error(&path, entry, ConfigErrorKind::UnknownComponentType { kind, type_name, available });
                continue;
            };
            match (registered.load)(&entry.value, &path) {
                Ok(config) => self.config.components_mut(kind).insert(id, config, entry.value.to_json()),
                Err(error) => self.errors.push(error.into_config_error(&path)),
            }
        }
    }

    fn service(&mut self, node: &Node) {
        let top = Path::Root;
        let service = top.key("service");
        if !matches!(node.value, Value::Map(_)) && !node.is_null() {
            self.defined.pipelines = None;
        }
        for entry in self.entries(node, &service, "service settings") {
            let path = service.key(&entry.key);
            let value = &entry.value;
            match entry.key.as_str() {
                "pipelines" => self.pipelines(value, &path),
                "extensions" => {
                    if let Some(extensions) = self.deserialize(value, &path) {
                        self.config.service.extensions = extensions;
                    }
                }
                "telemetry" => {
                    if let Some(telemetry) = self.deserialize(value, &path) {
                        self.config.service.telemetry = telemetry;
                    }
                }
                "cores" => {
                    if let Some(cores) = self.deserialize(value, &path) {
                        self.config.service.cores = cores;
                    }
                }
                "shutdown_timeout" => {
                    if let Some(timeout) = self.deserialize(value, &path) {
                        self.config.service.shutdown_timeout = timeout;
                    }
                }
                "health_log" => {
                    if let Some(health_log) = self.deserialize(value, &path) {
                        self.config.service.health_log = health_log;
                    }
                }
                "watchdog" => {
                    if let Some(watchdog) = self.deserialize(value, &path) {
                        self.config.service.watchdog = watchdog;
                    }
                }
                key => self.error(
                    &path,
                    entry,
                    ConfigErrorKind::UnknownKey { key: key.to_owned(), expected: SERVICE_KEYS },
                ),
            }
        }
    }

    fn pipelines(&mut self, node: &Node, path: &Path<'_>) {
        if !matches!(node.value, Value::Map(_)) && !node.is_null() {
            self.defined.pipelines = None;
        }
        let entries = self.entries(node, path, "pipelines by id (`traces` or `traces/<name>`)");
        self.defined.pipelines = self.defined.pipelines.map(|count| count + entries.len());
        for entry in entries {
            let pipeline_path = path.key(&entry.key);
            match PipelineId::parse(&entry.key) {
                Ok(id) => {
                    if let Some(pipeline) = self.deserialize(&entry.value, &pipeline_path) {
                        self.config.service.pipelines.insert(id, pipeline);
                    }
                }
                Err(kind) => self.error(&pipeline_path, entry, kind),
            }
        }
    }
}
