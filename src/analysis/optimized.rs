//! Optimized scale selection on the H3 grid, after ArcGIS Optimized Hot Spot Analysis
//! ("How Optimized Hot Spot Analysis works"; Esri `OptimizedHotSpotAnalysis.py`).
//!
//! **Resolution** (when not given):
//! 1. Unique incident locations = distinct stored fine cells, projected to local metres
//!    (equirectangular about their mean latitude; < 1 % error over a Dutch region).
//! 2. Nearest-neighbour distance of each location (R-tree; above 100 000 locations, of a
//!    systematic sample of them, each still against all). **Locational outliers** are
//!    locations whose distance exceeds mean + 3 standard deviations; they are reported and
//!    left out of the sizing (as ArcGIS does).
//! 3. Target cell spacing = 2 × mean nearest-neighbour distance of the other locations
//!    (ArcGIS derives its fishnet size in `SSUtilities.LocationInfo`, which is not public;
//!    the factor 2 is the `nnScale = 2.0` constant of the Esri script, our choice of use);
//!    the chosen resolution is the finest one whose centre spacing (√3 × mean H3 edge length)
//!    reaches the target, never finer than the stored resolution.
//! 4. If that grid would exceed `max_cells`, step to coarser resolutions until it fits.
//!
//! **k** (when not given): incremental spatial autocorrelation: global Moran's I z
//! (randomisation; uniform k-ring weights, row-standardised) for k = 1..=10 on a fixed cell
//! set (the study-area cells, or the non-empty cells as ArcGIS without a boundary). As the
//! Esri script: the first peak (z_k above both neighbours, significant: z > 1.96), else the
//! highest peak (any z), else its k-NN fallback: the mean distance from each non-empty cell
//! to its m-th nearest
//! non-empty cell, m = 5 % of them clamped to 3..=30, capped at one standard distance,
//! converted to rings (ceil of distance / centre spacing) and clamped to 1..=10.

use rstar::RTree;
use serde::Serialize;

use geo::MultiPolygon;
use h3o::{CellIndex, LatLng, Resolution};

use super::h3grid::{self, CellGrid, IncidentCells, Kernel, Neighbours};
use super::hotspot::{HotspotError, MAX_LINKS};
use super::moran;

/// Most nearest-neighbour queries made when sizing (a systematic sample beyond this).
pub const MAX_NN_QUERIES: usize = 100_000;
/// Largest k tried by the incremental spatial autocorrelation.
pub const ISA_MAX_K: u32 = 10;
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// One step of the incremental spatial autocorrelation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct IsaStep {
    /// Ring size.
    pub k: u32,
    /// Cells in the set for this k.
    pub n_cells: usize,
    /// Global Moran's I.
    pub moran_i: f64,
    /// Its z-score under randomisation.
    pub z: f64,
}

/// What optimized mode chose and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScaleChoice {
    /// Resolution used.
    pub resolution: u8,
    /// k used.
    pub k: u32,
    /// Whether the resolution was chosen here (false: given).
    pub resolution_chosen: bool,
    /// Whether k was chosen here (false: given).
    pub k_chosen: bool,
    /// Why this resolution.
    pub resolution_reason: String,
    /// Why this k.
    pub k_reason: String,
    /// Distinct incident locations (stored fine cells).
    pub unique_locations: usize,
    /// Locations whose nearest-neighbour distance was measured (all, or a systematic sample
    /// of [`MAX_NN_QUERIES`]).
    pub nn_measured_locations: usize,
    /// Measured locations left out of the sizing as locational outliers.
    pub locational_outliers: usize,
    /// Mean nearest-neighbour distance of the other locations, metres.
    pub mean_nn_distance_m: Option<f64>,
    /// Incremental spatial autocorrelation steps (empty when k was given).
    pub isa: Vec<IsaStep>,
    /// First significant peak of the ISA z, if any.
    pub peak_k: Option<u32>,
    /// FDR is always applied in optimized mode.
    pub fdr_forced: bool,
}

