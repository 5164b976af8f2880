//! Density-based point clusters: DBSCAN, plus the per-cluster summary (polygon, counts, time span)
//! shared with HDBSCAN ([`super::hdbscan`]).
//!
//! # DBSCAN
//! Ester, Kriegel, Sander & Xu (1996), "A density-based algorithm for discovering clusters in large
//! spatial databases with noise", KDD-96. Semantics are exactly those of scikit-learn
//! `DBSCAN(eps, min_samples, metric="euclidean")`:
//! * the neighbourhood of a point is every point at Euclidean distance `<= eps_m`, the point itself
//!   included (compared on squared distances, `d² <= eps_m²`, as sklearn's KD-tree does);
//! * a point is a *core point* when its neighbourhood holds at least `min_points` points;
//! * core points within `eps_m` of each other are in the same cluster (transitively);
//! * a non-core point within `eps_m` of a core point is a *border point*; all others are noise.
//!
//! **Cluster ids** are `0, 1, 2, ...` in the order of each cluster's lowest-index core point (the
//! order scikit-learn numbers them, since it grows a cluster from each unlabelled core point in
//! input order). **Border points** reachable from several clusters go to the cluster with the
//! lowest id; this is what sklearn does too (it expands cluster 0 completely before it starts
//! cluster 1), so on the same input order the labels equal sklearn's `labels_` exactly. Ids are
//! therefore stable for the same points in the same order and the same parameters.
//!
//! Implementation: the grid method of Gunawan (2013) as in the `dbscan` package (Wang, Gu & Shun
//! 2020, "Theoretically-Efficient and Practical Parallel DBSCAN"): square cells of side
//! `eps/√2`, so a cell with `min_points` points is all core and the core points of a cell are
//! one cluster; other core flags by counting in the 5 x 5 block of cells with early exit; a
//! union-find over cells, linking two cells when some pair of their core points is within `eps`
//! (skipped when already joined); then border assignment. Memory is O(n), no neighbour lists.
//! (An rstar R-tree enumerating every neighbour pair took 16.5 s for 1M points at eps 100 m,
//! min 20; the grid avoids that enumeration.)

use std::collections::{BTreeMap, HashMap, HashSet};

use geo::Polygon;
use serde::{Deserialize, Serialize};

use super::hull::{HullKind, PolygonKind, cluster_polygon};

/// Largest accepted distance parameter (`eps_m`, `buffer_m`) in metres.
pub const MAX_DISTANCE_M: f64 = 50_000.0;

/// One incident as the clustering sees it. Coordinates in metres in the dataset's metric CRS.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClusterPoint {
    /// Easting in metres.
    pub x: f64,
    /// Northing in metres.
    pub y: f64,
    /// Dictionary code of the incident category.
    pub category: u16,
    /// Dictionary code of the reporting source.
    pub source: u16,
    /// Time of the incident, unix seconds (UTC).
    pub occurred_at: i64,
    /// Fine H3 cell of the incident; distinct cells give `distinct_locations`.
    pub cell: u64,
}

/// Errors of the clustering and hull functions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClusterError {
    /// `eps_m` is not a finite number in (0, 50 000] metres.
    #[error("eps_m must be a number > 0 and <= {MAX_DISTANCE_M} m, got {0}")]
    InvalidEps(f64),
    /// `min_points` is smaller than 1.
    #[error("min_points must be >= 1, got {0}")]
    InvalidMinPoints(usize),
    /// `min_cluster_size` is smaller than 2 (the hdbscan package rejects 1 too).
    #[error("min_cluster_size must be >= 2, got {0}")]
    InvalidMinClusterSize(usize),
    /// `min_samples` is smaller than 1.
    #[error("min_samples must be >= 1, got {0}")]
    InvalidMinSamples(usize),
    /// `concavity` is not a finite number > 0.
    #[error("concavity must be a finite number > 0, got {0}")]
    InvalidConcavity(f64),
    /// `buffer_m` is not a finite number in (0, 50 000] metres.
    #[error("buffer_m must be a number > 0 and <= {MAX_DISTANCE_M} m, got {0}")]
    InvalidBuffer(f64),
    /// A point has a NaN or infinite coordinate.
    #[error("point {0} has a non-finite coordinate")]
    NonFiniteCoordinate(usize),
    /// Fewer points than the method needs (`min_points` for DBSCAN, `min_cluster_size` for
    /// HDBSCAN).
    #[error("{found} points given, at least {needed} needed")]
    TooFewPoints {
        /// Number of points passed in.
        found: usize,
        /// Minimum number required by the parameters.
        needed: usize,
    },
}

