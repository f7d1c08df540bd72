//! The `file` exporter writes what the Collector's file exporter writes, read back with
//! independent decoders: serde_json into opentelemetry-proto's serde types for JSON lines, prost
//! for length-prefixed protobuf, the zstd crate for compressed records. Also: two cores sharing
//! one file, size-based rotation with timberjack's backup names, and the other local exporters.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use spanpipe_config::GoDuration;
use spanpipe_exporters::{
    backups, split_length_prefixed, DebugExporterConfig, ExporterBuilder, FileCompression, FileExporterConfig,
    FileFormat, RotationConfig, Verbosity,
};
use support::{batch, on_glommio};

const WAIT: Duration = Duration::from_secs(10);

fn file_config(path: &Path) -> FileExporterConfig {
    FileExporterConfig { path: path.display().to_string(), ..FileExporterConfig::default() }
}

fn decoded(bytes: &[u8]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(bytes).expect("valid protobuf")
}

/// Sends `batches` through one instance on a glommio executor and flushes it.
fn export_all(builder: &ExporterBuilder, batches: Vec<spanpipe_core::SpanBatch>) {
    let builder = builder.clone();
    on_glommio(move || async move {
        let exporter = builder.build().unwrap();
        let count = batches.len() as u64;
        for batch in batches {
            exporter.send(batch).await.unwrap();
        }
        assert_eq!(exporter.flush(Instant::now() + WAIT).await, Default::default());
        assert_eq!(exporter.stats().snapshot().batches_sent, count);
    });
}

#[test]
fn json_lines_read_back_with_serde_equal_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces.json");
    let builder = ExporterBuilder::file("file", &file_config(&path)).unwrap();
    let sent: Vec<_> = (0..5).map(|seed| batch(1 + seed as usize * 7, seed)).collect();
    export_all(&builder, sent.clone());

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), sent.len(), "one request per line");
    for (line, batch) in lines.iter().zip(&sent) {
        let read_back: ExportTraceServiceRequest = serde_json::from_str(line).expect("opentelemetry-proto reads it");
        assert_eq!(read_back, decoded(batch.bytes()));
    }
}

#[test]
fn two_cores_share_one_file_without_mixing_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces.json");
    let builder = ExporterBuilder::file("file", &file_config(&path)).unwrap();
    let cores: Vec<_> = (0..2u64)
        .map(|core| {
            let builder = builder.clone();
            std::thread::spawn(move || export_all(&builder, (0..20).map(|i| batch(3, core * 100 + i)).collect()))
        })
        .collect();
    for core in cores {
        core.join().unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let mut got: Vec<_> = text
        .lines()
        .map(|line| serde_json::from_str::<ExportTraceServiceRequest>(line).unwrap().encode_to_vec())
        .collect();
    let mut expected: Vec<_> = (0..2u64)
        .flat_map(|core| (0..20).map(move |i| decoded(batch(3, core * 100 + i).bytes()).encode_to_vec()))
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn proto_format_is_length_prefixed_and_zstd_compresses_each_record() {
    let dir = tempfile::tempdir().unwrap();
    let sent: Vec<_> = (0..4).map(|seed| batch(10, seed)).collect();

    let proto = dir.path().join("traces.pb");
    let config = FileExporterConfig { format: FileFormat::Proto, ..file_config(&proto) };
    export_all(&ExporterBuilder::file("file/proto", &config).unwrap(), sent.clone());
    let data = std::fs::read(&proto).unwrap();
    let records = split_length_prefixed(&data).expect("whole records");
    assert_eq!(records, sent.iter().map(|batch| batch.bytes().as_ref()).collect::<Vec<_>>());

    let zstd_json = dir.path().join("traces.json.zst");
    let config = FileExporterConfig { compression: FileCompression::Zstd, ..file_config(&zstd_json) };
    export_all(&ExporterBuilder::file("file/zstd", &config).unwrap(), sent.clone());
    let data = std::fs::read(&zstd_json).unwrap();
    let records = split_length_prefixed(&data).expect("whole records");
    assert_eq!(records.len(), sent.len());
    for (record, batch) in records.into_iter().zip(&sent) {
        let json = zstd::decode_all(record).expect("each record is a zstd frame");
        let read_back: ExportTraceServiceRequest = serde_json::from_slice(&json).unwrap();
        assert_eq!(read_back, decoded(batch.bytes()));
    }
}

#[test]
fn rotates_by_size_into_timberjack_named_backups_losing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces.pb");
    let config = FileExporterConfig {
        format: FileFormat::Proto,
        rotation: Some(RotationConfig { max_megabytes: 1, max_backups: 10, ..RotationConfig::default() }),
        flush_interval: GoDuration::from_millis(10),
        ..file_config(&path)
    };
    let sent: Vec<_> = (0..12).map(|seed| batch(400, seed)).collect();
    let total: usize = sent.iter().map(|batch| batch.encoded_len() + 4).sum();
    assert!(total > 2 * 1024 * 1024, "enough data for at least two rotations ({total} bytes)");
    export_all(&ExporterBuilder::file("file", &config).unwrap(), sent.clone());

    let mut files: Vec<_> = backups(&path, false).unwrap().into_iter().map(|(_, backup)| backup).collect();
    assert!(files.len() >= 2, "{files:?}");
    for backup in &files {
        let name = backup.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("traces-") && name.ends_with("-size.pb"), "{name}");
        assert!(std::fs::metadata(backup).unwrap().len() <= 1024 * 1024);
    }
    files.reverse(); // oldest first
    files.push(path.clone());
    let mut records = Vec::new();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        records
            .extend(split_length_prefixed(&data).expect("no record is split across files").iter().map(|r| r.to_vec()));
    }
    assert_eq!(records, sent.iter().map(|batch| batch.bytes().to_vec()).collect::<Vec<_>>(), "every batch, in order");
}

#[test]
fn refuses_invalid_configs_naming_the_key() {
    let error = ExporterBuilder::file("file", &FileExporterConfig::default()).unwrap_err();
    assert!(error.to_string().contains("path"), "{error}");
    let missing_dir = FileExporterConfig {
        path: "/nonexistent-spanpipe-dir/traces.json".to_owned(),
        ..FileExporterConfig::default()
    };
    let error = ExporterBuilder::file("file", &missing_dir).unwrap_err();
    assert!(error.to_string().contains("/nonexistent-spanpipe-dir/traces.json"), "{error}");
}

#[test]
fn create_directory_makes_the_parent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/traces.json");
    let config = FileExporterConfig { create_directory: true, ..file_config(&path) };
    export_all(&ExporterBuilder::file("file", &config).unwrap(), vec![batch(1, 1)]);
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
}

#[test]
fn debug_and_blackhole_count_what_they_take() {
    let debug = ExporterBuilder::debug(
        "debug",
        &DebugExporterConfig { verbosity: Verbosity::Detailed, ..DebugExporterConfig::default() },
    )
    .unwrap();
    let blackhole = ExporterBuilder::blackhole("blackhole");
    on_glommio(move || async move {
        for builder in [debug, blackhole] {
            let exporter = builder.build().unwrap();
            for seed in 0..3 {
                exporter.try_send(batch(4, seed)).unwrap();
            }
            let stats = exporter.stats().snapshot();
            assert_eq!((stats.batches_sent, stats.spans_sent), (3, 12), "{}", exporter.name());
            assert_eq!(exporter.flush(Instant::now()).await, Default::default());
        }
    });
}
