//! Emerging hot spots: space-time Getis-Ord Gi* on H3 cells x time bins, the Mann-Kendall
//! trend of each cell's Gi* z-scores, and the 17 categories of ArcGIS Pro's Emerging Hot Spot
//! Analysis; plus a before/after comparison of two periods.
//!
//! Pipeline of [`emerging_hot_spots`] (ArcGIS "How Emerging Hot Spot Analysis works"):
//! 1. the cube ([`cube`]): incidents at H3 resolution `resolution` x `bin` (week / month /
//!    quarter, UTC), all cells within `k` rings of a non-empty cell, zero counts included
//!    (or the study-area cells given to [`emerging_hot_spots_in_area`]);
//! 2. space-time Gi* ([`gi`]) per (cell, bin): neighbours within `k` rings and the `time_k`
//!    previous bins, self included, binary weights by default, global window = entire cube;
//!    two-sided normal p; bins -3..3, with Benjamini-Hochberg FDR over the whole cube when
//!    `fdr` (Esri `fdrTransform`, changing only the bins);
//! 3. Mann-Kendall ([`crate::analysis::trend`]) on each cell's z series, and on its counts;
//! 4. the category ([`classify`]).
//!
//! Differences from ArcGIS, on purpose: the cell set includes the empty cells within `k`
//! rings of the data (ArcGIS without a mask keeps only locations with at least one point),
//! as in our hot spot analysis; significance for the categories is 95 % (|bin| >= 2).
//! Caveat shared with ArcGIS: consecutive Gi* windows overlap in time (`time_k >= 1`), so a
//! cell's z series is autocorrelated and Mann-Kendall finds a "significant" trend in a
//! stationary series more often than 5 % of the time (a planted stationary hot spot came out
//! persistent in 18 of 20 seeded runs, intensifying or diminishing otherwise).
//!
//! Speed: 1M incidents, res 9, 36 monthly bins (5,075 cells), release build, one core of
//! the shared 2-core machine: 0.1-0.2 s for the cube and Gi*, 0.3-0.5 s for the whole result
//! (timings noisy under load; issue 8's target is 1 s).
//!
//! References (tests/it/ref_emerging.rs): Gi* equals a numpy brute force on a dense
//! space-time weight matrix; Mann-Kendall equals pymannkendall; the comparison's binomial
//! test equals scipy; each category is met by a series built to its rule and missed one bin
//! off.

#[path = "emerging/calendar.rs"]
pub mod calendar;
#[path = "emerging/classify.rs"]
pub mod classify;
#[path = "emerging/compare.rs"]
pub mod compare;
#[path = "emerging/cube.rs"]
pub mod cube;
#[path = "emerging/gi.rs"]
pub mod gi;

use std::collections::BTreeMap;

use h3o::{CellIndex, Resolution};
use serde::{Deserialize, Serialize};

pub use calendar::TimeBin;
pub use classify::{Category, classify};
pub use compare::{CompareParams, Comparison, compare_periods};
pub use gi::Kernel;

use crate::analysis::stats::{confidence_bin, fdr_bins, two_sided_p};
use crate::analysis::trend::{MannKendall, mann_kendall};

/// Parameters of the analysis; field names are the query parameters of
/// `GET /datasets/{id}/emerging`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmergingParams {
    /// H3 resolution of the cells, 0..=12 (default 9).
    pub resolution: u8,
    /// Time step: `week`, `month` (default) or `quarter`.
    pub bin: TimeBin,
    /// Spatial neighbourhood in grid rings, 0..=10 (default 1).
    pub k: u32,
    /// Previous time steps in the neighbourhood, 0..=12 (default 1, as ArcGIS).
    pub time_k: u32,
    /// Spatial kernel over the rings (default `uniform`, i.e. binary weights).
    pub kernel: Kernel,
    /// Temporal kernel over the steps back (default `uniform`).
    pub time_kernel: Kernel,
    /// Benjamini-Hochberg FDR on the bins (default true).
    pub fdr: bool,
    /// Fewest bins accepted, 3..=10000 (default 10, the minimum number of time steps of an
    /// ArcGIS space-time cube; Mann-Kendall has little power on shorter series).
    pub min_bins: u32,
    /// Start of the cube (RFC 3339 date or date-time; default: first incident).
    pub start: Option<String>,
    /// End of the cube, exclusive (default: one second after the last incident).
    pub end: Option<String>,
}