impl ClusterError {
    /// Stable snake_case code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidEps(_) => "invalid_eps",
            Self::InvalidMinPoints(_) => "invalid_min_points",
            Self::InvalidMinClusterSize(_) => "invalid_min_cluster_size",
            Self::InvalidMinSamples(_) => "invalid_min_samples",
            Self::InvalidConcavity(_) => "invalid_concavity",
            Self::InvalidBuffer(_) => "invalid_buffer",
            Self::NonFiniteCoordinate(_) => "non_finite_coordinate",
            Self::TooFewPoints { .. } => "too_few_points",
        }
    }
}

/// Checks that a distance parameter is finite and in (0, [`MAX_DISTANCE_M`]].
pub(crate) fn distance_ok(v: f64) -> bool {
    v.is_finite() && v > 0.0 && v <= MAX_DISTANCE_M
}

/// Returns the coordinates as `[x, y]`, or an error for the first non-finite one.
pub fn coords_of(points: &[ClusterPoint]) -> Result<Vec<[f64; 2]>, ClusterError> {
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if p.x.is_finite() && p.y.is_finite() {
                Ok([p.x, p.y])
            } else {
                Err(ClusterError::NonFiniteCoordinate(i))
            }
        })
        .collect()
}

/// Output of [`dbscan`]: one label per input point (`None` = noise) and the core flags
/// (sklearn's `core_sample_indices_` are the indices where `is_core` is true).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DbscanLabels {
    /// Cluster id per input point, `None` for noise.
    pub labels: Vec<Option<u32>>,
    /// Whether each point is a core point.
    pub is_core: Vec<bool>,
    /// Number of clusters (ids are `0..n_clusters`).
    pub n_clusters: u32,
}

/// Minimal union-find with path halving and union by size.
pub(crate) struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    pub(crate) fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }
    pub(crate) fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let gp = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = gp;
            x = gp;
        }
        x
    }
    /// Joins the sets of `a` and `b`; returns false when they were already joined.
    pub(crate) fn union(&mut self, a: u32, b: u32) -> bool {
        let (mut ra, mut rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        if self.size[ra as usize] < self.size[rb as usize] {
            std::mem::swap(&mut ra, &mut rb);
        }
        self.parent[rb as usize] = ra;
        self.size[ra as usize] += self.size[rb as usize];
        true
    }
}

/// Square cells of side just under `eps/√2` (so any two points of a cell are within `eps`),
/// points sorted by cell (Gunawan 2013, "A faster algorithm for DBSCAN", grid method).
struct CellGrid {
    /// Point indices sorted by (cell, index).
    order: Vec<u32>,
    /// Per cell: start and end in `order`.
    span: Vec<(u32, u32)>,
    /// Cell id per point.
    cell_of: Vec<u32>,
    /// Per cell, its range in `near_ids`.
    near_span: Vec<(u32, u32)>,
    /// Non-empty cells of the 5 x 5 block around each cell, nearest first (the cell itself first).
    near_ids: Vec<u32>,
}

