//! Hot spots of incident counts on the H3 grid: Getis-Ord Gi*, Local Moran's I, FDR bins,
//! conditional-permutation pseudo p-values and optimized scale selection (issue 3).
//!
//! What is computed, exactly:
//! * Counts per H3 cell on the cell set of [`h3grid::CellGrid`] (study area, or the k-ring
//!   hull of the non-empty cells); zero-count cells are data.
//! * `gi_z`: Gi* with kernel weights `w_ij = K(d_ij)` over the k-ring, self included
//!   (`w_ii = K(0) = 1`): `Gi* = (Σ_j w_ij x_j − x̄ Σ_j w_ij) / (S √((n Σ w_ij² − (Σ w_ij)²)/(n−1)))`
//!   with population `S`. With the default uniform kernel this is ArcGIS `GiZScore` and PySAL
//!   esda `G_Local(star=True, transform='B').Zs` (same formula as [`stats::gi_star`], evaluated
//!   here on compressed rows to keep memory at a few bytes per link). `gi_p` is the two-sided
//!   normal p (ArcGIS `GiPValue`, esda `2·p_norm`), `gi_bin` the ArcGIS `Gi_Bin`
//!   (−3..3 at 99/95/90 %; Benjamini-Hochberg cutoffs when `fdr`, which never changes z or p).
//! * `gi_p_sim` (when `permutations > 0`): esda conditional randomisation of `Σ_{j≠i} w_ij x_j`
//!   with x_i held fixed ([`moran::Draws`]), pseudo p = (M+1)/(R+1) for `alternative`.
//! * `lmi_*` (method `local_moran`): esda `Moran_Local` with row-standardised kernel weights
//!   (self excluded), seeded permutations (default 999), label at p < 0.05.
//! * Optimized mode ([`optimized`]) when `resolution` or `k` is missing; FDR is then forced.
//!
//! Results are sorted by H3 index and fully determined by the input, parameters and `seed`
//! (permutations run on up to 4 scoped threads over a shared draw table; the numbers do not
//! depend on the thread count).
//!
//! Speed (release, 1M incidents at res 12 in a 40 km square, shared 2-core machine, noisy):
//! res 9 / k 1 ≈ 20-30 ms, res 10 / k 1 ≈ 130 ms (128k cells), optimized mode ≈ 2 s.
//! Incidents sorted by fine cell aggregate in one pass. 999 permutations with the uniform
//! kernel use the binary-weight sweep of [`moran::binary_pseudo_p`]: ≈ 2 ms at res 9 (5k
//! cells) and ≈ 4 ms at res 10 (33k cells) in `benches/analysis` (was 85 and 370 ms by
//! simulating each cell, which other kernels still do).
//!
//! ```
//! use hotspots::analysis::hotspot::{run, HotspotParams};
//! use h3o::{LatLng, Resolution};
//! let incidents: Vec<_> = (0..200)
//!     .map(|i| {
//!         let (dx, dy) = (f64::from(i % 20), f64::from(i / 20));
//!         let hot = if i < 60 { 0.0 } else { 1.0 };
//!         LatLng::new(52.09 + hot * dy * 1e-3, 5.12 + hot * dx * 1e-3)
//!             .expect("valid")
//!             .to_cell(Resolution::Twelve)
//!     })
//!     .collect();
//! let params = HotspotParams { resolution: Some(9), k: Some(1), ..HotspotParams::default() };
//! let out = run(&incidents, None, &params).expect("enough data");
//! assert!(out.cells.iter().any(|c| c.gi_bin == 3));
//! ```

use std::str::FromStr;

use geo::MultiPolygon;
use h3o::CellIndex;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::h3grid::{self, CellGrid, CellSetRule, IncidentCells, Kernel, Neighbours};
use super::moran::{self, Draws, GlobalMoran, LmiLabel};
use super::optimized::{self, ScaleChoice};
use super::stats::{self, Alternative};

