//! # spanpipe-plugin-testing
//!
//! Builds the example plugins (`plugins/examples/*`) into real shared libraries, for tests that
//! load them the way spanpipe does: from a file, with `dlopen`.
//!
//! ```no_run
//! let plugins = spanpipe_plugin_testing::shared_examples();
//! assert!(plugins.redact.exists());
//! ```
//!
//! The examples are built by running cargo, into a target directory of their own: the test that
//! asks for them runs under a `cargo test` that holds the lock on its own target directory, so a
//! nested build there would wait for ever. A separate target directory starts empty, so the first
//! build compiles spanpipe-core and the SDK once more (some tens of seconds on two cores); later
//! builds into the same directory only check that nothing changed (well under a second). Share one
//! build per test process through [`shared_examples`], and build a second copy with
//! [`build_examples`] only when a test needs a different version.

use std::ffi::OsString;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::OnceLock;

/// The environment variable the examples read their version from at build time; the `redact`
/// example reports it in its descriptor and stamps it on spans, so two builds with different
/// values are two versions of the same plugin.
pub const VERSION_VARIABLE: &str = "SPANPIPE_EXAMPLE_VERSION";

/// The example plugins (`spanpipe-example-<name>`), in [`ExamplePlugins`] field order.
const EXAMPLES: [&str; 7] = ["redact", "sample", "heartbeat", "ndjson", "panicky", "slow", "mismatched"];

/// Paths of the example plugins' shared libraries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExamplePlugins {
    /// Processor: replaces listed attribute values, stamps its version on every span.
    pub redact: PathBuf,
    /// Processor: keeps a percentage of traces by trace id.
    pub sample: PathBuf,
    /// Source: one heartbeat span per cycle.
    pub heartbeat: PathBuf,
    /// Codec: `application/x-ndjson-spans`.
    pub ndjson: PathBuf,
    /// Processor: panics when a span has `plugin.panic = true`.
    pub panicky: PathBuf,
    /// Processor: spins on the CPU for `spin_ms` per batch.
    pub slow: PathBuf,
    /// Processor whose descriptor carries a wrong interface hash.
    pub mismatched: PathBuf,
}

/// Why the examples could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Cargo could not be started.
    #[error("could not run {cargo:?} to build the example plugins: {source}")]
    Spawn {
        /// The cargo that was run (`$CARGO`, or `cargo` from `PATH`).
        cargo: OsString,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Cargo ran and failed.
    #[error("building the example plugins failed ({status}):\n{stderr}")]
    Failed {
        /// Cargo's exit status.
        status: ExitStatus,
        /// What cargo printed on stderr.
        stderr: String,
    },
    /// Cargo succeeded but a library is not where it should be.
    #[error("cargo built the example plugins but {path} does not exist")]
    Missing {
        /// Where the library was expected.
        path: PathBuf,
    },
}

/// The root of the spanpipe workspace the examples belong to.
#[must_use]
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.ancestors().nth(2).unwrap_or(manifest_dir).to_path_buf()
}

/// How the examples are compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Cargo's `dev` profile: quick to build, what tests use.
    Debug,
    /// The workspace's `release` profile, as a plugin shipped to users is built: what benchmarks
    /// use, so that the plugin is compared with compiled-in code built the same way.
    Release,
}

impl Profile {
    /// Cargo's output directory for the profile.
    fn directory(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Release => "release",
        }
    }
}