impl Default for EmergingParams {
    fn default() -> Self {
        EmergingParams {
            resolution: 9,
            bin: TimeBin::Month,
            k: 1,
            time_k: 1,
            kernel: Kernel::Uniform,
            time_kernel: Kernel::Uniform,
            fdr: true,
            min_bins: 10,
            start: None,
            end: None,
        }
    }
}

/// Errors of the emerging hot spot analysis and the comparison.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmergingError {
    /// The H3 resolution is above 12 (incidents are indexed at 12).
    #[error("resolution must be 0..=12, got {resolution}")]
    InvalidResolution {
        /// The resolution given.
        resolution: u8,
    },
    /// `k` is above 10 rings.
    #[error("k must be 0..=10 rings, got {k}")]
    InvalidK {
        /// The value given.
        k: u32,
    },
    /// `time_k` is above 12 steps.
    #[error("time_k must be 0..=12 time steps, got {time_k}")]
    InvalidTimeK {
        /// The value given.
        time_k: u32,
    },
    /// `min_bins` is outside 3..=10000.
    #[error("min_bins must be 3..=10000, got {min_bins}")]
    InvalidMinBins {
        /// The value given.
        min_bins: u32,
    },
    /// A date parameter is not an RFC 3339 date or date-time.
    #[error("{field} is not an RFC 3339 date or date-time: {value:?}")]
    InvalidDate {
        /// The parameter name.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// `start` is not before `end`.
    #[error("the time window is empty: start must be before end")]
    EmptyWindow,
    /// No incident falls inside the window.
    #[error("no incidents in the time window")]
    NoIncidents,
    /// The window spans fewer bins than `min_bins`.
    #[error("the window spans {bins} time bins, fewer than min_bins = {min_bins}")]
    TooFewBins {
        /// Bins in the window.
        bins: usize,
        /// The minimum asked for.
        min_bins: usize,
    },
    /// The cube would hold too many (cell, bin) observations.
    #[error(
        "the cube would have {observations} cells x bins, more than {max}; use a coarser resolution or bin, or a shorter window"
    )]
    CubeTooLarge {
        /// Cells x bins.
        observations: usize,
        /// The limit.
        max: usize,
    },
    /// All counts in the cube are equal, so Gi* is undefined.
    #[error("all cells and bins have the same count: Gi* is undefined (zero variance)")]
    ZeroVariance,
    /// An incident's cell is not a valid H3 cell index.
    #[error("{cell:#x} is not a valid H3 cell index")]
    InvalidCell {
        /// The raw index.
        cell: u64,
    },
    /// An incident's cell is coarser than the analysis resolution.
    #[error("cell {cell:#x} is coarser than resolution {resolution}")]
    CellTooCoarse {
        /// The raw index.
        cell: u64,
        /// The analysis resolution.
        resolution: u8,
    },
    /// A study-area cell is not at the analysis resolution.
    #[error("study-area cell {cell:#x} is not at resolution {resolution}")]
    StudyAreaResolution {
        /// The raw index.
        cell: u64,
        /// The analysis resolution.
        resolution: u8,
    },
    /// The comparison has no `split_at`.
    #[error("split_at is required for a comparison")]
    MissingSplit,
    /// `split_at` is not strictly inside the window.
    #[error("split_at must lie strictly between the start and the end of the window")]
    SplitOutsideWindow,
}

