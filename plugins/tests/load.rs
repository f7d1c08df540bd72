//! Loading real plugin libraries: what passes, what is refused and why.

mod common;

use std::sync::Arc;

use common::{examples, examples_v2};
use spanpipe_plugins::{load, CompatibilityField, LoadError, PluginKind};

#[test]
fn loads_a_compatible_processor_and_reads_its_descriptor() {
    let state = tempfile::tempdir().unwrap();
    let plugin = load(&examples().redact, state.path()).unwrap();
    assert_eq!(plugin.name(), "redact");
    assert_eq!(plugin.version(), "1.0.0");
    assert_eq!(plugin.kind(), PluginKind::Processor);
    assert_eq!(plugin.path(), examples().redact.as_path());
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0, "the private copy is unlinked once mapped");
}

#[test]
fn loads_each_kind_with_its_entry_points() {
    let state = tempfile::tempdir().unwrap();
    let source = load(&examples().heartbeat, state.path()).unwrap();
    assert_eq!(source.kind(), PluginKind::Source);
    let codec = load(&examples().ndjson, state.path()).unwrap();
    assert_eq!(codec.kind(), PluginKind::Codec);
    assert_eq!(codec.content_types(), ["application/x-ndjson-spans"]);
}

#[test]
fn refuses_a_plugin_built_against_another_interface_naming_interface_hash() {
    let state = tempfile::tempdir().unwrap();
    let error = load(&examples().mismatched, state.path()).unwrap_err();
    assert_eq!(error.refused_field(), Some(CompatibilityField::InterfaceHash));
    let message = error.to_string();
    assert!(
        message.starts_with("plugin libspanpipe_example_mismatched.so refused: interface_hash differs (expected 0x"),
        "{message}"
    );
    assert!(message.contains(", found 0x"), "{message}");
}

#[test]
fn refuses_a_truncated_library_before_the_loader_maps_it() {
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("libtruncated.so");
    let bytes = std::fs::read(&examples().redact).unwrap();
    std::fs::write(&truncated, &bytes[..4096]).unwrap();
    match load(&truncated, &dir.path().join("state")) {
        Err(error @ LoadError::Truncated { size: 4096, .. }) => {
            assert!(
                error.to_string().starts_with("plugin libtruncated.so refused: it is truncated (4096 bytes"),
                "{error}"
            );
        }
        other => panic!("expected a truncated file to be refused, got {other:?}"),
    }
}

#[test]
fn refuses_a_file_that_is_not_a_library_with_the_loaders_message() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("libjunk.so");
    std::fs::write(&junk, b"#!/bin/sh\necho not a library\n").unwrap();
    match load(&junk, &dir.path().join("state")) {
        Err(LoadError::Open { file, message }) => {
            assert_eq!(file, "libjunk.so");
            assert!(
                message.contains("libjunk") || message.contains("ELF") || message.contains("too short"),
                "{message}"
            );
        }
        other => panic!("expected the loader to refuse it, got {other:?}"),
    }
}

#[test]
fn a_file_replaced_at_the_same_path_loads_as_the_new_version() {
    // dlopen would hand back the first library for the same path; the private copy prevents it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libredact.so");
    let state = dir.path().join("state");
    std::fs::copy(&examples().redact, &path).unwrap();
    let first = Arc::new(load(&path, &state).unwrap());
    std::fs::remove_file(&path).unwrap();
    std::fs::copy(&examples_v2().redact, &path).unwrap();
    let second = load(&path, &state).unwrap();
    assert_eq!((first.version(), second.version()), ("1.0.0", "2.0.0"));
}
