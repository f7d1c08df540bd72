//! Replays the committed fuzz corpus through the checks the fuzz targets run, on stable Rust.

use std::path::PathBuf;

#[test]
fn every_corpus_file_passes_its_target_checks() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for (target, check) in spanpipe_fuzz_checks::TARGETS {
        let dir = root.join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {} missing: {e}", dir.display()))
            .map(|entry| entry.expect("readable corpus entry").path())
            .collect();
        files.sort();
        assert!(files.len() >= 5, "corpus {} has only {} files", dir.display(), files.len());
        for file in files {
            let data = std::fs::read(&file).expect("readable corpus file");
            // A panic names the file, so a failure can be reproduced with the fuzz target.
            let result = std::panic::catch_unwind(|| check(&data));
            assert!(result.is_ok(), "{target}: {} fails its check", file.display());
        }
    }
}
