//! The H3 grid of a hot-spot analysis: which cells count, how many incidents fall in each,
//! and the k-ring neighbourhoods with their kernel weights.
//!
//! * **Aggregation**: each incident is stored at a fine resolution (the index keeps res 12);
//!   its analysis cell is `cell.parent(res)`.
//! * **Cell set** ([`CellSetRule`]): with a study area, every cell of the study area at the
//!   analysis resolution (h3o `TilerBuilder`, `ContainsCentroid`: a cell belongs to the area
//!   when its centre does); without one, every cell within `k` rings of a non-empty cell.
//!   Zero-count cells in the set are data (they lower the global mean), as in ArcGIS
//!   Optimized Hot Spot Analysis with a bounding polygon.
//! * **Neighbours** ([`Neighbours`]): for each cell, the other cells of the set within grid
//!   distance `k` (h3o `grid_disk_distances`), with their ring distance `d` (1..=k), stored in
//!   compressed rows (CSR) sorted by cell index, so results are deterministic.
//! * **Kernels** ([`Kernel`]): the five kernel names of CARTO's `GETIS_ORD_H3(input, size,
//!   kernel)`. CARTO documents only the names (linking the standard kernel table) and its
//!   implementation is closed, so the exact formulas here are ours: with `z = d / (k + 1)`
//!   (so the outer ring `d = k` keeps a positive weight),
//!   uniform `1`, triangular `1 − z`, quadratic (Epanechnikov) `1 − z²`,
//!   quartic (biweight) `(1 − z²)²`, gaussian `exp(−z²/2)`, all zero beyond `d = k`.
//!   The usual normalising constants (½, ¾, 15/16, 1/√(2π)) are dropped: Gi* and
//!   row-standardised Moran's I do not change when every weight is multiplied by one constant.

use geo::{BoundingRect, ChamberlainDuquetteArea, MultiPolygon};
use h3o::geom::{ContainmentMode, TilerBuilder};
use h3o::{CellIndex, Resolution};
use serde::{Deserialize, Serialize};

use super::hotspot::HotspotError;
use crate::h3bits::CellMap;

/// Largest k-ring size accepted.
pub const MAX_K: u32 = 20;

/// Kernel turning the ring distance `d` of a neighbour into a weight (see module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Kernel {
    /// Binary weights: 1 for every cell within k rings (ArcGIS / esda Gi*).
    #[default]
    Uniform,
    /// `1 − d/(k+1)`.
    Triangular,
    /// Epanechnikov shape `1 − (d/(k+1))²`.
    Quadratic,
    /// Biweight shape `(1 − (d/(k+1))²)²`.
    Quartic,
    /// `exp(−(d/(k+1))²/2)`, truncated at `d > k`.
    Gaussian,
}

impl Kernel {
    /// Weight of a neighbour at ring distance `d` (0 = the cell itself) in a `k`-ring.
    pub fn weight(self, d: u32, k: u32) -> f64 {
        if d > k {
            return 0.0;
        }
        let z = f64::from(d) / f64::from(k + 1);
        match self {
            Kernel::Uniform => 1.0,
            Kernel::Triangular => 1.0 - z,
            Kernel::Quadratic => 1.0 - z * z,
            Kernel::Quartic => (1.0 - z * z) * (1.0 - z * z),
            Kernel::Gaussian => (-0.5 * z * z).exp(),
        }
    }

    /// The formula, for the response summary.
    pub fn formula(self) -> &'static str {
        match self {
            Kernel::Uniform => "w(d) = 1 for d <= k (binary, self included)",
            Kernel::Triangular => "w(d) = 1 - d/(k+1) for d <= k",
            Kernel::Quadratic => "w(d) = 1 - (d/(k+1))^2 for d <= k",
            Kernel::Quartic => "w(d) = (1 - (d/(k+1))^2)^2 for d <= k",
            Kernel::Gaussian => "w(d) = exp(-(d/(k+1))^2 / 2) for d <= k",
        }
    }
}

