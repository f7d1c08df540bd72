//! Building `perfgate-runner` and counting its instructions under callgrind.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use crate::Case;

/// The runner's binary target, in the `spanpipe-benches` package.
pub const RUNNER: &str = "perfgate-runner";

/// The package that holds the runner and the hot paths.
pub const RUNNER_PACKAGE: &str = "spanpipe-benches";

/// The function callgrind counts: the runner's loop of measured iterations.
pub const MEASURED_FUNCTION: &str = "perfgate_runner::measured";

/// Why a measurement could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// A program could not be started at all.
    #[error("cannot run `{program}`: {source}{hint}")]
    Spawn {
        /// The program.
        program: String,
        /// What the system said.
        source: std::io::Error,
        /// How to get it, when it is likely not installed.
        hint: &'static str,
    },
    /// A program ran and failed.
    #[error("`{command}` failed ({status}):\n{stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The end of what it wrote to stderr.
        stderr: String,
    },
    /// cargo built, but its report names no runner binary.
    #[error("`cargo build` reported no `{RUNNER}` executable")]
    NoExecutable,
    /// callgrind's log has no `Collected` total (the measured function never ran, or valgrind's
    /// output changed).
    #[error("callgrind reported no instruction count for `{benchmark}`; its log ends with:\n{log}")]
    NoCount {
        /// The benchmark.
        benchmark: String,
        /// The end of callgrind's log.
        log: String,
    },
}

/// The last lines of a program's output, enough to see why it failed.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn display(command: &Command) -> String {
    let mut line = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs `command` to completion; a failure to start or a non-zero exit is an error.
fn run(mut command: Command, hint: &'static str) -> Result<Output, MeasureError> {
    let output = command.output().map_err(|source| MeasureError::Spawn {
        program: command.get_program().to_string_lossy().into_owned(),
        source,
        hint,
    })?;
    if output.status.success() {
        Ok(output)
    } else {
        // A program whose stderr was not captured (cargo) has printed its messages already.
        let stderr =
            if output.stderr.is_empty() { "(see its messages above)".to_owned() } else { tail(&output.stderr) };
        Err(MeasureError::Failed { command: display(&command), status: output.status, stderr })
    }
}

/// The first line of `program --version`-like output.
fn first_line(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).lines().next().unwrap_or_default().trim().to_owned()
}

/// The cargo to build with: the one that runs perfgate (`cargo run` sets `CARGO`), or `cargo`.
#[must_use]
pub fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Builds the runner in the release profile (so the counts are those of shipped code), with
/// `features` of spanpipe-benches enabled, and returns the path of the executable. Cargo's
/// diagnostics go to perfgate's stderr as they come.
///
/// # Errors
/// [`MeasureError`] when cargo cannot be run, the build fails, or cargo names no executable.
pub fn build_runner(workspace: &Path, features: &[&str]) -> Result<PathBuf, MeasureError> {
    let mut command = Command::new(cargo());
    command.current_dir(workspace).args([
        "build",
        "--release",
        "--locked",
        "--package",
        RUNNER_PACKAGE,
        "--bin",
        RUNNER,
        "--message-format=json-render-diagnostics",
    ]);
    if !features.is_empty() {
        command.arg("--features").arg(features.join(","));
    }
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_for_its_child) {
            command.env_remove(name);
        }
    }
    command.stderr(std::process::Stdio::inherit());
    let output = run(command, "")?;
    executable_from_messages(&String::from_utf8_lossy(&output.stdout)).ok_or(MeasureError::NoExecutable)
}

/// Whether `name` is one of the variables cargo sets for a program it runs (`cargo run`, a test),
/// describing that program's own package. Passed on to the runner's build, they would be taken
/// for a change of environment (ring's build script, for one, depends on `CARGO_MANIFEST_DIR`)
/// and rebuild half the dependency tree, instead of reusing what `cargo build` made.
fn set_by_cargo_for_its_child(name: &str) -> bool {
    const EXACT: [&str; 7] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    EXACT.contains(&name) || name.starts_with("CARGO_PKG_") || name.starts_with("CARGO_BIN_")
}

/// The runner's path in cargo's JSON messages (`compiler-artifact` of the runner target).
fn executable_from_messages(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact" && message["target"]["name"] == RUNNER)
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
}

/// `rustc -V`: the compiler that builds the runner, recorded beside the figures.
///
/// # Errors
/// [`MeasureError`] when rustc cannot be run.
pub fn rustc_version(workspace: &Path) -> Result<String, MeasureError> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let mut command = Command::new(rustc);
    command.current_dir(workspace).arg("-V");
    Ok(first_line(&run(command, "")?))
}

/// callgrind, through a given `valgrind` executable.
#[derive(Clone, Debug)]
pub struct Callgrind {
    valgrind: PathBuf,
}

const VALGRIND_HINT: &str = " (install valgrind: apt-get install valgrind)";

impl Callgrind {
    /// Uses the valgrind at `valgrind` (a path, or a name looked up in `PATH`).
    #[must_use]
    pub fn new(valgrind: PathBuf) -> Self {
        Self { valgrind }
    }

    /// `valgrind --version`, which also checks that valgrind runs at all.
    ///
    /// # Errors
    /// [`MeasureError`] when valgrind is missing or fails.
    pub fn version(&self) -> Result<String, MeasureError> {
        let mut command = Command::new(&self.valgrind);
        command.arg("--version");
        Ok(first_line(&run(command, VALGRIND_HINT)?))
    }

