//! The plugin host watching a directory: files are loaded once complete, replaced versions
//! published, removed plugins retired.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use common::{examples, examples_v2, wait_for, Recorded};
use spanpipe_plugins::{CompatibilityField, LoadError, PluginEvent, PluginHost, PluginHostConfig};

const LIMIT: Duration = Duration::from_secs(20);

fn host(recorded: &Recorded, dir: &std::path::Path, state: &std::path::Path) -> PluginHost {
    let config = PluginHostConfig {
        dir: dir.to_path_buf(),
        state_dir: Some(state.to_path_buf()),
        settle: Duration::from_millis(150),
    };
    PluginHost::start(config, Arc::clone(&recorded.registry)).unwrap()
}

fn version_of(recorded: &Recorded, name: &str) -> Option<String> {
    recorded.registry.current(name)?.plugin.map(|plugin| plugin.version().to_owned())
}

#[test]
fn loads_what_is_there_at_start_and_refuses_an_incompatible_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    std::fs::copy(&examples().redact, dir.path().join("libredact.so")).unwrap();
    std::fs::copy(&examples().mismatched, dir.path().join("libmismatched.so")).unwrap();
    std::fs::write(dir.path().join("README.txt"), "not a plugin").unwrap();
    let recorded = Recorded::new();
    let _host = host(&recorded, dir.path(), state.path());
    assert_eq!(version_of(&recorded, "redact").as_deref(), Some("1.0.0"), "loaded before start returns");
    assert_eq!(recorded.registry.names(), ["redact"]);
    let refusals: Vec<LoadError> = recorded
        .events()
        .into_iter()
        .filter_map(|event| match event {
            PluginEvent::Refused { error, .. } => Some(error),
            _ => None,
        })
        .collect();
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0].refused_field(), Some(CompatibilityField::InterfaceHash));
}

#[test]
fn a_file_copied_slowly_is_loaded_only_once_complete_and_retired_when_removed() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let recorded = Recorded::new();
    let _host = host(&recorded, dir.path(), state.path());
    let bytes = std::fs::read(&examples().redact).unwrap();
    let path = dir.path().join("libredact.so");
    {
        // A copy in progress: one open file, written in chunks with pauses longer than the
        // settle period.
        let mut file = std::fs::File::create(&path).unwrap();
        for chunk in bytes.chunks(bytes.len().div_ceil(6)) {
            file.write_all(chunk).unwrap();
            file.flush().unwrap();
            std::thread::sleep(Duration::from_millis(250));
            assert_eq!(recorded.registry.current("redact").map(|published| published.generation), None);
        }
    }
    assert!(wait_for(LIMIT, || version_of(&recorded, "redact").is_some()), "loaded after the copy completed");
    assert_eq!(recorded.count(|event| matches!(event, PluginEvent::Refused { .. })), 0, "no attempt on a partial file");
    // The event follows the publication: wait for it too.
    assert!(wait_for(LIMIT, || recorded.count(|event| matches!(event, PluginEvent::Loaded { .. })) == 1));

    std::fs::remove_file(&path).unwrap();
    assert!(wait_for(LIMIT, || recorded
        .registry
        .current("redact")
        .is_some_and(|published| published.plugin.is_none())));
    assert!(recorded.registry.names().is_empty());
    assert!(wait_for(LIMIT, || {
        recorded.count(|event| matches!(event, PluginEvent::Retired { name, .. } if name == "redact")) == 1
    }));
}

#[test]
fn a_new_version_moved_over_the_old_file_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let staging = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    std::fs::copy(&examples().redact, dir.path().join("libredact.so")).unwrap();
    let recorded = Recorded::new();
    let _host = host(&recorded, dir.path(), state.path());
    let first = recorded.registry.generation("redact");
    // The recommended way to install: copy beside, then rename into the directory.
    let staged = staging.path().join("libredact.so");
    std::fs::copy(&examples_v2().redact, &staged).unwrap();
    if std::fs::rename(&staged, dir.path().join("libredact.so")).is_err() {
        // Different file systems: copy next to the target, then rename within the directory.
        let beside = dir.path().join(".libredact.so.tmp");
        std::fs::copy(&staged, &beside).unwrap();
        std::fs::rename(&beside, dir.path().join("libredact.so")).unwrap();
    }
    assert!(wait_for(LIMIT, || version_of(&recorded, "redact").as_deref() == Some("2.0.0")));
    assert!(recorded.registry.generation("redact") > first);
}