impl EmergingError {
    /// Stable snake_case code for API error bodies.
    pub fn code(&self) -> &'static str {
        use EmergingError::*;
        match self {
            InvalidResolution { .. } => "invalid_resolution",
            InvalidK { .. } => "invalid_k",
            InvalidTimeK { .. } => "invalid_time_k",
            InvalidMinBins { .. } => "invalid_min_bins",
            InvalidDate { .. } => "invalid_date",
            EmptyWindow => "empty_time_window",
            NoIncidents => "no_incidents",
            TooFewBins { .. } => "too_few_time_bins",
            CubeTooLarge { .. } => "cube_too_large",
            ZeroVariance => "zero_variance",
            InvalidCell { .. } => "invalid_h3_cell",
            CellTooCoarse { .. } => "cell_too_coarse",
            StudyAreaResolution { .. } => "study_area_resolution",
            MissingSplit => "missing_split_at",
            SplitOutsideWindow => "split_outside_window",
        }
    }
}

impl EmergingParams {
    /// Checks ranges and parses `start`/`end` into unix seconds.
    pub fn validate(&self) -> Result<(Option<i64>, Option<i64>), EmergingError> {
        if self.resolution > 12 {
            return Err(EmergingError::InvalidResolution {
                resolution: self.resolution,
            });
        }
        if self.k > 10 {
            return Err(EmergingError::InvalidK { k: self.k });
        }
        if self.time_k > 12 {
            return Err(EmergingError::InvalidTimeK {
                time_k: self.time_k,
            });
        }
        if !(3..=10_000).contains(&self.min_bins) {
            return Err(EmergingError::InvalidMinBins {
                min_bins: self.min_bins,
            });
        }
        let parse = |field: &'static str, v: &Option<String>| {
            v.as_deref()
                .map(|s| {
                    calendar::parse_instant(s).ok_or(EmergingError::InvalidDate {
                        field,
                        value: s.to_owned(),
                    })
                })
                .transpose()
        };
        let (start, end) = (parse("start", &self.start)?, parse("end", &self.end)?);
        if let (Some(s), Some(e)) = (start, end)
            && s >= e
        {
            return Err(EmergingError::EmptyWindow);
        }
        Ok((start, end))
    }
}

/// One (cell, bin) of a cell's series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BinValue {
    /// First day of the bin (RFC 3339 full-date, UTC).
    pub bin_start: String,
    /// Incidents in the cell and bin.
    pub count: u32,
    /// Space-time Gi* z-score (ArcGIS `<VAR>_HS_ZSCORE`).
    pub z: f64,
    /// Two-sided p-value (`_HS_PVALUE`).
    pub p: f64,
    /// Confidence bin -3..3 (`_HS_BIN`), FDR-adjusted when `fdr`.
    pub bin: i8,
}

/// One cell of the result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmergingCell {
    /// H3 cell index (hex string).
    pub h3: String,
    /// Category label, e.g. `"new_hot_spot"`.
    pub category: Category,
    /// Mann-Kendall Z of the Gi* z series (`_TREND_ZSCORE`).
    pub trend_z: f64,
    /// Its two-sided p-value (`_TREND_PVALUE`).
    pub trend_p: f64,
    /// Its confidence bin -3..3 (`_TREND_BIN`, no FDR).
    pub trend_bin: i8,
    /// Mann-Kendall test and Sen's slope (incidents per bin) of the count series.
    pub count_trend: MannKendall,
    /// Incidents over all bins.
    pub total_count: u64,
    /// The series, oldest bin first.
    pub series: Vec<BinValue>,
}