/// Which rule produced the cell set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellSetRule {
    /// All cells of the study area (centre inside the polygon) at the resolution.
    StudyArea,
    /// All cells within k rings of any cell holding at least one incident.
    KRingHull,
}

impl CellSetRule {
    /// Human statement of the rule.
    pub fn describe(self) -> &'static str {
        match self {
            CellSetRule::StudyArea => {
                "all H3 cells whose centre lies in the study area; incidents in other cells are ignored"
            }
            CellSetRule::KRingHull => {
                "all H3 cells within k rings of a cell with at least one incident"
            }
        }
    }
}

/// Converts a numeric resolution, rejecting values outside 0..=15.
pub fn resolution(res: u8) -> Result<Resolution, HotspotError> {
    Resolution::try_from(res).map_err(|_| HotspotError::ResolutionOutOfRange { resolution: res })
}

/// Incidents as H3 cells of one fine resolution, counted per coarser cell on demand: a slice
/// of cells (one per incident), or the incident columns of a snapshot.
pub trait IncidentCells {
    /// Number of incidents.
    fn total(&self) -> u64;
    /// The resolution of the incident cells (all equal; errors when there are none or they
    /// differ).
    fn fine_resolution(&self) -> Result<u8, HotspotError>;
    /// Incidents per cell at `res` (not finer than the incidents): `(cells ascending, counts)`.
    fn aggregate(&self, res: Resolution) -> (Vec<CellIndex>, Vec<u32>);
}

impl IncidentCells for [CellIndex] {
    fn total(&self) -> u64 {
        self.len() as u64
    }
    fn fine_resolution(&self) -> Result<u8, HotspotError> {
        super::hotspot::fine_resolution(self)
    }
    fn aggregate(&self, res: Resolution) -> (Vec<CellIndex>, Vec<u32>) {
        aggregate(self, res)
    }
}

impl IncidentCells for Vec<CellIndex> {
    fn total(&self) -> u64 {
        self.as_slice().total()
    }
    fn fine_resolution(&self) -> Result<u8, HotspotError> {
        self.as_slice().fine_resolution()
    }
    fn aggregate(&self, res: Resolution) -> (Vec<CellIndex>, Vec<u32>) {
        aggregate(self, res)
    }
}

/// Counts incidents per analysis cell: `(cells sorted ascending, counts)`.
/// Every incident must be at least as fine as `res` (checked by the caller).
pub fn aggregate(incidents: &[CellIndex], res: Resolution) -> (Vec<CellIndex>, Vec<u32>) {
    // One pass, no parent list. Incidents sorted by fine cell have sorted parents (same base
    // cell and leading digits): counting runs is then all; at the first parent below its
    // predecessor the runs so far move into a hash map that counts the rest.
    let mut parents = incidents.iter().filter_map(|c| c.parent(res));
    let mut cells: Vec<CellIndex> = Vec::new();
    let mut counts: Vec<u32> = Vec::new();
    let mut unsorted = None;
    for c in parents.by_ref() {
        match cells.last() {
            Some(&last) if last == c => *counts.last_mut().expect("same length") += 1,
            Some(&last) if last > c => {
                unsorted = Some(c);
                break;
            }
            _ => {
                cells.push(c);
                counts.push(1);
            }
        }
    }
    let Some(first) = unsorted else {
        return (cells, counts);
    };
    let mut map: CellMap<u32> =
        CellMap::with_capacity_and_hasher(cells.len().max(1024), Default::default());
    for (c, &n) in cells.iter().zip(&counts) {
        *map.entry(u64::from(*c)).or_insert(0) += n;
    }
    *map.entry(u64::from(first)).or_insert(0) += 1;
    for c in parents {
        *map.entry(u64::from(c)).or_insert(0) += 1;
    }
    let mut pairs: Vec<(u64, u32)> = map.into_iter().collect();
    pairs.sort_unstable();
    pairs
        .into_iter()
        .map(|(c, n)| (CellIndex::try_from(c).expect("was a cell"), n))
        .unzip()
}

