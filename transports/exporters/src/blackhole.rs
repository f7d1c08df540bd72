//! The `blackhole` exporter (spanpipe's own): counts spans and bytes and drops them. It is the
//! sink of benchmarks that measure everything before the exporter, so it does nothing else.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spanpipe_config::ComponentConfig;
use spanpipe_core::SpanBatch;

use crate::stats::ExporterStats;

/// Config of the `blackhole` exporter: it has no settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlackholeExporterConfig {}

impl ComponentConfig for BlackholeExporterConfig {}

/// One core's `blackhole` exporter.
#[derive(Debug, Default)]
pub struct BlackholeExporter {
    stats: Arc<ExporterStats>,
}

impl BlackholeExporter {
    /// An instance with fresh counters.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts `batch` as delivered.
    pub fn export(&self, batch: &SpanBatch) {
        self.stats.delivered(batch, batch.encoded_len());
    }

    /// This instance's counters.
    #[must_use]
    pub fn stats(&self) -> &Arc<ExporterStats> {
        &self.stats
    }
}