/// What was computed and on what.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmergingSummary {
    /// Parameters as given (defaults filled in).
    pub params: EmergingParams,
    /// The cell set rule.
    pub cell_set: &'static str,
    /// The weights.
    pub weights: &'static str,
    /// The significance rules of the classification.
    pub significance: &'static str,
    /// Cells in the cube.
    pub n_cells: usize,
    /// Bins in the cube.
    pub n_bins: usize,
    /// Cells x bins.
    pub n_observations: usize,
    /// Start of each bin (RFC 3339 full-date).
    pub bin_starts: Vec<String>,
    /// Start of the window (RFC 3339, UTC); the first bin may start earlier.
    pub window_start: String,
    /// End of the window, exclusive (RFC 3339, UTC); the last bin may end later, so the
    /// first and last bins can be partial.
    pub window_end: String,
    /// Incidents inside the window.
    pub incidents_used: usize,
    /// Incidents outside the window, ignored.
    pub incidents_outside_window: usize,
    /// Incidents in the window but outside the study-area cells, ignored.
    pub incidents_outside_area: usize,
    /// Mean count per (cell, bin).
    pub mean_count: f64,
    /// Population standard deviation of the counts.
    pub sd_count: f64,
    /// Number of cells per category label.
    pub categories: BTreeMap<&'static str, usize>,
}

/// Result of [`emerging_hot_spots`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmergingResult {
    /// Cells sorted by H3 index.
    pub cells: Vec<EmergingCell>,
    /// Summary.
    pub summary: EmergingSummary,
}

/// Space-time Gi* per (cell, bin) on the whole cube: z, p and bins, indexed `c·T + t`.
#[derive(Debug, Clone, PartialEq)]
pub struct SpaceTimeGi {
    /// The cube that was analysed.
    pub cube: cube::Cube,
    /// z-scores.
    pub z: Vec<f64>,
    /// Two-sided p-values.
    pub p: Vec<f64>,
    /// Bins -3..3 (FDR-adjusted when asked).
    pub bins: Vec<i8>,
}

/// Builds the cube and computes the space-time Gi* (steps 1-2 of the pipeline). `study`:
/// the study-area cells at `params.resolution` (e.g. from the hot spot analysis' polygon
/// tiler), or `None` for the cells within `k` rings of the data.
pub fn space_time_gi_star(
    incidents: &[(u64, i64)],
    params: &EmergingParams,
    study: Option<&[CellIndex]>,
) -> Result<SpaceTimeGi, EmergingError> {
    let (start, end) = params.validate()?;
    let resolution =
        Resolution::try_from(params.resolution).map_err(|_| EmergingError::InvalidResolution {
            resolution: params.resolution,
        })?;
    let spec = cube::CubeSpec {
        resolution,
        bin: params.bin,
        k: params.k,
        window: cube::resolve_window(incidents, start, end)?,
        min_bins: params.min_bins as usize,
    };
    let cube = cube::build_cube(incidents, &spec, study)?;
    let spatial = cube::spatial_weights(&cube.cells, params.k, params.kernel);
    let time_w: Vec<f64> = (0..=params.time_k)
        .map(|d| params.time_kernel.weight(d, params.time_k))
        .collect();
    let x: Vec<f64> = cube.counts.iter().map(|&c| c as f64).collect();
    let z =
        gi::space_time_gi(&x, cube.n_bins, &spatial, &time_w).ok_or(EmergingError::ZeroVariance)?;
    let p: Vec<f64> = z.iter().map(|&z| two_sided_p(z)).collect();
    let bins = if params.fdr {
        fdr_bins(&z, &p)
    } else {
        z.iter()
            .zip(&p)
            .map(|(&z, &p)| confidence_bin(z, p))
            .collect()
    };
    Ok(SpaceTimeGi { cube, z, p, bins })
}

/// Emerging Hot Spot Analysis of incidents given as `(H3 cell at resolution >=
/// params.resolution, unix seconds UTC)`, on the cells within `k` rings of the data.
pub fn emerging_hot_spots(
    incidents: &[(u64, i64)],
    params: &EmergingParams,
) -> Result<EmergingResult, EmergingError> {
    analyse(incidents, params, None)
}

/// As [`emerging_hot_spots`], on the given study-area cells (all at `params.resolution`);
/// incidents in other cells are left out and counted in the summary.
pub fn emerging_hot_spots_in_area(
    incidents: &[(u64, i64)],
    params: &EmergingParams,
    study_cells: &[CellIndex],
) -> Result<EmergingResult, EmergingError> {
    analyse(incidents, params, Some(study_cells))
}