/// The cells within `k` rings of any of `nonempty`, sorted; errors as soon as the set
/// passes `max_cells`.
pub fn k_ring_hull(
    nonempty: &[CellIndex],
    k: u32,
    max_cells: usize,
) -> Result<Vec<CellIndex>, HotspotError> {
    Ok(hull_with_disks(nonempty, k, max_cells)?.0)
}

/// The k-ring disks of the non-empty cells, kept from the hull so that the neighbour lists
/// need the disks of the empty hull cells only ([`Neighbours::for_grid`]).
#[derive(Debug, Clone)]
struct HullDisks {
    k: u32,
    /// Disk of `nonempty[i]`: `members[offsets[i]..offsets[i + 1]]`, with ring distances.
    nonempty: Vec<CellIndex>,
    offsets: Vec<usize>,
    members: Vec<(CellIndex, u32)>,
}

fn hull_with_disks(
    nonempty: &[CellIndex],
    k: u32,
    max_cells: usize,
) -> Result<(Vec<CellIndex>, HullDisks), HotspotError> {
    let disk = 3 * (k as usize) * (k as usize + 1) + 1;
    struct Part {
        set: CellMap<()>,
        offsets: Vec<usize>,
        members: Vec<(CellIndex, u32)>,
    }
    let parts = in_halves(nonempty.len(), |range| {
        let cells = &nonempty[range];
        // sized for a dense hull (about twice the non-empty cells at k = 1): no rehash
        let mut set: CellMap<()> = CellMap::with_capacity_and_hasher(
            cells.len().saturating_mul(2).min(max_cells + 1),
            Default::default(),
        );
        let mut members = Vec::with_capacity(cells.len().saturating_mul(disk));
        let mut offsets = Vec::with_capacity(cells.len());
        let mut buf = Vec::with_capacity(disk);
        for &c in cells {
            grid_disk_distances(c, k, &mut buf);
            for &(nb, _) in &buf {
                set.insert(u64::from(nb), ());
            }
            members.extend_from_slice(&buf);
            offsets.push(members.len());
            if set.len() > max_cells {
                return Err(HotspotError::TooManyCells { max_cells });
            }
        }
        Ok(Part {
            set,
            offsets,
            members,
        })
    });
    let mut parts = parts
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    let mut all = parts.next().expect("in_halves gives at least one part");
    all.offsets.insert(0, 0);
    for p in parts {
        let base = all.members.len();
        all.offsets.extend(p.offsets.iter().map(|o| o + base));
        all.members.extend_from_slice(&p.members);
        all.set.extend(p.set);
        if all.set.len() > max_cells {
            return Err(HotspotError::TooManyCells { max_cells });
        }
    }
    let mut out: Vec<CellIndex> = all
        .set
        .into_keys()
        .map(|c| CellIndex::try_from(c).expect("was a cell"))
        .collect();
    out.sort_unstable();
    let disks = HullDisks {
        k,
        nonempty: nonempty.to_vec(),
        offsets: all.offsets,
        members: all.members,
    };
    Ok((out, disks))
}

/// Grids from this many cells build on two threads (a res-10 grid of a town at 1M incidents
/// has 33,000 cells).
const PARALLEL_FROM: usize = 8192;

/// [`crate::par::in_halves`] from [`PARALLEL_FROM`].
fn in_halves<T: Send>(n: usize, f: impl Fn(std::ops::Range<usize>) -> T + Sync) -> Vec<T> {
    crate::par::in_halves(n, PARALLEL_FROM, f)
}

