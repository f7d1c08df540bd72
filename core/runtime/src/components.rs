//! The components spanpipe has, registered under the names configs use, and the plan built from
//! a loaded config: everything validated and prepared once, before any core starts, so that a bad
//! config is refused without binding a port.

use std::sync::Arc;

use indexmap::IndexMap;
use spanpipe_config::{ComponentId, ComponentKind, ComponentRegistry, Config, PipelineId, RegistryError};
use spanpipe_exporters::{
    BlackholeExporterConfig, DebugExporterConfig, ExporterBuilder, FileExporterConfig, OtlpExporterConfig,
    OtlpHttpExporterConfig, ZipkinExporterConfig,
};
use spanpipe_plugins::{PluginProcessor, PluginRegistry, PluginSourceConfig, PluginStageConfig};
use spanpipe_processors::{
    AdaptiveSamplerConfig, AdaptiveSamplerHandle, AttributesConfig, BatchConfig, BuiltinProcessor, MemoryLimiter,
    MemoryLimiterConfig, ProbabilisticSamplerConfig, ProcessMemory, ProcessorBuilder, ProcessorConfig, RoutingConfig,
};
use spanpipe_transports::jaeger::JaegerReceiverConfig;
use spanpipe_transports::otlp::OtlpReceiverConfig;
use spanpipe_transports::websocket::WebSocketReceiverConfig;
use spanpipe_transports::zipkin::ZipkinReceiverConfig;

use crate::pipeline::RouteTable;
use crate::plugin_config::{PluginProcessorConfig, PluginReceiverConfig};
use crate::plugins;
use crate::receivers::ReceiverConfig;

/// The component type of plugin processors and sources: `plugin/<name>`.
pub(crate) const PLUGIN: &str = "plugin";

/// Every component type spanpipe has, under its config name.
///
/// # Errors
/// Only if two registrations collide, which would be a bug in this list.
pub fn builtin_registry() -> Result<ComponentRegistry, RegistryError> {
    ComponentRegistry::new()
        .receiver::<OtlpReceiverConfig>("otlp")?
        .receiver::<ZipkinReceiverConfig>("zipkin")?
        .receiver::<JaegerReceiverConfig>("jaeger")?
        .receiver::<WebSocketReceiverConfig>("websocket")?
        .receiver::<PluginReceiverConfig>(PLUGIN)?
        .processor::<BatchConfig>("batch")?
        .processor::<ProbabilisticSamplerConfig>("probabilistic_sampler")?
        .processor::<AdaptiveSamplerConfig>("adaptive_sampler")?
        .processor::<AttributesConfig>("attributes")?
        .processor::<RoutingConfig>("routing")?
        .processor::<MemoryLimiterConfig>("memory_limiter")?
        .processor::<PluginProcessorConfig>(PLUGIN)?
        .exporter::<OtlpExporterConfig>("otlp")?
        .exporter::<OtlpHttpExporterConfig>("otlphttp")?
        .exporter::<ZipkinExporterConfig>("zipkin")?
        .exporter::<FileExporterConfig>("file")?
        .exporter::<DebugExporterConfig>("debug")?
        .exporter::<BlackholeExporterConfig>("blackhole")
}

/// Why a loaded config could not be prepared to run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A processor's config is inconsistent.
    #[error("processors.{id}: {source}")]
    Processor {
        /// The processor's id.
        id: ComponentId,
        /// What is wrong.
        source: Box<spanpipe_processors::BuildError>,
    },
    /// An exporter could not be prepared.
    #[error("exporters.{id}: {source}")]
    Exporter {
        /// The exporter's id.
        id: ComponentId,
        /// What is wrong.
        source: Box<spanpipe_exporters::BuildError>,
    },
    /// The memory limiter could not read memory figures or set its limit.
    #[error("processors.{id}: {source}")]
    MemoryLimiter {
        /// The processor's id.
        id: ComponentId,
        /// What is wrong.
        source: Box<spanpipe_processors::MemoryError>,
    },
    /// A routing table names an exporter that its pipeline does not list.
    #[error(
        "service.pipelines.{pipeline}: processor `{processor}` routes to exporter `{exporter}`, which the pipeline's `exporters` does not list"
    )]
    RouteToUnlistedExporter {
        /// The pipeline.
        pipeline: PipelineId,
        /// The routing processor.
        processor: ComponentId,
        /// The exporter it names.
        exporter: String,
    },
    /// A receiver's TLS certificates, keys or CAs cannot be loaded.
    #[error("receivers.{id}: {source}")]
    Receiver {
        /// The receiver's id.
        id: ComponentId,
        /// The key and file that cannot be used.
        source: Box<spanpipe_transports::ReceiverError>,
    },
    /// A config the loader accepted holds a type this build cannot downcast (a registry mismatch).
    #[error("{kind:?} `{id}` has no config of the expected type")]
    Unexpected {
        /// The component kind.
        kind: ComponentKind,
        /// Its id.
        id: ComponentId,
    },
}

