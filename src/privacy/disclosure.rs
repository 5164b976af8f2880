//! Disclosure control of aggregated outputs per tier: the one place that decides how fine a
//! cell may be and which counts are too small to show.
//!
//! | tier    | finest H3 resolution | counts shown from | time bins        |
//! |---------|----------------------|-------------------|------------------|
//! | open    | 8 (~0.74 km² cells)  | 10 (`k_open`)     | month or coarser |
//! | closed  | 10 (~0.015 km²)      | 5 (`k_closed`)    | any              |
//! | private | 15                   | 1 (all)           | any              |
//!
//! Suppressed counts are `null` with `count_suppressed: true`; statistics of a cell (z, p,
//! bins) are neighbourhood aggregates and stay.

use crate::model::{DatasetSettings, Tier};

/// The rules of one tier for cell outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CellRules {
    pub tier: Tier,
    /// Finest H3 resolution this tier may ask for.
    pub max_resolution: u8,
    /// Smallest count shown; smaller non-zero counts are suppressed.
    pub min_count: u32,
    /// Whether week bins are allowed (open tier: whole months only).
    pub weekly_bins: bool,
}

/// The rules of a tier with the default settings.
pub fn cell_rules(tier: Tier) -> CellRules {
    rules_for(tier, &DatasetSettings::default(), false)
}

/// The rules of a tier on a dataset; `sensitive` when the request is restricted to sensitive
/// categories (they are shown only at the dataset's coarse resolution below the private tier).
pub fn rules_for(tier: Tier, s: &DatasetSettings, sensitive: bool) -> CellRules {
    let coarse = |r: u8| {
        if sensitive {
            r.min(s.sensitive_max_resolution)
        } else {
            r
        }
    };
    match tier {
        Tier::Open => CellRules {
            tier,
            max_resolution: coarse(8),
            min_count: s.k_open.max(1),
            weekly_bins: false,
        },
        Tier::Closed => CellRules {
            tier,
            max_resolution: coarse(10),
            min_count: s.k_closed.max(1),
            weekly_bins: true,
        },
        Tier::Private => CellRules {
            tier,
            max_resolution: 15,
            min_count: 1,
            weekly_bins: true,
        },
    }
}

/// Whether a category filter restricts a request to sensitive categories only.
pub fn is_sensitive(categories: Option<&[String]>, s: &DatasetSettings) -> bool {
    categories
        .is_some_and(|c| !c.is_empty() && c.iter().all(|c| s.sensitive_categories.contains(c)))
}

/// Refusals of the disclosure rules.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DisclosureError {
    /// The requested resolution is finer than the tier allows.
    #[error("the {tier} tier may use H3 resolutions up to {max}; resolution {asked} is too fine")]
    ResolutionTooFine {
        tier: &'static str,
        max: u8,
        asked: u8,
    },
    /// Weekly bins reveal too much for this tier.
    #[error("the {tier} tier gets whole months at the finest; use bin=month or bin=quarter")]
    BinTooFine { tier: &'static str },
}

impl CellRules {
    pub fn check_resolution(&self, res: u8) -> Result<(), DisclosureError> {
        if res > self.max_resolution {
            Err(DisclosureError::ResolutionTooFine {
                tier: self.tier.as_str(),
                max: self.max_resolution,
                asked: res,
            })
        } else {
            Ok(())
        }
    }

    pub fn check_weekly(&self, weekly: bool) -> Result<(), DisclosureError> {
        if weekly && !self.weekly_bins {
            Err(DisclosureError::BinTooFine {
                tier: self.tier.as_str(),
            })
        } else {
            Ok(())
        }
    }

    /// A count as it may be shown: `None` when it is suppressed (0 < count < min_count).
    pub fn count(&self, count: u64) -> Option<u64> {
        if count > 0 && count < u64::from(self.min_count) {
            None
        } else {
            Some(count)
        }
    }
}

/// Which counts to hide: primary suppression (0 < count < min_count) plus secondary
/// suppression for outputs whose total is published: while the hidden counts add up to less
/// than `min_count` (so total minus the shown counts would reveal a small number), the
/// smallest shown non-zero counts are hidden too, until at least two are hidden and their sum
/// reaches `min_count`. Deterministic (ties by position), so the same cells give the same
/// answer in every query.
pub fn hidden_counts(counts: &[u64], rules: &CellRules) -> Vec<bool> {
    hidden_counts_with(counts, rules, &[])
}

/// As [`hidden_counts`], with `also[i]` hiding count `i` as a primary suppression for another
/// reason (e.g. a differencing rule); `also` may be shorter than `counts`.
pub fn hidden_counts_with(counts: &[u64], rules: &CellRules, also: &[bool]) -> Vec<bool> {
    let mut hidden: Vec<bool> = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| rules.count(c).is_none() || (c > 0 && also.get(i) == Some(&true)))
        .collect();
    let k = u64::from(rules.min_count);
    let mut sum: u64 = counts
        .iter()
        .zip(&hidden)
        .filter(|(_, h)| **h)
        .map(|(c, _)| c)
        .sum();
    let mut n = hidden.iter().filter(|h| **h).count();
    if n == 0 || k <= 1 {
        return hidden;
    }
    let mut order: Vec<usize> = (0..counts.len())
        .filter(|&i| !hidden[i] && counts[i] > 0)
        .collect();
    order.sort_by_key(|&i| (counts[i], i));
    for i in order {
        if n >= 2 && sum >= k {
            break;
        }
        hidden[i] = true;
        sum += counts[i];
        n += 1;
    }
    hidden
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_counts_are_suppressed_per_tier() {
        let open = cell_rules(Tier::Open);
        assert_eq!(open.count(9), None);
        assert_eq!(open.count(10), Some(10));
        assert_eq!(open.count(0), Some(0));
        assert_eq!(cell_rules(Tier::Closed).count(4), None);
        assert_eq!(cell_rules(Tier::Private).count(1), Some(1));
        assert!(open.check_resolution(9).is_err());
        assert!(open.check_resolution(8).is_ok());
        assert!(open.check_weekly(true).is_err());
    }

    #[test]
    fn secondary_suppression_protects_the_total() {
        let open = cell_rules(Tier::Open);
        // one small cell: hiding it alone would let total - shown reveal 3
        let h = hidden_counts(&[3, 50, 12, 0, 40], &open);
        assert_eq!(h, vec![true, false, true, false, false]);
        // two small cells whose sum is still < 10: the smallest shown one joins them
        let h = hidden_counts(&[2, 3, 11, 30], &open);
        assert_eq!(h, vec![true, true, true, false]);
        // nothing small: nothing hidden
        assert_eq!(
            hidden_counts(&[10, 0, 25], &open),
            vec![false, false, false]
        );
        // private: nothing hidden
        assert_eq!(
            hidden_counts(&[1, 2], &cell_rules(Tier::Private)),
            vec![false, false]
        );
    }
}
