//! The `file` exporter: the OpenTelemetry Collector's file exporter format and keys.
//!
//! Format, as the Collector writes it:
//! - `format: json` without compression: one OTLP/JSON `ExportTraceServiceRequest` per line;
//! - `format: proto`: each request's protobuf bytes behind a 4-byte big-endian length;
//! - `compression: zstd` (either format): each request compressed on its own, behind the same
//!   4-byte length.
//!
//! Why a dedicated writer thread and not glommio's file API: one file is shared by every core's
//! instance (the Collector writes one file per exporter, not one per core), so the writes must be
//! serialised somewhere; rotation needs `rename`, `readdir` and `unlink`, which glommio does not
//! offer, and glommio's DMA files want aligned writes that a line-oriented format does not make.
//! So each configured `file` exporter owns one thread that encodes (OTLP/JSON encoding is the
//! expensive part, and it leaves the data-plane cores), compresses, frames and writes. Cores hand
//! it batches through a bounded channel: `try_send` on a full channel refuses the batch, which
//! pushes back to the receivers like any full queue.
//!
//! Every record carries its core's counters, so the thread credits each core with what it wrote
//! or dropped and per-core statistics still add up.

mod output;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spanpipe_codecs::Codec as _;
use spanpipe_config::{ComponentConfig, FieldError, GoDuration};
use spanpipe_core::SpanBatch;

pub use output::{backup_name, backups, OutputFile, RotationPolicy};

use crate::compression::compress;
use crate::settings::Compression;
use crate::stats::{DropReason, ExporterStats};
use crate::{BuildError, FlushReport, SendError};

/// Batches waiting for the writer thread, from all cores together. At the Collector's usual
/// batch sizes this is a few seconds of a busy pipeline; beyond it, receivers are pushed back.
pub const FILE_QUEUE_BATCHES: usize = 256;

/// `format` of the `file` exporter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// OTLP/JSON, one request per line.
    #[default]
    Json,
    /// OTLP protobuf, length-prefixed.
    Proto,
}

/// `compression` of the `file` exporter: none, or `zstd` per record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileCompression {
    /// No compression (the Collector spells it as an empty string).
    #[default]
    #[serde(rename = "", alias = "none")]
    None,
    /// Zstandard, each record on its own.
    Zstd,
}

/// `rotation` of the `file` exporter: rotate by size, as the Collector's `timberjack` does.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RotationConfig {
    /// Size in MiB after which the file is rotated; 0 means 100 as in the Collector. Defaults
    /// to 100.
    pub max_megabytes: u64,
    /// Days a backup is kept (by the time in its name); 0 keeps backups whatever their age.
    /// Defaults to 0.
    pub max_days: u64,
    /// Backups kept; 0 keeps all. Defaults to 100.
    pub max_backups: usize,
    /// Name backups in local time instead of UTC. Defaults to false.
    pub localtime: bool,
}

impl Default for RotationConfig {
    fn default() -> Self {
        Self { max_megabytes: 100, max_days: 0, max_backups: 100, localtime: false }
    }
}

/// Config of the `file` exporter.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FileExporterConfig {
    /// File to write to. Required. Defaults to empty.
    pub path: String,
    /// Append to an existing file instead of truncating it (not with `rotation` or
    /// `compression`). Defaults to false.
    pub append: bool,
    /// Size-based rotation; absent means none. Defaults to none.
    pub rotation: Option<RotationConfig>,
    /// `json` or `proto`. Defaults to json.
    pub format: FileFormat,
    /// `zstd` or none. Defaults to none.
    pub compression: FileCompression,
    /// How often buffered records are written out; 0 means 1s as in the Collector. Defaults to
    /// 1s.
    pub flush_interval: GoDuration,
    /// Create the file's directory if it does not exist. Defaults to false.
    pub create_directory: bool,
}

impl Default for FileExporterConfig {
    fn default() -> Self {
        Self {
            path: String::new(),
            append: false,
            rotation: None,
            format: FileFormat::Json,
            compression: FileCompression::None,
            flush_interval: GoDuration::from_secs(1),
            create_directory: false,
        }
    }
}

impl ComponentConfig for FileExporterConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.path.is_empty() {
            errors.push(FieldError::new("path", "must be set to the file to write"));
        }
        if self.append && self.compression != FileCompression::None {
            errors.push(FieldError::new("append", "cannot be combined with `compression`"));
        }
        if self.append && self.rotation.is_some() {
            errors.push(FieldError::new("append", "cannot be combined with `rotation`"));
        }
        errors
    }
}

