//! Example processor plugin: replaces the values of the listed attributes (personal data, secrets)
//! and stamps every span it sees with the plugin's version.
//!
//! Config (every field optional):
//!
//! ```json
//! {"keys": ["user.email", "http.authorization"], "replacement": "***"}
//! ```
//!
//! The stamp, `spanpipe.plugin.redact.version`, shows which build of the plugin handled a span:
//! the version is `SPANPIPE_EXAMPLE_VERSION` at build time ("1.0.0" when unset), which is how the
//! host's tests build two versions of the same plugin to check hot replacement.

use serde::Deserialize;
use spanpipe_plugin_sdk::{export_processor, AttributeValue, Batch, Decisions, Processor};

/// This build's version. `option_env!` makes cargo rebuild the crate when the variable changes.
const VERSION: &str = match option_env!("SPANPIPE_EXAMPLE_VERSION") {
    Some(version) => version,
    None => "1.0.0",
};

/// The attribute every processed span gets, holding [`VERSION`].
const VERSION_KEY: &str = "spanpipe.plugin.redact.version";

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Attribute keys whose values are replaced. Defaults to `user.email` and
    /// `http.authorization`.
    keys: Vec<String>,
    /// The value put in their place. Defaults to `***`.
    replacement: String,
}

impl Default for Config {
    fn default() -> Self {
        Self { keys: vec!["user.email".to_owned(), "http.authorization".to_owned()], replacement: "***".to_owned() }
    }
}

/// The redacting processor.
#[derive(Debug)]
struct Redact {
    config: Config,
}

impl Processor for Redact {
    fn new(config: &str) -> Result<Self, String> {
        let config = serde_json::from_str(config).map_err(|e| format!("invalid redact config: {e}"))?;
        Ok(Self { config })
    }

    fn process(&mut self, batch: &Batch<'_>, decisions: &mut Decisions<'_>) -> Result<(), String> {
        let Config { keys, replacement } = &self.config;
        for span in batch.spans() {
            decisions.replace_attributes_with(span.position(), |run| {
                for attribute in span.attribute_fields() {
                    let key = attribute.key_value.key;
                    if key == VERSION_KEY {
                        // Stamped again below: a span that passes twice keeps one stamp.
                    } else if keys.iter().any(|redacted| redacted == key) {
                        run.put(key, AttributeValue::Str(replacement));
                    } else {
                        run.copy(&attribute);
                    }
                }
                run.put(VERSION_KEY, AttributeValue::Str(VERSION));
            })?;
        }
        Ok(())
    }
}

export_processor!(Redact, name = "redact", version = VERSION);

#[cfg(test)]
mod tests {
    use spanpipe_plugin_sdk::core::{Attributes, BatchWriter};
    use spanpipe_plugin_sdk::testing;

    use super::*;

    fn run(config: &str) -> Vec<(String, String)> {
        let mut writer = BatchWriter::new();
        writer.resource_spans(|rs| {
            rs.scope_spans(|ss| {
                ss.span(|s| {
                    s.trace_id(&[1; 16]).span_id(&[2; 8]).name("login");
                    s.str_attribute("user.email", "a@b.c");
                    s.int_attribute("user.id", 42);
                    s.str_attribute("api.token", "secret");
                    s.str_attribute(VERSION_KEY, "0.0.1");
                });
            });
        });
        let batch = writer.finish().expect("valid");
        // SAFETY: the generated function returns a pointer to a static descriptor.
        let mut processor = testing::processor(unsafe { &*spanpipe_plugin_descriptor() }, config).expect("created");
        let processed = processor.process(&batch).expect("processed");
        assert_eq!(processed.keep, [true]);
        let attributes = processed.replaced_attributes(0).expect("replaced");
        attributes.map(|kv| (kv.key.to_owned(), format!("{:?}", kv.value))).collect()
    }

    fn pair(key: &str, value: &str) -> (String, String) {
        (key.to_owned(), value.to_owned())
    }

    #[test]
    fn default_keys_are_redacted_and_the_span_stamped_once() {
        assert_eq!(
            run("{}"),
            [
                pair("user.email", "String(\"***\")"),
                pair("user.id", "Int(42)"),
                pair("api.token", "String(\"secret\")"),
                pair(VERSION_KEY, &format!("String({VERSION:?})")),
            ]
        );
    }

    #[test]
    fn configured_keys_and_replacement_are_used() {
        let redacted = run(r#"{"keys": ["api.token"], "replacement": "[gone]"}"#);
        assert_eq!(redacted[0], pair("user.email", "String(\"a@b.c\")"));
        assert_eq!(redacted[2], pair("api.token", "String(\"[gone]\")"));
    }

    #[test]
    fn a_bad_config_is_refused_with_a_message() {
        // SAFETY: as above.
        let failure =
            testing::processor(unsafe { &*spanpipe_plugin_descriptor() }, r#"{"key": []}"#).expect_err("unknown field");
        assert!(failure.message.starts_with("invalid redact config: unknown field `key`"), "{}", failure.message);
    }
}