/// `lib<package>.so` (or the platform's equivalent) in the profile's output directory.
fn library_path(target_dir: &Path, profile: Profile, example: &str) -> PathBuf {
    let file = format!("{}spanpipe_example_{example}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    target_dir.join(profile.directory()).join(file)
}

/// Builds every example plugin (debug profile, `--locked`) into `target_dir` and returns the
/// paths of their libraries.
///
/// `version` sets [`VERSION_VARIABLE`] for the build; `None` removes it, so the examples get
/// their default version whatever the caller's environment holds. Builds with different versions
/// need different target directories: a build overwrites the libraries of the one before.
///
/// Cargo locks the target directory, so concurrent calls (from parallel test processes) with
/// the same directory wait for each other, and all but the first find everything built.
///
/// # Errors
/// [`BuildError`] when cargo cannot be run, fails, or leaves a library missing.
pub fn build_examples(target_dir: &Path, version: Option<&str>) -> Result<ExamplePlugins, BuildError> {
    build_examples_with(target_dir, version, Profile::Debug)
}

/// [`build_examples`] in the given profile.
///
/// # Errors
/// As [`build_examples`].
pub fn build_examples_with(
    target_dir: &Path,
    version: Option<&str>,
    profile: Profile,
) -> Result<ExamplePlugins, BuildError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command.current_dir(workspace_root()).args(["build", "--locked", "--target-dir"]).arg(target_dir);
    if profile == Profile::Release {
        command.arg("--release");
    }
    for example in EXAMPLES {
        command.args(["-p", &format!("spanpipe-example-{example}")]);
    }
    match version {
        Some(version) => command.env(VERSION_VARIABLE, version),
        None => command.env_remove(VERSION_VARIABLE),
    };
    let output = command.output().map_err(|source| BuildError::Spawn { cargo, source })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        return Err(BuildError::Failed { status: output.status, stderr });
    }
    let [redact, sample, heartbeat, ndjson, panicky, slow, mismatched] =
        EXAMPLES.map(|example| library_path(target_dir, profile, example));
    let plugins = ExamplePlugins { redact, sample, heartbeat, ndjson, panicky, slow, mismatched };
    for path in plugins.paths() {
        if !path.is_file() {
            return Err(BuildError::Missing { path: path.clone() });
        }
    }
    Ok(plugins)
}

impl ExamplePlugins {
    /// Every library path, in field order.
    #[must_use]
    pub fn paths(&self) -> [&PathBuf; 7] {
        [&self.redact, &self.sample, &self.heartbeat, &self.ndjson, &self.panicky, &self.slow, &self.mismatched]
    }
}

/// The target directory [`shared_examples`] builds into: one per workspace checkout (named by a
/// hash of its path), shared by every test process of that checkout, in the system's temporary
/// directory so that it outlives a test run and later runs reuse it.
#[must_use]
pub fn shared_target_dir() -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    workspace_root().hash(&mut hasher);
    std::env::temp_dir().join(format!("spanpipe-plugin-examples-{:016x}", hasher.finish()))
}

/// The examples at their default version, built once per process into [`shared_target_dir`]
/// (see [`build_examples`] for why concurrent processes are safe).
///
/// Callers must not modify or delete the files: copy them where a test needs its own.
///
/// # Panics
/// If the build fails: every test that needs the examples would fail anyway, and the panic
/// carries cargo's output.
pub fn shared_examples() -> &'static ExamplePlugins {
    static EXAMPLES: OnceLock<ExamplePlugins> = OnceLock::new();
    EXAMPLES.get_or_init(|| build_examples(&shared_target_dir(), None).unwrap_or_else(|error| panic!("{error}")))
}

/// The version [`shared_examples_v2`] is built with.
pub const SECOND_VERSION: &str = "2.0.0";

/// The examples built as [`SECOND_VERSION`] (what `redact` stamps), once per process, into a
/// target directory beside [`shared_target_dir`] — one version per directory, so that every test
/// process asking for it finds the same files and none rebuilds them under another's feet.
///
/// # Panics
/// As [`shared_examples`].
pub fn shared_examples_v2() -> &'static ExamplePlugins {
    static EXAMPLES: OnceLock<ExamplePlugins> = OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let dir = PathBuf::from(format!("{}-v{SECOND_VERSION}", shared_target_dir().display()));
        build_examples(&dir, Some(SECOND_VERSION)).unwrap_or_else(|error| panic!("{error}"))
    })
}
