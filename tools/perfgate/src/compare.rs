//! Comparing a run with the baseline: one row per benchmark with before, after and change, a
//! verdict against the threshold, and the table perfgate prints.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The largest threshold perfgate accepts, in percent: beyond it the gate would gate nothing.
pub const MAX_THRESHOLD: f64 = 1000.0;

/// A regression threshold in percent: finite, from 0 to [`MAX_THRESHOLD`].
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Threshold(f64);

/// Why a threshold was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("threshold `{given}` must be a percentage from 0 to {MAX_THRESHOLD}, such as 3 or 0.5")]
pub struct InvalidThreshold {
    /// What was given.
    pub given: String,
}

impl Threshold {
    /// perfgate's default: 3%.
    pub const DEFAULT: Threshold = Threshold(3.0);

    /// The threshold in percent.
    #[must_use]
    pub fn percent(self) -> f64 {
        self.0
    }
}

impl std::str::FromStr for Threshold {
    type Err = InvalidThreshold;

    /// Reads a percentage (`3`, `0.5`; a trailing `%` is allowed).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let number = text.trim().strip_suffix('%').unwrap_or(text.trim());
        match number.parse::<f64>() {
            Ok(percent) if (0.0..=MAX_THRESHOLD).contains(&percent) => Ok(Self(percent)),
            _ => Err(InvalidThreshold { given: text.to_owned() }),
        }
    }
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}%", self.0)
    }
}

/// How one benchmark fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the threshold either way.
    Unchanged,
    /// Fewer instructions by more than the threshold (passes; worth recording with `--update`).
    Improved,
    /// More instructions by more than the threshold: fails the gate.
    Regressed,
    /// Measured, but the baseline has no figure for it: fails until the baseline is updated.
    New,
    /// In the baseline, but no longer measured: fails until the baseline is updated.
    Missing,
}

impl Verdict {
    /// Whether this verdict fails the gate.
    #[must_use]
    pub fn fails(self) -> bool {
        matches!(self, Self::Regressed | Self::New | Self::Missing)
    }

    fn label(self) -> &'static str {
        match self {
            Self::Unchanged => "ok",
            Self::Improved => "improved",
            Self::Regressed => "REGRESSED",
            Self::New => "NEW (not in baseline)",
            Self::Missing => "MISSING (not measured)",
        }
    }
}

/// One benchmark's figures: instructions per iteration in the baseline and in this run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The benchmark (`index_build/100`).
    pub name: String,
    /// The baseline's figure.
    pub before: Option<u64>,
    /// This run's figure.
    pub after: Option<u64>,
}

impl Row {
    /// The change in percent of the baseline figure (positive: more instructions).
    #[must_use]
    pub fn change_percent(&self) -> Option<f64> {
        let (before, after) = (self.before?, self.after?);
        Some((after as f64 - before as f64) * 100.0 / before as f64)
    }

    /// The verdict against `threshold`. Exactly at the threshold is not beyond it.
    #[must_use]
    pub fn verdict(&self, threshold: Threshold) -> Verdict {
        match (self.before, self.after) {
            (None, _) => Verdict::New,
            (_, None) => Verdict::Missing,
            (Some(before), Some(after)) => {
                // Compared as `|after - before| * 100 > threshold * before`, so that a change of
                // exactly the threshold is not pushed over it by a rounding error in a division.
                let allowed = threshold.percent() * before as f64;
                let difference = after.abs_diff(before) as f64 * 100.0;
                if difference <= allowed {
                    Verdict::Unchanged
                } else if after > before {
                    Verdict::Regressed
                } else {
                    Verdict::Improved
                }
            }
        }
    }
}

/// A run compared with the baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    rows: Vec<Row>,
    threshold: Threshold,
}

impl Comparison {
    /// Pairs every measured benchmark with its baseline figure, in the order measured, followed
    /// by the baseline's benchmarks this run did not measure.
    #[must_use]
    pub fn new(baseline: &BTreeMap<String, u64>, measured: &[(String, u64)], threshold: Threshold) -> Self {
        let mut rows: Vec<Row> = measured
            .iter()
            .map(|(name, after)| Row { name: name.clone(), before: baseline.get(name).copied(), after: Some(*after) })
            .collect();
        for (name, before) in baseline {
            if !measured.iter().any(|(measured_name, _)| measured_name == name) {
                rows.push(Row { name: name.clone(), before: Some(*before), after: None });
            }
        }
        Self { rows, threshold }
    }

    /// The rows, in table order.
    #[must_use]
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The threshold the verdicts use.
    #[must_use]
    pub fn threshold(&self) -> Threshold {
        self.threshold
    }