impl CellGrid {
    fn new(coords: &[[f64; 2]], eps_m: f64) -> Self {
        let side = eps_m / std::f64::consts::SQRT_2 * (1.0 - 1e-9);
        let (mx, my) = coords
            .iter()
            .fold((f64::MAX, f64::MAX), |m, c| (m.0.min(c[0]), m.1.min(c[1])));
        let mut keyed: Vec<((i64, i64), u32)> = coords
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    (
                        ((c[0] - mx) / side).floor() as i64,
                        ((c[1] - my) / side).floor() as i64,
                    ),
                    i as u32,
                )
            })
            .collect();
        keyed.sort_unstable();
        let (mut span, mut xy, mut lookup) = (Vec::new(), Vec::new(), HashMap::new());
        let mut cell_of = vec![0u32; coords.len()];
        for (k, (key, i)) in keyed.iter().enumerate() {
            if k == 0 || keyed[k - 1].0 != *key {
                lookup.insert(*key, span.len() as u32);
                span.push((k as u32, k as u32));
                xy.push(*key);
            }
            let last = span.len() - 1;
            span[last].1 = k as u32 + 1;
            cell_of[*i as usize] = last as u32;
        }
        let order = keyed.into_iter().map(|(_, i)| i).collect();
        let mut offsets: Vec<(i64, i64)> = (-2..=2)
            .flat_map(|dy| (-2..=2).map(move |dx| (dx, dy)))
            .collect();
        offsets.sort_by_key(|(dx, dy)| dx * dx + dy * dy);
        let (mut near_span, mut near_ids) = (Vec::with_capacity(xy.len()), Vec::new());
        for (cx, cy) in &xy {
            let start = near_ids.len() as u32;
            near_ids.extend(
                offsets
                    .iter()
                    .filter_map(|(dx, dy)| lookup.get(&(cx + dx, cy + dy)).copied()),
            );
            near_span.push((start, near_ids.len() as u32));
        }
        CellGrid {
            order,
            span,
            cell_of,
            near_span,
            near_ids,
        }
    }

    fn points(&self, cell: u32) -> &[u32] {
        let (a, b) = self.span[cell as usize];
        &self.order[a as usize..b as usize]
    }

    /// The cell itself and every cell that can hold a point within `eps` (5 x 5 block).
    fn near(&self, cell: u32) -> impl Iterator<Item = u32> + '_ {
        let (a, b) = self.near_span[cell as usize];
        self.near_ids[a as usize..b as usize].iter().copied()
    }
}

fn within(a: [f64; 2], b: [f64; 2], eps2: f64) -> bool {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) <= eps2
}

/// Core flags: a cell with >= `min_points` points makes all of them core; otherwise count.
fn core_flags(coords: &[[f64; 2]], g: &CellGrid, eps2: f64, min_points: usize) -> Vec<bool> {
    let mut core = vec![false; coords.len()];
    for cell in 0..g.span.len() as u32 {
        let own = g.points(cell);
        if own.len() >= min_points {
            own.iter().for_each(|&i| core[i as usize] = true);
            continue;
        }
        for &i in own {
            let p = coords[i as usize];
            let mut count = 0;
            'cells: for nc in g.near(cell) {
                for &j in g.points(nc) {
                    if within(p, coords[j as usize], eps2) {
                        count += 1;
                        if count >= min_points {
                            break 'cells;
                        }
                    }
                }
            }
            core[i as usize] = count >= min_points;
        }
    }
    core
}

/// Whether some core point of cell `a` is within `eps` of some core point of cell `b`.
fn cells_linked(
    coords: &[[f64; 2]],
    g: &CellGrid,
    core: &[bool],
    a: u32,
    b: u32,
    eps2: f64,
) -> bool {
    g.points(a).iter().filter(|&&i| core[i as usize]).any(|&i| {
        let p = coords[i as usize];
        g.points(b)
            .iter()
            .any(|&j| core[j as usize] && within(p, coords[j as usize], eps2))
    })
}