/// A pipeline, prepared.
#[derive(Debug, Clone)]
pub struct PipelinePlan {
    /// Its id.
    pub id: PipelineId,
    /// Its processors in order, with their ids (the memory limiter is not among them: it guards
    /// the receivers).
    pub processors: Vec<(ComponentId, StageBuilder)>,
    /// Its exporters, as indices into [`CollectorPlan::exporters`].
    pub exporters: Vec<usize>,
    /// Where a routing processor's routes go, as indices into `exporters`.
    pub routes: RouteTable,
    /// The memory limiter guarding the receivers that feed this pipeline.
    pub memory_limiter: Option<Arc<MemoryLimiter>>,
    /// Its processor id.
    pub memory_limiter_id: Option<ComponentId>,
}

/// Builds one pipeline stage per core: a built-in processor, or a plugin processor stage.
#[derive(Debug, Clone)]
pub enum StageBuilder {
    /// A built-in processor.
    Builtin(ProcessorBuilder),
    /// `plugin/<name>`: runs whatever version of the plugin the registry holds, batch by batch.
    Plugin(PluginStageConfig),
}

impl StageBuilder {
    /// A fresh stage for one core.
    #[must_use]
    pub fn build(&self, plugins: &Arc<PluginRegistry>) -> BuiltinProcessor {
        match self {
            Self::Builtin(builder) => builder.build(),
            Self::Plugin(config) => {
                BuiltinProcessor::Custom(Box::new(PluginProcessor::new(config, Arc::clone(plugins))))
            }
        }
    }

    /// The adaptive sampler's rate handle, for the control plane.
    #[must_use]
    pub fn adaptive_handle(&self) -> Option<&AdaptiveSamplerHandle> {
        match self {
            Self::Builtin(builder) => builder.adaptive_handle(),
            Self::Plugin(_) => None,
        }
    }
}

/// A receiver, prepared.
#[derive(Debug, Clone)]
pub struct ReceiverPlan {
    /// Its id.
    pub id: ComponentId,
    /// Its config.
    pub config: ReceiverConfig,
    /// The pipelines it feeds, as indices into [`CollectorPlan::pipelines`].
    pub pipelines: Vec<usize>,
}

/// A source plugin (`receivers: plugin/<name>`), prepared. It runs on the first core only: one
/// instance per process, as the plugin ABI promises sources.
#[derive(Debug, Clone)]
pub struct SourcePlan {
    /// Its id.
    pub id: ComponentId,
    /// What it runs.
    pub config: PluginSourceConfig,
    /// The pipelines it feeds, as indices into [`CollectorPlan::pipelines`].
    pub pipelines: Vec<usize>,
}

/// Everything the cores need, validated and prepared, shared by all of them.
#[derive(Debug)]
pub struct CollectorPlan {
    /// Receivers that listen.
    pub receivers: Vec<ReceiverPlan>,
    /// Source plugins.
    pub sources: Vec<SourcePlan>,
    /// Pipelines.
    pub pipelines: Vec<PipelinePlan>,
    /// Exporters, each built once per core.
    pub exporters: Vec<(ComponentId, ExporterBuilder)>,
}

