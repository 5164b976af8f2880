//! The study area (window) of the proximity analysis, in metres.
//!
//! - point-in-window by the even-odd rule over all rings (edges bucketed in horizontal
//!   strips so a test costs only the edges crossing its strip);
//! - distance to the window boundary (R-tree of boundary segments), used by the border
//!   edge correction of L-cross, as spatstat `bdist.points`;
//! - the exact area of a disc ∩ window, by summing over the edges the signed area of
//!   disc ∩ triangle(centre, a, b) (the classic circle–polygon clipping decomposition);
//! - the pixel-centre grid of the window, as spatstat `as.mask(W, dimyx = c(ny, nx))`: pixel
//!   centres of an `nx × ny` grid over the bounding box that fall inside the window.

use super::ProximityError;
use geo::{Area, BoundingRect, MultiPolygon};
use rstar::RTree;
use rstar::primitives::Line;

/// A polygonal window with fast point-in-window and boundary-distance queries.
#[derive(Debug, Clone)]
pub struct Window {
    /// Rings as closed coordinate lists (last == first), exteriors and holes; `is_hole`
    /// tells which are holes.
    rings: Vec<Vec<[f64; 2]>>,
    is_hole: Vec<bool>,
    area_m2: f64,
    bbox: [f64; 4],
    strip_h: f64,
    strips: Vec<Vec<([f64; 2], [f64; 2])>>,
    boundary: RTree<Line<[f64; 2]>>,
}

impl Window {
    /// Builds the window; errors with [`ProximityError::ZeroAreaWindow`] when its area is 0.
    pub fn new(mp: &MultiPolygon<f64>) -> Result<Self, ProximityError> {
        let area_m2 = mp.unsigned_area();
        let rect = mp.bounding_rect().ok_or(ProximityError::ZeroAreaWindow)?;
        if !area_m2.is_finite() || area_m2 <= 0.0 {
            return Err(ProximityError::ZeroAreaWindow);
        }
        let mut rings = Vec::new();
        let mut is_hole = Vec::new();
        for poly in &mp.0 {
            for (k, ring) in std::iter::once(poly.exterior())
                .chain(poly.interiors())
                .enumerate()
            {
                let mut pts: Vec<[f64; 2]> = ring.0.iter().map(|c| [c.x, c.y]).collect();
                if pts.len() < 3 {
                    continue;
                }
                if pts.first() != pts.last() {
                    pts.push(pts[0]);
                }
                rings.push(pts);
                is_hole.push(k > 0);
            }
        }
        let bbox = [rect.min().x, rect.min().y, rect.max().x, rect.max().y];
        let edges: Vec<([f64; 2], [f64; 2])> = rings
            .iter()
            .flat_map(|r| r.windows(2).map(|w| (w[0], w[1])))
            .collect();
        let n_strips = edges.len().clamp(1, 4096);
        let strip_h = ((bbox[3] - bbox[1]) / n_strips as f64).max(f64::MIN_POSITIVE);
        let mut strips = vec![Vec::new(); n_strips];
        for &(a, b) in &edges {
            let lo = Self::strip_of(bbox[1], strip_h, n_strips, a[1].min(b[1]));
            let hi = Self::strip_of(bbox[1], strip_h, n_strips, a[1].max(b[1]));
            for s in &mut strips[lo..=hi] {
                s.push((a, b));
            }
        }
        let boundary = RTree::bulk_load(edges.iter().map(|&(a, b)| Line::new(a, b)).collect());
        Ok(Self {
            rings,
            is_hole,
            area_m2,
            bbox,
            strip_h,
            strips,
            boundary,
        })
    }

    fn strip_of(y0: f64, h: f64, n: usize, y: f64) -> usize {
        (((y - y0) / h).floor().max(0.0) as usize).min(n - 1)
    }

    /// Area of the window in m².
    pub fn area_m2(&self) -> f64 {
        self.area_m2
    }

    /// Bounding box `[min_x, min_y, max_x, max_y]`.
    pub fn bbox(&self) -> [f64; 4] {
        self.bbox
    }

    /// Whether `(x, y)` lies inside the window (even-odd rule; boundary points may go
    /// either way).
    pub fn contains(&self, x: f64, y: f64) -> bool {
        if x < self.bbox[0] || x > self.bbox[2] || y < self.bbox[1] || y > self.bbox[3] {
            return false;
        }
        let s = Self::strip_of(self.bbox[1], self.strip_h, self.strips.len(), y);
        let mut inside = false;
        for &(a, b) in &self.strips[s] {
            if (a[1] > y) != (b[1] > y) {
                let xi = a[0] + (y - a[1]) / (b[1] - a[1]) * (b[0] - a[0]);
                if x < xi {
                    inside = !inside;
                }
            }
        }
        inside
    }