/// DBSCAN with scikit-learn semantics (see the module docs); `coords` in metres.
///
/// Errors: `eps_m` outside (0, 50 000], `min_points < 1`, non-finite coordinates.
/// An empty input gives zero clusters.
pub fn dbscan(
    coords: &[[f64; 2]],
    eps_m: f64,
    min_points: usize,
) -> Result<DbscanLabels, ClusterError> {
    if !distance_ok(eps_m) {
        return Err(ClusterError::InvalidEps(eps_m));
    }
    if min_points < 1 {
        return Err(ClusterError::InvalidMinPoints(min_points));
    }
    if let Some(i) = coords
        .iter()
        .position(|c| !(c[0].is_finite() && c[1].is_finite()))
    {
        return Err(ClusterError::NonFiniteCoordinate(i));
    }
    let eps2 = eps_m * eps_m;
    let g = CellGrid::new(coords, eps_m);
    let is_core = core_flags(coords, &g, eps2, min_points);
    let has_core: Vec<bool> = (0..g.span.len() as u32)
        .map(|c| g.points(c).iter().any(|&i| is_core[i as usize]))
        .collect();
    // Core points of one cell are within eps of each other: union whole cells.
    let mut uf = UnionFind::new(g.span.len());
    for a in (0..g.span.len() as u32).filter(|&c| has_core[c as usize]) {
        for b in g.near(a).filter(|&b| b > a && has_core[b as usize]) {
            if uf.find(a) != uf.find(b) && cells_linked(coords, &g, &is_core, a, b, eps2) {
                uf.union(a, b);
            }
        }
    }
    let mut root_label = vec![u32::MAX; g.span.len()];
    let mut labels = vec![None; coords.len()];
    let mut n_clusters = 0u32;
    for i in (0..coords.len()).filter(|&i| is_core[i]) {
        let r = uf.find(g.cell_of[i]) as usize;
        if root_label[r] == u32::MAX {
            root_label[r] = n_clusters;
            n_clusters += 1;
        }
        labels[i] = Some(root_label[r]);
    }
    for i in (0..coords.len()).filter(|&i| !is_core[i]) {
        let p = coords[i];
        labels[i] = g
            .near(g.cell_of[i])
            .flat_map(|c| g.points(c))
            .filter(|&&j| is_core[j as usize] && within(p, coords[j as usize], eps2))
            .filter_map(|&j| labels[j as usize])
            .min();
    }
    Ok(DbscanLabels {
        labels,
        is_core,
        n_clusters,
    })
}

/// Clustering method of the `method` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterMethod {
    /// [`dbscan`] with `eps_m` and `min_points`.
    #[default]
    Dbscan,
    /// [`super::hdbscan::hdbscan`] with `min_cluster_size` and `min_samples`.
    Hdbscan,
}

/// Query parameters of `GET /datasets/{id}/clusters` (the common filters excluded).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterParams {
    /// `dbscan` (default) or `hdbscan`.
    pub method: ClusterMethod,
    /// DBSCAN neighbourhood radius in metres (default 100).
    pub eps_m: f64,
    /// DBSCAN minimum neighbourhood size, the point itself included (default 5, as sklearn).
    pub min_points: usize,
    /// HDBSCAN minimum cluster size (default 5, as the hdbscan package).
    pub min_cluster_size: usize,
    /// HDBSCAN core-distance neighbour count, self included (default: `min_cluster_size`).
    pub min_samples: Option<usize>,
    /// Cluster outline: `convex` (default) or `concave`.
    pub hull: HullKind,
    /// Concavity of the concave hull (geo `ConcaveHull`; lower = more concave; default 2).
    pub concavity: f64,
    /// Buffer radius in metres for clusters of fewer than 3 distinct or collinear points
    /// (default 10).
    pub buffer_m: f64,
}

impl Default for ClusterParams {
    fn default() -> Self {
        Self {
            method: ClusterMethod::Dbscan,
            eps_m: 100.0,
            min_points: 5,
            min_cluster_size: 5,
            min_samples: None,
            hull: HullKind::Convex,
            concavity: 2.0,
            buffer_m: 10.0,
        }
    }
}

