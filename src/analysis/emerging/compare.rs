//! Comparison mode: two periods, before and after a split instant (an intervention date),
//! and per H3 cell the counts, rates per day and whether the rate changed significantly.
//!
//! Test: for a cell with `a` incidents in the before period (length `T_a`) and `b` after
//! (`T_b`), under the null of one Poisson rate for both periods `a | a + b` is binomial with
//! `n = a + b` and `π₀ = T_a / (T_a + T_b)` (the conditional test for two Poisson counts with
//! exposures; Przyborowski & Wilenski 1940, Lehmann & Romano §4.5). The two-sided p-value is
//! the exact binomial one of `scipy.stats.binomtest` (sum of the probabilities of all
//! outcomes no more likely than the observed one, relative tolerance 1e-7). Benjamini-Hochberg
//! FDR over the cells changes only the bins (-3..3 at 90/95/99 %), as for Gi*.
//! Cells: those with at least one incident in either period (a cell with none in both has
//! nothing to test). Reference: `tests/it/ref_emerging.rs` against scipy's `binomtest`.

use std::collections::BTreeMap;

use h3o::Resolution;
use serde::{Deserialize, Serialize};

use super::EmergingError;
use super::calendar::{format_instant, parse_instant};
use super::cube::{parent_cell, resolve_window};
use crate::analysis::stats::{confidence_bin, fdr_bins};

const SECONDS_PER_DAY: f64 = 86_400.0;

/// Parameters of the comparison (query parameters of the comparison route).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompareParams {
    /// H3 resolution of the cells (0..=12, default 9).
    pub resolution: u8,
    /// The split instant (RFC 3339 date or date-time, UTC): before = `[start, split_at)`,
    /// after = `[split_at, end)`. Required.
    pub split_at: Option<String>,
    /// Start of the before period (default: the first incident).
    pub start: Option<String>,
    /// End (exclusive) of the after period (default: one second after the last incident).
    pub end: Option<String>,
    /// Benjamini-Hochberg FDR on the bins (default true).
    pub fdr: bool,
}

impl Default for CompareParams {
    fn default() -> Self {
        CompareParams {
            resolution: 9,
            split_at: None,
            start: None,
            end: None,
            fdr: true,
        }
    }
}

/// One cell of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareCell {
    /// H3 cell index (hex string).
    pub h3: String,
    /// Incidents in the before period.
    pub count_before: u64,
    /// Incidents in the after period.
    pub count_after: u64,
    /// `count_before` per day of the before period.
    pub rate_before_per_day: f64,
    /// `count_after` per day of the after period.
    pub rate_after_per_day: f64,
    /// `rate_after / rate_before`; `None` when the before count is zero.
    pub rate_ratio: Option<f64>,
    /// Two-sided exact conditional binomial p-value.
    pub p: f64,
    /// Signed confidence bin -3..3 (positive = increase), FDR-adjusted when `fdr`.
    pub bin: i8,
    /// `"increase"`, `"decrease"` (|bin| >= 2, i.e. 95 %) or `"no_significant_change"`.
    pub change: &'static str,
}

/// Totals and parameters of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareSummary {
    /// Parameters as given.
    pub params: CompareParams,
    /// Start of the before period (RFC 3339).
    pub before_start: String,
    /// The split instant (RFC 3339).
    pub split_at: String,
    /// End of the after period, exclusive (RFC 3339).
    pub after_end: String,
    /// Length of the before period in days.
    pub before_days: f64,
    /// Length of the after period in days.
    pub after_days: f64,
    /// Incidents in the before period.
    pub total_before: u64,
    /// Incidents in the after period.
    pub total_after: u64,
    /// Whole-area test of the same kind on the totals.
    pub total_p: f64,
    /// Incidents outside `[start, end)`, ignored.
    pub incidents_outside_window: usize,
    /// The rule for which cells are listed.
    pub cell_set: &'static str,
    /// Number of cells per `change` label.
    pub changes: BTreeMap<&'static str, usize>,
}

/// Result of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Cells sorted by H3 index.
    pub cells: Vec<CompareCell>,
    /// Summary.
    pub summary: CompareSummary,
}

impl CompareParams {
    /// Checks ranges and parses the instants into `(start, split, end)` (start/end `None`
    /// when not given).
    pub fn validate(&self) -> Result<(Option<i64>, i64, Option<i64>), EmergingError> {
        if self.resolution > 12 {
            return Err(EmergingError::InvalidResolution {
                resolution: self.resolution,
            });
        }
        let parse = |field: &'static str, v: &Option<String>| {
            v.as_deref()
                .map(|s| {
                    parse_instant(s).ok_or(EmergingError::InvalidDate {
                        field,
                        value: s.to_owned(),
                    })
                })
                .transpose()
        };
        let split = parse("split_at", &self.split_at)?.ok_or(EmergingError::MissingSplit)?;
        Ok((
            parse("start", &self.start)?,
            split,
            parse("end", &self.end)?,
        ))
    }
}

