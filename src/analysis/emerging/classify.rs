//! The 17 categories of ArcGIS Emerging Hot Spot Analysis ("Learn more about Emerging Hot
//! Spot Analysis", ArcGIS Pro 3.x; CARTO's `SPACETIME_HOTSPOTS_CLASSIFICATION` names in
//! brackets) from one location's series of Gi* bins and the Mann-Kendall trend of its
//! Gi* z-scores.
//!
//! A bin is a *significant hot spot* when its Gi* bin is `>= 2` (p < 0.05, after FDR when it
//! is on) and a *significant cold spot* when it is `<= -2`; a trend is significant when the
//! Mann-Kendall `p < 0.05`. "90 %" means `hot bins >= 0.9 · n`, counted over all `n` bins
//! (compared in integers: `10 · hot >= 9 · n`). With `H` the number of hot bins:
//!
//! | label | rule (cold spots mirror it with hot <-> cold, trend up <-> down) |
//! |---|---|
//! | `new_hot_spot` (incipient) | final bin hot, and no earlier bin hot (`H = 1`) |
//! | `consecutive_hot_spot` (sequential) | one unbroken run of >= 2 hot bins ending at the final bin, no hot bin before it, `H < 90 %` |
//! | `intensifying_hot_spot` (strengthening) | `H >= 90 %`, final bin hot, trend up and significant |
//! | `persistent_hot_spot` (stable) | `H >= 90 %`, final bin hot, no significant trend |
//! | `diminishing_hot_spot` (declining) | `H >= 90 %`, final bin hot, trend down and significant |
//! | `sporadic_hot_spot` (occasional) | final bin hot, on-and-off history, `H < 90 %`, never a significant cold spot |
//! | `oscillating_hot_spot` (fluctuating) | final bin hot, a significant cold spot in some earlier bin, `H < 90 %` |
//! | `historical_hot_spot` (legacy) | final bin not hot, `H >= 90 %` |
//! | `no_pattern` | none of the above, hot or cold |
//!
//! Where the published rules overlap we decide as follows (the final-step rule): the final
//! bin picks the side (hot final -> a hot category, cold final -> a cold category, neither ->
//! historical or no pattern); on that side the 90 % rules come first, then new, consecutive,
//! oscillating and sporadic in that order (as sfdep's `classify_hotspot`), so a location that
//! was once a cold spot and is now hot only in the final bin is *new*, not oscillating.

use serde::Serialize;

use crate::analysis::trend::MannKendall;

/// Smallest |Gi* bin| counted as a significant hot or cold spot (95 % confidence).
pub const SIGNIFICANT_BIN: i8 = 2;
/// Significance level of the Mann-Kendall trend.
pub const TREND_ALPHA: f64 = 0.05;

/// One of the 17 Emerging Hot Spot Analysis categories; serialised as its snake_case label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Hot only in the final bin.
    NewHotSpot,
    /// An unbroken run of hot bins ending at the final bin, hot never before, < 90 % hot.
    ConsecutiveHotSpot,
    /// Hot >= 90 % incl. the final bin, significantly increasing.
    IntensifyingHotSpot,
    /// Hot >= 90 % incl. the final bin, no significant trend.
    PersistentHotSpot,
    /// Hot >= 90 % incl. the final bin, significantly decreasing.
    DiminishingHotSpot,
    /// Hot in the final bin, on and off before, < 90 % hot, never cold.
    SporadicHotSpot,
    /// Hot in the final bin, cold in an earlier bin, < 90 % hot.
    OscillatingHotSpot,
    /// Not hot in the final bin, hot in >= 90 % of the bins.
    HistoricalHotSpot,
    /// Cold only in the final bin.
    NewColdSpot,
    /// An unbroken run of cold bins ending at the final bin, cold never before, < 90 % cold.
    ConsecutiveColdSpot,
    /// Cold >= 90 % incl. the final bin, significantly decreasing z (getting colder).
    IntensifyingColdSpot,
    /// Cold >= 90 % incl. the final bin, no significant trend.
    PersistentColdSpot,
    /// Cold >= 90 % incl. the final bin, significantly increasing z (less cold).
    DiminishingColdSpot,
    /// Cold in the final bin, on and off before, < 90 % cold, never hot.
    SporadicColdSpot,
    /// Cold in the final bin, hot in an earlier bin, < 90 % cold.
    OscillatingColdSpot,
    /// Not cold in the final bin, cold in >= 90 % of the bins.
    HistoricalColdSpot,
    /// None of the patterns.
    NoPattern,
}

/// The hot-side patterns, mirrored for cold spots.
#[derive(Debug, Clone, Copy)]
enum Pattern {
    New,
    Consecutive,
    Intensifying,
    Persistent,
    Diminishing,
    Sporadic,
    Oscillating,
    Historical,
}

