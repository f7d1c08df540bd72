//! # spangen
//!
//! spanpipe's load generator: realistic traces sent over OTLP (gRPC, HTTP protobuf, HTTP JSON) at
//! a controlled rate, fast enough to saturate a collector from one core, with an exact check of
//! what the collector wrote out.
//!
//! How it stays cheap: traces are generated and encoded once per template with spanpipe-core's
//! span writer ([`template`]); a request is a copy of a template with its ids and times patched
//! in place at offsets found once. Ids are a keyed bijection of span numbers ([`ids`]), so they
//! are unique without bookkeeping, and the whole run is a function of the seed ([`plan`]).
//!
//! How it measures honestly: with `--rate`, requests follow a fixed timetable and latency runs
//! from each request's scheduled time, so a collector that falls behind shows up as latency
//! rather than as a quietly reduced load ([`load`]).
//!
//! How it checks: `--verify` reads a file exporter's OTLP/JSON lines and reports acknowledged
//! spans that are missing, duplicated or altered ([`verify`]).
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

use std::time::{Duration, Instant};

pub use cli::Args;
pub use report::Report;

use crate::client::{Protocol, Target};
use crate::load::{Bound, LoadSettings, Pace};
use crate::plan::Plan;
use crate::template::BodyFormat;

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
    let format = if args.protocol == Protocol::HttpJson { BodyFormat::Json } else { BodyFormat::Protobuf };
    let plan = Plan::new(&profile, args.seed, args.batch_size, args.templates, args.count, format)?;
    let target = Target::new(args.protocol, args.compression, &args.endpoint(), args.tls, args.ca_file.as_deref())?;
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
    let load = format!(
        "{load}, {} × {} in flight, profile {} over {} ({} compression)",
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