fn analyse(
    incidents: &[(u64, i64)],
    params: &EmergingParams,
    study: Option<&[CellIndex]>,
) -> Result<EmergingResult, EmergingError> {
    let st = space_time_gi_star(incidents, params, study)?;
    let t_n = st.cube.n_bins;
    let bin_starts: Vec<String> = (0..t_n as i64)
        .map(|t| calendar::format_date(params.bin.start_of(st.cube.first_bin + t)))
        .collect();
    let mut categories = BTreeMap::new();
    let mut cells = Vec::with_capacity(st.cube.cells.len());
    for (c, cell) in st.cube.cells.iter().enumerate() {
        if c % 256 == 0 {
            crate::cancel::checkpoint();
        }
        let range = c * t_n..(c + 1) * t_n;
        let counts: Vec<f64> = st.cube.counts[range.clone()]
            .iter()
            .map(|&v| v as f64)
            .collect();
        // Both series have t_n >= min_bins >= 3 finite values, so these cannot fail.
        let too_few = |_| EmergingError::TooFewBins {
            bins: t_n,
            min_bins: params.min_bins as usize,
        };
        let trend = mann_kendall(&st.z[range.clone()]).map_err(too_few)?;
        let count_trend = mann_kendall(&counts).map_err(too_few)?;
        let category = classify(&st.bins[range.clone()], &trend);
        *categories.entry(category.label()).or_insert(0) += 1;
        let series = (0..t_n)
            .map(|t| BinValue {
                bin_start: bin_starts[t].clone(),
                count: st.cube.counts[c * t_n + t],
                z: st.z[c * t_n + t],
                p: st.p[c * t_n + t],
                bin: st.bins[c * t_n + t],
            })
            .collect();
        cells.push(EmergingCell {
            h3: cell.to_string(),
            category,
            trend_z: trend.z,
            trend_p: trend.p,
            trend_bin: confidence_bin(trend.z, trend.p),
            count_trend,
            total_count: counts.iter().sum::<f64>() as u64,
            series,
        });
    }
    let summary = summarize(params, &st, bin_starts, categories, study.is_some());
    Ok(EmergingResult { cells, summary })
}

fn summarize(
    params: &EmergingParams,
    st: &SpaceTimeGi,
    bin_starts: Vec<String>,
    categories: BTreeMap<&'static str, usize>,
    study_area: bool,
) -> EmergingSummary {
    let n = st.cube.counts.len() as f64;
    let mean = st.cube.counts.iter().map(|&c| c as f64).sum::<f64>() / n;
    let var = st
        .cube
        .counts
        .iter()
        .map(|&c| (c as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    EmergingSummary {
        params: params.clone(),
        cell_set: if study_area {
            "the study-area cells given; zero counts are data; incidents elsewhere are left out"
        } else {
            "all H3 cells within k rings of a cell with at least one incident in the window; zero counts are data"
        },
        weights: "space-time: cells within k rings (self included) x the time_k previous bins and the bin itself; weight = kernel(rings) x time_kernel(steps), binary when both are uniform; global window = entire cube",
        significance: "hot/cold bin: |bin| >= 2 (p < 0.05, Benjamini-Hochberg FDR over the cube when fdr); trend: Mann-Kendall p < 0.05; 90 % rule over all bins",
        n_cells: st.cube.cells.len(),
        n_bins: st.cube.n_bins,
        n_observations: st.cube.counts.len(),
        bin_starts,
        window_start: calendar::format_instant(st.cube.window.start),
        window_end: calendar::format_instant(st.cube.window.end),
        incidents_used: st.cube.incidents_used,
        incidents_outside_window: st.cube.incidents_outside_window,
        incidents_outside_area: st.cube.incidents_outside_area,
        mean_count: mean,
        sd_count: var.sqrt(),
        categories,
    }
}