/// Fewest incidents (inside the cell set) an analysis accepts (ArcGIS minimum).
pub const MIN_INCIDENTS: u64 = 30;
/// Fewest cells an analysis accepts (ArcGIS: "too few aggregated features", 30).
pub const MIN_CELLS: usize = 30;
/// Default cap on the number of cells.
pub const DEFAULT_MAX_CELLS: usize = 200_000;
/// Cap on neighbour links (cells × ring size) held in memory.
pub const MAX_LINKS: usize = 10_000_000;
/// Largest number of permutations accepted.
pub const MAX_PERMUTATIONS: u32 = 9_999;
/// Permutations of Local Moran's I when none are given (esda default).
pub const DEFAULT_LMI_PERMUTATIONS: u32 = 999;
/// Significance level of the Local Moran labels.
pub const LMI_ALPHA: f64 = 0.05;

/// Why a hot-spot analysis cannot run.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum HotspotError {
    /// Fewer incidents than [`MIN_INCIDENTS`] inside the cell set.
    #[error("at least {min} incidents are needed for a hot-spot analysis, found {found}")]
    TooFewIncidents { found: u64, min: u64 },
    /// Fewer than [`MIN_CELLS`] cells to compare (a tiny study area or a coarse resolution).
    #[error(
        "at least {min} cells are needed for a hot-spot analysis, the grid has {found}; choose a finer resolution or a larger area"
    )]
    TooFewCells { found: usize, min: usize },
    /// All cells have the same count, so no statistic is defined.
    #[error("all cells have the same incident count (zero variance): nothing stands out")]
    ZeroVariance,
    /// The grid would have more cells than allowed (a huge study area, or a fine resolution).
    #[error(
        "the analysis grid would exceed {max_cells} cells; choose a coarser resolution or a smaller area"
    )]
    TooManyCells { max_cells: usize },
    /// The neighbour lists would exceed the memory budget (many cells times a large k).
    #[error(
        "the neighbour lists would exceed {max_links} links; choose a smaller k or a coarser resolution"
    )]
    TooManyLinks { max_links: usize },
    /// H3 resolution outside 0..=15.
    #[error("H3 resolution {resolution} is outside 0..=15")]
    ResolutionOutOfRange { resolution: u8 },
    /// Resolution finer than the resolution at which incidents are stored.
    #[error("H3 resolution {resolution} is finer than the stored resolution {fine}")]
    ResolutionTooFine { resolution: u8, fine: u8 },
    /// k-ring size outside 1..=20.
    #[error("k = {k} is outside 1..=20")]
    KOutOfRange { k: u32 },
    /// Too many permutations requested.
    #[error("permutations = {permutations} exceeds the maximum of 9999")]
    PermutationsOutOfRange { permutations: u32 },
    /// Local Moran's I needs permutations for its p-values.
    #[error("method local_moran needs permutations > 0 for its pseudo p-values")]
    PermutationsRequired,
    /// `max_cells` of zero.
    #[error("max_cells must be at least 1")]
    MaxCellsOutOfRange,
    /// Unknown `kernel` value.
    #[error("unknown kernel '{value}': use uniform, triangular, quadratic, quartic or gaussian")]
    UnknownKernel { value: String },
    /// Unknown `method` value.
    #[error("unknown method '{value}': use gistar or local_moran")]
    UnknownMethod { value: String },
    /// Incident cells of different resolutions.
    #[error("incident cells must all have the same H3 resolution")]
    MixedResolutions,
    /// The study area cannot be tiled.
    #[error("invalid study area: {reason}")]
    InvalidStudyArea { reason: String },
}

impl HotspotError {
    /// Stable snake_case code for problem+json.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooFewIncidents { .. } => "too_few_incidents",
            Self::TooFewCells { .. } => "too_few_cells",
            Self::ZeroVariance => "zero_variance",
            Self::TooManyCells { .. } => "too_many_cells",
            Self::TooManyLinks { .. } => "too_many_links",
            Self::ResolutionOutOfRange { .. } => "resolution_out_of_range",
            Self::ResolutionTooFine { .. } => "resolution_too_fine",
            Self::KOutOfRange { .. } => "k_out_of_range",
            Self::PermutationsOutOfRange { .. } => "permutations_out_of_range",
            Self::PermutationsRequired => "permutations_required",
            Self::MaxCellsOutOfRange => "max_cells_out_of_range",
            Self::UnknownKernel { .. } => "unknown_kernel",
            Self::UnknownMethod { .. } => "unknown_method",
            Self::MixedResolutions => "mixed_resolutions",
            Self::InvalidStudyArea { .. } => "invalid_study_area",
        }
    }
}

