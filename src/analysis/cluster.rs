//! Density-based point clusters: parameters, errors and the per-cluster summary (polygon,
//! counts, time span) for DBSCAN ([`dbscan`], exactly scikit-learn's) and HDBSCAN
//! ([`super::hdbscan`], the hdbscan package's).
//!
//! [`cluster_points`] validates [`ClusterParams`], runs the method and returns one
//! [`ClusterSummary`] per cluster plus the noise count. Cluster ids follow the method's numbering
//! (DBSCAN: order of each cluster's lowest-index core point; HDBSCAN: order of each cluster's
//! lowest-index member), so they are stable for the same points in the same order.

use std::collections::{BTreeMap, HashSet};

use geo::Polygon;
use serde::{Deserialize, Serialize};

use super::hull::{HullKind, PolygonKind, cluster_polygon};

#[path = "cluster/dbscan.rs"]
mod dbscan;
pub use dbscan::{DbscanLabels, dbscan};

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
