//! Output types of the proximity analysis (the summary member, the report) and the
//! non-query options. Everything serialises with serde; no NaN or infinity is ever stored
//! (undefined values are `None`).

use super::{Dedup, DistanceHistogram, FacilityStats, GlobalResult, LCrossCurve};
use super::{NearestFacility, NullModel, RhoCurve};
use serde::Serialize;

/// Knobs that are not query parameters (tests use them to align with spatstat).
#[derive(Debug, Clone, PartialEq)]
pub struct ProximityOptions {
    /// CSR pixel grid `(nx, ny)` over the window's bounding box; `None`: pixel side
    /// max(min(radius_m, first ring)/10, √(bbox area / 262144)), at least 32 pixels a side.
    pub grid: Option<(usize, usize)>,
    /// Number of d values of the ρ(d) curve. Default 256.
    pub rho_points: usize,
    /// r values (m, starting at 0, increasing) of L_cross; `None`: 51 values from 0 to
    /// min(max(radius_m, last ring), shorter bbox side / 4) (spatstat's rmax rule).
    pub r_m: Option<Vec<f64>>,
}

impl Default for ProximityOptions {
    fn default() -> Self {
        Self {
            grid: None,
            rho_points: 256,
            r_m: None,
        }
    }
}

/// Where the null's reference points come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReferenceInfo {
    /// `"pixel_grid"` (CSR) or `"baseline_points"`.
    pub kind: &'static str,
    /// Reference points inside the window.
    pub points: usize,
    /// Pixel size `[dx, dy]` (m) of the CSR grid.
    pub pixel_m: Option<[f64; 2]>,
    /// Baseline points dropped because they lie outside the window or weigh 0.
    pub baseline_dropped: usize,
}

/// Naive versus deduplicated global results (issue 4 §6).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepeatsSummary {
    /// Every incident counts.
    pub naive: GlobalResult,
    /// One unit per distinct fine cell (`None` when fewer than 10 cells).
    pub cell: Option<GlobalResult>,
    /// One unit per distinct subject (`None` when no subjects or fewer than 10).
    pub subject: Option<GlobalResult>,
    /// z_naive / z_cell: how much repeats at the same place inflate the naive z-score
    /// (`None` unless both z are positive).
    pub inflation_cell: Option<f64>,
    /// z_naive / z_subject.
    pub inflation_subject: Option<f64>,
}

/// The global result alone, as [`global_summary`](super::global_summary) computes it: the
/// members of [`ProximitySummary`] that describe it, equal to the full analysis's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlobalSummary {
    /// Null model used.
    pub null: NullModel,
    /// Deduplication of the global result.
    pub dedup: Dedup,
    /// `"study_area"` or `"convex_hull"`.
    pub window: &'static str,
    /// Incidents given.
    pub incidents_input: usize,
    /// Incidents outside the window (left out of the test).
    pub incidents_outside_window: usize,
    /// Where the null's reference points come from.
    pub reference: ReferenceInfo,
    /// The global test of the `dedup` variant (`ProximitySummary::global`).
    pub global: GlobalResult,
}

/// The summary member of the FeatureCollection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProximitySummary {
    /// Null model used.
    pub null: NullModel,
    /// Deduplication used for the per-facility results, `global`, ρ(d) and L_cross.
    pub dedup: Dedup,
    /// `"study_area"` or `"convex_hull"` (of the incidents).
    pub window: &'static str,
    /// Window area (km²).
    pub window_area_km2: f64,
    /// Incidents given.
    pub incidents_input: usize,
    /// Incidents outside the window (left out of the tests).
    pub incidents_outside_window: usize,
    /// Units analysed after deduplication.
    pub n_units: usize,
    /// Facilities given.
    pub n_facilities: usize,
    /// radius_m used.
    pub radius_m: f64,
    /// rings_m used.
    pub rings_m: Vec<f64>,
    /// Seed used.
    pub seed: u64,
    /// Reference points of the null.
    pub reference: ReferenceInfo,
    /// Method of the per-facility p-values: `"poisson_upper_tail"`.
    pub facility_p_method: &'static str,
    /// Global result for the chosen dedup.
    pub global: GlobalResult,
    /// Naive vs deduplicated.
    pub repeats: RepeatsSummary,
}

/// Everything the proximity endpoint returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProximityReport {
    /// Global results and metadata.
    pub summary: ProximitySummary,
    /// Per-facility statistics, in input order.
    pub facilities: Vec<FacilityStats>,
    /// Nearest facility of every input incident, in input order (private tier only).
    pub nearest: Vec<NearestFacility>,
    /// Histogram of distance to the nearest facility (analysed units).
    pub histogram: DistanceHistogram,
    /// ρ(d) with 95 % band.
    pub rho: RhoCurve,
    /// L_cross(r) with envelope.
    pub l_cross: LCrossCurve,
}