/// Chooses the missing resolution and/or k (see module docs).
pub fn choose_scale(
    incidents: &(impl IncidentCells + ?Sized),
    study_area: Option<&MultiPolygon<f64>>,
    resolution: Option<u8>,
    k: Option<u32>,
    fine: u8,
    max_cells: usize,
) -> Result<ScaleChoice, HotspotError> {
    let unique = incidents.aggregate(h3grid::resolution(fine)?).0;
    let pts = local_metres(&unique);
    let nn = nearest_distances(&pts, 1, MAX_NN_QUERIES);
    let (kept, outliers) = drop_outliers(&nn);
    let mean_nn = (!kept.is_empty()).then(|| kept.iter().sum::<f64>() / kept.len() as f64);
    let (mut res, mut res_reason) = match (resolution, mean_nn) {
        (Some(r), _) => (r, "given".to_string()),
        (None, Some(d)) => {
            let r = finest_with_spacing(2.0 * d, fine);
            (
                r,
                format!(
                    "finest resolution whose cell spacing ({:.0} m) reaches twice the mean nearest-neighbour distance of incident locations ({:.0} m, {} locational outliers excluded)",
                    spacing_m(r),
                    d,
                    outliers
                ),
            )
        }
        (None, None) => (
            fine.min(9),
            "a single incident location: default resolution 9".to_string(),
        ),
    };
    // Coarsen until the grid fits.
    let probe_k = k.unwrap_or(1);
    while resolution.is_none() {
        match CellGrid::build(
            incidents,
            study_area,
            h3grid::resolution(res)?,
            probe_k,
            max_cells,
        ) {
            Err(HotspotError::TooManyCells { .. }) if res > 0 => {
                res -= 1;
                res_reason =
                    format!("{res_reason}; coarsened to {res} to stay within {max_cells} cells");
            }
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    let mut choice = ScaleChoice {
        resolution: res,
        k: probe_k,
        resolution_chosen: resolution.is_none(),
        k_chosen: k.is_none(),
        resolution_reason: res_reason,
        k_reason: "given".into(),
        unique_locations: unique.len(),
        nn_measured_locations: nn.len(),
        locational_outliers: outliers,
        mean_nn_distance_m: mean_nn,
        isa: Vec::new(),
        peak_k: None,
        fdr_forced: true,
    };
    if k.is_none() {
        choose_k(incidents, study_area, max_cells, &mut choice)?;
        shrink_k_to_fit(incidents, study_area, max_cells, &mut choice)?;
    }
    Ok(choice)
}

/// Lowers a chosen k until its k-ring hull fits within `max_cells` (k = 1 always fits: it
/// was checked when the resolution was chosen).
fn shrink_k_to_fit(
    incidents: &(impl IncidentCells + ?Sized),
    study_area: Option<&MultiPolygon<f64>>,
    max_cells: usize,
    choice: &mut ScaleChoice,
) -> Result<(), HotspotError> {
    if study_area.is_some() {
        return Ok(());
    }
    let res = h3grid::resolution(choice.resolution)?;
    while choice.k > 1 {
        match CellGrid::build(incidents, None, res, choice.k, max_cells) {
            Err(HotspotError::TooManyCells { .. }) => {
                choice.k -= 1;
                choice.k_reason = format!(
                    "{}; lowered to {} to stay within {max_cells} cells",
                    choice.k_reason, choice.k
                );
            }
            other => return other.map(|_| ()),
        }
    }
    Ok(())
}

/// Incremental spatial autocorrelation with the k-NN fallback; fills `k`, `isa`, `peak_k`.
///
/// The ISA runs on one fixed set of cells for every k, as ArcGIS runs it on the aggregated
/// features: the study-area cells, or without a study area the non-empty cells only (a
/// k-dependent hull would add ever more zero cells and inflate z with k).
fn choose_k(
    incidents: &(impl IncidentCells + ?Sized),
    study_area: Option<&MultiPolygon<f64>>,
    max_cells: usize,
    choice: &mut ScaleChoice,
) -> Result<(), HotspotError> {
    let res = h3grid::resolution(choice.resolution)?;
    let grid = CellGrid::build(incidents, study_area, res, 1, max_cells)?;
    let keep: Vec<usize> = (0..grid.cells.len())
        .filter(|&i| study_area.is_some() || grid.counts[i] > 0)
        .collect();
    let cells: Vec<CellIndex> = keep.iter().map(|&i| grid.cells[i]).collect();
    let values: Vec<f64> = keep.iter().map(|&i| f64::from(grid.counts[i])).collect();
    let stop = isa_steps(&cells, &values, choice);
    let on = if study_area.is_some() {
        "study-area cells"
    } else {
        "non-empty cells"
    };
    if let Some(p) = choice.peak_k {
        choice.k = p;
        choice.k_reason = format!(
            "first significant peak of the global Moran's I z-score over k = 1..{ISA_MAX_K} (incremental spatial autocorrelation on the {on}){stop}"
        );
        return Ok(());
    }
    if let Some(p) = max_peak(&choice.isa) {
        choice.k = p;
        choice.peak_k = Some(p);
        choice.k_reason = format!(
            "no significant peak; highest peak of the global Moran's I z-score over k = 1..{ISA_MAX_K} (incremental spatial autocorrelation on the {on}){stop}"
        );
        return Ok(());
    }
    let nonempty: Vec<CellIndex> = cells
        .iter()
        .zip(&values)
        .filter(|(_, v)| **v > 0.0)
        .map(|(c, _)| *c)
        .collect();
    let (k, m) = knn_rings(&nonempty, choice.resolution);
    choice.k = k;
    choice.k_reason = format!(
        "no peak of the global Moran's I z-score over k = 1..{ISA_MAX_K}{stop}; fallback: mean distance to the {m}th nearest non-empty cell (capped at one standard distance) in rings"
    );
    Ok(())
}

/// Global Moran's I z for k = 1..=ISA_MAX_K until the first peak; returns a note when a
/// limit stopped it early.
fn isa_steps(cells: &[CellIndex], values: &[f64], choice: &mut ScaleChoice) -> String {
    for kk in 1..=ISA_MAX_K {
        let Ok(nb) = Neighbours::build(cells, kk, MAX_LINKS) else {
            return format!(" (stopped at k = {kk}: neighbour-link limit)");
        };
        let Some(gm) = moran::global_moran(values, &nb, Kernel::Uniform) else {
            continue;
        };
        choice.isa.push(IsaStep {
            k: kk,
            n_cells: cells.len(),
            moran_i: gm.i,
            z: gm.z_rand,
        });
        if let Some(p) = first_peak(&choice.isa) {
            choice.peak_k = Some(p);
            break;
        }
    }
    String::new()
}

/// ArcGIS' k-NN fallback in rings: `(k, m)` with m = 5 % of the cells clamped to 3..=30.
fn knn_rings(nonempty: &[CellIndex], res: u8) -> (u32, usize) {
    let pts = local_metres(nonempty);
    let m = ((pts.len() as f64 * 0.05) as usize)
        .clamp(3, 30)
        .min(pts.len().saturating_sub(1));
    if m == 0 {
        return (1, m);
    }
    let d = nearest_distances(&pts, m, MAX_NN_QUERIES);
    let mean = d.iter().sum::<f64>() / d.len() as f64;
    let band = mean.min(standard_distance(&pts));
    (
        ((band / spacing_m(res)).ceil() as u32).clamp(1, ISA_MAX_K),
        m,
    )
}

/// First k whose z exceeds both neighbours and 1.96.
fn first_peak(steps: &[IsaStep]) -> Option<u32> {
    steps
        .windows(3)
        .find(|w| w[1].z > w[0].z && w[1].z > w[2].z && w[1].z > 1.96)
        .map(|w| w[1].k)
}

/// The interior local maximum of z with the highest z.
fn max_peak(steps: &[IsaStep]) -> Option<u32> {
    steps
        .windows(3)
        .filter(|w| w[1].z > w[0].z && w[1].z > w[2].z)
        .max_by(|a, b| a[1].z.total_cmp(&b[1].z))
        .map(|w| w[1].k)
}

/// Centre-to-centre spacing of H3 cells at a resolution, metres (√3 × mean edge length).
pub fn spacing_m(res: u8) -> f64 {
    Resolution::try_from(res).map_or(f64::NAN, |r| 3f64.sqrt() * r.edge_length_m())
}

/// Finest resolution ≤ `fine` whose spacing is at least `target_m` (0 if none).
fn finest_with_spacing(target_m: f64, fine: u8) -> u8 {
    (0..=fine)
        .rev()
        .find(|&r| spacing_m(r) >= target_m)
        .unwrap_or(0)
}

/// Cell centres in local metres (equirectangular about the mean latitude).
fn local_metres(cells: &[CellIndex]) -> Vec<[f64; 2]> {
    let ll: Vec<LatLng> = cells.iter().map(|&c| LatLng::from(c)).collect();
    let lat0 = ll.iter().map(|p| p.lat_radians()).sum::<f64>() / ll.len().max(1) as f64;
    ll.iter()
        .map(|p| {
            [
                EARTH_RADIUS_M * lat0.cos() * p.lng_radians(),
                EARTH_RADIUS_M * p.lat_radians(),
            ]
        })
        .collect()
}

/// Distance from each point to its m-th nearest other point (m ≥ 1; empty for < 2 points).
///
/// With more than `max_queries` points, only a systematic sample (every s-th point in H3
/// order, spread over the whole area) is queried, against all points: each distance is
/// still exact, and their mean an unbiased estimate.
fn nearest_distances(pts: &[[f64; 2]], m: usize, max_queries: usize) -> Vec<f64> {
    if pts.len() < 2 {
        return Vec::new();
    }
    let tree = RTree::bulk_load(pts.to_vec());
    let step = pts.len().div_ceil(max_queries.max(1));
    pts.iter()
        .step_by(step)
        .map(|p| {
            let q = tree.nearest_neighbor_iter(p).nth(m).unwrap_or(p);
            ((q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2)).sqrt()
        })
        .collect()
}

/// Splits off values above mean + 3 sd: `(kept, number dropped)`.
fn drop_outliers(d: &[f64]) -> (Vec<f64>, usize) {
    if d.is_empty() {
        return (Vec::new(), 0);
    }
    let (mean, sd) = moran::mean_sd(d);
    let kept: Vec<f64> = d
        .iter()
        .copied()
        .filter(|&v| v <= mean + 3.0 * sd)
        .collect();
    let dropped = d.len() - kept.len();
    (kept, dropped)
}

/// Standard distance sqrt(Σ|p − p̄|²/n).
fn standard_distance(pts: &[[f64; 2]]) -> f64 {
    let n = pts.len() as f64;
    let (mx, my) = (
        pts.iter().map(|p| p[0]).sum::<f64>() / n,
        pts.iter().map(|p| p[1]).sum::<f64>() / n,
    );
    (pts.iter()
        .map(|p| (p[0] - mx).powi(2) + (p[1] - my).powi(2))
        .sum::<f64>()
        / n)
        .sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_decreases_with_resolution_and_selection_is_monotone() {
        assert!(spacing_m(9) > spacing_m(10));
        assert_eq!(finest_with_spacing(1.0, 12), 12);
        assert_eq!(finest_with_spacing(spacing_m(9) - 1.0, 12), 9);
        assert_eq!(finest_with_spacing(1e9, 12), 0);
    }

    #[test]
    fn sampled_nearest_distances_are_exact_for_the_sampled_points() {
        let pts: Vec<[f64; 2]> = (0..100)
            .map(|i| [f64::from(i) * f64::from(i), 0.0])
            .collect();
        let all = nearest_distances(&pts, 1, 1000);
        let some = nearest_distances(&pts, 1, 10);
        assert_eq!(all.len(), 100);
        assert_eq!(some.len(), 10);
        for (j, d) in some.iter().enumerate() {
            assert_eq!(*d, all[j * 10]);
        }
        assert_eq!(all[0], 1.0);
        assert_eq!(all[50], 99.0); // 2500 - 2401
    }

    #[test]
    fn outliers_are_far_values() {
        let mut d = vec![10.0; 50];
        d.push(10_000.0);
        let (kept, dropped) = drop_outliers(&d);
        assert_eq!(dropped, 1);
        assert_eq!(kept.len(), 50);
    }

    #[test]
    fn peak_needs_rise_fall_and_significance() {
        let s = |k, z| IsaStep {
            k,
            n_cells: 0,
            moran_i: 0.0,
            z,
        };
        assert_eq!(first_peak(&[s(1, 3.0), s(2, 5.0), s(3, 4.0)]), Some(2));
        assert_eq!(first_peak(&[s(1, 5.0), s(2, 4.0), s(3, 3.0)]), None);
        assert_eq!(first_peak(&[s(1, 0.5), s(2, 1.0), s(3, 0.2)]), None);
        let low = [s(1, 0.5), s(2, 1.0), s(3, 0.2), s(4, 1.5), s(5, 1.2)];
        assert_eq!(max_peak(&low), Some(4));
        assert_eq!(max_peak(&[s(1, 5.0), s(2, 4.0), s(3, 3.0)]), None);
    }
}
