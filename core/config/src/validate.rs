//! The checks a schema cannot make, run on the whole loaded config so that every problem is
//! reported at once: pipelines and their references, unused components (warnings, as the
//! Collector ignores them), each component's own `validate()`, ports bound twice, and the
//! `service` settings.

use std::net::SocketAddr;

use crate::component_id::{ComponentId, ComponentKind};
use crate::endpoint::{listen_addresses_conflict, listen_host};
use crate::error::{ConfigError, ConfigErrorKind, Location, Warning, WarningKind};
use crate::load::Defined;
use crate::model::{split_host_port, Config, MetricsLevel};
use crate::path::{locate_segments, split_relative, Path, Segment};
use crate::yaml::Node;

/// Runs every check; errors and warnings are appended.
pub(crate) fn validate(
    config: &Config,
    defined: &Defined,
    root: &Node,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<Warning>,
) {
    let mut checks = Checks { config, defined, root, errors, warnings };
    checks.pipelines();
    checks.unused_components();
    checks.components();
    checks.listen_addresses();
    checks.service();
}

struct Checks<'a> {
    config: &'a Config,
    defined: &'a Defined,
    root: &'a Node,
    errors: &'a mut Vec<ConfigError>,
    warnings: &'a mut Vec<Warning>,
}

impl Checks<'_> {
    fn error(&mut self, path: &Path<'_>, kind: ConfigErrorKind) {
        self.errors.push(ConfigError::new(path.to_string(), Some(path.locate(self.root)), kind));
    }

    fn pipelines(&mut self) {
        let top = Path::Root;
        let service = top.key("service");
        let pipelines = service.key("pipelines");
        if self.defined.pipelines == Some(0) {
            self.error(&pipelines, ConfigErrorKind::NoPipelines);
        }
        for (id, pipeline) in &self.config.service.pipelines {
            let id = id.to_string();
            let path = pipelines.key(&id);
            if pipeline.receivers.is_empty() {
                self.error(&path.key("receivers"), ConfigErrorKind::NoReceivers);
            }
            if pipeline.exporters.is_empty() {
                self.error(&path.key("exporters"), ConfigErrorKind::NoExporters);
            }
            for kind in [ComponentKind::Receiver, ComponentKind::Processor, ComponentKind::Exporter] {
                self.references(kind, pipeline.components(kind), &path.key(kind.section()));
            }
        }
        self.references(ComponentKind::Extension, &self.config.service.extensions, &service.key("extensions"));
    }

    /// Each id in a list must be configured, and listed once.
    fn references(&mut self, kind: ComponentKind, ids: &[ComponentId], path: &Path<'_>) {
        for (index, id) in ids.iter().enumerate() {
            let item = path.index(index);
            if ids[..index].contains(id) {
                self.error(&item, ConfigErrorKind::DuplicateReference { kind, id: id.clone() });
            } else if !self.defined.contains(kind, id) {
                self.error(&item, ConfigErrorKind::UndefinedComponent { kind, id: id.clone() });
            }
        }
    }

    /// Whether a component will start: listed by a pipeline, or an extension listed in
    /// `service.extensions`.
    fn is_used(&self, kind: ComponentKind, id: &ComponentId) -> bool {
        match kind {
            ComponentKind::Extension => self.config.service.extensions.contains(id),
            _ => self.config.service.pipelines.values().any(|pipeline| pipeline.components(kind).contains(id)),
        }
    }

    /// Components no pipeline uses. One that failed to load is already reported as an error.
    fn unused_components(&mut self) {
        for kind in ComponentKind::ALL {
            for (id, key) in self.defined.ids(kind) {
                if self.config.components(kind).contains(id) && !self.is_used(kind, id) {
                    let top = Path::Root;
                    let section = top.key(kind.section());
                    let path = section.key(key);
                    self.warnings.push(Warning {
                        path: path.to_string(),
                        location: Some(path.locate(self.root)),
                        kind: WarningKind::UnusedComponent { kind, id: id.clone() },
                    });
                }
            }
        }
    }

    /// The key a component is written under (its id, possibly with spaces the id dropped).
    fn written_key(&self, kind: ComponentKind, id: &ComponentId) -> String {
        self.defined.ids(kind).find(|(defined, _)| defined == id).map_or_else(|| id.to_string(), |(_, key)| key.clone())
    }

    /// The full path and location of a key a component reports relative to itself.
    fn component_key(&self, kind: ComponentKind, id: &ComponentId, relative: &str) -> (String, Location) {
        let key = self.written_key(kind, id);
        let mut segments = vec![Segment::Key(kind.section()), Segment::Key(&key)];
        segments.extend(split_relative(relative));
        let location = locate_segments(self.root, &segments);
        let separator = if relative.is_empty() || relative.starts_with('[') { "" } else { "." };
        (format!("{}.{key}{separator}{relative}", kind.section()), location)
    }

    /// Each component's own checks and warnings, for every configured component as the
    /// Collector does.
    fn components(&mut self) {
        for kind in ComponentKind::ALL {
            for (id, config) in self.config.components(kind).iter() {
                for field_error in config.validate() {
                    let (path, location) = self.component_key(kind, id, &field_error.path);
                    let kind = ConfigErrorKind::Component { message: field_error.message };
                    self.errors.push(ConfigError::new(path, Some(location), kind));
                }
                for note in config.warnings() {
                    let (path, location) = self.component_key(kind, id, &note.path);
                    let kind = WarningKind::Component { message: note.message };
                    self.warnings.push(Warning { path, location: Some(location), kind });
                }
            }
        }
    }

    /// Two components that start must not bind one port (TCP and UDP counted apart: they may
    /// share a number). Components that do not start bind nothing, so they are left out.
    fn listen_addresses(&mut self) {
        let mut bound: Vec<(String, Location, SocketAddr)> = Vec::new();
        let mut datagram: Vec<(String, Location, SocketAddr)> = Vec::new();
        for kind in ComponentKind::ALL {
            for (id, config) in self.config.components(kind).iter() {
                if self.is_used(kind, id) {
                    for (relative, address) in config.listen_addresses() {
                        let (path, location) = self.component_key(kind, id, &relative);
                        bound.push((path, location, address));
                    }
                    for (relative, address) in config.datagram_listen_addresses() {
                        let (path, location) = self.component_key(kind, id, &relative);
                        datagram.push((path, location, address));
                    }
                }
            }
        }
        let top = Path::Root;
        let metrics = top.key("service");
        let metrics = metrics.key("telemetry");
        let metrics = metrics.key("metrics");
        for endpoint in self.config.service.telemetry.metrics.endpoints() {
            // A host name cannot be compared without a lookup; the runtime reports a clash.
            if let Ok(ip) = listen_host(&endpoint.host) {
                let mut segments = vec![Segment::Key("service"), Segment::Key("telemetry"), Segment::Key("metrics")];
                segments.extend(split_relative(&endpoint.path));
                let location = locate_segments(self.root, &segments);
                bound.push((format!("{metrics}.{}", endpoint.path), location, SocketAddr::new(ip, endpoint.port)));
            }
        }
        self.address_conflicts(&bound);
        self.address_conflicts(&datagram);
    }

    /// Refuses each address of `bound` that conflicts with an earlier one.
    fn address_conflicts(&mut self, bound: &[(String, Location, SocketAddr)]) {
        for (index, (path, location, address)) in bound.iter().enumerate() {
            let earlier = bound[..index].iter().find(|(_, _, other)| listen_addresses_conflict(*address, *other));
            if let Some((other_path, _, other_address)) = earlier {
                let kind = ConfigErrorKind::ListenAddressConflict {
                    address: *address,
                    other_path: other_path.clone(),
                    other_address: *other_address,
                };
                self.errors.push(ConfigError::new(path.clone(), Some(*location), kind));
            }
        }
    }

    fn service(&mut self) {
        let service = &self.config.service;
        let top = Path::Root;
        let service_path = top.key("service");
        if service.cores == Some(0) {
            let message = "must be at least 1; leave `cores` out to use every core the process may use".to_owned();
            self.error(&service_path.key("cores"), ConfigErrorKind::Service { message });
        }
        if service.shutdown_timeout.0.is_zero() {
            let message = "must be more than 0s: shutdown needs time to drain queues and flush exporters".to_owned();
            self.error(&service_path.key("shutdown_timeout"), ConfigErrorKind::Service { message });
        }
        // The health log crate's bounds, repeated here because the config crate knows no component.
        if !(1024..=1 << 30).contains(&service.health_log.size) {
            let message = format!("{} is out of range: from 1024 bytes to 1 GiB", service.health_log.size);
            self.error(&service_path.key("health_log").key("size"), ConfigErrorKind::Service { message });
        }
        let cpu = &service.watchdog.cpu;
        let watchdog_path = service_path.key("watchdog");
        let cpu_path = watchdog_path.key("cpu");
        let mut cpu_errors = Vec::new();
        if !(cpu.low > 0.0 && cpu.low < cpu.high && cpu.high <= 1.0) {
            cpu_errors.push(("high", format!("need 0 < low ({}) < high ({}) <= 1", cpu.low, cpu.high)));
        }
        for (key, value) in [("interval", cpu.interval), ("high_for", cpu.high_for), ("low_for", cpu.low_for)] {
            if value.0.is_zero() {
                cpu_errors.push((key, "must be more than 0s".to_owned()));
            }
        }
        let descending = cpu.steps.windows(2).all(|pair| pair[1] < pair[0]);
        if cpu.steps.first() != Some(&1.0) || !descending || cpu.steps.last().is_some_and(|floor| *floor <= 0.0) {
            cpu_errors
                .push(("steps", format!("{:?}: must start at 1 and go down strictly to a floor above 0", cpu.steps)));
        }
        for (key, message) in cpu_errors {
            self.error(&cpu_path.key(key), ConfigErrorKind::Service { message });
        }
        let memory = &service.watchdog.memory;
        let memory_path = watchdog_path.key("memory");
        let mut memory_errors = Vec::new();
        if !(memory.restore_below > 0.0 && memory.restore_below < memory.soft_limit && memory.soft_limit <= 1.0) {
            let message =
                format!("need 0 < restore_below ({}) < soft_limit ({}) <= 1", memory.restore_below, memory.soft_limit);
            memory_errors.push(("soft_limit", message));
        }
        for (key, value) in [("interval", memory.interval), ("retry_after", memory.retry_after)] {
            if value.0.is_zero() {
                memory_errors.push((key, "must be more than 0s".to_owned()));
            }
        }
        for (key, message) in memory_errors {
            self.error(&memory_path.key(key), ConfigErrorKind::Service { message });
        }
        let metrics = &service.telemetry.metrics;
        let telemetry = service_path.key("telemetry");
        let metrics_path = telemetry.key("metrics");
        if let Some(address) = &metrics.address {
            let message = if metrics.readers.is_some() {
                Some("set either `address` or `readers`, not both".to_owned())
            } else if split_host_port(address).is_none() {
                Some(format!("`{address}` is not `host:port` (for example `0.0.0.0:8888`)"))
            } else {
                None
            };
            if let Some(message) = message {
                self.error(&metrics_path.key("address"), ConfigErrorKind::Service { message });
            }
        }
        if metrics.level != MetricsLevel::None && metrics.readers.as_ref().is_some_and(Vec::is_empty) {
            let message = "no metric reader while `level` is not `none`: add a reader or set `level: none`".to_owned();
            self.error(&metrics_path.key("readers"), ConfigErrorKind::Service { message });
        }
    }
}