    /// Instructions per iteration of `hot_path` on `case`: callgrind counts only inside
    /// [`MEASURED_FUNCTION`], and the total is divided by the iteration count, rounded.
    ///
    /// # Errors
    /// [`MeasureError`] when valgrind or the runner fails or callgrind reports no total.
    pub fn instructions_per_iteration(&self, runner: &Path, hot_path: &str, case: Case) -> Result<u64, MeasureError> {
        let mut command = Command::new(&self.valgrind);
        command
            .args([
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                "--collect-atstart=no",
                &format!("--toggle-collect={MEASURED_FUNCTION}"),
            ])
            .arg(runner)
            .args([hot_path, &case.spans.to_string(), &case.iterations.to_string()]);
        let output = run(command, VALGRIND_HINT)?;
        let log = String::from_utf8_lossy(&output.stderr);
        let total = collected(&log).ok_or_else(|| MeasureError::NoCount {
            benchmark: crate::benchmark_name(hot_path, case),
            log: tail(&output.stderr),
        })?;
        let iterations = case.iterations.max(1) as u64;
        Ok((total + iterations / 2) / iterations)
    }

    /// Measures every hot path on every case, `jobs` valgrind processes at a time, and returns
    /// `(benchmark name, instructions per iteration)` in hot path order, then case order.
    /// `progress` is called as each one is done.
    ///
    /// # Errors
    /// The first [`MeasureError`] any measurement hit.
    pub fn measure_all(
        &self,
        runner: &Path,
        hot_paths: &[String],
        cases: &[Case],
        jobs: usize,
        progress: &(dyn Fn(&str, u64) + Sync),
    ) -> Result<Vec<(String, u64)>, MeasureError> {
        let work: Vec<(&str, Case)> =
            hot_paths.iter().flat_map(|path| cases.iter().map(move |case| (path.as_str(), *case))).collect();
        let next = Mutex::new(0usize);
        let results: Mutex<Vec<Option<Result<u64, MeasureError>>>> = Mutex::new(work.iter().map(|_| None).collect());
        std::thread::scope(|scope| {
            for _ in 0..jobs.clamp(1, work.len().max(1)) {
                scope.spawn(|| loop {
                    let index = {
                        let mut next = next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        let index = *next;
                        *next += 1;
                        index
                    };
                    let Some(&(hot_path, case)) = work.get(index) else { return };
                    let result = self.instructions_per_iteration(runner, hot_path, case);
                    if let Ok(count) = &result {
                        progress(&crate::benchmark_name(hot_path, case), *count);
                    }
                    results.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[index] = Some(result);
                });
            }
        });
        let results = results.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        work.iter()
            .zip(results)
            .map(|(&(hot_path, case), result)| {
                let count = result.expect("every work item is taken by a worker")?;
                Ok((crate::benchmark_name(hot_path, case), count))
            })
            .collect()
    }
}

/// The hot paths the runner knows (`perfgate-runner --list`).
///
/// # Errors
/// [`MeasureError`] when the runner cannot be run or fails.
pub fn hot_paths(runner: &Path) -> Result<Vec<String>, MeasureError> {
    let mut command = Command::new(runner);
    command.arg("--list");
    let output = run(command, "")?;
    Ok(String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).filter(|line| !line.is_empty()).collect())
}

/// The total of callgrind's `Collected : <n>` line.
fn collected(log: &str) -> Option<u64> {
    log.lines()
        .filter_map(|line| line.split_once("Collected :"))
        .filter_map(|(_, count)| count.trim().parse().ok())
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collected_total_is_read_from_callgrind_log() {
        let log = "==41== Callgrind, a call-graph generating cache profiler\n\
                   ==41== Events    : Ir\n\
                   ==41== Collected : 123456789\n\
                   ==41== \n\
                   ==41== I   refs:      123,456,789\n";
        assert_eq!(collected(log), Some(123_456_789));
        assert_eq!(collected("==41== I   refs:      0\n"), None);
        assert_eq!(collected("==41== Collected : lots\n"), None);
    }

    #[test]
    fn runner_path_is_read_from_cargo_messages() {
        let messages = r#"{"reason":"compiler-artifact","target":{"name":"spanpipe_benches"},"executable":null}
{"reason":"compiler-message","message":{}}
{"reason":"compiler-artifact","target":{"name":"perfgate-runner"},"executable":"/t/release/perfgate-runner"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(executable_from_messages(messages), Some(PathBuf::from("/t/release/perfgate-runner")));
        assert_eq!(executable_from_messages(r#"{"reason":"build-finished","success":true}"#), None);
    }

    #[test]
    fn only_the_variables_cargo_sets_for_its_child_are_removed() {
        for name in
            ["CARGO_MANIFEST_DIR", "CARGO_PKG_NAME", "CARGO_BIN_EXE_perfgate", "CARGO_PRIMARY_PACKAGE", "OUT_DIR"]
        {
            assert!(set_by_cargo_for_its_child(name), "{name}");
        }
        for name in
            ["CARGO", "CARGO_HOME", "CARGO_TARGET_DIR", "CARGO_INCREMENTAL", "CARGO_PROFILE_RELEASE_LTO", "PATH"]
        {
            assert!(!set_by_cargo_for_its_child(name), "{name}");
        }
    }

    #[test]
    fn missing_valgrind_says_how_to_install_it() {
        let callgrind = Callgrind::new(PathBuf::from("/nonexistent/valgrind"));
        let message = callgrind.version().expect_err("no such program").to_string();
        assert!(message.starts_with("cannot run `/nonexistent/valgrind`:"), "{message}");
        assert!(message.ends_with("(install valgrind: apt-get install valgrind)"), "{message}");
    }
}
