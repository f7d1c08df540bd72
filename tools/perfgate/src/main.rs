//! `perfgate`: counts the instructions of spanpipe's hot paths under callgrind and fails when any
//! grew beyond the threshold over `benches/baseline.json`. See the library docs for the method.
//!
//! ```text
//! cargo run -p perfgate -- --quick            # what CI runs (tools/test)
//! cargo run -p perfgate                       # the full size ladder
//! cargo run -p perfgate -- --update           # record the full figures (and --quick --update)
//! ```
//!
//! Exit status: 0 when the gate passes (or the baseline was updated), 1 when a benchmark
//! regressed beyond the threshold or the measured set differs from the baseline's, 2 when nothing
//! could be compared (bad arguments, no valgrind, a broken baseline, a failed build).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use perfgate::baseline::{Baseline, BaselineError, ModeFigures};
use perfgate::compare::{Comparison, Threshold};
use perfgate::measure::{self, Callgrind, MeasureError};
use perfgate::Mode;

/// Counts instructions of spanpipe's hot paths under callgrind and compares them with the
/// committed baseline; fails when any grew by more than the threshold.
#[derive(Debug, Parser)]
#[command(name = "perfgate", version)]
struct Cli {
    /// Measure 100-span requests with few iterations (the CI gate) instead of the full size
    /// ladder; compared with, or recorded as, the baseline's `quick` figures.
    #[arg(long)]
    quick: bool,
    /// Record this run's figures as the baseline for the mode instead of comparing.
    #[arg(long)]
    update: bool,
    /// Fail when a benchmark executes more than this many percent more instructions than the
    /// baseline.
    #[arg(long, default_value_t = Threshold::DEFAULT)]
    threshold: Threshold,
    /// The baseline file. Defaults to the workspace's benches/baseline.json.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Measure this already built perfgate-runner instead of building it with cargo.
    #[arg(long)]
    runner: Option<PathBuf>,
    /// The valgrind executable.
    #[arg(long, default_value = "valgrind")]
    valgrind: PathBuf,
    /// How many valgrind processes to run at once. Defaults to the number of CPUs.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
}

/// Why perfgate could not get to a verdict.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    #[error(transparent)]
    Measure(#[from] MeasureError),
    #[error("baseline {}: no `{mode}` figures; record them with `perfgate{flag} --update`", path.display())]
    NoFigures { path: PathBuf, mode: &'static str, flag: &'static str },
    #[error(
        "baseline {}: the `{mode}` figures were measured on other cases ({recorded}) than this perfgate's ({current}); \
         record them again with `perfgate{flag} --update`",
        path.display()
    )]
    OtherCases { path: PathBuf, mode: &'static str, flag: &'static str, recorded: String, current: String },
    #[error("cannot write to the terminal: {0}")]
    Output(#[from] std::io::Error),
}

/// The workspace this perfgate was built in: the runner is built there, and the baseline is there.
fn workspace() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::canonicalize(&workspace).unwrap_or(workspace)
}

fn describe(cases: &[perfgate::Case]) -> String {
    let cases: Vec<String> =
        cases.iter().map(|case| format!("{} spans x {} iterations", case.spans, case.iterations)).collect();
    cases.join(", ")
}

fn run(cli: &Cli) -> Result<bool, RunError> {
    let mode = if cli.quick { Mode::Quick } else { Mode::Full };
    let flag = if cli.quick { " --quick" } else { "" };
    let workspace = workspace();
    let path = cli.baseline.clone().unwrap_or_else(|| workspace.join("benches/baseline.json"));

    // Read the baseline before the long part, so a broken or missing one fails at once. An
    // update starts from an empty baseline only when there is none yet.
    let mut baseline = match Baseline::load(&path) {
        Ok(baseline) => baseline,
        Err(error) if cli.update && error.is_missing() => Baseline::new(),
        Err(error) => return Err(error.into()),
    };
    if !cli.update {
        let Some(figures) = baseline.figures(mode) else {
            return Err(RunError::NoFigures { path, mode: mode.name(), flag });
        };
        if figures.cases != mode.cases() {
            return Err(RunError::OtherCases {
                path,
                mode: mode.name(),
                flag,
                recorded: describe(&figures.cases),
                current: describe(mode.cases()),
            });
        }
    }

    let callgrind = Callgrind::new(cli.valgrind.clone());
    let valgrind = callgrind.version()?;
    let runner = match &cli.runner {
        Some(runner) => runner.clone(),
        None => {
            eprintln!("perfgate: building {} (release)", measure::RUNNER);
            measure::build_runner(&workspace, &[])?
        }
    };
    let rustc = measure::rustc_version(&workspace)?;
    let hot_paths = measure::hot_paths(&runner)?;
    let jobs = cli.jobs.map_or_else(|| std::thread::available_parallelism().map_or(1, usize::from), usize::from);
    eprintln!(
        "perfgate: {} mode, {} hot paths on {}, {jobs} at a time under callgrind",
        mode.name(),
        hot_paths.len(),
        describe(mode.cases())
    );
    let progress =
        |benchmark: &str, count: u64| eprintln!("perfgate:   {benchmark}: {count} instructions per iteration");
    let measured = callgrind.measure_all(&runner, &hot_paths, mode.cases(), jobs, &progress)?;

    let recorded = baseline.figures(mode).map(|figures| figures.instructions.clone()).unwrap_or_default();
    let comparison = Comparison::new(&recorded, &measured, cli.threshold);
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "\ninstructions per iteration, {} mode, threshold {}:\n", mode.name(), cli.threshold)?;
    write!(stdout, "{}", comparison.table())?;

    if cli.update {
        let figures =
            ModeFigures { rustc, valgrind, cases: mode.cases().to_vec(), instructions: measured.into_iter().collect() };
        baseline.set_figures(mode, figures);
        baseline.save(&path)?;
        writeln!(stdout, "\nperfgate: recorded the `{}` figures in {}", mode.name(), path.display())?;
        return Ok(true);
    }

    if let Some(figures) = baseline.figures(mode) {
        for (what, then, now) in [("rustc", &figures.rustc, &rustc), ("valgrind", &figures.valgrind, &valgrind)] {
            if then != now {
                writeln!(
                    stdout,
                    "\nnote: the baseline was measured with {then}, this run with {now}; counts change with the \
                     {what} version, so after a toolchain change run `perfgate{flag} --update`"
                )?;
            }
        }
    }
    let failures: Vec<&str> = comparison.failures().map(|row| row.name.as_str()).collect();
    if failures.is_empty() {
        writeln!(stdout, "\nperfgate: passed ({} benchmarks within {})", comparison.rows().len(), cli.threshold)?;
        Ok(true)
    } else {
        writeln!(
            stdout,
            "\nperfgate: FAILED: {} beyond {} or not matching the baseline. If the change is intended, record it \
             with `perfgate{flag} --update` and commit {}.",
            failures.join(", "),
            cli.threshold,
            path.display()
        )?;
        Ok(false)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("perfgate: {error}");
            ExitCode::from(2)
        }
    }
}
