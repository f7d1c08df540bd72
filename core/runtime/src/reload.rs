//! Config reload: what a new config changes against the running one, and the record of every
//! reload (the revision and hash of the running config, the last refusal).
//!
//! A reload is a partial rebuild. Each component of the new config is compared with the running
//! one by its settings as written ([`spanpipe_config::Components::unchanged_in`]):
//!
//! - an **exporter** whose settings did not change keeps its instance on every core (its queue,
//!   its connections, its failover state); a changed one is built anew and the old instance's
//!   queue drains into it;
//! - a **pipeline** keeps its instance (processors holding spans, its backlog) when its processors
//!   and exporters are the same, in the same order, with the same settings; otherwise it is
//!   rebuilt and the old one is flushed into its exporters once nothing feeds it any more;
//! - a **receiver** whose settings did not change keeps its listeners and connections and is
//!   pointed at the new pipelines; a changed one binds anew (before anything is swapped, so a
//!   port that cannot be bound refuses the whole reload) and the old one closes gracefully.
//!
//! Settings that shape the process rather than the pipelines (the cores, telemetry, the health
//! log, the watchdog, the plugin directory) cannot change while it runs: a reload that changes
//! them is refused, naming each, so that what runs is always exactly what the file says.

use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;
use sha2::Digest as _;
use spanpipe_config::{ComponentId, ComponentKind, Config};

use crate::components::CollectorPlan;

/// For each component of the new plan, the index in the running plan of the instance it keeps.
#[derive(Debug, Default, Clone)]
pub(crate) struct Kept {
    /// By exporter of the new plan.
    pub(crate) exporters: Vec<Option<usize>>,
    /// By pipeline of the new plan.
    pub(crate) pipelines: Vec<Option<usize>>,
    /// By receiver of the new plan.
    pub(crate) receivers: Vec<Option<usize>>,
    /// By source of the new plan.
    pub(crate) sources: Vec<Option<usize>>,
}

impl Kept {
    /// Nothing kept: every component of `plan` is built (the collector's start).
    pub(crate) fn nothing(plan: &CollectorPlan) -> Self {
        Self {
            exporters: vec![None; plan.exporters.len()],
            pipelines: vec![None; plan.pipelines.len()],
            receivers: vec![None; plan.receivers.len()],
            sources: vec![None; plan.sources.len()],
        }
    }

    /// What `new` (for `new_config`) keeps of `old` (for `old_config`).
    pub(crate) fn between(old_config: &Config, old: &CollectorPlan, new_config: &Config, new: &CollectorPlan) -> Self {
        let same = |kind: ComponentKind, id: &ComponentId| {
            old_config.components(kind).unchanged_in(new_config.components(kind), id)
        };
        let exporters =
            kept_by_id(old.exporters.iter().map(|(id, _)| id), new.exporters.iter().map(|(id, _)| id), |id| {
                same(ComponentKind::Exporter, id)
            });
        let pipelines = new
            .pipelines
            .iter()
            .map(|pipeline| {
                let position = old.pipelines.iter().position(|old_pipeline| old_pipeline.id == pipeline.id)?;
                let before = &old_config.service.pipelines[&pipeline.id];
                let after = &new_config.service.pipelines[&pipeline.id];
                let processors_same = before.processors == after.processors
                    && after.processors.iter().all(|id| same(ComponentKind::Processor, id));
                // Exporters are compared by instance: the same ids, each kept.
                let exporters_same = before.exporters == after.exporters
                    && pipeline.exporters.iter().all(|&index| exporters[index].is_some());
                (processors_same && exporters_same).then_some(position)
            })
            .collect();
        let receiver_same = |id: &ComponentId| same(ComponentKind::Receiver, id);
        let receivers = kept_by_id(
            old.receivers.iter().map(|receiver| &receiver.id),
            new.receivers.iter().map(|receiver| &receiver.id),
            receiver_same,
        );
        let sources = kept_by_id(
            old.sources.iter().map(|source| &source.id),
            new.sources.iter().map(|source| &source.id),
            receiver_same,
        );
        Self { exporters, pipelines, receivers, sources }
    }
}

/// For each of `new`'s ids, the position of the same id among `old`'s when `unchanged` says its
/// settings are the same.
fn kept_by_id<'a>(
    old: impl Iterator<Item = &'a ComponentId> + Clone,
    new: impl Iterator<Item = &'a ComponentId>,
    unchanged: impl Fn(&ComponentId) -> bool,
) -> Vec<Option<usize>> {
    new.map(|id| old.clone().position(|old_id| old_id == id).filter(|_| unchanged(id))).collect()
}