/// Which local statistic to add to Gi*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum Method {
    /// Getis-Ord Gi* only.
    #[default]
    Gistar,
    /// Gi* plus Anselin Local Moran's I.
    LocalMoran,
}

impl FromStr for Method {
    type Err = HotspotError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gistar" => Ok(Self::Gistar),
            "local_moran" => Ok(Self::LocalMoran),
            _ => Err(HotspotError::UnknownMethod { value: s.into() }),
        }
    }
}

impl TryFrom<String> for Method {
    type Error = HotspotError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl FromStr for Kernel {
    type Err = HotspotError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "uniform" => Ok(Self::Uniform),
            "triangular" => Ok(Self::Triangular),
            "quadratic" => Ok(Self::Quadratic),
            "quartic" => Ok(Self::Quartic),
            "gaussian" => Ok(Self::Gaussian),
            _ => Err(HotspotError::UnknownKernel { value: s.into() }),
        }
    }
}

/// Query parameters of `GET /datasets/{id}/hotspots` (minus the common filters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HotspotParams {
    /// `gistar` (default) or `local_moran`.
    pub method: Method,
    /// H3 resolution; chosen from the data when absent (optimized mode).
    pub resolution: Option<u8>,
    /// k-ring size 1..=20; chosen from the data when absent (optimized mode).
    pub k: Option<u32>,
    /// Kernel over the k-ring (default uniform = binary weights).
    #[serde(deserialize_with = "kernel_from_str")]
    pub kernel: Kernel,
    /// Benjamini-Hochberg FDR on the bins (forced in optimized mode).
    pub fdr: bool,
    /// Conditional permutations; default 0 for gistar, 999 for local_moran.
    pub permutations: Option<u32>,
    /// Seed of the permutations.
    pub seed: u64,
    /// Alternative of the pseudo p-values: `two-sided` (default), `greater`, `less`.
    pub alternative: Alternative,
    /// Largest grid accepted (default 200 000 cells).
    pub max_cells: usize,
}

fn kernel_from_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Kernel, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

impl Default for HotspotParams {
    fn default() -> Self {
        Self {
            method: Method::Gistar,
            resolution: None,
            k: None,
            kernel: Kernel::Uniform,
            fdr: false,
            permutations: None,
            seed: 0,
            alternative: Alternative::TwoSided,
            max_cells: DEFAULT_MAX_CELLS,
        }
    }
}

impl HotspotParams {
    /// Checks the ranges that do not depend on the data.
    pub fn validate(&self) -> Result<(), HotspotError> {
        if let Some(r) = self.resolution {
            h3grid::resolution(r)?;
        }
        if let Some(k) = self.k
            && !(1..=h3grid::MAX_K).contains(&k)
        {
            return Err(HotspotError::KOutOfRange { k });
        }
        let perms = self.effective_permutations();
        if perms > MAX_PERMUTATIONS {
            return Err(HotspotError::PermutationsOutOfRange {
                permutations: perms,
            });
        }
        if self.method == Method::LocalMoran && perms == 0 {
            return Err(HotspotError::PermutationsRequired);
        }
        if self.max_cells == 0 {
            return Err(HotspotError::MaxCellsOutOfRange);
        }
        Ok(())
    }

    /// Permutations after applying the method default.
    pub fn effective_permutations(&self) -> u32 {
        self.permutations.unwrap_or(match self.method {
            Method::Gistar => 0,
            Method::LocalMoran => DEFAULT_LMI_PERMUTATIONS,
        })
    }
}

