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

use crate::model::Tier;

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

/// The rules of a tier.
pub fn cell_rules(tier: Tier) -> CellRules {
    match tier {
        Tier::Open => CellRules { tier, max_resolution: 8, min_count: 10, weekly_bins: false },
        Tier::Closed => CellRules { tier, max_resolution: 10, min_count: 5, weekly_bins: true },
        Tier::Private => CellRules { tier, max_resolution: 15, min_count: 1, weekly_bins: true },
    }
}

/// Refusals of the disclosure rules.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DisclosureError {
    /// The requested resolution is finer than the tier allows.
    #[error("the {tier} tier may use H3 resolutions up to {max}; resolution {asked} is too fine")]
    ResolutionTooFine { tier: &'static str, max: u8, asked: u8 },
    /// Weekly bins reveal too much for this tier.
    #[error("the {tier} tier gets whole months at the finest; use bin=month or bin=quarter")]
    BinTooFine { tier: &'static str },
}

impl CellRules {
    pub fn check_resolution(&self, res: u8) -> Result<(), DisclosureError> {
        if res > self.max_resolution {
            Err(DisclosureError::ResolutionTooFine { tier: self.tier.as_str(), max: self.max_resolution, asked: res })
        } else {
            Ok(())
        }
    }

    pub fn check_weekly(&self, weekly: bool) -> Result<(), DisclosureError> {
        if weekly && !self.weekly_bins { Err(DisclosureError::BinTooFine { tier: self.tier.as_str() }) } else { Ok(()) }
    }

    /// A count as it may be shown: `None` when it is suppressed (0 < count < min_count).
    pub fn count(&self, count: u64) -> Option<u64> {
        if count > 0 && count < u64::from(self.min_count) { None } else { Some(count) }
    }
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
}