pub(crate) fn downcast<T: spanpipe_config::ComponentConfig>(
    config: &Config,
    kind: ComponentKind,
    id: &ComponentId,
) -> Result<T, PlanError> {
    config.components(kind).config::<T>(id).cloned().ok_or_else(|| PlanError::Unexpected { kind, id: id.clone() })
}

fn processor_config(config: &Config, id: &ComponentId) -> Result<ProcessorConfig, PlanError> {
    let kind = ComponentKind::Processor;
    Ok(match id.type_name() {
        "batch" => ProcessorConfig::Batch(downcast(config, kind, id)?),
        "probabilistic_sampler" => ProcessorConfig::ProbabilisticSampler(downcast(config, kind, id)?),
        "adaptive_sampler" => ProcessorConfig::AdaptiveSampler(downcast(config, kind, id)?),
        "attributes" => ProcessorConfig::Attributes(downcast(config, kind, id)?),
        "routing" => ProcessorConfig::Routing(downcast(config, kind, id)?),
        "memory_limiter" => ProcessorConfig::MemoryLimiter(downcast(config, kind, id)?),
        _ => return Err(PlanError::Unexpected { kind, id: id.clone() }),
    })
}

fn exporter_builder(config: &Config, id: &ComponentId) -> Result<ExporterBuilder, PlanError> {
    let kind = ComponentKind::Exporter;
    let name = id.to_string();
    let built = match id.type_name() {
        "otlp" => ExporterBuilder::otlp(&name, &downcast::<OtlpExporterConfig>(config, kind, id)?),
        "otlphttp" => ExporterBuilder::otlp_http(&name, &downcast::<OtlpHttpExporterConfig>(config, kind, id)?),
        "zipkin" => ExporterBuilder::zipkin(&name, &downcast::<ZipkinExporterConfig>(config, kind, id)?),
        "file" => ExporterBuilder::file(&name, &downcast::<FileExporterConfig>(config, kind, id)?),
        "debug" => ExporterBuilder::debug(&name, &downcast::<DebugExporterConfig>(config, kind, id)?),
        "blackhole" => Ok(ExporterBuilder::blackhole(&name)),
        _ => return Err(PlanError::Unexpected { kind, id: id.clone() }),
    };
    built.map_err(|source| PlanError::Exporter { id: id.clone(), source: Box::new(source) })
}

impl CollectorPlan {
    /// Whether any pipeline runs a plugin processor.
    #[must_use]
    pub fn has_plugin_stages(&self) -> bool {
        self.pipelines
            .iter()
            .flat_map(|pipeline| &pipeline.processors)
            .any(|(_, stage)| matches!(stage, StageBuilder::Plugin(_)))
    }