/// One analysed cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellResult {
    /// The cell.
    #[serde(skip)]
    pub cell: CellIndex,
    /// H3 index as a hex string.
    pub h3: String,
    /// Incidents in the cell.
    pub count: u32,
    /// Gi* z-score.
    pub gi_z: f64,
    /// Two-sided normal p of `gi_z`.
    pub gi_p: f64,
    /// ArcGIS `Gi_Bin` −3..3 (FDR-adjusted cutoffs when FDR is on).
    pub gi_bin: i8,
    /// Neighbours within k rings in the cell set (self excluded).
    pub n_neighbors: u32,
    /// Conditional-permutation pseudo p of Gi* (when permutations > 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gi_p_sim: Option<f64>,
    /// Local Moran's I (method local_moran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lmi_i: Option<f64>,
    /// Local Moran z from the permutations (esda `z_sim`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lmi_z: Option<f64>,
    /// Local Moran pseudo p.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lmi_p: Option<f64>,
    /// `HH`, `HL`, `LH`, `LL` or `not_significant` (p < 0.05).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lmi_label: Option<LmiLabel>,
}

/// Benjamini-Hochberg cutoffs (largest significant p) at the three levels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FdrCutoffs {
    /// At α = 0.10 (bins ±1).
    pub alpha_10: Option<f64>,
    /// At α = 0.05 (bins ±2).
    pub alpha_05: Option<f64>,
    /// At α = 0.01 (bins ±3).
    pub alpha_01: Option<f64>,
}

/// What was computed and on which cells.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Method used.
    pub method: Method,
    /// Cell-set rule.
    pub cell_set: CellSetRule,
    /// The rule in words.
    pub cell_set_rule: &'static str,
    /// H3 resolution analysed.
    pub resolution: u8,
    /// k-ring size.
    pub k: u32,
    /// Kernel.
    pub kernel: Kernel,
    /// Kernel formula.
    pub kernel_formula: &'static str,
    /// Weights of each statistic, in words.
    pub weights: String,
    /// Number of cells analysed.
    pub n_cells: usize,
    /// Cells with at least one incident.
    pub n_nonempty_cells: usize,
    /// Incidents given.
    pub incidents_total: u64,
    /// Incidents inside the cell set.
    pub incidents_used: u64,
    /// Incidents outside the study area, not analysed.
    pub incidents_ignored: u64,
    /// FDR applied to the bins.
    pub fdr: bool,
    /// BH cutoffs when FDR is on.
    pub fdr_cutoffs: Option<FdrCutoffs>,
    /// Permutations R (0 = none).
    pub permutations: u32,
    /// Seed of the permutations.
    pub seed: u64,
    /// Alternative of the pseudo p-values.
    pub alternative: Alternative,
    /// Cell limit in force.
    pub max_cells: usize,
    /// How `gi_p` is computed.
    pub p_value: &'static str,
    /// Cells with gi_bin > 0 / < 0.
    pub n_hot: usize,
    /// Cells with gi_bin < 0.
    pub n_cold: usize,
    /// Global Moran's I of the counts (row-standardised kernel weights).
    pub global_moran: Option<GlobalMoran>,
    /// Optimized mode: what was chosen and why.
    pub optimized: Option<ScaleChoice>,
}

/// The hot-spot layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HotspotResult {
    /// Cells sorted by H3 index.
    pub cells: Vec<CellResult>,
    /// Summary of the analysis.
    pub summary: Summary,
}

/// Resolution of the incident cells (all equal).
pub fn fine_resolution(incidents: &[CellIndex]) -> Result<u8, HotspotError> {
    let first = incidents.first().ok_or(HotspotError::TooFewIncidents {
        found: 0,
        min: MIN_INCIDENTS,
    })?;
    // the resolution bits (52..56) of every index against the first's, in a branch-free pass
    const RES_BITS: u64 = 0xF << 52;
    let bits = u64::from(*first) & RES_BITS;
    let differ = incidents
        .iter()
        .fold(0, |acc, c| acc | ((u64::from(*c) & RES_BITS) ^ bits));
    if differ != 0 {
        return Err(HotspotError::MixedResolutions);
    }
    Ok(u8::from(first.resolution()))
}

