//! The JSON Schema of the whole config file, generated from the registered config types, for
//! `spanpipe schema` and for editors (the YAML language server reads it).
//!
//! Each section (`receivers`, ...) is an object whose keys are matched by pattern to a registered
//! type (`^otlp(/.+)?$` → the `otlp` receiver's schema) and refuses any other key, as the loader
//! does. An empty value is allowed wherever the loader takes it as "all defaults" (a mapping or a
//! list written as `batch:`), so the schema accepts exactly the shapes the loader accepts.
//! What the schema cannot say (references between sections, ports bound twice, each
//! component's own checks) is left to the loader's validation.

use schemars::generate::SchemaSettings;
use schemars::transform::{RecursiveTransform, Transform};
use schemars::Schema;
use serde_json::{json, Map, Value};

use crate::component_id::ComponentKind;
use crate::model::{PluginsConfig, ServiceConfig};
use crate::registry::ComponentRegistry;

impl ComponentRegistry {
    /// The JSON Schema (draft 2020-12) of a config file whose components are the registered
    /// ones.
    #[must_use]
    pub fn json_schema(&self) -> Schema {
        let mut generator = SchemaSettings::draft2020_12().into_generator();
        let mut properties = Map::new();
        for kind in ComponentKind::ALL {
            let mut patterns = Map::new();
            for (type_name, registered) in self.entries(kind) {
                patterns.insert(format!("^{type_name}(/.+)?$"), (registered.schema)(&mut generator).to_value());
            }
            let description = format!(
                "{} by id: `type` or `type/name`, where the type is one spanpipe has ({}).",
                capitalized(kind.section()),
                self.types(kind).collect::<Vec<_>>().join(", ")
            );
            properties.insert(
                kind.section().to_owned(),
                json!({
                    "description": description,
                    "type": "object",
                    "patternProperties": patterns,
                    "additionalProperties": false
                }),
            );
        }
        properties.insert(
            "connectors".to_owned(),
            json!({
                "description": "Not supported by spanpipe yet: leave it out or empty.",
                "type": "object",
                "maxProperties": 0
            }),
        );
        properties.insert("service".to_owned(), generator.subschema_for::<ServiceConfig>().to_value());
        properties.insert("plugins".to_owned(), generator.subschema_for::<PluginsConfig>().to_value());
        let definitions = generator.take_definitions(false);
        let mut schema = schemars::json_schema!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "spanpipe configuration",
            "description": "A spanpipe config file: the OpenTelemetry Collector's shape (receivers, processors, exporters, extensions, service.pipelines) for traces.",
            "type": "object",
            "properties": properties,
            "additionalProperties": false,
            "$defs": definitions
        });
        RecursiveTransform(allow_empty_value).transform(&mut schema);
        schema
    }
}

/// Where a schema takes an object or an array, also take `null`: the loader reads an empty value
/// there as an empty mapping or list (`batch:` configures a batch processor with its defaults).
fn allow_empty_value(schema: &mut Schema) {
    let Some(object) = schema.as_object_mut() else { return };
    let Some(types) = object.get_mut("type") else { return };
    match types {
        Value::String(single) if single == "object" || single == "array" => {
            *types = json!([single.clone(), "null"]);
        }
        Value::Array(list)
            if list.iter().any(|t| t == "object" || t == "array") && !list.iter().any(|t| t == "null") =>
        {
            list.push(json!("null"));
        }
        _ => {}
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}