    /// Euclidean distance (m) from `(x, y)` to the nearest point of the window boundary.
    pub fn boundary_distance(&self, x: f64, y: f64) -> f64 {
        self.boundary
            .nearest_neighbor(&[x, y])
            .map_or(0.0, |l| rstar::PointDistance::distance_2(l, &[x, y]).sqrt())
    }

    /// [`boundary_distance`](Self::boundary_distance) of many points. With many points and
    /// few edges (a convex hull, a simple study area) the edges that can be nearest are
    /// listed per cell of a grid over the bounding box, and each point takes the minimum of
    /// the same squared segment distance over its cell's list (which holds the nearest edge),
    /// so the value is that of the R-tree search.
    pub fn boundary_distances(&self, pts: &[[f64; 2]]) -> Vec<f64> {
        let edges: Vec<&Line<[f64; 2]>> = self.boundary.iter().collect();
        if pts.len() < 4096 || edges.len() > 256 || edges.is_empty() {
            return pts
                .iter()
                .map(|p| self.boundary_distance(p[0], p[1]))
                .collect();
        }
        let [x0, y0, x1, y1] = self.bbox;
        let cells = (pts.len() / 64).clamp(16, 4096) as f64;
        let side = ((x1 - x0).max(1e-6) * (y1 - y0).max(1e-6) / cells)
            .sqrt()
            .max((x1 - x0).max(y1 - y0) / 512.0)
            .max(1e-6);
        let (nx, ny) = (
            ((x1 - x0) / side) as usize + 1,
            ((y1 - y0) / side) as usize + 1,
        );
        // A cell's centre c and half diagonal h: an edge e can be nearest to a point of the
        // cell only when d(c, e) - h <= min over edges of d(c, e') + h.
        let h = side * std::f64::consts::FRAC_1_SQRT_2 * (1.0 + 1e-6);
        let slack = 1e-9 * (1.0 + x1.abs().max(y1.abs()).max(x0.abs()).max(y0.abs()));
        let mut offsets = Vec::with_capacity(nx * ny + 1);
        let mut cand: Vec<u32> = Vec::new();
        offsets.push(0u32);
        let mut dc = vec![0.0; edges.len()];
        for j in 0..ny {
            for i in 0..nx {
                let c = [x0 + (i as f64 + 0.5) * side, y0 + (j as f64 + 0.5) * side];
                for (d, e) in dc.iter_mut().zip(&edges) {
                    *d = rstar::PointDistance::distance_2(*e, &c).sqrt();
                }
                let bound = dc.iter().copied().fold(f64::INFINITY, f64::min) + 2.0 * h + slack;
                cand.extend((0..edges.len() as u32).filter(|&e| dc[e as usize] <= bound));
                offsets.push(cand.len() as u32);
            }
        }
        let inv = 1.0 / side;
        pts.iter()
            .map(|p| {
                let inside = p[0] >= x0 && p[0] <= x1 && p[1] >= y0 && p[1] <= y1;
                if !inside {
                    return self.boundary_distance(p[0], p[1]);
                }
                let i = (((p[0] - x0) * inv) as usize).min(nx - 1);
                let j = (((p[1] - y0) * inv) as usize).min(ny - 1);
                let c = j * nx + i;
                cand[offsets[c] as usize..offsets[c + 1] as usize]
                    .iter()
                    .map(|&e| rstar::PointDistance::distance_2(edges[e as usize], p))
                    .fold(f64::INFINITY, f64::min)
                    .sqrt()
            })
            .collect()
    }

    /// Exact area (m²) of the disc of radius `r` around `(cx, cy)` intersected with the window.
    /// Rings whose bounding box the disc misses contribute exactly 0, and a result below
    /// 1e-12 of the disc area (rounding residue of the angle sums) is returned as 0.
    pub fn disc_area(&self, cx: f64, cy: f64, r: f64) -> f64 {
        let mut total = 0.0;
        for (ring, &hole) in self.rings.iter().zip(&self.is_hole) {
            let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
            for p in ring {
                lo = [lo[0].min(p[0]), lo[1].min(p[1])];
                hi = [hi[0].max(p[0]), hi[1].max(p[1])];
            }
            if cx + r < lo[0] || cx - r > hi[0] || cy + r < lo[1] || cy - r > hi[1] {
                continue;
            }
            let signed: f64 = ring
                .windows(2)
                .map(|w| {
                    let a = [w[0][0] - cx, w[0][1] - cy];
                    let b = [w[1][0] - cx, w[1][1] - cy];
                    disc_triangle_area(a, b, r)
                })
                .sum();
            total += if hole { -signed.abs() } else { signed.abs() };
        }
        if total < 1e-12 * std::f64::consts::PI * r * r {
            0.0
        } else {
            total
        }
    }

