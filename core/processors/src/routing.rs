//! The `routing` processor's decision: which exporters each span goes to, by the value of a
//! resource attribute (the Collector's `attribute_source: resource`) or, as a spanpipe extra, of a
//! span attribute (`attribute_source: span`).
//!
//! A batch is partitioned, never copied per destination: every span lands in exactly one output
//! batch, re-framed from the input, tagged with [`Route::Table`] (the index of its table entry) or
//! [`Route::Default`]; the runtime maps those to exporter sets. With a resource attribute, a whole
//! `ResourceSpans` goes one way; with a span attribute, spans of one resource may part. A batch
//! whose spans all take one route is passed on as it is, without a copy.
//!
//! Refused by [`ComponentConfig::validate`]: `attribute_source: context` (the Collector's
//! default, which reads request headers; no request context reaches spanpipe's processors),
//! OTTL `statement`s, `drop_resource_routing_attribute`, and a `value` listed twice (the
//! Collector would send such spans to both routes; here each span has exactly one route, so the
//! exporters of both belong in one entry).

use std::collections::HashMap;
use std::time::Instant;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spanpipe_config::{ComponentConfig, FieldError};
use spanpipe_core::{KeyValues, Reframer, SpanBatch};

use crate::{DropReason, Output, Processor, ProcessorStats, Route};

/// Config of the `routing` processor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// The attribute whose value selects the route. Required. Defaults to "".
    #[serde(default)]
    pub from_attribute: String,
    /// Where `from_attribute` is read: `resource` (resource attributes) or, spanpipe extra, `span`
    /// (span attributes). `context` (request headers) is not supported. Defaults to `context`, as
    /// in the Collector, so it must be set.
    #[serde(default)]
    pub attribute_source: AttributeSource,
    /// Exporters for spans whose value matches no entry; with none, such spans are dropped and
    /// counted. Defaults to none.
    #[serde(default)]
    pub default_exporters: Vec<String>,
    /// The routes. Required (at least one). Defaults to none.
    #[serde(default)]
    pub table: Vec<RoutingTableEntry>,
    /// Not supported by spanpipe; refused when true. Defaults to false.
    #[serde(default)]
    pub drop_resource_routing_attribute: bool,
}

/// Where the routing attribute is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AttributeSource {
    /// Request headers (not supported by spanpipe).
    #[default]
    Context,
    /// Resource attributes.
    Resource,
    /// Span attributes (spanpipe extra).
    Span,
}

/// One route.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingTableEntry {
    /// The attribute value (a string, compared exactly) that selects this route. Defaults to "".
    #[serde(default)]
    pub value: String,
    /// An OTTL condition (not supported by spanpipe; refused). Defaults to "".
    #[serde(default)]
    pub statement: String,
    /// Exporters of this route. Required. Defaults to none.
    #[serde(default)]
    pub exporters: Vec<String>,
}

impl ComponentConfig for RoutingConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        match self.attribute_source {
            AttributeSource::Context => errors.push(FieldError::new(
                "attribute_source",
                "`context` (the default) reads request headers, which spanpipe's processors do not receive: set \
                 `attribute_source: resource` (or `span`)",
            )),
            AttributeSource::Resource | AttributeSource::Span => {}
        }
        if self.from_attribute.is_empty() {
            errors.push(FieldError::new("from_attribute", "required: the attribute whose value selects the route"));
        }
        if self.drop_resource_routing_attribute {
            errors.push(FieldError::new(
                "drop_resource_routing_attribute",
                "not supported by spanpipe: remove it (the attribute stays on the resource)",
            ));
        }
        if self.table.is_empty() {
            errors.push(FieldError::new("table", "the routing table is empty: add at least one route"));
        }
        let mut first_index: HashMap<&str, usize> = HashMap::new();
        for (index, entry) in self.table.iter().enumerate() {
            if !entry.statement.is_empty() {
                errors.push(FieldError::new(
                    format!("table[{index}].statement"),
                    "OTTL statements are not supported by spanpipe: route by `value`",
                ));
            } else if entry.value.is_empty() {
                errors.push(FieldError::new(format!("table[{index}].value"), "empty routing value"));
            } else if let Some(first) = first_index.insert(&entry.value, index) {
                first_index.insert(&entry.value, first);
                errors.push(FieldError::new(
                    format!("table[{index}].value"),
                    format!("`{}` is already routed by table[{first}]: list all its exporters there", entry.value),
                ));
            }
            if entry.exporters.is_empty() {
                errors.push(FieldError::new(format!("table[{index}].exporters"), "no exporters for this route"));
            }
        }
        errors
    }
}

