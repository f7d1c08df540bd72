//! # spangen
//!
//! spanpipe's load generator: realistic traces sent at a controlled rate over every protocol
//! spanpipe receives, fast enough to saturate a collector from one core, with an exact check of
//! what the collector wrote out.
//!
//! | `--protocol` | what is sent | default endpoint | counts as acknowledged |
//! |---|---|---|---|
//! | `grpc` | OTLP `TraceService/Export` over HTTP/2 | 127.0.0.1:4317 | `grpc-status` 0, less `partial_success` |
//! | `http-protobuf`, `http-json` | OTLP/HTTP `POST /v1/traces` | 127.0.0.1:4318 | 2xx, less `partial_success` |
//! | `http-msgpack` | OTLP/HTTP with `application/msgpack` bodies (`spanpipe_msgpack`) | 127.0.0.1:4318 | 2xx, less the MessagePack `partialSuccess` |
//! | `zipkin-json`, `zipkin-proto` | Zipkin v2 `POST /api/v2/spans` (`spanpipe_zipkin`) | 127.0.0.1:9411 | 2xx (spanpipe answers 202) |
//! | `jaeger-compact`, `jaeger-binary` | Jaeger agent `emitBatch` UDP datagrams, one process each, ≤ 65,000 bytes (`spanpipe_jaeger`) | 127.0.0.1:6831, :6832 | *sent*: UDP has no answer |
//! | `jaeger-http` | Jaeger collector `POST /api/traces`, one binary Thrift `Batch` per process | 127.0.0.1:14268 | 2xx for every process's body |
//! | `jaeger-grpc` | Jaeger collector gRPC `CollectorService/PostSpans`, one protobuf `PostSpansRequest` (spans of later processes carry theirs) | 127.0.0.1:14250 | `grpc-status` 0 |
//! | `websocket` | OTLP over one long-lived WebSocket per `--connections`, binary (protobuf) or, with `--encoding json`, text (OTLP/JSON) messages | 127.0.0.1:4319 (`/v1/traces/ws`) | an acknowledgement that accepted the message, less its `rejected` |
//!
//! 429/503 (and gRPC's and WebSocket's `RESOURCE_EXHAUSTED`/`UNAVAILABLE`) are retried after
//! the delay the server asks for (`Retry-After`, `RetryInfo`, `retry_after_ms`), a WebSocket
//! closed with 1013 (Try Again Later) is reopened after a pause, and all are counted by status
//! in the report. A request of several messages (Jaeger: one per process or datagram) is
//! acknowledged when all of them are.
//!
//! How it stays cheap: traces are generated and encoded once per template with spanpipe-core's
//! span writer ([`template`]); a request is a copy of a template with its ids and times patched
//! in place at offsets found once. Ids are a keyed bijection of span numbers ([`ids`]), so they
//! are unique without bookkeeping, and the whole run is a function of the seed ([`plan`]).
//! OTLP bodies (gRPC, OTLP/HTTP, WebSocket) go out as patched; the other protocols encode each
//! patched batch with their codec ([`wire`] says why patching them in place is not worth it).
//! What that costs, measured on the 2-core development machine (release build, `--max`, default
//! profile, 100 spans per request; spans per CPU-second of spangen itself, user + system, which
//! is what one core sends when the collector keeps up):
//!
//! | protocol | spans per CPU-second | requests per CPU-second |
//! |---|---|---|
//! | `websocket` | 3.0 M | 30 k |
//! | `grpc` | 2.4 M | 24 k |
//! | `http-protobuf` | 2.2 M | 22 k |
//! | `websocket --encoding json` | 1.9 M | 19 k |
//! | `http-json` | 1.6 M | 16 k |
//! | `http-msgpack` | 0.83 M | 8.3 k |
//! | `jaeger-binary` (to a socket that does not read) | 0.70 M | 7.0 k (34 k datagrams) |
//! | `jaeger-compact` (likewise) | 0.63 M | 6.3 k (31 k datagrams) |
//! | `zipkin-proto` | 0.51 M | 5.1 k |
//! | `jaeger-http` | 0.49 M | 4.9 k (24 k bodies) |
//! | `zipkin-json` | 0.44 M | 4.4 k |
//!
//! UDP needs a rate: datagrams have no flow control, so beyond what the collector reads they
//! are lost — in the kernel's receive buffer when it is full, or refused by a full pipeline —
//! and the sender cannot tell. Use `--rate` within the collector's capacity; `--verify` then
//! proves nothing was lost, and otherwise reports the lost spans as missing (the collector
//! counts the same losses in `spanpipe_receiver_kernel_drops_total` and its refused requests).
//!
//! How it measures honestly: with `--rate`, requests follow a fixed timetable and latency runs
//! from each request's scheduled time, so a collector that falls behind shows up as latency
//! rather than as a quietly reduced load ([`load`]).
//!
//! How it checks: `--verify` reads a file exporter's OTLP/JSON lines and reports acknowledged
//! spans that are missing, duplicated or altered ([`verify`]). For the UDP protocols,
//! "acknowledged" means "sent". A span is compared with its form after the protocol's own
//! encoder and decoder — Zipkin has no links, makes attributes strings and keeps only the resource
//! attributes the semantic conventions name on the resource, Jaeger has no INTERNAL kind — so a
//! protocol's mapping is not mistaken for damage, and anything else still is.
//!
//! The library is what the binary runs and what end-to-end tests drive directly.