impl ClusterParams {
    /// Checks every parameter range; returns the first violation.
    pub fn validate(&self) -> Result<(), ClusterError> {
        if !distance_ok(self.eps_m) {
            return Err(ClusterError::InvalidEps(self.eps_m));
        }
        if self.min_points < 1 {
            return Err(ClusterError::InvalidMinPoints(self.min_points));
        }
        if self.min_cluster_size < 2 {
            return Err(ClusterError::InvalidMinClusterSize(self.min_cluster_size));
        }
        if let Some(m) = self.min_samples.filter(|m| *m < 1) {
            return Err(ClusterError::InvalidMinSamples(m));
        }
        if !(self.concavity.is_finite() && self.concavity > 0.0) {
            return Err(ClusterError::InvalidConcavity(self.concavity));
        }
        if !distance_ok(self.buffer_m) {
            return Err(ClusterError::InvalidBuffer(self.buffer_m));
        }
        Ok(())
    }

    /// Number of points the chosen method needs at least.
    pub fn min_points_needed(&self) -> usize {
        match self.method {
            ClusterMethod::Dbscan => self.min_points,
            ClusterMethod::Hdbscan => self.min_cluster_size,
        }
    }
}

/// One cluster: its outline and what is in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterSummary {
    /// Cluster id (see [`dbscan`] and [`super::hdbscan::hdbscan`] for the numbering).
    pub cluster_id: u32,
    /// Number of incidents in the cluster.
    pub count: usize,
    /// Number of distinct fine H3 cells among the incidents.
    pub distinct_locations: usize,
    /// Incidents per category code.
    pub category_counts: BTreeMap<u16, usize>,
    /// Incidents per source code.
    pub source_counts: BTreeMap<u16, usize>,
    /// Earliest `occurred_at` (unix seconds).
    pub first_occurred_at: i64,
    /// Latest `occurred_at` (unix seconds).
    pub last_occurred_at: i64,
    /// HDBSCAN excess-of-mass stability (`None` for DBSCAN, or when infinite because of
    /// coincident points).
    pub stability: Option<f64>,
    /// HDBSCAN persistence as the hdbscan package's `cluster_persistence_` (`None` for DBSCAN).
    pub persistence: Option<f64>,
    /// How the outline was made.
    pub polygon_kind: PolygonKind,
    /// Outline in the metric CRS, exterior ring counter-clockwise and closed.
    #[serde(serialize_with = "super::hull::serialize_polygon")]
    pub polygon: Polygon<f64>,
}

/// Result of [`cluster_points`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterResult {
    /// Method used.
    pub method: ClusterMethod,
    /// Number of input points.
    pub n_points: usize,
    /// Number of clusters.
    pub n_clusters: usize,
    /// Number of points in no cluster.
    pub noise_count: usize,
    /// The clusters, in id order.
    pub clusters: Vec<ClusterSummary>,
    /// Cluster id per input point (`None` = noise); not serialised.
    #[serde(skip)]
    pub labels: Vec<Option<u32>>,
}

