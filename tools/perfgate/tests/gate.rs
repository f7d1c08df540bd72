//! The gate end to end, in quick mode, against a baseline in a temporary directory (the committed
//! one is never touched): the unmodified runner passes against the baseline it just recorded, and
//! a runner built with spanpipe-benches' test-only `perfgate-slow-index` feature (the `index_build`
//! hot path does its work twice) fails it, with a table that shows the regression.
//!
//! Needs valgrind (tools/test installs it) and builds the runner in the release profile twice;
//! the second build recompiles only spanpipe-benches. Both steps are one test because the two
//! builds write the same `target/release/perfgate-runner`: each is copied away before the next.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the runner with `features` and copies it to `to`.
fn runner(features: &[&str], to: PathBuf) -> PathBuf {
    let built = perfgate::measure::build_runner(&workspace(), features).expect("perfgate-runner builds");
    std::fs::copy(&built, &to).expect("the runner can be copied");
    to
}

fn perfgate(baseline: &Path, runner: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_perfgate"))
        .arg("--quick")
        .arg("--baseline")
        .arg(baseline)
        .arg("--runner")
        .arg(runner)
        .args(extra)
        .output()
        .expect("perfgate runs")
}

fn text(output: &Output) -> String {
    format!("{}\n--- stderr ---\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// The table line of `benchmark`, split into its columns.
fn columns<'a>(stdout: &'a str, benchmark: &str) -> Vec<&'a str> {
    let line = stdout
        .lines()
        .find(|line| line.split_whitespace().next() == Some(benchmark))
        .unwrap_or_else(|| panic!("no table line for {benchmark} in:\n{stdout}"));
    line.split_whitespace().collect()
}

#[test]
fn slowed_index_build_fails_the_gate_that_the_unmodified_build_passes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let normal = runner(&[], dir.path().join("runner-normal"));
    let slow = runner(&["perfgate-slow-index"], dir.path().join("runner-slow"));
    let baseline = dir.path().join("baseline.json");

    let update = perfgate(&baseline, &normal, &["--update"]);
    assert!(update.status.success(), "update failed:\n{}", text(&update));
    let recorded = perfgate::baseline::Baseline::load(&baseline).expect("the recorded baseline loads");
    let figures = recorded.figures(perfgate::Mode::Quick).expect("quick figures recorded");
    let names: Vec<&str> = figures.instructions.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "batch_processor/100",
            "end_to_end/100",
            "index_build/100",
            "jaeger_binary_decode/100",
            "jaeger_compact_decode/100",
            "jaeger_proto_decode/100",
            "msgpack_decode/100",
            "otlp_json_decode/100",
            "reframe/100",
            "router_dispatch/100",
            "zipkin_json_decode/100"
        ]
    );
    assert!(recorded.figures(perfgate::Mode::Full).is_none(), "a quick update records only quick figures");

    let unmodified = perfgate(&baseline, &normal, &[]);
    let report = text(&unmodified);
    assert_eq!(unmodified.status.code(), Some(0), "the unmodified build must pass:\n{report}");
    assert!(report.contains("perfgate: passed (11 benchmarks within 3%)"), "{report}");
    // The same binary on the same input counts the same instructions, give or take the
    // allocator's randomised choices and the Jaeger protobuf decoder's process map, whose hash
    // is seeded at random per process (seen: 0.25% between runs): far less than any threshold.
    for name in &names {
        let change: f64 = columns(&report, name)[3].trim_end_matches('%').parse().expect("change is a percentage");
        assert!(change.abs() < 0.5, "{name} counted {change}% differently on a second run:\n{report}");
    }

    let slowed = perfgate(&baseline, &slow, &[]);
    let report = text(&slowed);
    assert_eq!(slowed.status.code(), Some(1), "the slowed build must fail the gate:\n{report}");
    let header = columns(&report, "benchmark");
    assert_eq!(header, ["benchmark", "before", "after", "change", "verdict"], "{report}");
    let index_build = columns(&report, "index_build/100");
    assert_eq!(index_build[4], "REGRESSED", "{report}");
    let change: f64 = index_build[3].trim_end_matches('%').parse().expect("change is a percentage");
    assert!(change > 50.0, "decoding twice should show as a large regression, got {change}%:\n{report}");
    for name in names.iter().filter(|name| !name.starts_with("index_build/")) {
        assert_eq!(columns(&report, name)[4], "ok", "{name} must be unaffected:\n{report}");
    }
    assert!(report.contains("perfgate: FAILED: index_build/100 beyond 3%"), "{report}");
}

#[test]
fn missing_baseline_fails_before_measuring_and_names_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let baseline = dir.path().join("absent.json");
    // The runner is never started: the baseline is read first.
    let output = perfgate(&baseline, Path::new("/nonexistent/runner"), &[]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("perfgate: cannot read baseline {}:", baseline.display())), "{stderr}");
}

#[test]
fn baseline_of_other_cases_is_refused_with_the_way_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let baseline = dir.path().join("baseline.json");
    std::fs::write(
        &baseline,
        r#"{"format": 1, "quick": {"rustc": "r", "valgrind": "v", "cases": [{"spans": 7, "iterations": 1}],
            "instructions": {"index_build/7": 10}}}"#,
    )
    .expect("writes");
    let output = perfgate(&baseline, Path::new("/nonexistent/runner"), &[]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("measured on other cases (7 spans x 1 iterations)"), "{stderr}");
    assert!(stderr.contains("record them again with `perfgate --quick --update`"), "{stderr}");
}