/// Compares the incident rates per cell before and after `split_at`.
pub fn compare_periods(
    incidents: &[(u64, i64)],
    params: &CompareParams,
) -> Result<Comparison, EmergingError> {
    let (start, split, end) = params.validate()?;
    let resolution =
        Resolution::try_from(params.resolution).map_err(|_| EmergingError::InvalidResolution {
            resolution: params.resolution,
        })?;
    let window = resolve_window(incidents, start, end)?;
    if !(window.start < split && split < window.end) {
        return Err(EmergingError::SplitOutsideWindow);
    }
    let mut counts: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut outside = 0;
    for &(raw, t) in incidents {
        let cell = u64::from(parent_cell(raw, resolution)?);
        if !(window.start..window.end).contains(&t) {
            outside += 1;
        } else if t < split {
            counts.entry(cell).or_default().0 += 1;
        } else {
            counts.entry(cell).or_default().1 += 1;
        }
    }
    let before_days = (split - window.start) as f64 / SECONDS_PER_DAY;
    let after_days = (window.end - split) as f64 / SECONDS_PER_DAY;
    let pi0 = before_days / (before_days + after_days);
    let p: Vec<f64> = counts
        .values()
        .map(|&(a, b)| binom_test_two_sided(a, a + b, pi0))
        .collect();
    let sign: Vec<f64> = counts
        .values()
        .map(|&(a, b)| b as f64 / after_days - a as f64 / before_days)
        .collect();
    let bins = if params.fdr {
        fdr_bins(&sign, &p)
    } else {
        sign.iter()
            .zip(&p)
            .map(|(&s, &p)| confidence_bin(s, p))
            .collect()
    };
    let cells: Vec<CompareCell> = counts
        .iter()
        .zip(p.iter().zip(&bins))
        .map(|((&cell, &(a, b)), (&p, &bin))| CompareCell {
            h3: format!("{cell:x}"),
            count_before: a,
            count_after: b,
            rate_before_per_day: a as f64 / before_days,
            rate_after_per_day: b as f64 / after_days,
            rate_ratio: (a > 0).then(|| (b as f64 / after_days) / (a as f64 / before_days)),
            p,
            bin,
            change: change_label(bin),
        })
        .collect();
    let (total_before, total_after) = counts.values().fold((0, 0), |s, c| (s.0 + c.0, s.1 + c.1));
    let mut changes = BTreeMap::new();
    for c in &cells {
        *changes.entry(c.change).or_insert(0) += 1;
    }
    let summary = CompareSummary {
        params: params.clone(),
        before_start: format_instant(window.start),
        split_at: format_instant(split),
        after_end: format_instant(window.end),
        before_days,
        after_days,
        total_before,
        total_after,
        total_p: binom_test_two_sided(total_before, total_before + total_after, pi0),
        incidents_outside_window: outside,
        cell_set: "cells with at least one incident in either period",
        changes,
    };
    Ok(Comparison { cells, summary })
}

fn change_label(bin: i8) -> &'static str {
    if bin >= 2 {
        "increase"
    } else if bin <= -2 {
        "decrease"
    } else {
        "no_significant_change"
    }
}

/// ln of the binomial probability `P(X = k)`, `X ~ Bin(n, p)`, `0 < p < 1`.
fn ln_binom_pmf(k: u64, n: u64, p: f64) -> f64 {
    let (k, n) = (k as f64, n as f64);
    libm::lgamma(n + 1.0) - libm::lgamma(k + 1.0) - libm::lgamma(n - k + 1.0)
        + k * p.ln()
        + (n - k) * (-p).ln_1p()
}

/// Exact two-sided binomial test p-value of `k` successes in `n` trials at success
/// probability `p` (`0 < p < 1`), as `scipy.stats.binomtest(k, n, p).pvalue`: the total
/// probability of the outcomes whose probability is at most `P(X = k) · (1 + 1e-7)`.
pub fn binom_test_two_sided(k: u64, n: u64, p: f64) -> f64 {
    if n == 0 || (k as f64) == p * n as f64 {
        return 1.0;
    }
    let d = ln_binom_pmf(k, n, p);
    let limit = d + (1e-7f64).ln_1p();
    let total: f64 = (0..=n)
        .map(|i| ln_binom_pmf(i, n, p))
        .filter(|&l| l <= limit)
        .map(f64::exp)
        .sum();
    total.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_small_cases_by_hand() {
        // Bin(4, 1/2): pmf 1,4,6,4,1 /16. k=0 -> outcomes with pmf <= 1/16: {0,4} -> 2/16.
        assert!((binom_test_two_sided(0, 4, 0.5) - 0.125).abs() < 1e-15);
        assert!((binom_test_two_sided(1, 4, 0.5) - 10.0 / 16.0).abs() < 1e-15);
        assert_eq!(binom_test_two_sided(2, 4, 0.5), 1.0);
        assert_eq!(binom_test_two_sided(0, 0, 0.3), 1.0);
    }
}