impl Category {
    /// The label string (as serialised), e.g. `"new_hot_spot"`.
    pub fn label(self) -> &'static str {
        use Category::*;
        match self {
            NewHotSpot => "new_hot_spot",
            ConsecutiveHotSpot => "consecutive_hot_spot",
            IntensifyingHotSpot => "intensifying_hot_spot",
            PersistentHotSpot => "persistent_hot_spot",
            DiminishingHotSpot => "diminishing_hot_spot",
            SporadicHotSpot => "sporadic_hot_spot",
            OscillatingHotSpot => "oscillating_hot_spot",
            HistoricalHotSpot => "historical_hot_spot",
            NewColdSpot => "new_cold_spot",
            ConsecutiveColdSpot => "consecutive_cold_spot",
            IntensifyingColdSpot => "intensifying_cold_spot",
            PersistentColdSpot => "persistent_cold_spot",
            DiminishingColdSpot => "diminishing_cold_spot",
            SporadicColdSpot => "sporadic_cold_spot",
            OscillatingColdSpot => "oscillating_cold_spot",
            HistoricalColdSpot => "historical_cold_spot",
            NoPattern => "no_pattern",
        }
    }

    /// The ArcGIS `CATEGORY` code: 1..8 hot (new .. historical), -1..-8 cold, 0 no pattern.
    pub fn arcgis_code(self) -> i8 {
        use Category::*;
        let all = [
            NewHotSpot,
            ConsecutiveHotSpot,
            IntensifyingHotSpot,
            PersistentHotSpot,
            DiminishingHotSpot,
            SporadicHotSpot,
            OscillatingHotSpot,
            HistoricalHotSpot,
        ];
        let cold = [
            NewColdSpot,
            ConsecutiveColdSpot,
            IntensifyingColdSpot,
            PersistentColdSpot,
            DiminishingColdSpot,
            SporadicColdSpot,
            OscillatingColdSpot,
            HistoricalColdSpot,
        ];
        if let Some(i) = all.iter().position(|c| *c == self) {
            i as i8 + 1
        } else if let Some(i) = cold.iter().position(|c| *c == self) {
            -(i as i8 + 1)
        } else {
            0
        }
    }

    fn from_pattern(p: Pattern, hot: bool) -> Category {
        use Category::*;
        let (h, c) = match p {
            Pattern::New => (NewHotSpot, NewColdSpot),
            Pattern::Consecutive => (ConsecutiveHotSpot, ConsecutiveColdSpot),
            Pattern::Intensifying => (IntensifyingHotSpot, IntensifyingColdSpot),
            Pattern::Persistent => (PersistentHotSpot, PersistentColdSpot),
            Pattern::Diminishing => (DiminishingHotSpot, DiminishingColdSpot),
            Pattern::Sporadic => (SporadicHotSpot, SporadicColdSpot),
            Pattern::Oscillating => (OscillatingHotSpot, OscillatingColdSpot),
            Pattern::Historical => (HistoricalHotSpot, HistoricalColdSpot),
        };
        if hot { h } else { c }
    }
}

/// Classifies one location from its Gi* bins (oldest first) and the Mann-Kendall trend of
/// its Gi* z-scores. An empty series is `no_pattern`.
pub fn classify(bins: &[i8], trend: &MannKendall) -> Category {
    let Some(&last) = bins.last() else {
        return Category::NoPattern;
    };
    let hot: Vec<bool> = bins.iter().map(|&b| b >= SIGNIFICANT_BIN).collect();
    let cold: Vec<bool> = bins.iter().map(|&b| b <= -SIGNIFICANT_BIN).collect();
    let trend_sign = if trend.p < TREND_ALPHA {
        trend.z.signum()
    } else {
        0.0
    };
    if last >= SIGNIFICANT_BIN {
        Category::from_pattern(final_pattern(&hot, &cold, trend_sign), true)
    } else if last <= -SIGNIFICANT_BIN {
        Category::from_pattern(final_pattern(&cold, &hot, -trend_sign), false)
    } else if at_least_90_percent(&hot) {
        Category::from_pattern(Pattern::Historical, true)
    } else if at_least_90_percent(&cold) {
        Category::from_pattern(Pattern::Historical, false)
    } else {
        Category::NoPattern
    }
}

fn at_least_90_percent(sig: &[bool]) -> bool {
    10 * sig.iter().filter(|&&s| s).count() >= 9 * sig.len()
}

/// Pattern of a location whose final bin is significant on its side (`same`); `other` marks
/// the opposite significant bins and `trend_sign` is +1 (towards this side), −1 or 0.
fn final_pattern(same: &[bool], other: &[bool], trend_sign: f64) -> Pattern {
    if at_least_90_percent(same) {
        return if trend_sign > 0.0 {
            Pattern::Intensifying
        } else if trend_sign < 0.0 {
            Pattern::Diminishing
        } else {
            Pattern::Persistent
        };
    }
    let total = same.iter().filter(|&&s| s).count();
    let final_run = same.iter().rev().take_while(|&&s| s).count();
    if total == 1 {
        Pattern::New
    } else if final_run == total {
        Pattern::Consecutive
    } else if other.iter().any(|&s| s) {
        Pattern::Oscillating
    } else {
        Pattern::Sporadic
    }
}
