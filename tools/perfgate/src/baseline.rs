//! The committed baseline, `benches/baseline.json`: per mode, the instructions per iteration of
//! every benchmark, with the cases they were measured on and the toolchain that built them.
//!
//! ```json
//! {
//!   "format": 1,
//!   "quick": {
//!     "rustc": "rustc 1.95.0 (59807616e 2026-04-14)",
//!     "valgrind": "valgrind-3.19.0",
//!     "cases": [{ "spans": 100, "iterations": 5 }],
//!     "instructions": { "index_build/100": 123456, "reframe/100": 65432 }
//!   }
//! }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Case, Mode};

/// The version of the file format this perfgate reads and writes.
pub const FORMAT: u32 = 1;

/// The whole baseline file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// The file format's version ([`FORMAT`]).
    pub format: u32,
    /// The figures of `--quick` runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quick: Option<ModeFigures>,
    /// The figures of full runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full: Option<ModeFigures>,
}

/// What one mode recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeFigures {
    /// `rustc -V` of the toolchain that built the measured binary.
    pub rustc: String,
    /// `valgrind --version` of the valgrind that counted.
    pub valgrind: String,
    /// The inputs measured; figures are only comparable with runs on the same ones.
    pub cases: Vec<Case>,
    /// Instructions per iteration, by benchmark name (`index_build/100`).
    pub instructions: BTreeMap<String, u64>,
}

/// Why a baseline could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The file could not be read (a missing file among them).
    #[error("cannot read baseline {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not JSON of the expected shape; serde_json's message gives line and column.
    #[error("baseline {} is malformed: {source}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        source: serde_json::Error,
    },
    /// The file is of another format version.
    #[error("baseline {}: format {found} is not supported (this perfgate reads format {FORMAT})", path.display())]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// The version it declares.
        found: u32,
    },
    /// A figure is zero: every hot path executes instructions, so the file was edited wrongly.
    #[error("baseline {}: {mode}.instructions.{benchmark} is 0, but every benchmark executes instructions", path.display())]
    ZeroCount {
        /// The file.
        path: PathBuf,
        /// The mode's section.
        mode: &'static str,
        /// The benchmark.
        benchmark: String,
    },
    /// The file could not be written.
    #[error("cannot write baseline {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