impl RoutingConfig {
    /// A per-core instance. Call after [`ComponentConfig::validate`] found nothing.
    #[must_use]
    pub fn build(&self) -> RoutingProcessor {
        RoutingProcessor {
            from_attribute: self.from_attribute.clone(),
            by_span: self.attribute_source == AttributeSource::Span,
            routes: self.table.iter().enumerate().map(|(index, entry)| (entry.value.clone(), index)).collect(),
            table_len: self.table.len(),
            has_default: !self.default_exporters.is_empty(),
            stats: ProcessorStats::default(),
        }
    }
}

/// The routing decision of one core.
#[derive(Debug)]
pub struct RoutingProcessor {
    from_attribute: String,
    by_span: bool,
    routes: HashMap<String, usize>,
    table_len: usize,
    has_default: bool,
    stats: ProcessorStats,
}

/// Output slot of a route: table entries first, then the default route.
type Slot = usize;

impl RoutingProcessor {
    fn slot_of(&self, attributes: KeyValues<'_>) -> Slot {
        attributes
            .get(&self.from_attribute)
            .and_then(|value| value.as_str().and_then(|text| self.routes.get(text).copied()))
            .unwrap_or(self.table_len)
    }

    fn route_of(&self, slot: Slot) -> Route {
        if slot == self.table_len {
            Route::Default
        } else {
            Route::Table(slot)
        }
    }

    /// The slot of every span of `batch`.
    fn slots(&self, batch: &SpanBatch) -> Vec<Slot> {
        if self.by_span {
            return batch.spans().map(|span| self.slot_of(span.attributes())).collect();
        }
        let by_resource: Vec<Slot> = batch.resources().map(|resource| self.slot_of(resource.attributes())).collect();
        batch.spans().map(|span| by_resource[span.resource_position()]).collect()
    }

    fn emit(&mut self, slot: Slot, batch: SpanBatch, out: &mut Output) {
        if slot == self.table_len && !self.has_default {
            self.stats.record_dropped(DropReason::NoRoute, batch.len());
            return;
        }
        self.stats.record_out(batch.len());
        out.push_routed(self.route_of(slot), batch);
    }
}

impl Processor for RoutingProcessor {
    fn process(&mut self, batch: SpanBatch, _now: Instant, out: &mut Output) {
        self.stats.record_in(batch.len());
        if batch.is_empty() {
            return;
        }
        let slots = self.slots(&batch);
        if let Some(&first) = slots.first() {
            if slots.iter().all(|slot| *slot == first) {
                self.emit(first, batch, out);
                return;
            }
        }
        let mut parts: Vec<(Slot, SpanBatch)> = Vec::new();
        {
            let mut reframers: Vec<Reframer<'_>> = (0..=self.table_len).map(|_| Reframer::new()).collect();
            for (position, slot) in slots.iter().enumerate() {
                reframers[*slot].push(&batch, position);
            }
            for (slot, reframer) in reframers.into_iter().enumerate() {
                if !reframer.is_empty() {
                    parts.push((slot, reframer.finish()));
                }
            }
        }
        for (slot, part) in parts {
            self.emit(slot, part, out);
        }
    }

    fn stats(&self) -> &ProcessorStats {
        &self.stats
    }
}