/// What a reload changed, by component, for the log, the health log and `/status`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeSummary {
    /// Components (`receivers/otlp`, `pipelines/traces`) new in this config.
    pub added: Vec<String>,
    /// Components rebuilt because their settings (or, for a pipeline, its stages) changed.
    pub changed: Vec<String>,
    /// Components no longer in the config.
    pub removed: Vec<String>,
}

impl ChangeSummary {
    pub(crate) fn between(old: &CollectorPlan, new: &CollectorPlan, kept: &Kept) -> Self {
        let mut summary = Self::default();
        let mut compare = |section: &str, old_ids: Vec<String>, new_ids: Vec<String>, kept: &[Option<usize>]| {
            for (id, kept) in new_ids.iter().zip(kept) {
                let name = format!("{section}/{id}");
                match (kept, old_ids.contains(id)) {
                    (Some(_), _) => {}
                    (None, true) => summary.changed.push(name),
                    (None, false) => summary.added.push(name),
                }
            }
            for id in old_ids.iter().filter(|id| !new_ids.contains(id)) {
                summary.removed.push(format!("{section}/{id}"));
            }
        };
        let ids = |plan: &CollectorPlan| {
            (
                plan.receivers.iter().map(|receiver| receiver.id.to_string()).collect::<Vec<_>>(),
                plan.sources.iter().map(|source| source.id.to_string()).collect::<Vec<_>>(),
                plan.pipelines.iter().map(|pipeline| pipeline.id.to_string()).collect::<Vec<_>>(),
                plan.exporters.iter().map(|(id, _)| id.to_string()).collect::<Vec<_>>(),
            )
        };
        let (old_receivers, old_sources, old_pipelines, old_exporters) = ids(old);
        let (new_receivers, new_sources, new_pipelines, new_exporters) = ids(new);
        compare("receivers", old_receivers, new_receivers, &kept.receivers);
        compare("receivers", old_sources, new_sources, &kept.sources);
        compare("pipelines", old_pipelines, new_pipelines, &kept.pipelines);
        compare("exporters", old_exporters, new_exporters, &kept.exporters);
        summary
    }

    /// Whether nothing changes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

impl std::fmt::Display for ChangeSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts = [("added", &self.added), ("changed", &self.changed), ("removed", &self.removed)];
        let mut first = true;
        for (label, ids) in parts.iter().filter(|(_, ids)| !ids.is_empty()) {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{label} {}", ids.join(", "))?;
        }
        if first {
            f.write_str("no component changed")?;
        }
        Ok(())
    }
}

/// The settings a running process cannot take on, each named as its key: a reload that changes
/// any of them is refused.
pub(crate) fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let (before, after) = (&old.service, &new.service);
    let mut changed = Vec::new();
    if before.cores != after.cores {
        changed.push("service.cores");
    }
    if before.telemetry != after.telemetry {
        changed.push("service.telemetry");
    }
    if before.health_log != after.health_log {
        changed.push("service.health_log");
    }
    if before.watchdog != after.watchdog {
        changed.push("service.watchdog");
    }
    if before.extensions != after.extensions || extension_settings_differ(old, new) {
        changed.push("extensions");
    }
    if old.plugins != new.plugins {
        changed.push("plugins");
    }
    changed
}

fn extension_settings_differ(old: &Config, new: &Config) -> bool {
    let (before, after) = (&old.extensions, &new.extensions);
    before.len() != after.len() || before.iter().any(|(id, _)| !before.unchanged_in(after, id))
}

/// A short, stable fingerprint of what a config says (not how it is written: comments, order of
/// unrelated keys and formatting do not change it): the first 16 hex digits of the SHA-256 of
/// its canonical JSON.
#[must_use]
pub fn config_hash(config: &Config) -> String {
    let digest = sha2::Sha256::digest(config.canonical_json().to_string().as_bytes());
    digest.iter().take(8).map(|byte| format!("{byte:02x}")).collect()
}

/// The running config's identity and the outcome of the last reload, shown at `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigStatus {
    /// 1 for the config the process started with, +1 for each applied reload.
    pub revision: u64,
    /// [`config_hash`] of the running config.
    pub hash: String,
    /// Where the config was read from.
    pub source: String,
    /// When the running config was applied (RFC 3339, UTC).
    pub applied_at: String,
    /// Reloads applied since start.
    pub reloads_applied: u64,
    /// Reloads refused since start.
    pub reloads_refused: u64,
    /// The last refused reload, if any.
    pub last_refusal: Option<Refusal>,
}

/// A refused reload: when, and every reason.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Each problem, naming its field (`receivers.otlp.protocols.grpc.endpoint: …`).
    pub errors: Vec<String>,
}

/// The shared, lock-guarded [`ConfigStatus`].
#[derive(Debug)]
pub(crate) struct ConfigRecord(Mutex<ConfigStatus>);