/// Gi* z-scores on compressed rows: self weight `w_self`, neighbour weights `w` aligned
/// with `nb.idx`. `None` for zero variance.
pub fn gi_star_rows(x: &[f64], nb: &Neighbours, w: &[f64], w_self: f64) -> Option<Vec<f64>> {
    let n = x.len();
    let (mean, s) = moran::mean_sd(x);
    if n < 2 || s.is_nan() || s <= 1e-150 {
        return None;
    }
    let nf = n as f64;
    let z = (0..n)
        .map(|i| {
            let (a, b) = (nb.offsets[i], nb.offsets[i + 1]);
            let (mut wx, mut sw, mut sw2) = (w_self * x[i], w_self, w_self * w_self);
            for (&j, &wt) in nb.idx[a..b].iter().zip(&w[a..b]) {
                wx += wt * x[j as usize];
                sw += wt;
                sw2 += wt * wt;
            }
            let d2 = (nf * sw2 - sw * sw) / (nf - 1.0);
            if d2 <= 1e-12 {
                0.0
            } else {
                (wx - mean * sw) / (s * d2.sqrt())
            }
        })
        .collect();
    Some(z)
}

/// Conditional-permutation pseudo p of Gi* for every cell. With binary weights (the uniform
/// kernel) by [`moran::binary_pseudo_p`] (the same numbers, without simulating each cell),
/// else by simulating each cell.
pub fn gi_pseudo_p(
    x: &[f64],
    nb: &Neighbours,
    w: &[f64],
    permutations: usize,
    seed: u64,
    alt: Alternative,
) -> Vec<f64> {
    let n = x.len();
    let max_card = (0..n).map(|i| nb.row(i).0.len()).max().unwrap_or(0);
    let draws = Draws::new(n, max_card, permutations, seed);
    let observed = |i: usize| -> f64 {
        let (a, b) = (nb.offsets[i], nb.offsets[i + 1]);
        nb.idx[a..b]
            .iter()
            .zip(&w[a..b])
            .map(|(&j, &wt)| wt * x[j as usize])
            .sum()
    };
    if w.iter().all(|&v| v == 1.0) {
        let obs: Vec<f64> = (0..n).map(observed).collect();
        if let Some(p) = moran::binary_pseudo_p(x, nb, &obs, &draws, alt) {
            return p;
        }
    }
    moran::per_cell(n, |i, sims| {
        let (a, b) = (nb.offsets[i], nb.offsets[i + 1]);
        draws.simulate(i, x, &w[a..b], sims);
        moran::permutation_p(observed(i), sims, alt)
    })
}

/// Runs the analysis on incidents stored as H3 cells (one per incident, all at the same fine
/// resolution), optionally inside a WGS84 lon/lat study area.
pub fn run(
    incidents: &(impl IncidentCells + ?Sized),
    study_area: Option<&MultiPolygon<f64>>,
    params: &HotspotParams,
) -> Result<HotspotResult, HotspotError> {
    let fine = check_input(incidents, params)?;
    let choice = match (params.resolution, params.k) {
        (Some(_), Some(_)) => None,
        (r, k) => Some(optimized::choose_scale(
            incidents,
            study_area,
            r,
            k,
            fine,
            params.max_cells,
        )?),
    };
    let res = choice
        .as_ref()
        .map_or(params.resolution.unwrap_or(fine), |c| c.resolution);
    let k = choice.as_ref().map_or(params.k.unwrap_or(1), |c| c.k);
    let grid = CellGrid::build(
        incidents,
        study_area,
        h3grid::resolution(res)?,
        k,
        params.max_cells,
    )?;
    if grid.incidents_used < MIN_INCIDENTS {
        return Err(HotspotError::TooFewIncidents {
            found: grid.incidents_used,
            min: MIN_INCIDENTS,
        });
    }
    if grid.cells.len() < MIN_CELLS {
        return Err(HotspotError::TooFewCells {
            found: grid.cells.len(),
            min: MIN_CELLS,
        });
    }
    let nb = Neighbours::for_grid(&grid, k, MAX_LINKS)?;
    let fdr = params.fdr || choice.is_some();
    let gi = GiOutput::compute(&grid.values(), &nb, params, fdr)?;
    let lmi = match params.method {
        Method::Gistar => None,
        Method::LocalMoran => Some(
            moran::local_moran(
                &grid.values(),
                &nb,
                &nb.row_standardised(params.kernel),
                params.effective_permutations() as usize,
                params.seed,
                params.alternative,
            )
            .ok_or(HotspotError::ZeroVariance)?,
        ),
    };
    let cells = cell_results(&grid, &nb, &gi, lmi.as_ref());
    let summary = summarise(&grid, &nb, &gi, params, incidents.total(), fdr, choice);
    Ok(HotspotResult { cells, summary })
}

