//! Every receiver type spanpipe has, as one enum the plan and the cores hold, and the codecs each
//! is given.
//!
//! The transports know no codec crate but `spanpipe-codecs`' trait: each receiver is handed the
//! codecs it decodes with. That choice is made here, once per core: the shared content-type
//! registry (OTLP protobuf, OTLP/JSON, MessagePack) for the OTLP and WebSocket receivers, and for
//! Zipkin and Jaeger the codecs of their own crates, whose media types (`application/json`,
//! `application/x-protobuf`) would collide with OTLP's in a shared registry — they are chosen by
//! route instead.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use spanpipe_codecs::{Codec, CodecRegistry};
use spanpipe_config::{ComponentId, ComponentKind, Config};
use spanpipe_jaeger::{JaegerAgentBinary, JaegerAgentCompact, JaegerProto, JaegerThriftHttp};
use spanpipe_msgpack::OtlpMsgpack;
use spanpipe_transports::jaeger::{JaegerCodecs, JaegerReceiver, JaegerReceiverConfig};
use spanpipe_transports::otlp::{OtlpReceiver, OtlpReceiverConfig};
use spanpipe_transports::websocket::{WebSocketReceiver, WebSocketReceiverConfig};
use spanpipe_transports::zipkin::{ZipkinCodecs, ZipkinReceiver, ZipkinReceiverConfig};
use spanpipe_transports::{BoundReceiver, Protocol, ReceiverError, SpanSink};
use spanpipe_zipkin::{DecodeOptions, ZipkinV1Json, ZipkinV2Json, ZipkinV2Proto};

use crate::components::{downcast, PlanError};
use crate::plugins::PluginCodecs;
use spanpipe_plugins::PluginRegistry;

/// A receiver's config, by type (boxed: the configs differ much in size, and each is cloned once
/// per core).
#[derive(Clone, Debug)]
pub enum ReceiverConfig {
    /// `otlp`: OTLP/gRPC and OTLP/HTTP.
    Otlp(Box<OtlpReceiverConfig>),
    /// `zipkin`: Zipkin v2 JSON and protobuf, v1 JSON.
    Zipkin(Box<ZipkinReceiverConfig>),
    /// `jaeger`: Thrift over HTTP, compact and binary Thrift over UDP.
    Jaeger(Box<JaegerReceiverConfig>),
    /// `websocket`: OTLP messages over one long-lived connection.
    WebSocket(Box<WebSocketReceiverConfig>),
}

impl ReceiverConfig {
    /// The config of receiver `id`, typed by its type name.
    pub(crate) fn from_config(config: &Config, id: &ComponentId) -> Result<Self, PlanError> {
        let kind = ComponentKind::Receiver;
        Ok(match id.type_name() {
            "otlp" => Self::Otlp(Box::new(downcast(config, kind, id)?)),
            "zipkin" => Self::Zipkin(Box::new(downcast(config, kind, id)?)),
            "jaeger" => Self::Jaeger(Box::new(downcast(config, kind, id)?)),
            "websocket" => Self::WebSocket(Box::new(downcast(config, kind, id)?)),
            _ => return Err(PlanError::Unexpected { kind, id: id.clone() }),
        })
    }

    /// Reads the TLS certificates, keys and CAs the receiver will use, so that `spanpipe
    /// validate` refuses files that cannot be used.
    pub(crate) fn load_certificates(&self) -> Result<(), ReceiverError> {
        match self {
            Self::Otlp(config) => config.load_certificates(),
            Self::Zipkin(config) => config.load_certificates(),
            Self::Jaeger(config) => config.load_certificates(),
            Self::WebSocket(config) => config.load_certificates(),
        }
    }

    /// Makes the listener of `protocol` bind `address` (what the first core got, so that port 0
    /// works on every core).
    pub(crate) fn set_endpoint(&mut self, protocol: Protocol, address: SocketAddr) -> bool {
        match self {
            Self::Otlp(config) => config.set_endpoint(protocol, address),
            Self::Zipkin(config) => config.set_endpoint(protocol, address),
            Self::Jaeger(config) => config.set_endpoint(protocol, address),
            Self::WebSocket(config) => config.set_endpoint(protocol, address),
        }
    }

    /// Binds the receiver's listeners on the current core.
    pub(crate) fn bind<S: SpanSink + 'static>(
        &self,
        sink: Rc<S>,
        codecs: &ReceiverCodecs,
    ) -> Result<BoundReceiver<S>, ReceiverError> {
        match self {
            Self::Otlp(config) => OtlpReceiver::bind(config, sink, &codecs.registry),
            Self::WebSocket(config) => WebSocketReceiver::bind(config, sink, &codecs.registry),
            Self::Jaeger(config) => JaegerReceiver::bind(config, sink, &codecs.jaeger),
            Self::Zipkin(config) => {
                let options = DecodeOptions { parse_string_tags: config.parse_string_tags };
                let zipkin = ZipkinCodecs {
                    v2_json: Arc::new(ZipkinV2Json::new(options)),
                    v2_proto: Arc::new(ZipkinV2Proto::new(options)),
                    v1_json: Arc::new(ZipkinV1Json::new(options)),
                };
                ZipkinReceiver::bind(config, sink, &zipkin)
            }
        }
    }
}

/// The codecs a core's receivers decode with.
#[derive(Debug)]
pub(crate) struct ReceiverCodecs {
    /// By content type: `otlp_proto`, `otlp_json`, `msgpack`.
    registry: CodecRegistry,
    jaeger: JaegerCodecs,
}

impl ReceiverCodecs {
    /// The codecs of one core; codec plugins published in `plugins` serve the media types the
    /// built-in codecs do not, from the moment they are published.
    pub(crate) fn new(plugins: &Arc<PluginRegistry>) -> Self {
        let mut registry = codec_registry();
        registry.set_dynamic(Arc::new(PluginCodecs(Arc::clone(plugins))));
        Self {
            registry,
            jaeger: JaegerCodecs {
                grpc: Arc::new(JaegerProto),
                thrift_http: Arc::new(JaegerThriftHttp),
                thrift_compact: Arc::new(JaegerAgentCompact),
                thrift_binary: Arc::new(JaegerAgentBinary),
            },
        }
    }
}

/// The codecs OTLP/HTTP and WebSocket clients choose from by content type: the built-in OTLP
/// codecs and MessagePack.
#[must_use]
pub fn codec_registry() -> CodecRegistry {
    let mut registry = CodecRegistry::with_builtins();
    // The built-ins and msgpack have distinct names and media types; registering cannot clash.
    let registered = registry.register(Arc::new(OtlpMsgpack) as Arc<dyn Codec>);
    debug_assert!(registered.is_ok(), "{registered:?}");
    registry
}
