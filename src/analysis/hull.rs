//! The outline polygon of a point cluster: convex hull, concave hull, or a buffer.
//!
//! * `convex`: the convex hull (geo `ConvexHull`, quickhull); every point lies inside or on it.
//! * `concave`: geo `ConcaveHull` with `concavity` (a port of mapbox/concaveman, Park & Oh 2012,
//!   "A New Concave Hull Algorithm and Concaveness Measure for n-dimensional Datasets");
//!   `length_threshold` 0. If the result would leave any point outside (never seen, but the
//!   algorithm does not promise it), the convex hull is returned instead.
//! * `buffer`: clusters with fewer than 3 distinct points, or all points on one line, have no
//!   area; their outline is the convex hull of a regular 32-gon of radius `buffer_m` around each
//!   distinct extreme point (the circumscribed polygon, so the true disc of radius `buffer_m` is
//!   inside it), i.e. a point buffer or a capsule around the segment.
//!
//! Exterior rings are closed and counter-clockwise (RFC 7946 orientation), in the input CRS.

use geo::{
    Area, ConcaveHull, ConvexHull, Coord, Intersects, LineString, MultiPoint, Orient, Point,
    Polygon, concave_hull::ConcaveHullOptions, orient::Direction,
};
use serde::{Deserialize, Serialize, Serializer};

/// Segments of the full circle used for buffers.
pub const BUFFER_SEGMENTS: usize = 32;

/// Which outline the caller asked for (`hull` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HullKind {
    /// Convex hull (default).
    #[default]
    Convex,
    /// Concave hull with the `concavity` parameter.
    Concave,
}

/// Which outline was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PolygonKind {
    /// Convex hull.
    Convex,
    /// Concave hull.
    Concave,
    /// Buffer around < 3 distinct or collinear points.
    Buffer,
}

/// Outline of the points `pts` (metres); see the module docs. An empty input gives an empty
/// polygon of kind `Buffer`.
pub fn cluster_polygon(
    pts: &[[f64; 2]],
    hull: HullKind,
    concavity: f64,
    buffer_m: f64,
) -> (Polygon<f64>, PolygonKind) {
    let mut distinct: Vec<[f64; 2]> = pts.to_vec();
    distinct.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    distinct.dedup();
    let mp: MultiPoint<f64> = distinct.iter().map(|c| Point::new(c[0], c[1])).collect();
    if distinct.len() < 3 || collinear(&mp) {
        return (buffer_polygon(&distinct, buffer_m), PolygonKind::Buffer);
    }
    let convex = mp.convex_hull().orient(Direction::Default);
    if hull == HullKind::Convex {
        return (convex, PolygonKind::Convex);
    }
    let opts = ConcaveHullOptions {
        concavity,
        length_threshold: 0.0,
    };
    let concave = mp
        .concave_hull_with_options(opts)
        .orient(Direction::Default);
    if concave.unsigned_area() > 0.0 && mp.iter().all(|p| concave.intersects(p)) {
        (concave, PolygonKind::Concave)
    } else {
        (convex, PolygonKind::Convex)
    }
}

/// True when the points span no area: the convex hull area is negligible against the squared
/// extent (relative 1e-12).
fn collinear(mp: &MultiPoint<f64>) -> bool {
    let hull = mp.convex_hull();
    let (mut lo, mut hi) = ([f64::MAX; 2], [f64::MIN; 2]);
    for p in mp.iter() {
        lo = [lo[0].min(p.x()), lo[1].min(p.y())];
        hi = [hi[0].max(p.x()), hi[1].max(p.y())];
    }
    let ext = (hi[0] - lo[0]).max(hi[1] - lo[1]);
    hull.unsigned_area() <= 1e-12 * ext * ext
}

/// Buffer of `buffer_m` around distinct (collinear or fewer than 3) points: the convex hull of
/// circumscribed 32-gons around the two extreme points.
fn buffer_polygon(distinct: &[[f64; 2]], buffer_m: f64) -> Polygon<f64> {
    if distinct.is_empty() {
        return Polygon::new(LineString::new(vec![]), vec![]);
    }
    // `distinct` is sorted by (x, y), so the extremes of a collinear set are first and last.
    let ends = [distinct[0], distinct[distinct.len() - 1]];
    let r = buffer_m / (std::f64::consts::PI / BUFFER_SEGMENTS as f64).cos();
    let ring: MultiPoint<f64> = ends
        .iter()
        .flat_map(|c| {
            (0..BUFFER_SEGMENTS).map(move |k| {
                let a = 2.0 * std::f64::consts::PI * k as f64 / BUFFER_SEGMENTS as f64;
                Point::new(c[0] + r * a.cos(), c[1] + r * a.sin())
            })
        })
        .collect();
    ring.convex_hull().orient(Direction::Default)
}

/// Serialises a polygon as GeoJSON-style ring arrays `[[[x, y], ...], ...]`.
pub fn serialize_polygon<S: Serializer>(p: &Polygon<f64>, s: S) -> Result<S::Ok, S::Error> {
    let ring =
        |l: &LineString<f64>| -> Vec<[f64; 2]> { l.0.iter().map(|c: &Coord| [c.x, c.y]).collect() };
    let mut rings = vec![ring(p.exterior())];
    rings.extend(p.interiors().iter().map(ring));
    rings.serialize(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_point_gets_a_32_gon_buffer() {
        let (p, k) = cluster_polygon(&[[5.0, 5.0], [5.0, 5.0]], HullKind::Convex, 2.0, 10.0);
        assert_eq!(k, PolygonKind::Buffer);
        assert_eq!(p.exterior().0.len(), BUFFER_SEGMENTS + 1);
        let area = p.unsigned_area();
        // Circumscribed 32-gon: area = n r^2 tan(pi/n) with r = 10.
        let expected = 32.0 * 100.0 * (std::f64::consts::PI / 32.0).tan();
        assert!((area - expected).abs() < 1e-6, "{area} vs {expected}");
    }

    #[test]
    fn collinear_points_get_a_capsule() {
        let pts = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]];
        let (p, k) = cluster_polygon(&pts, HullKind::Concave, 2.0, 10.0);
        assert_eq!(k, PolygonKind::Buffer);
        assert!(pts.iter().all(|c| p.intersects(&Point::new(c[0], c[1]))));
        assert!(p.unsigned_area() > 2.0 * 10.0 * 18f64.sqrt());
    }

    #[test]
    fn square_convex_hull_is_ccw() {
        let pts = [
            [0.0, 0.0],
            [10.0, 0.0],
            [10.0, 10.0],
            [0.0, 10.0],
            [5.0, 5.0],
        ];
        let (p, k) = cluster_polygon(&pts, HullKind::Convex, 2.0, 10.0);
        assert_eq!(k, PolygonKind::Convex);
        assert!((p.signed_area() - 100.0).abs() < 1e-9);
    }
}
