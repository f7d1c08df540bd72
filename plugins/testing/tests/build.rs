//! The examples build into loadable shared libraries.

#[test]
fn every_example_is_built_as_a_shared_library() {
    let plugins = spanpipe_plugin_testing::shared_examples();
    for path in plugins.paths() {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        #[cfg(target_os = "linux")]
        assert!(bytes.starts_with(b"\x7fELF"), "{} is not an ELF file", path.display());
        assert!(!bytes.is_empty());
    }
    let names: Vec<_> =
        plugins.paths().iter().map(|p| p.file_name().and_then(|n| n.to_str()).unwrap_or("").to_owned()).collect();
    #[cfg(target_os = "linux")]
    assert_eq!(names[0], "libspanpipe_example_redact.so");
    assert!(names.iter().all(|name| name.contains("spanpipe_example_")), "{names:?}");
    assert!(std::ptr::eq(plugins, spanpipe_plugin_testing::shared_examples()), "built once per process");
}