    /// The checks of [`CollectorPlan::new`] that need nothing outside the config — every
    /// processor prepared (attribute patterns compiled, rates checked), every route mapped — so
    /// `spanpipe validate` catches them without opening a file or reading the machine's memory.
    ///
    /// # Errors
    /// Every problem found, each naming its component.
    pub fn check(config: &Config) -> Result<(), Vec<PlanError>> {
        let mut errors = Vec::new();
        for (pipeline_id, pipeline) in &config.service.pipelines {
            for id in &pipeline.processors {
                if id.type_name() == PLUGIN {
                    // Checked by the loader (`ComponentConfig::validate`); the plugin itself may
                    // arrive later.
                    continue;
                }
                let processor = match processor_config(config, id) {
                    Ok(processor) => processor,
                    Err(error) => {
                        errors.push(error);
                        continue;
                    }
                };
                match &processor {
                    ProcessorConfig::MemoryLimiter(_) => continue,
                    ProcessorConfig::Routing(routing) => {
                        if let Err(error) = route_table(pipeline_id, id, routing, &pipeline.exporters) {
                            errors.push(error);
                        }
                    }
                    _ => {}
                }
                if let Err(source) = ProcessorBuilder::new(&processor) {
                    errors.push(PlanError::Processor { id: id.clone(), source: Box::new(source) });
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Prepares a loaded (and therefore validated) config: builds every processor and exporter
    /// builder, the memory limiters, and the maps from receivers to pipelines to exporters. Only
    /// exporters and pipelines that some pipeline uses are prepared.
    ///
    /// # Errors
    /// A [`PlanError`] naming the component.
    pub fn new(config: &Config) -> Result<Self, PlanError> {
        Self::new_reusing(config, None)
    }

    /// [`CollectorPlan::new`] for a reload: components whose settings did not change from
    /// `previous` (the running config and its plan) keep their prepared builders, so what they
    /// share across cores — an adaptive sampler's rate and watchdog factor, a memory limiter's
    /// measurements — carries over.
    ///
    /// # Errors
    /// A [`PlanError`] naming the component.
    pub fn new_reusing(config: &Config, previous: Option<(&Config, &Self)>) -> Result<Self, PlanError> {
        let unchanged = |kind: ComponentKind, id: &ComponentId| {
            previous
                .filter(|(old, _)| old.components(kind).unchanged_in(config.components(kind), id))
                .map(|(_, plan)| plan)
        };
        let mut exporters: IndexMap<ComponentId, ExporterBuilder> = IndexMap::new();
        let mut limiters: IndexMap<ComponentId, Arc<MemoryLimiter>> = IndexMap::new();
        let mut pipelines = Vec::new();
        for (pipeline_id, pipeline) in &config.service.pipelines {
            let mut exporter_indices = Vec::new();
            for id in &pipeline.exporters {
                if !exporters.contains_key(id) {
                    let kept = unchanged(ComponentKind::Exporter, id)
                        .and_then(|plan| plan.exporters.iter().find(|(old, _)| old == id))
                        .map(|(_, builder)| builder.clone());
                    let builder = match kept {
                        Some(builder) => builder,
                        None => exporter_builder(config, id)?,
                    };
                    exporters.insert(id.clone(), builder);
                }
                exporter_indices.push(exporters.get_index_of(id).unwrap_or_default());
            }
            let mut processors = Vec::new();
            let mut routes = RouteTable::default();
            let mut memory_limiter = None;
            let mut memory_limiter_id = None;
            for id in &pipeline.processors {
                if id.type_name() == PLUGIN {
                    let plugin: PluginProcessorConfig = downcast(config, ComponentKind::Processor, id)?;
                    processors.push((id.clone(), StageBuilder::Plugin(plugins::stage_config(id, &plugin))));
                    continue;
                }
                let processor = processor_config(config, id)?;
                match &processor {
                    ProcessorConfig::MemoryLimiter(limiter_config) => {
                        let kept = unchanged(ComponentKind::Processor, id).and_then(|plan| plan.memory_limiter(id));
                        if let (Some(limiter), false) = (kept, limiters.contains_key(id)) {
                            limiters.insert(id.clone(), limiter);
                        }
                        if !limiters.contains_key(id) {
                            let reader = Arc::new(ProcessMemory::new("/proc", "/sys/fs/cgroup"));
                            let limiter = limiter_config.build(reader).map_err(|source| PlanError::MemoryLimiter {
                                id: id.clone(),
                                source: Box::new(source),
                            })?;
                            limiters.insert(id.clone(), Arc::new(limiter));
                        }
                        memory_limiter = limiters.get(id).cloned();
                        memory_limiter_id = Some(id.clone());
                        continue;
                    }
                    ProcessorConfig::Routing(routing) => {
                        routes = route_table(pipeline_id, id, routing, &pipeline.exporters)?;
                    }
                    _ => {}
                }
                let kept = unchanged(ComponentKind::Processor, id).and_then(|plan| plan.stage(id));
                let stage = match kept {
                    Some(stage) => stage,
                    None => StageBuilder::Builtin(
                        ProcessorBuilder::new(&processor)
                            .map_err(|source| PlanError::Processor { id: id.clone(), source: Box::new(source) })?,
                    ),
                };
                processors.push((id.clone(), stage));
            }
            pipelines.push(PipelinePlan {
                id: pipeline_id.clone(),
                processors,
                exporters: exporter_indices,
                routes,
                memory_limiter,
                memory_limiter_id,
            });
        }
        let mut receivers: Vec<ReceiverPlan> = Vec::new();
        let mut sources: Vec<SourcePlan> = Vec::new();
        for (index, (_, pipeline)) in config.service.pipelines.iter().enumerate() {
            for id in &pipeline.receivers {
                if id.type_name() == PLUGIN {
                    match sources.iter_mut().find(|source| &source.id == id) {
                        Some(source) => source.pipelines.push(index),
                        None => {
                            let source: PluginReceiverConfig = downcast(config, ComponentKind::Receiver, id)?;
                            let config = plugins::source_config(id, &source);
                            sources.push(SourcePlan { id: id.clone(), config, pipelines: vec![index] });
                        }
                    }
                    continue;
                }
                match receivers.iter_mut().find(|receiver| &receiver.id == id) {
                    Some(receiver) => receiver.pipelines.push(index),
                    None => {
                        let receiver = ReceiverConfig::from_config(config, id)?;
                        // Read now so that `spanpipe validate` refuses certificate files that cannot be used.
                        receiver
                            .load_certificates()
                            .map_err(|source| PlanError::Receiver { id: id.clone(), source: Box::new(source) })?;
                        receivers.push(ReceiverPlan { id: id.clone(), config: receiver, pipelines: vec![index] });
                    }
                }
            }
        }
        Ok(Self { receivers, sources, pipelines, exporters: exporters.into_iter().collect() })
    }

    /// The adaptive samplers' rate handles by processor id, each once.
    #[must_use]
    pub fn adaptive_samplers(&self) -> Vec<(String, AdaptiveSamplerHandle)> {
        let mut samplers: Vec<(String, AdaptiveSamplerHandle)> = Vec::new();
        for (id, stage) in self.pipelines.iter().flat_map(|pipeline| &pipeline.processors) {
            if let Some(handle) = stage.adaptive_handle() {
                if !samplers.iter().any(|(known, _)| *known == id.to_string()) {
                    samplers.push((id.to_string(), handle.clone()));
                }
            }
        }
        samplers
    }

    /// The memory limiters, each once.
    #[must_use]
    pub fn memory_limiters(&self) -> Vec<Arc<MemoryLimiter>> {
        let mut limiters: Vec<Arc<MemoryLimiter>> = Vec::new();
        for limiter in self.pipelines.iter().filter_map(|pipeline| pipeline.memory_limiter.as_ref()) {
            if !limiters.iter().any(|known| Arc::ptr_eq(known, limiter)) {
                limiters.push(Arc::clone(limiter));
            }
        }
        limiters
    }

    /// The prepared stage of processor `id`, from whichever pipeline lists it (every pipeline
    /// shares one builder's shared state, such as an adaptive sampler's rate).
    fn stage(&self, id: &ComponentId) -> Option<StageBuilder> {
        self.pipelines
            .iter()
            .flat_map(|pipeline| &pipeline.processors)
            .find(|(stage_id, _)| stage_id == id)
            .map(|(_, stage)| stage.clone())
    }

    /// The memory limiter of processor `id`, if a pipeline uses it.
    fn memory_limiter(&self, id: &ComponentId) -> Option<Arc<MemoryLimiter>> {
        let config_id = |pipeline: &&PipelinePlan| pipeline.memory_limiter_id.as_ref() == Some(id);
        self.pipelines.iter().find(config_id).and_then(|pipeline| pipeline.memory_limiter.clone())
    }
}

/// Maps a routing processor's exporter names to positions in its pipeline's exporter list.
fn route_table(
    pipeline: &PipelineId,
    processor: &ComponentId,
    routing: &RoutingConfig,
    exporters: &[ComponentId],
) -> Result<RouteTable, PlanError> {
    let position = |name: &String| {
        exporters.iter().position(|id| id.to_string() == *name).ok_or_else(|| PlanError::RouteToUnlistedExporter {
            pipeline: pipeline.clone(),
            processor: processor.clone(),
            exporter: name.clone(),
        })
    };
    let table = routing
        .table
        .iter()
        .map(|entry| entry.exporters.iter().map(position).collect::<Result<Vec<_>, _>>())
        .collect::<Result<Vec<_>, _>>()?;
    let default = routing.default_exporters.iter().map(position).collect::<Result<Vec<_>, _>>()?;
    Ok(RouteTable { table, default })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_components_load_with_defaults_and_refuse_unknown_keys() {
        let registry = builtin_registry().unwrap();
        let yaml = "
receivers:
  plugin/heartbeat: {interval: 2s, config: {service: beat}}
processors:
  plugin/scrub:
    plugin: redact
    config: {keys: [user.email]}
    cpu_budget: 5ms
    breaker:
      failures: 2
exporters:
  blackhole:
service:
  pipelines:
    traces: {receivers: [plugin/heartbeat], processors: [plugin/scrub], exporters: [blackhole]}
";
        let (config, _) = spanpipe_config::load_str(yaml, &registry).unwrap_or_else(|errors| panic!("{errors}"));
        let scrub_id = ComponentId::parse("plugin/scrub").unwrap();
        let scrub = config.processors.config::<PluginProcessorConfig>(&scrub_id).unwrap();
        assert_eq!(scrub.common.plugin_name(&scrub_id), "redact");
        assert_eq!(scrub.common.config_json(), r#"{"keys":["user.email"]}"#);
        assert_eq!(scrub.cpu_budget, Some(spanpipe_config::GoDuration::from_millis(5)));
        assert_eq!(scrub.budget_strikes, 3);
        assert_eq!(scrub.common.breaker.failures, 2);
        assert_eq!(scrub.common.breaker.cool_down, spanpipe_config::GoDuration::from_secs(30));
        let beat_id = ComponentId::parse("plugin/heartbeat").unwrap();
        let beat = config.receivers.config::<PluginReceiverConfig>(&beat_id).unwrap();
        assert_eq!(beat.common.plugin_name(&beat_id), "heartbeat");
        assert_eq!(beat.interval, spanpipe_config::GoDuration::from_secs(2));

        let errors = spanpipe_config::load_str(&yaml.replace("cpu_budget: 5ms", "cpu_budgett: 5ms"), &registry)
            .expect_err("an unknown key is refused")
            .to_string();
        assert!(errors.contains("cpu_budgett"), "{errors}");
        let errors = spanpipe_config::load_str(&yaml.replace("failures: 2", "failures: 0"), &registry)
            .expect_err("no failures would never open")
            .to_string();
        assert!(errors.contains("breaker.failures") && errors.contains("at least 1"), "{errors}");
    }

    fn plan(yaml: &str) -> Result<CollectorPlan, PlanError> {
        let registry = builtin_registry().unwrap();
        let (config, _) = spanpipe_config::load_str(yaml, &registry).unwrap_or_else(|errors| panic!("{errors}"));
        CollectorPlan::new(&config)
    }

    const ROUTED: &str = "
receivers:
  otlp: {protocols: {http: {endpoint: 127.0.0.1:0}}}
processors:
  batch:
  memory_limiter: {check_interval: 1s, limit_mib: 4000}
  routing:
    from_attribute: tenant
    attribute_source: resource
    default_exporters: [debug]
    table:
      - {value: acme, exporters: [blackhole/acme]}
      - {value: both, exporters: [blackhole/acme, debug]}
exporters:
  debug:
  blackhole/acme:
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch, routing]
      exporters: [debug, blackhole/acme]
    traces/copy:
      receivers: [otlp]
      processors: [batch]
      exporters: [blackhole/acme]
";

    /// A `cors` section that does nothing as written is a warning of the config, found once when
    /// it is loaded (not logged by every core that binds the listener), with its place.
    #[test]
    fn cors_with_headers_but_no_origins_is_a_config_warning_for_every_http_receiver() {
        let registry = builtin_registry().unwrap();
        let text = "\
receivers:
  otlp:
    protocols:
      http:
        cors: {allowed_headers: [x-tenant]}
  zipkin:
    cors: {allowed_headers: [x-tenant]}
  jaeger:
    protocols:
      thrift_http:
        endpoint: localhost:14269
        cors: {allowed_headers: [x-tenant], allowed_origins: []}
      grpc:
exporters:
  blackhole:
service:
  pipelines:
    traces: {receivers: [otlp, zipkin, jaeger], exporters: [blackhole]}
";
        let (_, warnings) = spanpipe_config::load_str(text, &registry).unwrap_or_else(|errors| panic!("{errors}"));
        let seen: Vec<(String, Option<usize>)> =
            warnings.iter().map(|w| (w.path.clone(), w.location.map(|location| location.line))).collect();
        assert_eq!(
            seen,
            [
                ("receivers.otlp.protocols.http.cors".to_owned(), Some(5)),
                ("receivers.zipkin.cors".to_owned(), Some(7)),
                ("receivers.jaeger.protocols.thrift_http.cors".to_owned(), Some(12)),
            ]
        );
        assert!(warnings[0].to_string().contains("no allowed_origins, so CORS stays off"), "{}", warnings[0]);
    }

    #[test]
    fn the_embedded_default_config_listens_for_every_protocol_on_its_standard_port() {
        let registry = builtin_registry().unwrap();
        let (config, warnings) = spanpipe_config::load_str(spanpipe_config::DEFAULT_CONFIG, &registry)
            .unwrap_or_else(|errors| panic!("{errors}"));
        assert!(warnings.is_empty(), "{warnings:#?}");
        let plan = CollectorPlan::new(&config).unwrap();
        let mut ports: Vec<(String, u16)> = Vec::new();
        for receiver in &plan.receivers {
            let id = &receiver.id;
            let any = config.components(ComponentKind::Receiver).get(id).unwrap();
            let tcp = any.listen_addresses().into_iter().map(|(key, address)| (format!("{id}.{key}"), address.port()));
            let udp = any
                .datagram_listen_addresses()
                .into_iter()
                .map(|(key, address)| (format!("{id}.{key} (udp)"), address.port()));
            ports.extend(tcp.chain(udp));
        }
        ports.sort_by_key(|(_, port)| *port);
        let expected = [
            ("otlp.protocols.grpc.endpoint", 4317),
            ("otlp.protocols.http.endpoint", 4318),
            ("websocket.endpoint", 4319),
            ("jaeger.protocols.thrift_compact.endpoint (udp)", 6831),
            ("jaeger.protocols.thrift_binary.endpoint (udp)", 6832),
            ("zipkin.endpoint", 9411),
            ("jaeger.protocols.grpc.endpoint", 14250),
            ("jaeger.protocols.thrift_http.endpoint", 14268),
        ];
        assert_eq!(ports, expected.map(|(key, port)| (key.to_owned(), port)));
    }

    #[test]
    fn routes_map_to_positions_in_the_pipelines_exporters_and_exporters_are_shared() {
        let plan = plan(ROUTED).unwrap();
        assert_eq!(plan.exporters.len(), 2, "blackhole/acme is prepared once for both pipelines");
        let first = &plan.pipelines[0];
        assert_eq!(first.routes.table, vec![vec![1], vec![1, 0]]);
        assert_eq!(first.routes.default, vec![0]);
        assert!(first.memory_limiter.is_some());
        let ids: Vec<String> = first.processors.iter().map(|(id, _)| id.to_string()).collect();
        assert_eq!(ids, ["batch", "routing"], "the memory limiter guards receivers, it is not a stage");
        assert_eq!(plan.pipelines[1].exporters, vec![1]);
        assert_eq!(plan.receivers.len(), 1);
        assert_eq!(plan.receivers[0].pipelines, vec![0, 1]);
    }

    #[test]
    fn routing_to_an_exporter_the_pipeline_does_not_list_is_refused_by_name() {
        let yaml = ROUTED.replace("exporters: [debug, blackhole/acme]", "exporters: [debug]");
        let registry = builtin_registry().unwrap();
        let (config, _) = spanpipe_config::load_str(&yaml, &registry).unwrap();
        let checked = CollectorPlan::check(&config).unwrap_err();
        assert_eq!(checked.len(), 1, "{checked:?}");
        let error = plan(&yaml).unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, PlanError::RouteToUnlistedExporter { .. }), "{text}");
        assert!(text.contains("service.pipelines.traces") && text.contains("blackhole/acme"), "{text}");
    }
}
