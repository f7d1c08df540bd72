//! # perfgate
//!
//! spanpipe's CI performance gate. It counts the instructions of each hot path
//! (`spanpipe_benches::hot_paths`: index build, re-frame, OTLP/JSON decode, batch processor,
//! router dispatch, one request end to end) under valgrind's callgrind, compares them with the
//! committed baseline `benches/baseline.json`, and fails when any of them grew by more than a
//! threshold (3% unless told otherwise).
//!
//! ## Why instructions, and why callgrind driven directly
//!
//! CI machines are small, shared and noisy: wall-clock times drift by tens of percent between
//! runs, so a 3% gate on time would fail at random. The number of instructions a given binary
//! executes on a given input does not drift with the load: it is the same on every run, whatever
//! else the machine does (at 8192 spans, the allocator's randomised choices move it by about
//! 0.01%; at 100 spans, not at all). It is not time (cache misses and branch mispredictions do not show), but a change
//! that makes a hot path do more work shows up in it exactly, which is what a gate needs.
//!
//! callgrind is driven directly rather than through gungraun (formerly iai-callgrind): gungraun
//! needs its own runner binary installed at the exact version of the library, wraps the benchmark
//! in its own harness and baseline format, and would add a second definition of every workload
//! beside criterion's. Here one small binary, `perfgate-runner` (in spanpipe-benches), runs the
//! same `spanpipe_benches::hot_paths` that the criterion benchmark `benches/hot_paths.rs`
//! times, and perfgate reads one number per run from callgrind's log.
//!
//! ## Method
//!
//! For every hot path and input size, `perfgate-runner <hot path> <spans> <iterations>` prepares
//! the input and the machinery, runs one warm-up iteration, then runs `iterations` more inside the
//! function `perfgate_runner::measured`. callgrind runs it with `--collect-atstart=no
//! --toggle-collect=perfgate_runner::measured`, so only what happens inside that function (and
//! what it calls) is counted: setup, warm-up and process start-up are excluded without a second
//! run to subtract. The figure is the total divided by the iteration count, rounded.
//!
//! The runner is built with the release profile (`cargo build --release`), so the counts are
//! those of the code spanpipe ships, with the shipped allocator (mimalloc).
//!
//! ## What changes the counts
//!
//! The compiler (a new rustc optimises differently), the CPU (simd-json picks its implementation
//! at run time from the CPU's features) and the valgrind version. The baseline records the rustc
//! and valgrind versions it was made with, and perfgate warns when they differ; after a toolchain
//! change, run `perfgate --update` (and `perfgate --quick --update`) and commit the new baseline.
//!
//! ## Modes
//!
//! [`Mode::Full`] measures the size ladder (1, 100 and 8192 spans per request); [`Mode::Quick`]
//! measures 100-span requests with fewer iterations, so CI can afford it on every change. Each
//! mode has its own figures in the baseline, recorded and compared separately.

pub mod baseline;
pub mod compare;
pub mod measure;

use serde::{Deserialize, Serialize};

/// One measured input: requests of `spans` spans, counted over `iterations` iterations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Spans per request.
    pub spans: usize,
    /// Iterations counted (after one warm-up iteration that is not).
    pub iterations: usize,
}

/// How much perfgate measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One size (100 spans), few iterations: the CI gate of every change.
    Quick,
    /// The size ladder (1, 100, 8192 spans), more iterations.
    Full,
}

impl Mode {
    /// The name of the mode's section in the baseline.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Quick => "quick",
            Self::Full => "full",
        }
    }

    /// The inputs this mode measures every hot path on. Iterations shrink as requests grow, so
    /// that every case costs about the same under callgrind; counts are exact, so a few iterations
    /// of a large request are as good as many.
    #[must_use]
    pub fn cases(self) -> &'static [Case] {
        match self {
            Self::Quick => &[Case { spans: 100, iterations: 5 }],
            Self::Full => &[
                Case { spans: 1, iterations: 500 },
                Case { spans: 100, iterations: 20 },
                Case { spans: 8192, iterations: 3 },
            ],
        }
    }
}

/// The name of one benchmark: a hot path on one input size, as the baseline and the table name it.
#[must_use]
pub fn benchmark_name(hot_path: &str, case: Case) -> String {
    format!("{hot_path}/{}", case.spans)
}