    /// The rows that fail the gate.
    pub fn failures(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|row| row.verdict(self.threshold).fails())
    }

    /// Whether the gate passes: no regression beyond the threshold, nothing new or missing.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The table: one line per benchmark with its instructions per iteration before and after,
    /// the change, and the verdict; columns aligned, numbers right-aligned with thousands
    /// separators.
    #[must_use]
    pub fn table(&self) -> String {
        let header = ["benchmark", "before", "after", "change", "verdict"];
        let cells: Vec<[String; 5]> = self
            .rows
            .iter()
            .map(|row| {
                [
                    row.name.clone(),
                    row.before.map_or_else(|| "-".to_owned(), grouped),
                    row.after.map_or_else(|| "-".to_owned(), grouped),
                    row.change_percent().map_or_else(|| "-".to_owned(), |change| format!("{change:+.2}%")),
                    row.verdict(self.threshold).label().to_owned(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for line in &cells {
            for (width, cell) in widths.iter_mut().zip(line) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut table = String::new();
        let mut line = |cells: [&str; 5]| {
            let [name, before, after, change, verdict] = cells;
            let [w0, w1, w2, w3, _] = widths;
            let _ = writeln!(table, "{name:<w0$}  {before:>w1$}  {after:>w2$}  {change:>w3$}  {verdict}");
        };
        line(header);
        for row in &cells {
            line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
        }
        table
    }
}

/// `1234567` as `1,234,567`.
fn grouped(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline(entries: &[(&str, u64)]) -> BTreeMap<String, u64> {
        entries.iter().map(|(name, count)| ((*name).to_owned(), *count)).collect()
    }

    fn measured(entries: &[(&str, u64)]) -> Vec<(String, u64)> {
        entries.iter().map(|(name, count)| ((*name).to_owned(), *count)).collect()
    }

    fn row(before: u64, after: u64) -> Row {
        Row { name: "b".to_owned(), before: Some(before), after: Some(after) }
    }

    #[test]
    fn threshold_is_strict_at_its_edge() {
        let three = Threshold::DEFAULT;
        assert_eq!(row(100, 103).verdict(three), Verdict::Unchanged);
        assert_eq!(row(100, 104).verdict(three), Verdict::Regressed);
        assert_eq!(row(1_000_000, 1_030_000).verdict(three), Verdict::Unchanged);
        assert_eq!(row(1_000_000, 1_030_001).verdict(three), Verdict::Regressed);
        assert_eq!(row(100, 97).verdict(three), Verdict::Unchanged);
        assert_eq!(row(100, 96).verdict(three), Verdict::Improved);
        let zero: Threshold = "0".parse().expect("zero is a threshold");
        assert_eq!(row(100, 100).verdict(zero), Verdict::Unchanged);
        assert_eq!(row(100, 101).verdict(zero), Verdict::Regressed);
    }

    #[test]
    fn thresholds_parse_as_percentages() {
        assert_eq!("3".parse::<Threshold>().map(Threshold::percent), Ok(3.0));
        assert_eq!("0.5%".parse::<Threshold>().map(Threshold::percent), Ok(0.5));
        for bad in ["", "-1", "abc", "NaN", "inf", "1001"] {
            let error = bad.parse::<Threshold>().expect_err(bad);
            assert_eq!(
                error.to_string(),
                format!("threshold `{bad}` must be a percentage from 0 to 1000, such as 3 or 0.5")
            );
        }
    }

    #[test]
    fn regression_fails_and_improvement_passes() {
        let before = baseline(&[("index_build/100", 1_000_000), ("reframe/100", 500_000)]);
        let slower = Comparison::new(
            &before,
            &measured(&[("index_build/100", 2_000_000), ("reframe/100", 500_000)]),
            Threshold::DEFAULT,
        );
        assert!(!slower.passed());
        assert_eq!(slower.failures().map(|row| row.name.as_str()).collect::<Vec<_>>(), ["index_build/100"]);

        let faster = Comparison::new(
            &before,
            &measured(&[("index_build/100", 500_000), ("reframe/100", 510_000)]),
            Threshold::DEFAULT,
        );
        assert!(faster.passed());
        assert_eq!(faster.rows()[0].verdict(faster.threshold()), Verdict::Improved);
    }

    #[test]
    fn new_and_missing_benchmarks_fail() {
        let before = baseline(&[("index_build/100", 10), ("retired/100", 10)]);
        let comparison =
            Comparison::new(&before, &measured(&[("index_build/100", 10), ("end_to_end/100", 10)]), Threshold::DEFAULT);
        let names: Vec<&str> = comparison.rows().iter().map(|row| row.name.as_str()).collect();
        assert_eq!(names, ["index_build/100", "end_to_end/100", "retired/100"]);
        let verdicts: Vec<Verdict> = comparison.rows().iter().map(|row| row.verdict(comparison.threshold())).collect();
        assert_eq!(verdicts, [Verdict::Unchanged, Verdict::New, Verdict::Missing]);
        assert!(!comparison.passed());
    }

    #[test]
    fn table_shows_before_after_and_change_aligned() {
        let before = baseline(&[("index_build/100", 1_234_567), ("reframe/100", 1000), ("gone/100", 5)]);
        let comparison = Comparison::new(
            &before,
            &measured(&[("index_build/100", 2_469_134), ("reframe/100", 1000), ("end_to_end/100", 42)]),
            Threshold::DEFAULT,
        );
        let expected = "\
benchmark           before      after    change  verdict
index_build/100  1,234,567  2,469,134  +100.00%  REGRESSED
reframe/100          1,000      1,000    +0.00%  ok
end_to_end/100           -         42         -  NEW (not in baseline)
gone/100                 5          -         -  MISSING (not measured)
";
        assert_eq!(comparison.table(), expected);
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(12_345_678), "12,345,678");
    }
}