impl FileExporterConfig {
    fn rotation_policy(&self) -> Option<RotationPolicy> {
        self.rotation.as_ref().map(|rotation| {
            let megabytes = if rotation.max_megabytes == 0 { 100 } else { rotation.max_megabytes };
            RotationPolicy {
                max_bytes: megabytes.saturating_mul(1024 * 1024),
                max_backups: rotation.max_backups,
                max_age: (rotation.max_days > 0).then(|| Duration::from_secs(rotation.max_days.saturating_mul(86_400))),
                local_time: rotation.localtime,
            }
        })
    }

    fn flush_every(&self) -> Duration {
        if self.flush_interval.0.is_zero() {
            Duration::from_secs(1)
        } else {
            self.flush_interval.0
        }
    }
}

/// The counters and shutdown state of one core's instance, shared with the writer thread.
#[derive(Debug, Default)]
struct CoreShare {
    stats: Arc<ExporterStats>,
    /// Spans of this core waiting in the channel.
    queued_spans: AtomicU64,
    /// Set when the core's flush deadline passed: the writer drops its remaining records.
    abandoned: AtomicBool,
}

/// What travels to the writer thread: a batch to write, or (with `flushed` set and an empty
/// batch) a request to flush everything sent before it and say so.
struct Record {
    batch: SpanBatch,
    core: Arc<CoreShare>,
    flushed: Option<Arc<AtomicBool>>,
}

/// One `file` exporter's writer thread and the way to reach it; clone it for every core.
#[derive(Clone, Debug)]
pub struct FileExporterBuilder {
    name: String,
    records: Sender<Record>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record").field("spans", &self.batch.len()).field("flush", &self.flushed.is_some()).finish()
    }
}

impl FileExporterBuilder {
    /// Opens the file and starts the writer thread. The thread ends, after writing everything
    /// it was given, when the builder and every instance are dropped.
    ///
    /// # Errors
    /// An invalid config, a file or directory that cannot be opened or created, or a thread that
    /// cannot be started.
    pub fn start(name: &str, config: &FileExporterConfig) -> Result<Self, BuildError> {
        let errors = config.validate();
        if !errors.is_empty() {
            return Err(BuildError::Invalid { name: name.to_owned(), errors });
        }
        let path = PathBuf::from(&config.path);
        let file_error = |source| BuildError::File { name: name.to_owned(), path: path.clone(), source };
        if config.create_directory {
            if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(file_error)?;
            }
        }
        let output = OutputFile::open(&path, config.append, config.rotation_policy()).map_err(file_error)?;
        let (records, receiver) = crossbeam_channel::bounded(FILE_QUEUE_BATCHES);
        let writer = Writer {
            name: name.to_owned(),
            path,
            output,
            format: config.format,
            compression: config.compression,
            flush_every: config.flush_every(),
        };
        std::thread::Builder::new()
            .name(format!("spanpipe-file-{name}"))
            .spawn(move || writer.run(&receiver))
            .map_err(|source| BuildError::Thread { name: name.to_owned(), source })?;
        Ok(Self { name: name.to_owned(), records })
    }

    /// The instance for one core.
    #[must_use]
    pub fn instance(&self) -> FileExporter {
        FileExporter { name: self.name.clone(), records: self.records.clone(), core: Arc::new(CoreShare::default()) }
    }
}

/// One core's handle on a `file` exporter.
#[derive(Debug)]
pub struct FileExporter {
    name: String,
    records: Sender<Record>,
    core: Arc<CoreShare>,
}

impl FileExporter {
    /// Hands `batch` to the writer thread without waiting.
    ///
    /// # Errors
    /// [`SendError::Full`] when the writer is behind by [`FILE_QUEUE_BATCHES`] batches,
    /// [`SendError::Closed`] after a flush gave up on its deadline, or if the writer has stopped.
    pub fn try_send(&self, batch: SpanBatch) -> Result<(), SendError> {
        self.push(batch).inspect_err(|error| {
            if let SendError::Full(batch) = error {
                self.core.stats.refused(batch);
            }
        })
    }