pub mod cli;
pub mod client;
pub mod ids;
pub mod load;
pub mod plan;
pub mod profile;
pub mod report;
pub mod template;
pub mod verify;
pub mod websocket;
pub mod wire;

use std::time::{Duration, Instant};

pub use cli::Args;
pub use report::Report;

use crate::client::{Protocol, Target};
use crate::load::{Bound, LoadSettings, Pace};
use crate::plan::Plan;

/// Why a run could not be carried out (request failures are not errors: they are in the report).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Flags that do not fit together.
    #[error("{0}")]
    Arguments(String),
    /// The templates could not be built.
    #[error(transparent)]
    Template(#[from] template::TemplateError),
    /// The endpoint or TLS settings are unusable.
    #[error(transparent)]
    Client(#[from] client::ClientError),
    /// The load could not start.
    #[error(transparent)]
    Load(#[from] load::LoadError),
    /// The file to verify could not be read.
    #[error(transparent)]
    Verify(#[from] verify::VerifyError),
}

/// A finished run: its report, and what is needed to check an exporter's file again later.
#[derive(Debug)]
pub struct Finished {
    /// The report.
    pub report: Report,
    /// The run's requests.
    pub plan: Plan,
    /// Which of them were acknowledged.
    pub acknowledged: verify::Acknowledged,
}

/// Runs spangen as the command line describes.
///
/// # Errors
/// [`Error`] when the run cannot start or the verify file cannot be read.
pub fn run(args: &Args) -> Result<Finished, Error> {
    args.validate().map_err(Error::Arguments)?;
    let profile = args.profile().map_err(Error::Arguments)?;
    let wire = args.protocol.wire(args.encoding);
    let plan = Plan::new(&profile, args.seed, args.batch_size, args.templates, args.count, wire)?;
    let target = Target::new(args.protocol, args.compression, &args.endpoint(), args.tls, args.ca_file.as_deref())?
        .with_encoding(args.encoding);
    let (pace, load) = match args.rate {
        Some(spans_per_second) => {
            (Pace::Rate { spans_per_second, ramp_up: args.ramp_up }, format!("open loop at {spans_per_second} spans/s"))
        }
        None => (Pace::Max, "closed loop (--max)".to_owned()),
    };
    let bound = match args.count {
        Some(_) => Bound::Count,
        None => Bound::Duration(args.duration.unwrap_or(Duration::from_secs(10))),
    };
    let settings = LoadSettings {
        target,
        connections: args.connections,
        in_flight: args.in_flight,
        pace,
        bound,
        max_retries: args.max_retries,
        progress: !args.no_progress && !args.json,
    };
    let result = load::run(&plan, &settings)?;
    let verify = match &args.verify {
        Some(path) => Some(verify_until_complete(path, &plan, &result.acknowledged, args.verify_timeout)?),
        None => None,
    };
    let encoding = match args.protocol {
        Protocol::Websocket => format!(", {} messages", flag_value(args.encoding)),
        _ => String::new(),
    };
    let load = format!(
        "{load}, {} × {} in flight, profile {} over {}{encoding} ({} compression)",
        args.connections,
        args.in_flight,
        flag_value(args.profile),
        flag_value(args.protocol),
        flag_value(args.compression)
    );
    let report = Report::new(load, &result, verify);
    Ok(Finished { report, plan, acknowledged: result.acknowledged })
}

/// How a value is spelled on the command line.
fn flag_value(value: impl clap::ValueEnum) -> String {
    value.to_possible_value().map(|possible| possible.get_name().to_owned()).unwrap_or_default()
}

/// The collector may still be flushing when the load ends: checks again until nothing is missing
/// or `timeout` has passed, and returns the last findings.
fn verify_until_complete(
    path: &std::path::Path,
    plan: &Plan,
    acknowledged: &verify::Acknowledged,
    timeout: Duration,
) -> Result<verify::VerifyReport, Error> {
    let deadline = Instant::now() + timeout;
    loop {
        let report = match verify::verify(path, plan, acknowledged) {
            Ok(report) => report,
            Err(error) if Instant::now() < deadline && error.is_not_found() => {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        if report.missing == 0 || Instant::now() >= deadline {
            return Ok(report);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