    /// Pixel centres inside the window of an `nx × ny` grid over the bounding box (as
    /// spatstat's mask of a polygonal window); returns the centres and the pixel area (m²).
    pub fn pixel_centres(&self, nx: usize, ny: usize) -> (Vec<[f64; 2]>, f64) {
        let [x0, y0, x1, y1] = self.bbox;
        let (dx, dy) = ((x1 - x0) / nx as f64, (y1 - y0) / ny as f64);
        let mut out = Vec::new();
        for j in 0..ny {
            let y = y0 + (j as f64 + 0.5) * dy;
            for i in 0..nx {
                let x = x0 + (i as f64 + 0.5) * dx;
                if self.contains(x, y) {
                    out.push([x, y]);
                }
            }
        }
        (out, dx * dy)
    }
}

/// Signed area of disc(0, r) ∩ triangle(0, a, b): positive when a→b turns counter-clockwise.
fn disc_triangle_area(a: [f64; 2], b: [f64; 2], r: f64) -> f64 {
    let d = [b[0] - a[0], b[1] - a[1]];
    let qa = d[0] * d[0] + d[1] * d[1];
    if qa == 0.0 {
        return 0.0;
    }
    let qb = a[0] * d[0] + a[1] * d[1];
    let qc = a[0] * a[0] + a[1] * a[1] - r * r;
    let disc = qb * qb - qa * qc;
    let mut ts = [0.0, 0.0, 0.0, 1.0];
    let mut nt = 1;
    if disc > 0.0 {
        let s = disc.sqrt();
        for t in [(-qb - s) / qa, (-qb + s) / qa] {
            if t > 0.0 && t < 1.0 {
                ts[nt] = t;
                nt += 1;
            }
        }
    }
    ts[nt] = 1.0;
    let at = |t: f64| [a[0] + t * d[0], a[1] + t * d[1]];
    let mut area = 0.0;
    for k in 0..nt {
        let (p, q) = (at(ts[k]), at(ts[k + 1]));
        let m = at(0.5 * (ts[k] + ts[k + 1]));
        let cross = p[0] * q[1] - p[1] * q[0];
        let r2 = r * r;
        let tol = r2 * (1.0 + 1e-9);
        let inside = m[0] * m[0] + m[1] * m[1] < r2
            && p[0] * p[0] + p[1] * p[1] <= tol
            && q[0] * q[0] + q[1] * q[1] <= tol;
        // (a segment tangent to the circle has its midpoint on it but its ends outside)
        if inside {
            area += 0.5 * cross;
        } else {
            let dot = p[0] * q[0] + p[1] * q[1];
            area += 0.5 * r * r * cross.atan2(dot);
        }
    }
    area
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{LineString, Polygon};

    fn square(s: f64) -> MultiPolygon<f64> {
        let ext = LineString::from(vec![(0.0, 0.0), (s, 0.0), (s, s), (0.0, s), (0.0, 0.0)]);
        MultiPolygon(vec![Polygon::new(ext, vec![])])
    }

    /// The grid path of `boundary_distances` equals the R-tree search to the bit, on a
    /// convex hull of random points (points inside, on the hull, outside the bbox).
    #[test]
    fn boundary_distances_equal_the_rtree_search() {
        use geo::{ConvexHull, MultiPoint, Point};
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let mut pt = || {
            [
                108_000.0 + rng.random::<f64>() * 20_000.0,
                485_000.0 + rng.random::<f64>() * 20_000.0,
            ]
        };
        let pts: Vec<[f64; 2]> = (0..30_000).map(|_| pt()).collect();
        let mp: MultiPoint<f64> = pts[..2000].iter().map(|p| Point::new(p[0], p[1])).collect();
        let w = Window::new(&MultiPolygon(vec![mp.convex_hull()])).expect("hull window");
        let mut q = pts.clone();
        q.extend(w.rings[0].iter().copied());
        q.push([100_000.0, 490_000.0]);
        let got = w.boundary_distances(&q);
        let want: Vec<f64> = q.iter().map(|p| w.boundary_distance(p[0], p[1])).collect();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want));
    }

    #[test]
    fn disc_inside_corner_and_outside() {
        let w = Window::new(&square(1000.0)).unwrap();
        let pi = std::f64::consts::PI;
        assert!((w.disc_area(500.0, 500.0, 100.0) - pi * 1e4).abs() < 1e-6);
        assert!((w.disc_area(0.0, 0.0, 100.0) - pi * 1e4 / 4.0).abs() < 1e-6);
        assert!((w.disc_area(500.0, 500.0, 5000.0) - 1e6).abs() < 1e-6);
        assert_eq!(w.disc_area(3000.0, 3000.0, 100.0), 0.0);
        assert!(w.contains(1.0, 999.0) && !w.contains(-1.0, 5.0));
        assert!((w.boundary_distance(100.0, 400.0) - 100.0).abs() < 1e-9);
        // Disc tangent to three sides of the square.
        let t = w.disc_area(500.0, 500.0, 500.0);
        assert!((t - pi * 25e4).abs() < 1e-6, "{t}");
    }
}