/// The cells of a WGS84 lon/lat study area at `res` (centre containment), sorted.
///
/// A cheap geodesic-area estimate rejects grids far above `max_cells` before tiling, and the
/// tiling itself stops at `max_cells + 1` cells.
pub fn study_area_cells(
    area: &MultiPolygon<f64>,
    res: Resolution,
    max_cells: usize,
) -> Result<Vec<CellIndex>, HotspotError> {
    let rect = area.bounding_rect().ok_or(HotspotError::InvalidStudyArea {
        reason: "the study area is empty".into(),
    })?;
    let (min, max) = (rect.min(), rect.max());
    // NaN and infinities fail these comparisons too.
    let in_range = min.x >= -180.0 && max.x <= 180.0 && min.y >= -90.0 && max.y <= 90.0;
    if !in_range {
        return Err(HotspotError::InvalidStudyArea {
            reason: "coordinates must be WGS84 longitude/latitude".into(),
        });
    }
    let area_m2 = area.chamberlain_duquette_unsigned_area();
    if area_m2 / res.area_m2() > 2.0 * max_cells as f64 + 1000.0 {
        return Err(HotspotError::TooManyCells { max_cells });
    }
    let mut tiler = TilerBuilder::new(res)
        .containment_mode(ContainmentMode::ContainsCentroid)
        .build();
    for poly in area.iter() {
        tiler
            .add(poly.clone())
            .map_err(|e| HotspotError::InvalidStudyArea {
                reason: e.to_string(),
            })?;
    }
    let mut cells: Vec<CellIndex> = tiler.into_coverage().take(max_cells + 1).collect();
    if cells.len() > max_cells {
        return Err(HotspotError::TooManyCells { max_cells });
    }
    cells.sort_unstable();
    cells.dedup();
    Ok(cells)
}

/// Counts on a fixed cell set: `(counts aligned with cells, incidents in the set, outside)`.
/// Both cell lists are ascending.
pub fn counts_on(
    cells: &[CellIndex],
    agg_cells: &[CellIndex],
    agg_counts: &[u32],
) -> (Vec<u32>, u64, u64) {
    let mut counts = vec![0u32; cells.len()];
    let (mut inside, mut outside) = (0u64, 0u64);
    // both ascending: one merge
    let mut i = 0;
    for (c, &n) in agg_cells.iter().zip(agg_counts) {
        while i < cells.len() && cells[i] < *c {
            i += 1;
        }
        if cells.get(i) == Some(c) {
            counts[i] = n;
            inside += u64::from(n);
        } else {
            outside += u64::from(n);
        }
    }
    (counts, inside, outside)
}

/// The analysed cells and their incident counts.
#[derive(Debug, Clone)]
pub struct CellGrid {
    /// Rule that selected the cells.
    pub rule: CellSetRule,
    /// H3 resolution of the cells.
    pub resolution: u8,
    /// Cells, sorted ascending.
    pub cells: Vec<CellIndex>,
    /// Incident count of each cell.
    pub counts: Vec<u32>,
    /// Cells with at least one incident.
    pub nonempty: usize,
    /// Incidents inside the cell set.
    pub incidents_used: u64,
    /// Incidents outside the study area (always 0 for the k-ring hull).
    pub incidents_ignored: u64,
    /// The disks the k-ring hull was built from (none for a study area).
    disks: Option<HullDisks>,
}

impl CellGrid {
    /// Builds the cell set at `res` (k-ring hull of size `k`, or the study area) and counts.
    pub fn build(
        incidents: &(impl IncidentCells + ?Sized),
        study_area: Option<&MultiPolygon<f64>>,
        res: Resolution,
        k: u32,
        max_cells: usize,
    ) -> Result<Self, HotspotError> {
        let (agg_cells, agg_counts) = incidents.aggregate(res);
        let (rule, cells, disks) = match study_area {
            Some(area) => (
                CellSetRule::StudyArea,
                study_area_cells(area, res, max_cells)?,
                None,
            ),
            None => {
                let (cells, disks) = hull_with_disks(&agg_cells, k, max_cells)?;
                (CellSetRule::KRingHull, cells, Some(disks))
            }
        };
        let (counts, used, ignored) = counts_on(&cells, &agg_cells, &agg_counts);
        let nonempty = counts.iter().filter(|&&c| c > 0).count();
        Ok(Self {
            rule,
            resolution: u8::from(res),
            cells,
            counts,
            nonempty,
            incidents_used: used,
            incidents_ignored: ignored,
            disks,
        })
    }