/// Validates `params`, clusters `points` with the chosen method and summarises each cluster.
pub fn cluster_points(
    points: &[ClusterPoint],
    params: &ClusterParams,
) -> Result<ClusterResult, ClusterError> {
    params.validate()?;
    let coords = coords_of(points)?;
    let needed = params.min_points_needed();
    if points.len() < needed {
        return Err(ClusterError::TooFewPoints {
            found: points.len(),
            needed,
        });
    }
    let (labels, n, stab) = match params.method {
        ClusterMethod::Dbscan => {
            let d = dbscan(&coords, params.eps_m, params.min_points)?;
            (d.labels, d.n_clusters as usize, None)
        }
        ClusterMethod::Hdbscan => {
            let ms = params.min_samples.unwrap_or(params.min_cluster_size);
            let h = super::hdbscan::hdbscan(&coords, params.min_cluster_size, ms)?;
            let n = h.n_clusters as usize;
            (h.labels, n, Some((h.stability, h.persistence)))
        }
    };
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, l) in labels.iter().enumerate() {
        if let Some(l) = l {
            members[*l as usize].push(i);
        }
    }
    let clusters = members
        .iter()
        .enumerate()
        .map(|(id, m)| {
            let (s, p) = match &stab {
                Some((s, p)) => (Some(s[id]).filter(|v| v.is_finite()), Some(p[id])),
                None => (None, None),
            };
            summarise(points, &coords, id as u32, m, params, s, p)
        })
        .collect();
    let noise_count = labels.iter().filter(|l| l.is_none()).count();
    Ok(ClusterResult {
        method: params.method,
        n_points: points.len(),
        n_clusters: n,
        noise_count,
        clusters,
        labels,
    })
}

fn summarise(
    points: &[ClusterPoint],
    coords: &[[f64; 2]],
    cluster_id: u32,
    members: &[usize],
    params: &ClusterParams,
    stability: Option<f64>,
    persistence: Option<f64>,
) -> ClusterSummary {
    let mut category_counts = BTreeMap::new();
    let mut source_counts = BTreeMap::new();
    let mut cells = HashSet::new();
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for &i in members {
        let p = &points[i];
        *category_counts.entry(p.category).or_insert(0) += 1;
        *source_counts.entry(p.source).or_insert(0) += 1;
        cells.insert(p.cell);
        first = first.min(p.occurred_at);
        last = last.max(p.occurred_at);
    }
    let pts: Vec<[f64; 2]> = members.iter().map(|&i| coords[i]).collect();
    let (polygon, polygon_kind) =
        cluster_polygon(&pts, params.hull, params.concavity, params.buffer_m);
    ClusterSummary {
        cluster_id,
        count: members.len(),
        distinct_locations: cells.len(),
        category_counts,
        source_counts,
        first_occurred_at: first,
        last_occurred_at: last,
        stability,
        persistence,
        polygon_kind,
        polygon,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_from_query_string() {
        let p: ClusterParams = serde_urlencoded::from_str(
            "method=hdbscan&min_cluster_size=12&min_samples=3&hull=concave",
        )
        .expect("parses");
        assert_eq!(p.method, ClusterMethod::Hdbscan);
        assert_eq!(p.min_cluster_size, 12);
        assert_eq!(p.min_samples, Some(3));
        assert_eq!(p.hull, HullKind::Concave);
        assert!(serde_urlencoded::from_str::<ClusterParams>("eps=3").is_err());
        let bad = ClusterParams {
            eps_m: 0.0,
            ..Default::default()
        };
        assert_eq!(bad.validate().map_err(|e| e.code()), Err("invalid_eps"));
        let bad = ClusterParams {
            eps_m: 50_001.0,
            ..Default::default()
        };
        assert_eq!(bad.validate().map_err(|e| e.code()), Err("invalid_eps"));
    }

    #[test]
    fn tiny_dbscan_by_hand() {
        // Two groups and one outlier; the border point 3 touches core point 2 only.
        let c = [
            [0.0, 0.0],
            [1.0, 0.0],
            [2.0, 0.0],
            [3.0, 0.0],
            [10.0, 0.0],
            [10.5, 0.0],
            [50.0, 0.0],
        ];
        let d = dbscan(&c, 1.0, 3).expect("ok");
        assert_eq!(d.is_core, [false, true, true, false, false, false, false]);
        assert_eq!(
            d.labels,
            [Some(0), Some(0), Some(0), Some(0), None, None, None]
        );
        let d = dbscan(&c, 1.0, 2).expect("ok");
        assert_eq!(d.labels[4], Some(1));
        assert_eq!(d.labels[6], None);
        assert_eq!(d.n_clusters, 2);
    }
}