/// Parameter ranges, incident resolution and count; returns the fine resolution.
fn check_input(
    incidents: &(impl IncidentCells + ?Sized),
    params: &HotspotParams,
) -> Result<u8, HotspotError> {
    params.validate()?;
    let fine = incidents.fine_resolution()?;
    let total = incidents.total();
    if total < MIN_INCIDENTS {
        return Err(HotspotError::TooFewIncidents {
            found: total,
            min: MIN_INCIDENTS,
        });
    }
    match params.resolution {
        Some(r) if r > fine => Err(HotspotError::ResolutionTooFine {
            resolution: r,
            fine,
        }),
        _ => Ok(fine),
    }
}

/// Gi* z, p, bins and optional pseudo p of every cell.
struct GiOutput {
    z: Vec<f64>,
    p: Vec<f64>,
    bin: Vec<i8>,
    p_sim: Option<Vec<f64>>,
}

impl GiOutput {
    fn compute(
        x: &[f64],
        nb: &Neighbours,
        params: &HotspotParams,
        fdr: bool,
    ) -> Result<Self, HotspotError> {
        let w = nb.weights(params.kernel);
        let z = gi_star_rows(x, nb, &w, params.kernel.weight(0, nb.k))
            .ok_or(HotspotError::ZeroVariance)?;
        let p: Vec<f64> = z.iter().map(|&z| stats::two_sided_p(z)).collect();
        let bin = if fdr {
            stats::fdr_bins(&z, &p)
        } else {
            z.iter()
                .zip(&p)
                .map(|(&z, &p)| stats::confidence_bin(z, p))
                .collect()
        };
        let perms = params.effective_permutations() as usize;
        let p_sim =
            (perms > 0).then(|| gi_pseudo_p(x, nb, &w, perms, params.seed, params.alternative));
        Ok(Self { z, p, bin, p_sim })
    }
}

fn cell_results(
    grid: &CellGrid,
    nb: &Neighbours,
    gi: &GiOutput,
    lmi: Option<&moran::LocalMoran>,
) -> Vec<CellResult> {
    (0..grid.cells.len())
        .map(|i| CellResult {
            cell: grid.cells[i],
            h3: grid.cells[i].to_string(),
            count: grid.counts[i],
            gi_z: gi.z[i],
            gi_p: gi.p[i],
            gi_bin: gi.bin[i],
            n_neighbors: nb.row(i).0.len() as u32,
            gi_p_sim: gi.p_sim.as_ref().map(|p| p[i]),
            lmi_i: lmi.map(|l| l.i[i]),
            lmi_z: lmi.map(|l| l.z_sim[i]),
            lmi_p: lmi.map(|l| l.p_sim[i]),
            lmi_label: lmi.map(|l| l.label(i, LMI_ALPHA)),
        })
        .collect()
}