    /// Counts as floating-point values.
    pub fn values(&self) -> Vec<f64> {
        self.counts.iter().map(|&c| f64::from(c)).collect()
    }
}

/// `grid_disk_distances` into a reused buffer: h3o's allocation-free fast path, or its safe
/// path near pentagons (where the fast one yields `None`).
fn grid_disk_distances(c: CellIndex, k: u32, out: &mut Vec<(CellIndex, u32)>) {
    out.clear();
    for item in c.grid_disk_distances_fast(k) {
        match item {
            Some(v) => out.push(v),
            None => {
                out.clear();
                out.extend(c.grid_disk_distances_safe(k));
                return;
            }
        }
    }
}

/// Position of a cell in a sorted cell set, by hashing (a multiplicative hash of the 64-bit
/// index; binary search costs ~17 cache misses per lookup on 10⁵ cells).
struct CellLookup {
    map: CellMap<u32>,
}

impl CellLookup {
    fn new(cells: &[CellIndex]) -> Self {
        let mut map = CellMap::with_capacity_and_hasher(cells.len(), Default::default());
        for (i, &c) in cells.iter().enumerate() {
            map.insert(u64::from(c), i as u32);
        }
        Self { map }
    }

    fn get(&self, c: CellIndex) -> Option<u32> {
        self.map.get(&u64::from(c)).copied()
    }
}

/// k-ring neighbours of every cell of a sorted cell set, self excluded, in CSR form.
#[derive(Debug, Clone)]
pub struct Neighbours {
    /// Row `i` is `idx[offsets[i]..offsets[i + 1]]`.
    pub offsets: Vec<usize>,
    /// Neighbour positions in the cell set, ascending within a row.
    pub idx: Vec<u32>,
    /// Ring distance (1..=k) of each neighbour.
    pub dist: Vec<u8>,
    /// The ring size they were built with.
    pub k: u32,
}

impl Neighbours {
    /// Builds the neighbour lists; errors when they would hold more than `max_links` entries.
    pub fn build(cells: &[CellIndex], k: u32, max_links: usize) -> Result<Self, HotspotError> {
        Self::rows(cells, k, max_links, None)
    }

    /// The neighbour lists of a grid's cells: equal to [`Neighbours::build`] on `grid.cells`
    /// (same rows, same order). For a k-ring hull built with the same `k`, the disks of the
    /// non-empty cells are those the hull was built from: only the empty cells' disks are
    /// computed.
    pub fn for_grid(grid: &CellGrid, k: u32, max_links: usize) -> Result<Self, HotspotError> {
        let disks = grid.disks.as_ref().filter(|d| d.k == k);
        Self::rows(&grid.cells, k, max_links, disks)
    }

