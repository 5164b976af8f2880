//! Aggregation of incidents into the space-time cube: H3 cells at the analysis resolution
//! (parents of the incidents' fine cells) x consecutive time bins, counts stored densely at
//! `cell · T + t`.
//!
//! The cell set is every cell within `k` grid rings of a cell holding at least one incident
//! in the window (zero counts are data, as in the hot spot analysis), sorted by H3 index so
//! that results are deterministic.

use std::collections::HashMap;

use h3o::{CellIndex, Resolution};

use super::EmergingError;
use super::calendar::TimeBin;
use super::gi::{Kernel, SpatialWeights};

/// Largest cube (cells x bins) analysed; beyond it the request is refused (memory).
pub const MAX_CUBE_OBSERVATIONS: usize = 4_000_000;

/// The aggregated cube.
#[derive(Debug, Clone, PartialEq)]
pub struct Cube {
    /// Cells of the analysis, sorted by index.
    pub cells: Vec<CellIndex>,
    /// Absolute index (see [`TimeBin::index_of`]) of the first bin.
    pub first_bin: i64,
    /// Number of bins `T`.
    pub n_bins: usize,
    /// Counts at `cell · T + t`.
    pub counts: Vec<u32>,
    /// The time window analysed.
    pub window: Window,
    /// Incidents inside the window.
    pub incidents_used: usize,
    /// Incidents outside `[start, end)`, ignored.
    pub incidents_outside_window: usize,
    /// Incidents in the window but outside the study-area cells, ignored.
    pub incidents_outside_area: usize,
}

/// Half-open time window `[start, end)` in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First instant included.
    pub start: i64,
    /// First instant excluded.
    pub end: i64,
}

/// Maps each incident's fine cell to its parent at `resolution`, validating it.
pub fn parent_cell(raw: u64, resolution: Resolution) -> Result<CellIndex, EmergingError> {
    let cell = CellIndex::try_from(raw).map_err(|_| EmergingError::InvalidCell { cell: raw })?;
    cell.parent(resolution).ok_or(EmergingError::CellTooCoarse {
        cell: raw,
        resolution: u8::from(resolution),
    })
}

/// The window: the given bounds, or the span of the data (`end` = last incident + 1 s).
pub fn resolve_window(
    incidents: &[(u64, i64)],
    start: Option<i64>,
    end: Option<i64>,
) -> Result<Window, EmergingError> {
    let start = start.or_else(|| incidents.iter().map(|i| i.1).min());
    let end = end.or_else(|| incidents.iter().map(|i| i.1).max().map(|t| t + 1));
    match (start, end) {
        (Some(start), Some(end)) if start < end => Ok(Window { start, end }),
        (Some(_), Some(_)) => Err(EmergingError::EmptyWindow),
        _ => Err(EmergingError::NoIncidents),
    }
}

/// What the cube is built on: resolution, time bins, window and guards.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CubeSpec {
    /// Analysis resolution.
    pub resolution: Resolution,
    /// Time step.
    pub bin: TimeBin,
    /// Rings of the spatial neighbourhood (also the hull of the default cell set).
    pub k: u32,
    /// The time window.
    pub window: Window,
    /// Fewest bins accepted.
    pub min_bins: usize,
}

/// Builds the cube on the given study-area cells (at the analysis resolution; incidents in
/// other cells are left out and counted) or, when `study` is `None`, on the cells within `k`
/// rings of a non-empty cell. Errors: bad cells, no incidents in the window (and area), fewer
/// than `min_bins` bins, or more than [`MAX_CUBE_OBSERVATIONS`] observations.
pub fn build_cube(
    incidents: &[(u64, i64)],
    spec: &CubeSpec,
    study: Option<&[CellIndex]>,
) -> Result<Cube, EmergingError> {
    let (bin, window) = (spec.bin, spec.window);
    let first_bin = bin.index_of(window.start);
    let n_bins = (bin.index_of(window.end - 1) - first_bin + 1) as usize;
    let mut located = Vec::with_capacity(incidents.len());
    for &(raw, t) in incidents {
        let cell = parent_cell(raw, spec.resolution)?;
        if (window.start..window.end).contains(&t) {
            located.push((cell, (bin.index_of(t) - first_bin) as usize));
        }
    }
    let in_window = located.len();
    let cells = match study {
        Some(area) => study_cells(area, spec.resolution)?,
        None => k_ring_hull(&located, spec.k),
    };
    let index: HashMap<CellIndex, usize> = cells.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    if study.is_some() {
        located.retain(|l| index.contains_key(&l.0));
    }
    if located.is_empty() {
        return Err(EmergingError::NoIncidents);
    }
    if n_bins < spec.min_bins {
        return Err(EmergingError::TooFewBins {
            bins: n_bins,
            min_bins: spec.min_bins,
        });
    }
    let observations = cells.len().saturating_mul(n_bins);
    if observations > MAX_CUBE_OBSERVATIONS {
        return Err(EmergingError::CubeTooLarge {
            observations,
            max: MAX_CUBE_OBSERVATIONS,
        });
    }
    let mut counts = vec![0u32; observations];
    for (cell, t) in &located {
        if let Some(&c) = index.get(cell) {
            counts[c * n_bins + t] += 1;
        }
    }
    Ok(Cube {
        cells,
        first_bin,
        n_bins,
        counts,
        window,
        incidents_used: located.len(),
        incidents_outside_window: incidents.len() - in_window,
        incidents_outside_area: in_window - located.len(),
    })
}

/// Every cell within `k` rings of a cell holding an incident, sorted.
fn k_ring_hull(located: &[(CellIndex, usize)], k: u32) -> Vec<CellIndex> {
    let mut occupied: Vec<CellIndex> = located.iter().map(|l| l.0).collect();
    occupied.sort_unstable();
    occupied.dedup();
    let mut cells: Vec<CellIndex> = occupied
        .iter()
        .flat_map(|c| c.grid_disk::<Vec<_>>(k))
        .collect();
    cells.sort_unstable();
    cells.dedup();
    cells
}

/// The study-area cells, sorted and deduplicated; all must be at `resolution`.
fn study_cells(
    area: &[CellIndex],
    resolution: Resolution,
) -> Result<Vec<CellIndex>, EmergingError> {
    if let Some(bad) = area.iter().find(|c| c.resolution() != resolution) {
        return Err(EmergingError::StudyAreaResolution {
            cell: u64::from(*bad),
            resolution: u8::from(resolution),
        });
    }
    let mut cells = area.to_vec();
    cells.sort_unstable();
    cells.dedup();
    Ok(cells)
}

/// Spatial weights among the cube's cells: each cell's `k`-ring disk (self included)
/// restricted to the cell set, weighted by `kernel` on the grid distance.
pub fn spatial_weights(cells: &[CellIndex], k: u32, kernel: Kernel) -> SpatialWeights {
    let index: HashMap<CellIndex, usize> = cells.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let mut offsets = Vec::with_capacity(cells.len() + 1);
    let mut entries = Vec::with_capacity(cells.len() * (3 * k as usize * (k as usize + 1) + 1));
    offsets.push(0);
    for cell in cells {
        let mut row: Vec<(usize, f64)> = cell
            .grid_disk_distances::<Vec<_>>(k)
            .into_iter()
            .filter_map(|(c, d)| index.get(&c).map(|&j| (j, kernel.weight(d, k))))
            .collect();
        row.sort_unstable_by_key(|e| e.0);
        entries.extend(row);
        offsets.push(entries.len());
    }
    SpatialWeights { offsets, entries }
}