impl ConfigRecord {
    pub(crate) fn new(config: &Config, source: String) -> Self {
        Self(Mutex::new(ConfigStatus {
            revision: 1,
            hash: config_hash(config),
            source,
            applied_at: now_rfc3339(),
            reloads_applied: 0,
            reloads_refused: 0,
            last_refusal: None,
        }))
    }

    pub(crate) fn snapshot(&self) -> ConfigStatus {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Records an applied config; returns its revision.
    pub(crate) fn applied(&self, hash: String) -> u64 {
        let mut status = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        status.revision += 1;
        status.hash = hash;
        status.applied_at = now_rfc3339();
        status.reloads_applied += 1;
        status.revision
    }

    pub(crate) fn refused(&self, errors: Vec<String>) {
        let mut status = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        status.reloads_refused += 1;
        status.last_refusal = Some(Refusal { at: now_rfc3339(), errors });
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::builtin_registry;

    fn load(yaml: &str) -> (Config, CollectorPlan) {
        let registry = builtin_registry().unwrap();
        let (config, _) = spanpipe_config::load_str(yaml, &registry).unwrap_or_else(|errors| panic!("{errors}"));
        let plan = CollectorPlan::new(&config).unwrap();
        (config, plan)
    }

    const BEFORE: &str = "
receivers:
  otlp: {protocols: {http: {endpoint: 127.0.0.1:0}}}
  otlp/b: {protocols: {grpc: {endpoint: 127.0.0.1:0}}}
processors:
  batch: {send_batch_size: 100}
  attributes: {actions: [{key: a, value: b, action: insert}]}
exporters:
  debug:
  blackhole:
  blackhole/gone:
service:
  pipelines:
    traces: {receivers: [otlp], processors: [batch], exporters: [debug]}
    traces/b: {receivers: [otlp/b], processors: [attributes], exporters: [blackhole, blackhole/gone]}
";

    #[test]
    fn only_what_changed_is_rebuilt_and_the_summary_names_it() {
        let (old_config, old_plan) = load(BEFORE);
        // `batch` changes; `otlp/b` moves; `blackhole/gone` goes; `debug/new` comes.
        let after = BEFORE
            .replace("send_batch_size: 100", "send_batch_size: 200")
            .replace(
                "otlp/b: {protocols: {grpc: {endpoint: 127.0.0.1:0}}}",
                "otlp/b: {protocols: {grpc: {endpoint: 127.0.0.2:0}}}",
            )
            .replace("  blackhole/gone:\n", "  debug/new:\n")
            .replace("exporters: [blackhole, blackhole/gone]", "exporters: [blackhole, debug/new]");
        let (new_config, new_plan) = load(&after);
        let kept = Kept::between(&old_config, &old_plan, &new_config, &new_plan);
        let ids = |plan: &CollectorPlan| plan.exporters.iter().map(|(id, _)| id.to_string()).collect::<Vec<_>>();
        assert_eq!(ids(&new_plan), ["debug", "blackhole", "debug/new"]);
        assert_eq!(kept.exporters, [Some(0), Some(1), None]);
        assert_eq!(kept.pipelines, [None, None], "traces: batch changed; traces/b: an exporter changed");
        assert_eq!(kept.receivers, [Some(0), None], "otlp kept; otlp/b moved");
        let summary = ChangeSummary::between(&old_plan, &new_plan, &kept);
        assert_eq!(summary.added, ["exporters/debug/new"]);
        assert_eq!(summary.changed, ["receivers/otlp/b", "pipelines/traces", "pipelines/traces/b"]);
        assert_eq!(summary.removed, ["exporters/blackhole/gone"]);

        let (same_config, same_plan) = load(&BEFORE.replace("\nprocessors:", "\n# a comment\nprocessors:"));
        let kept = Kept::between(&old_config, &old_plan, &same_config, &same_plan);
        assert!(kept.pipelines.iter().chain(&kept.receivers).chain(&kept.exporters).all(Option::is_some));
        assert!(ChangeSummary::between(&old_plan, &same_plan, &kept).is_empty());
        assert_eq!(config_hash(&old_config), config_hash(&same_config), "a comment changes nothing");
        assert_ne!(config_hash(&old_config), config_hash(&new_config));
    }

    #[test]
    fn process_settings_need_a_restart() {
        let (old_config, _) = load(BEFORE);
        let (new_config, _) = load(
            &format!("{BEFORE}  cores: 1\nplugins: {{dir: /tmp}}\n")
                .replace("service:\n", "service:\n  cores: 1\n")
                .replace("  cores: 1\nplugins", "plugins"),
        );
        assert_eq!(restart_only_changes(&old_config, &new_config), ["service.cores", "plugins"]);
    }
}
