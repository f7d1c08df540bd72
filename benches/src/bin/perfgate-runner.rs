//! Runs one hot path of [`spanpipe_benches::hot_paths`] a given number of times inside one
//! counted function, for perfgate to count instructions under callgrind:
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     --toggle-collect='perfgate_runner::measured' \
//!     target/release/perfgate-runner index_build 100 10
//! ```
//!
//! Preparation (building the input, processors and pipeline) and one warm-up iteration run before
//! `measured` and are not counted, so callgrind's `Collected` total divided by the iteration count
//! is the cost of one iteration in steady state. `perfgate-runner --list` prints the hot paths.

use std::hint::black_box;
use std::io::Write;
use std::process::ExitCode;

use spanpipe_benches::hot_paths::{HotPath, Prepared};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The counted region: perfgate's `--toggle-collect` names this function.
#[inline(never)]
fn measured(prepared: &mut Prepared, iterations: usize) {
    for _ in 0..iterations {
        black_box(prepared.iteration());
    }
}

fn usage() -> ExitCode {
    let names: Vec<&str> = HotPath::ALL.iter().map(|path| path.name()).collect();
    eprintln!(
        "usage: perfgate-runner <hot path> <spans> <iterations>\n       perfgate-runner --list\nhot paths: {}",
        names.join(", ")
    );
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args == ["--list"] {
        let mut stdout = std::io::stdout().lock();
        for path in HotPath::ALL {
            if writeln!(stdout, "{}", path.name()).is_err() {
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    }
    let [name, spans, iterations] = args.as_slice() else { return usage() };
    let (Some(path), Ok(spans @ 1..), Ok(iterations @ 1..)) =
        (HotPath::from_name(name), spans.parse::<usize>(), iterations.parse::<usize>())
    else {
        return usage();
    };
    let mut prepared = path.prepare(spans);
    black_box(prepared.iteration());
    measured(&mut prepared, iterations);
    ExitCode::SUCCESS
}