    /// Row `i`: the cells of `cells` within `k` rings of `cells[i]` (its disk from `stored`
    /// when it has one there), ascending, self excluded; rows in two halves on two threads
    /// for large grids.
    fn rows(
        cells: &[CellIndex],
        k: u32,
        max_links: usize,
        stored: Option<&HullDisks>,
    ) -> Result<Self, HotspotError> {
        let lookup = CellLookup::new(cells);
        // the stored disk of each cell that has one
        let mut disk_of = vec![u32::MAX; if stored.is_some() { cells.len() } else { 0 }];
        if let Some(disks) = stored {
            for (d, &c) in disks.nonempty.iter().enumerate() {
                let i = lookup.get(c).expect("a non-empty cell is in its hull");
                disk_of[i as usize] = d as u32;
            }
        }
        let size = 3 * (k as usize) * (k as usize + 1);
        let parts = in_halves(cells.len(), |range| {
            let mut offsets = Vec::with_capacity(range.len());
            let mut idx = Vec::with_capacity(range.len().saturating_mul(size).min(max_links));
            let mut dist = Vec::with_capacity(idx.capacity());
            let mut row: Vec<(u32, u8)> = Vec::with_capacity(size);
            let mut buf = Vec::with_capacity(size + 1);
            for i in range {
                let members = match (stored, disk_of.get(i)) {
                    (Some(disks), Some(&d)) if d != u32::MAX => {
                        let d = d as usize;
                        &disks.members[disks.offsets[d]..disks.offsets[d + 1]]
                    }
                    _ => {
                        grid_disk_distances(cells[i], k, &mut buf);
                        &buf[..]
                    }
                };
                row.clear();
                for &(nb, d) in members {
                    if d == 0 {
                        continue;
                    }
                    if let Some(j) = lookup.get(nb) {
                        row.push((j, d as u8));
                    }
                }
                if idx.len() + row.len() > max_links {
                    return Err(HotspotError::TooManyLinks { max_links });
                }
                row.sort_unstable();
                row.dedup_by_key(|e| e.0);
                for &(j, d) in &row {
                    idx.push(j);
                    dist.push(d);
                }
                offsets.push(idx.len());
            }
            Ok((offsets, idx, dist))
        });
        let mut offsets = Vec::with_capacity(cells.len() + 1);
        offsets.push(0);
        let (mut idx, mut dist) = (Vec::new(), Vec::new());
        for part in parts {
            let (o, i, d) = part?;
            let base = idx.len();
            offsets.extend(o.iter().map(|o| o + base));
            if idx.is_empty() {
                (idx, dist) = (i, d);
            } else {
                idx.extend_from_slice(&i);
                dist.extend_from_slice(&d);
            }
            if idx.len() > max_links {
                return Err(HotspotError::TooManyLinks { max_links });
            }
        }
        Ok(Self {
            offsets,
            idx,
            dist,
            k,
        })
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// True when there are no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Neighbour positions and ring distances of cell `i`.
    pub fn row(&self, i: usize) -> (&[u32], &[u8]) {
        let (a, b) = (self.offsets[i], self.offsets[i + 1]);
        (&self.idx[a..b], &self.dist[a..b])
    }

    /// Kernel weights aligned with `idx` (self excluded).
    pub fn weights(&self, kernel: Kernel) -> Vec<f64> {
        self.dist
            .iter()
            .map(|&d| kernel.weight(u32::from(d), self.k))
            .collect()
    }

    /// Row-standardised kernel weights aligned with `idx` (rows without neighbours stay empty).
    pub fn row_standardised(&self, kernel: Kernel) -> Vec<f64> {
        let mut w = self.weights(kernel);
        for i in 0..self.len() {
            let (a, b) = (self.offsets[i], self.offsets[i + 1]);
            let s: f64 = w[a..b].iter().sum();
            if s > 0.0 {
                w[a..b].iter_mut().for_each(|v| *v /= s);
            }
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use h3o::LatLng;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn utrecht(res: Resolution) -> CellIndex {
        LatLng::new(52.0907, 5.1214).expect("valid").to_cell(res)
    }

    #[test]
    fn kernels_are_one_at_the_centre_and_decay() {
        for kern in [
            Kernel::Uniform,
            Kernel::Triangular,
            Kernel::Quadratic,
            Kernel::Quartic,
            Kernel::Gaussian,
        ] {
            assert_eq!(kern.weight(0, 3), 1.0);
            assert!(kern.weight(3, 3) > 0.0, "{kern:?} keeps the outer ring");
            assert_eq!(kern.weight(4, 3), 0.0);
            assert!(kern.weight(2, 3) <= kern.weight(1, 3));
        }
        assert!((Kernel::Triangular.weight(1, 3) - 0.75).abs() < 1e-15);
        assert!((Kernel::Quartic.weight(2, 3) - 0.5625).abs() < 1e-15);
        assert!((Kernel::Gaussian.weight(2, 1) - 0.0).abs() < 1e-15);
    }

    #[test]
    fn hull_and_neighbours_of_one_cell() {
        let c = utrecht(Resolution::Nine);
        let hull = k_ring_hull(&[c], 2, 1000).expect("small");
        assert_eq!(hull.len(), 19);
        let nb = Neighbours::build(&hull, 1, 10_000).expect("small");
        let centre = hull.binary_search(&c).expect("present");
        assert_eq!(nb.row(centre).0.len(), 6);
        // symmetric
        for i in 0..nb.len() {
            for &j in nb.row(i).0 {
                assert!(nb.row(j as usize).0.contains(&(i as u32)));
            }
        }
        assert!(matches!(
            k_ring_hull(&[c], 2, 10),
            Err(HotspotError::TooManyCells { .. })
        ));
        assert!(matches!(
            Neighbours::build(&hull, 2, 20),
            Err(HotspotError::TooManyLinks { .. })
        ));
    }

    #[test]
    fn aggregation_counts_parents() {
        let a = utrecht(Resolution::Twelve);
        let b = LatLng::new(52.3731, 4.8922)
            .expect("valid")
            .to_cell(Resolution::Twelve);
        let (cells, counts) = aggregate(&[a, b, a, a], Resolution::Eight);
        assert_eq!(cells.len(), 2);
        assert_eq!(counts.iter().sum::<u32>(), 4);
        let mut sorted = vec![a, b, a, a];
        sorted.sort_unstable();
        assert_eq!(
            aggregate(&sorted, Resolution::Eight),
            (cells.clone(), counts.clone())
        );
        // sorted at first, then not (the runs so far move into the map)
        assert_eq!(
            aggregate(&[a, a, b, a], Resolution::Eight),
            (cells.clone(), counts.clone())
        );
        assert_eq!(aggregate(&[], Resolution::Eight), (vec![], vec![]));
        let (on, inside, outside) = counts_on(&cells[..1], &cells, &counts);
        assert_eq!(on.len(), 1);
        assert_eq!(inside + outside, 4);
    }

    #[test]
    fn neighbours_from_the_hull_disks_equal_the_full_build() {
        // scattered incidents (many empty hull cells), a dense patch (few), and cells around
        // a pentagon (base cell 4's centre), at k = 1..3
        let mut inc = Vec::new();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut next = || rng.random::<f64>();
        for _ in 0..300 {
            let ll = LatLng::new(52.0 + 0.2 * next(), 5.0 + 0.3 * next()).expect("ll");
            inc.push(ll.to_cell(Resolution::Twelve));
        }
        for _ in 0..300 {
            let ll = LatLng::new(52.09 + 0.004 * next(), 5.12 + 0.006 * next()).expect("ll");
            inc.push(ll.to_cell(Resolution::Twelve));
        }
        let pentagon = CellIndex::base_cells()
            .find(|c| c.is_pentagon())
            .expect("a pentagon");
        for child in pentagon.children(Resolution::Three).take(5) {
            inc.push(child.center_child(Resolution::Twelve).expect("child"));
        }
        for res in [Resolution::Six, Resolution::Eight, Resolution::Nine] {
            for k in 1..=3 {
                let grid = CellGrid::build(&inc, None, res, k, 1_000_000).expect("grid");
                assert!(grid.cells.len() > grid.nonempty, "some empty cells");
                let want = Neighbours::build(&grid.cells, k, 10_000_000).expect("build");
                let got = Neighbours::for_grid(&grid, k, 10_000_000).expect("for_grid");
                assert_eq!(got.offsets, want.offsets, "res {res} k {k}");
                assert_eq!(got.idx, want.idx, "res {res} k {k}");
                assert_eq!(got.dist, want.dist, "res {res} k {k}");
                // another k than the hull's: the full build
                let other = Neighbours::for_grid(&grid, k + 1, 10_000_000).expect("k + 1");
                assert_eq!(
                    other.idx,
                    Neighbours::build(&grid.cells, k + 1, 10_000_000)
                        .expect("b")
                        .idx
                );
                // the link limit holds as in build
                let few = want.idx.len() - 1;
                assert!(matches!(
                    Neighbours::for_grid(&grid, k, few),
                    Err(HotspotError::TooManyLinks { .. })
                ));
            }
        }
    }

    /// Neighbour lists by brute force: every cell's disk, looked up in a BTreeMap.
    fn brute_neighbours(cells: &[CellIndex], k: u32) -> (Vec<usize>, Vec<u32>, Vec<u8>) {
        let at: std::collections::BTreeMap<CellIndex, u32> = cells
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as u32))
            .collect();
        let (mut offsets, mut idx, mut dist) = (vec![0], Vec::new(), Vec::new());
        for &c in cells {
            let mut row: Vec<(u32, u8)> = c
                .grid_disk_distances::<Vec<_>>(k)
                .into_iter()
                .filter(|&(_, d)| d > 0)
                .filter_map(|(n, d)| Some((*at.get(&n)?, d as u8)))
                .collect();
            row.sort_unstable();
            row.dedup_by_key(|e| e.0);
            idx.extend(row.iter().map(|e| e.0));
            dist.extend(row.iter().map(|e| e.1));
            offsets.push(idx.len());
        }
        (offsets, idx, dist)
    }

    #[test]
    fn large_grids_built_on_two_threads_equal_brute_force() {
        // 12,000 incidents over ~60 x 60 km: some 11,000 non-empty res-9 cells and a hull of
        // ~60,000, both above the two-thread threshold
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut next = || rng.random::<f64>();
        let inc: Vec<CellIndex> = (0..12_000)
            .map(|_| {
                LatLng::new(52.0 + 0.55 * next(), 4.6 + 0.9 * next())
                    .expect("ll")
                    .to_cell(Resolution::Twelve)
            })
            .collect();
        let grid = CellGrid::build(&inc, None, Resolution::Nine, 1, 1_000_000).expect("grid");
        assert!(
            grid.nonempty > 8192 && grid.cells.len() > 8192,
            "{}",
            grid.nonempty
        );
        // the hull: the union of the non-empty cells' disks
        let (agg, _) = aggregate(&inc, Resolution::Nine);
        let mut union: Vec<CellIndex> = agg.iter().flat_map(|c| c.grid_disk::<Vec<_>>(1)).collect();
        union.sort_unstable();
        union.dedup();
        assert_eq!(grid.cells, union);
        let want = brute_neighbours(&grid.cells, 1);
        for nb in [
            Neighbours::for_grid(&grid, 1, 10_000_000).expect("for_grid"),
            Neighbours::build(&grid.cells, 1, 10_000_000).expect("build"),
        ] {
            assert_eq!((nb.offsets, nb.idx, nb.dist), want);
        }
        // the limits hold on the two-thread path too
        assert!(matches!(
            Neighbours::for_grid(&grid, 1, want.1.len() - 1),
            Err(HotspotError::TooManyLinks { .. })
        ));
        assert!(Neighbours::for_grid(&grid, 1, want.1.len()).is_ok());
        assert!(matches!(
            k_ring_hull(&agg, 1, union.len() - 1),
            Err(HotspotError::TooManyCells { .. })
        ));
        assert_eq!(k_ring_hull(&agg, 1, union.len()).expect("fits"), union);
    }
}