impl BaselineError {
    /// Whether the file does not exist (as opposed to existing and being unusable).
    #[must_use]
    pub fn is_missing(&self) -> bool {
        matches!(self, Self::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

impl Baseline {
    /// An empty baseline of the current format.
    #[must_use]
    pub fn new() -> Self {
        Self { format: FORMAT, quick: None, full: None }
    }

    /// Reads and checks the baseline at `path`.
    ///
    /// # Errors
    /// [`BaselineError`] naming `path` and what is wrong with it.
    pub fn load(path: &Path) -> Result<Self, BaselineError> {
        let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Read { path: path.into(), source })?;
        Self::parse(&text, path)
    }

    /// Parses and checks `text`, read from `path` (used in messages only).
    ///
    /// # Errors
    /// [`BaselineError`] naming `path` and what is wrong with the text.
    pub fn parse(text: &str, path: &Path) -> Result<Self, BaselineError> {
        // The format is checked before the shape, so that a future format's other fields are
        // reported as a version mismatch and not as unknown fields.
        #[derive(Deserialize)]
        struct Version {
            format: u32,
        }
        let malformed = |source| BaselineError::Malformed { path: path.into(), source };
        let Version { format } = serde_json::from_str(text).map_err(malformed)?;
        if format != FORMAT {
            return Err(BaselineError::UnsupportedFormat { path: path.into(), found: format });
        }
        let baseline: Self = serde_json::from_str(text).map_err(malformed)?;
        for mode in [Mode::Quick, Mode::Full] {
            let Some(figures) = baseline.figures(mode) else { continue };
            if let Some((benchmark, _)) = figures.instructions.iter().find(|(_, &count)| count == 0) {
                return Err(BaselineError::ZeroCount {
                    path: path.into(),
                    mode: mode.name(),
                    benchmark: benchmark.clone(),
                });
            }
        }
        Ok(baseline)
    }

    /// Writes the baseline to `path`: pretty JSON with a final newline, keys in a stable order so
    /// that a diff shows exactly the figures that changed.
    ///
    /// # Errors
    /// [`BaselineError::Write`] naming `path`.
    pub fn save(&self, path: &Path) -> Result<(), BaselineError> {
        let mut text = serde_json::to_string_pretty(self).expect("a baseline always serializes");
        text.push('\n');
        std::fs::write(path, text).map_err(|source| BaselineError::Write { path: path.into(), source })
    }

    /// The figures of `mode`, if recorded.
    #[must_use]
    pub fn figures(&self, mode: Mode) -> Option<&ModeFigures> {
        match mode {
            Mode::Quick => self.quick.as_ref(),
            Mode::Full => self.full.as_ref(),
        }
    }

    /// Replaces the figures of `mode`, leaving the other mode's as they were.
    pub fn set_figures(&mut self, mode: Mode, figures: ModeFigures) {
        match mode {
            Mode::Quick => self.quick = Some(figures),
            Mode::Full => self.full = Some(figures),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> &'static Path {
        Path::new("benches/baseline.json")
    }

    fn figures() -> ModeFigures {
        ModeFigures {
            rustc: "rustc 1.95.0".to_owned(),
            valgrind: "valgrind-3.19.0".to_owned(),
            cases: vec![Case { spans: 100, iterations: 5 }],
            instructions: [("index_build/100".to_owned(), 1234), ("reframe/100".to_owned(), 99)].into(),
        }
    }

    #[test]
    fn saved_baseline_loads_back_unchanged() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("baseline.json");
        let mut baseline = Baseline::new();
        baseline.set_figures(Mode::Quick, figures());
        baseline.save(&file).expect("saves");
        let loaded = Baseline::load(&file).expect("loads");
        assert_eq!(loaded, baseline);
        assert!(loaded.figures(Mode::Full).is_none());
        assert!(std::fs::read_to_string(&file).expect("reads").ends_with("}\n"));
    }

    #[test]
    fn setting_one_mode_keeps_the_other() {
        let mut baseline = Baseline::new();
        baseline.set_figures(Mode::Full, figures());
        let mut quick = figures();
        quick.instructions.insert("end_to_end/100".to_owned(), 7);
        baseline.set_figures(Mode::Quick, quick.clone());
        assert_eq!(baseline.figures(Mode::Full), Some(&figures()));
        assert_eq!(baseline.figures(Mode::Quick), Some(&quick));
    }

    #[test]
    fn missing_file_is_reported_as_missing_with_its_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("absent.json");
        let error = Baseline::load(&file).expect_err("no file");
        assert!(error.is_missing());
        assert!(error.to_string().contains(&file.display().to_string()), "{error}");
    }

    #[test]
    fn invalid_json_names_the_file_and_the_line() {
        let error = Baseline::parse("{\n  \"format\": 1,\n  \"quick\": [\n", path()).expect_err("truncated");
        assert!(matches!(error, BaselineError::Malformed { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.starts_with("baseline benches/baseline.json is malformed:"), "{message}");
        assert!(message.contains("line"), "{message}");
    }

    #[test]
    fn wrong_shapes_are_malformed_and_say_which_field() {
        let count_as_text = r#"{"format": 1, "quick": {"rustc": "r", "valgrind": "v", "cases": [],
            "instructions": {"index_build/100": "many"}}}"#;
        let message = Baseline::parse(count_as_text, path()).expect_err("string count").to_string();
        assert!(message.contains("invalid type: string \"many\""), "{message}");

        let unknown_field = r#"{"format": 1, "quick": {"rustc": "r", "valgrind": "v", "cases": [],
            "instructions": {}, "iterations": 5}}"#;
        let message = Baseline::parse(unknown_field, path()).expect_err("unknown field").to_string();
        assert!(message.contains("unknown field `iterations`"), "{message}");

        let no_format = r#"{"quick": null}"#;
        let message = Baseline::parse(no_format, path()).expect_err("no format").to_string();
        assert!(message.contains("missing field `format`"), "{message}");
    }

    #[test]
    fn another_format_version_is_refused_by_number() {
        let error = Baseline::parse(r#"{"format": 2, "extra": true}"#, path()).expect_err("format 2");
        assert_eq!(
            error.to_string(),
            "baseline benches/baseline.json: format 2 is not supported (this perfgate reads format 1)"
        );
    }

    #[test]
    fn zero_counts_are_refused_by_name() {
        let text = r#"{"format": 1, "full": {"rustc": "r", "valgrind": "v", "cases": [],
            "instructions": {"index_build/1": 5, "reframe/1": 0}}}"#;
        let error = Baseline::parse(text, path()).expect_err("zero");
        assert_eq!(
            error.to_string(),
            "baseline benches/baseline.json: full.instructions.reframe/1 is 0, but every benchmark executes instructions"
        );
    }

    #[test]
    fn unwritable_path_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("no-such-dir").join("baseline.json");
        let error = Baseline::new().save(&file).expect_err("no directory");
        assert!(error.to_string().starts_with(&format!("cannot write baseline {}:", file.display())), "{error}");
    }
}