fn summarise(
    grid: &CellGrid,
    nb: &Neighbours,
    gi: &GiOutput,
    params: &HotspotParams,
    total: u64,
    fdr: bool,
    choice: Option<ScaleChoice>,
) -> Summary {
    Summary {
        method: params.method,
        cell_set: grid.rule,
        cell_set_rule: grid.rule.describe(),
        resolution: grid.resolution,
        k: nb.k,
        kernel: params.kernel,
        kernel_formula: params.kernel.formula(),
        weights: weights_text(params.method),
        n_cells: grid.cells.len(),
        n_nonempty_cells: grid.nonempty,
        incidents_total: total,
        incidents_used: grid.incidents_used,
        incidents_ignored: grid.incidents_ignored,
        fdr,
        fdr_cutoffs: fdr.then(|| FdrCutoffs {
            alpha_10: stats::bh_cutoff(&gi.p, 0.10),
            alpha_05: stats::bh_cutoff(&gi.p, 0.05),
            alpha_01: stats::bh_cutoff(&gi.p, 0.01),
        }),
        permutations: params.effective_permutations(),
        seed: params.seed,
        alternative: params.alternative,
        max_cells: params.max_cells,
        p_value: "gi_p: two-sided normal p of gi_z (never FDR-adjusted); pseudo p = (M+1)/(R+1)",
        n_hot: gi.bin.iter().filter(|&&b| b > 0).count(),
        n_cold: gi.bin.iter().filter(|&&b| b < 0).count(),
        global_moran: moran::global_moran(&grid.values(), nb, params.kernel),
        optimized: choice,
    }
}

fn weights_text(method: Method) -> String {
    let gi = "Gi*: kernel weights over the k-ring, self included (uniform = binary, as ArcGIS GiZScore / esda G_Local(star=True, transform='B'))";
    match method {
        Method::Gistar => gi.into(),
        Method::LocalMoran => format!(
            "{gi}; Local Moran: the same kernel weights without self, row-standardised (esda Moran_Local transformation='r')"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use h3o::{LatLng, Resolution};

    #[test]
    fn compressed_gi_star_equals_stats_gi_star() {
        let centre = LatLng::new(52.09, 5.12)
            .expect("valid")
            .to_cell(Resolution::Nine);
        let cells = h3grid::k_ring_hull(&[centre], 3, 1000).expect("small");
        let nb = Neighbours::build(&cells, 2, 100_000).expect("small");
        let x: Vec<f64> = (0..cells.len()).map(|i| ((i * 7919) % 13) as f64).collect();
        for kernel in [Kernel::Uniform, Kernel::Quartic, Kernel::Gaussian] {
            let w = nb.weights(kernel);
            let rows: Vec<Vec<(usize, f64)>> = (0..cells.len())
                .map(|i| {
                    let (a, b) = (nb.offsets[i], nb.offsets[i + 1]);
                    let mut r = vec![(i, 1.0)];
                    r.extend(
                        nb.idx[a..b]
                            .iter()
                            .zip(&w[a..b])
                            .map(|(&j, &v)| (j as usize, v)),
                    );
                    r
                })
                .collect();
            let want = stats::gi_star(&x, &rows).expect("variance");
            let got = gi_star_rows(&x, &nb, &w, kernel.weight(0, 2)).expect("variance");
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12, "{kernel:?}: {a} vs {b}");
            }
        }
        assert!(
            gi_star_rows(
                &vec![3.0; cells.len()],
                &nb,
                &nb.weights(Kernel::Uniform),
                1.0
            )
            .is_none()
        );
    }

    #[test]
    fn every_error_has_a_distinct_code() {
        let errs = [
            HotspotError::TooFewIncidents { found: 1, min: 30 },
            HotspotError::ZeroVariance,
            HotspotError::TooFewCells { found: 1, min: 30 },
            HotspotError::TooManyCells { max_cells: 1 },
            HotspotError::TooManyLinks { max_links: 1 },
            HotspotError::ResolutionOutOfRange { resolution: 16 },
            HotspotError::ResolutionTooFine {
                resolution: 13,
                fine: 12,
            },
            HotspotError::KOutOfRange { k: 0 },
            HotspotError::PermutationsOutOfRange {
                permutations: 10_000,
            },
            HotspotError::PermutationsRequired,
            HotspotError::MaxCellsOutOfRange,
            HotspotError::UnknownKernel { value: "x".into() },
            HotspotError::UnknownMethod { value: "x".into() },
            HotspotError::MixedResolutions,
            HotspotError::InvalidStudyArea { reason: "x".into() },
        ];
        let mut codes: Vec<&str> = errs.iter().map(HotspotError::code).collect();
        assert!(errs.iter().all(|e| !e.to_string().is_empty()));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), errs.len());
    }
}