    /// Hands `batch` to the writer thread, waiting while the channel is full (checking every
    /// millisecond: the writer is another thread, which cannot wake a glommio task directly).
    ///
    /// # Errors
    /// [`SendError::Closed`] after a flush gave up on its deadline, or if the writer has stopped.
    pub async fn send(&self, mut batch: SpanBatch) -> Result<(), SendError> {
        loop {
            match self.push(batch) {
                Err(SendError::Full(back)) => batch = back,
                other => return other,
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
    }

    fn push(&self, batch: SpanBatch) -> Result<(), SendError> {
        if self.core.abandoned.load(Ordering::Relaxed) {
            return Err(SendError::Closed(batch));
        }
        let spans = batch.len() as u64;
        match self.records.try_send(Record { batch, core: Arc::clone(&self.core), flushed: None }) {
            Ok(()) => {
                self.core.stats.enqueued();
                self.core.queued_spans.fetch_add(spans, Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Full(record)) => Err(SendError::Full(record.batch)),
            Err(TrySendError::Disconnected(record)) => Err(SendError::Closed(record.batch)),
        }
    }

    /// This instance's counters.
    #[must_use]
    pub fn stats(&self) -> &Arc<ExporterStats> {
        &self.core.stats
    }

    /// Waits until the writer has written (and flushed to the kernel) everything this core sent,
    /// or until `deadline`; what is still waiting then is dropped and reported. Runs on a glommio
    /// executor and polls the writer's progress every millisecond rather than block the core.
    pub async fn flush(&self, deadline: Instant) -> FlushReport {
        let done = Arc::new(AtomicBool::new(false));
        let mut marker =
            Record { batch: SpanBatch::empty(), core: Arc::clone(&self.core), flushed: Some(Arc::clone(&done)) };
        let poll = Duration::from_millis(1);
        while Instant::now() < deadline {
            match self.records.try_send(marker) {
                Ok(()) => {
                    while Instant::now() < deadline && !done.load(Ordering::Acquire) {
                        glommio::timer::sleep(poll).await;
                    }
                    break;
                }
                Err(TrySendError::Full(back)) => {
                    marker = back;
                    glommio::timer::sleep(poll).await;
                }
                Err(TrySendError::Disconnected(_)) => break,
            }
        }
        if done.load(Ordering::Acquire) {
            return FlushReport::default();
        }
        self.core.abandoned.store(true, Ordering::Relaxed);
        let report = FlushReport {
            undelivered_batches: self.core.stats.snapshot().queue_depth,
            undelivered_spans: self.core.queued_spans.load(Ordering::Relaxed),
        };
        tracing::warn!(
            exporter = %self.name, batches = report.undelivered_batches, spans = report.undelivered_spans,
            "the file writer did not catch up by the shutdown deadline; dropping what is left"
        );
        report
    }
}

/// The writer thread's state.
struct Writer {
    name: String,
    path: PathBuf,
    output: OutputFile,
    format: FileFormat,
    compression: FileCompression,
    flush_every: Duration,
}

impl Writer {
    fn run(mut self, records: &Receiver<Record>) {
        let mut next_flush = Instant::now() + self.flush_every;
        loop {
            match records.recv_timeout(next_flush.saturating_duration_since(Instant::now())) {
                Ok(Record { flushed: Some(done), .. }) => {
                    self.flush();
                    done.store(true, Ordering::Release);
                }
                Ok(Record { batch, core, flushed: None }) => self.write(&batch, &core),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.flush();
                    return;
                }
            }
            if Instant::now() >= next_flush {
                self.flush();
                next_flush = Instant::now() + self.flush_every;
            }
        }
    }

    fn flush(&mut self) {
        if let Err(error) = self.output.flush() {
            tracing::error!(exporter = %self.name, path = %self.path.display(), %error, "flushing the output file failed");
        }
    }

    fn write(&mut self, batch: &SpanBatch, core: &CoreShare) {
        core.stats.dequeued();
        core.queued_spans.fetch_sub(batch.len() as u64, Ordering::Relaxed);
        if core.abandoned.load(Ordering::Relaxed) {
            core.stats.dropped(DropReason::Shutdown, batch.len());
            return;
        }
        let record = match encode_record(batch, self.format, self.compression) {
            Ok(record) => record,
            Err(error) => {
                tracing::error!(exporter = %self.name, %error, "dropping a batch that cannot be encoded");
                core.stats.dropped(DropReason::Encode, batch.len());
                return;
            }
        };
        core.stats.attempt_started();
        let started = Instant::now();
        let written = self.output.write_record(&record, SystemTime::now());
        core.stats.attempt_finished(started.elapsed());
        match written {
            Ok(()) => core.stats.delivered(batch, record.len()),
            Err(error) => {
                tracing::error!(exporter = %self.name, path = %self.path.display(), %error, "writing a batch failed");
                core.stats.dropped(DropReason::Write, batch.len());
            }
        }
    }
}

/// Why a batch could not become a file record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// OTLP/JSON encoding failed.
    #[error(transparent)]
    Codec(#[from] spanpipe_codecs::CodecError),
    /// zstd failed.
    #[error(transparent)]
    Compression(#[from] crate::compression::CompressionError),
    /// The record is too large for a 4-byte length.
    #[error("a record of {0} bytes does not fit a 4-byte length prefix")]
    TooLarge(usize),
}

/// One batch as the Collector's file exporter writes it (see the module docs).
///
/// # Errors
/// When encoding or compressing fails, or the record is over 4 GiB.
pub fn encode_record(
    batch: &SpanBatch,
    format: FileFormat,
    compression: FileCompression,
) -> Result<Vec<u8>, RecordError> {
    let encoded: Bytes = match format {
        FileFormat::Json => spanpipe_codecs::OtlpJson.encode(batch)?,
        FileFormat::Proto => batch.bytes().clone(),
    };
    if format == FileFormat::Json && compression == FileCompression::None {
        let mut line = Vec::with_capacity(encoded.len() + 1);
        line.extend_from_slice(&encoded);
        line.push(b'\n');
        return Ok(line);
    }
    let payload = match compression {
        FileCompression::None => encoded,
        FileCompression::Zstd => compress(Compression::Zstd, 0, &encoded)?,
    };
    let len = u32::try_from(payload.len()).map_err(|_| RecordError::TooLarge(payload.len()))?;
    let mut record = Vec::with_capacity(payload.len() + 4);
    record.extend_from_slice(&len.to_be_bytes());
    record.extend_from_slice(&payload);
    Ok(record)
}

/// Splits a length-prefixed file (`format: proto`, or any format with `compression: zstd`) into
/// its records; `None` if the file is cut short. For readers and tests.
#[must_use]
pub fn split_length_prefixed(mut data: &[u8]) -> Option<Vec<&[u8]>> {
    let mut records = Vec::new();
    while !data.is_empty() {
        let (len, rest) = data.split_first_chunk::<4>()?;
        let len = u32::from_be_bytes(*len) as usize;
        let (record, rest) = rest.split_at_checked(len)?;
        records.push(record);
        data = rest;
    }
    Some(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> SpanBatch {
        SpanBatch::decode(Bytes::from(spanpipe_testkit::realistic::encoded(3, 4))).unwrap()
    }

    #[test]
    fn json_records_are_lines_and_the_others_are_length_prefixed() {
        let batch = batch();
        let line = encode_record(&batch, FileFormat::Json, FileCompression::None).unwrap();
        assert_eq!(line.last(), Some(&b'\n'));
        assert!(!line[..line.len() - 1].contains(&b'\n'));

        let proto = encode_record(&batch, FileFormat::Proto, FileCompression::None).unwrap();
        assert_eq!(split_length_prefixed(&proto).unwrap(), [batch.bytes().as_ref()]);

        let zstd = encode_record(&batch, FileFormat::Json, FileCompression::Zstd).unwrap();
        let records = split_length_prefixed(&zstd).unwrap();
        let json = crate::compression::decompress(Compression::Zstd, records[0], 1 << 20).unwrap();
        assert_eq!(json, &line[..line.len() - 1]);
    }

    #[test]
    fn a_cut_file_is_detected() {
        let proto = encode_record(&batch(), FileFormat::Proto, FileCompression::None).unwrap();
        assert!(split_length_prefixed(&proto[..proto.len() - 1]).is_none());
    }

    #[test]
    fn validation_follows_the_collector() {
        let paths = |config: FileExporterConfig| -> Vec<String> {
            config.validate().into_iter().map(|error| error.path).collect()
        };
        assert_eq!(paths(FileExporterConfig::default()), ["path"]);
        let both = FileExporterConfig {
            path: "out.json".into(),
            append: true,
            rotation: Some(RotationConfig::default()),
            compression: FileCompression::Zstd,
            ..FileExporterConfig::default()
        };
        assert_eq!(paths(both), ["append", "append"]);
    }

    #[test]
    fn empty_compression_string_means_none() {
        let config: FileExporterConfig = serde_json::from_str(r#"{"path":"x","compression":""}"#).unwrap();
        assert_eq!(config.compression, FileCompression::None);
        let zstd: FileExporterConfig = serde_json::from_str(r#"{"path":"x","compression":"zstd"}"#).unwrap();
        assert_eq!(zstd.compression, FileCompression::Zstd);
    }
}
