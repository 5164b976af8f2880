//! Study-area window for kernel density: point-in-window tests and the kernel mass inside the
//! window, `e(u) = ∫_W K(u − v) dv`, for the uniform ("Jones–Diggle") edge correction
//! `λ(u) = Σ K(u − xᵢ) / e(u)` (Jones 1993, "Simple boundary correction for kernel density
//! estimation", Statistics and Computing 3; spatstat `density.ppp(edge=TRUE, diggle=FALSE)`).
//!
//! The window is cut into horizontal bands whose boundaries include every vertex ordinate plus a
//! regular step (`σ/8` for the Gaussian, `r/64` for the quartic kernel). Inside a band the
//! window is a fixed set of trapezoids (the crossing edges keep their order), so:
//! * the x-integral of the kernel over the window is exact (Gaussian: `Φ` differences via
//!   `erfc`; quartic: the polynomial antiderivative), taken at the band's mid-ordinate;
//! * the y-integral is exact per band for the Gaussian (`Φ` difference of the band limits) and a
//!   midpoint rule for the quartic. For windows made of horizontal/vertical edges (rectangles) the
//!   Gaussian mass is therefore exact to rounding; sloping edges add an O(step²) error (~1e-5).
//!
//! Edges are taken from every ring (holes included) with the even-odd rule.

use geo::MultiPolygon;

use super::{DensityError, Kernel};

/// Gaussian mass beyond this many sigmas is ignored (≈ 2.6e-12).
const GAUSS_REACH: f64 = 7.0;
/// At most this many bands (guards memory for tiny bandwidths over huge windows).
const MAX_BANDS: usize = 4_000_000;

/// Standard normal CDF via `erfc` (accurate in both tails).
pub(crate) fn phi(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

/// A window prepared for inside tests and kernel-mass integrals.
pub struct Window {
    ys: Vec<f64>,
    edges: Vec<[f64; 4]>,
    band_edges: Vec<Vec<u32>>,
    kernel: Kernel,
    h: f64,
}

fn x_at(e: &[f64; 4], y: f64) -> f64 {
    e[0] + (e[2] - e[0]) * (y - e[1]) / (e[3] - e[1])
}

impl Window {
    /// Prepares `w` for kernel `kernel` with bandwidth `h` (sigma or radius, metres).
    pub fn new(w: &MultiPolygon<f64>, kernel: Kernel, h: f64) -> Result<Self, DensityError> {
        let mut edges = Vec::new();
        for poly in &w.0 {
            for ring in std::iter::once(poly.exterior()).chain(poly.interiors()) {
                for l in ring.lines() {
                    let (a, b) = (l.start, l.end);
                    if !(a.x.is_finite() && a.y.is_finite() && b.x.is_finite() && b.y.is_finite()) {
                        return Err(DensityError::InvalidWindow("non-finite coordinate"));
                    }
                    if a.y < b.y {
                        edges.push([a.x, a.y, b.x, b.y]);
                    } else if a.y > b.y {
                        edges.push([b.x, b.y, a.x, a.y]);
                    }
                }
            }
        }
        if edges.is_empty() {
            return Err(DensityError::InvalidWindow("the window has no area"));
        }
        let step = match kernel {
            Kernel::Gaussian => h / 8.0,
            Kernel::Quartic => h / 64.0,
        };
        let ys = band_limits(&edges, step)?;
        let mut band_edges = vec![Vec::new(); ys.len() - 1];
        for (k, e) in edges.iter().enumerate() {
            let i0 = ys.partition_point(|&y| y < e[1]);
            let i1 = ys.partition_point(|&y| y < e[3]);
            for band in &mut band_edges[i0..i1] {
                band.push(k as u32);
            }
        }
        for (b, list) in band_edges.iter_mut().enumerate() {
            let ym = 0.5 * (ys[b] + ys[b + 1]);
            list.sort_by(|p, q| {
                x_at(&edges[*p as usize], ym).total_cmp(&x_at(&edges[*q as usize], ym))
            });
        }
        Ok(Window {
            ys,
            edges,
            band_edges,
            kernel,
            h,
        })
    }

    /// Bounding box `[min_x, min_y, max_x, max_y]` of the window.
    pub fn bbox(&self) -> [f64; 4] {
        let mut bb = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
        for e in &self.edges {
            bb = [
                bb[0].min(e[0]).min(e[2]),
                bb[1].min(e[1]),
                bb[2].max(e[0]).max(e[2]),
                bb[3].max(e[3]),
            ];
        }
        bb
    }

    /// Inside intervals `(x0, x1)` of band `b` at ordinate `y`.
    fn intervals(&self, b: usize, y: f64) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.band_edges[b].chunks_exact(2).map(move |p| {
            (
                x_at(&self.edges[p[0] as usize], y),
                x_at(&self.edges[p[1] as usize], y),
            )
        })
    }

    /// Whether `(x, y)` is inside the window (even-odd rule; boundary counts as inside).
    pub fn contains(&self, x: f64, y: f64) -> bool {
        let n = self.ys.len();
        let b = self.ys.partition_point(|&v| v <= y);
        let band = match b {
            0 => return false,
            b if b >= n && y == self.ys[n - 1] => n - 2,
            b if b >= n => return false,
            b => b - 1,
        };
        self.intervals(band, y).any(|(a, c)| a <= x && x <= c)
    }

    /// Kernel mass inside the window for a kernel centred at `(ux, uy)`, in [0, 1].
    pub fn mass(&self, ux: f64, uy: f64) -> f64 {
        let reach = match self.kernel {
            Kernel::Gaussian => GAUSS_REACH * self.h,
            Kernel::Quartic => self.h,
        };
        let (lo, hi) = (uy - reach, uy + reach);
        let first = self.ys.partition_point(|&y| y <= lo).saturating_sub(1);
        let mut total = 0.0;
        for b in first..self.ys.len() - 1 {
            let (y0, y1) = (self.ys[b].max(lo), self.ys[b + 1].min(hi));
            if y0 >= hi {
                break;
            }
            if y1 <= y0 {
                continue;
            }
            let ym = 0.5 * (y0 + y1);
            total += match self.kernel {
                Kernel::Gaussian => self.gauss_band(b, ux, uy, y0, y1, ym),
                Kernel::Quartic => self.quartic_band(b, ux, uy, y1 - y0, ym),
            };
        }
        total.clamp(0.0, 1.0)
    }

    fn gauss_band(&self, b: usize, ux: f64, uy: f64, y0: f64, y1: f64, ym: f64) -> f64 {
        let s = self.h;
        let wy = phi((y1 - uy) / s) - phi((y0 - uy) / s);
        let (l, r) = (ux - GAUSS_REACH * s, ux + GAUSS_REACH * s);
        let mut x = 0.0;
        for (a, c) in self.intervals(b, ym) {
            if c <= l || a >= r {
                continue;
            }
            if a <= l && c >= r {
                x = 1.0;
                break;
            }
            x += phi((c - ux) / s) - phi((a - ux) / s);
        }
        wy * x
    }

    fn quartic_band(&self, b: usize, ux: f64, uy: f64, height: f64, ym: f64) -> f64 {
        let r = self.h;
        let c = 1.0 - ((ym - uy) / r).powi(2);
        if c <= 0.0 {
            return 0.0;
        }
        let w = r * c.sqrt();
        let anti = |t: f64| {
            c * c * t - 2.0 * c * t.powi(3) / (3.0 * r * r) + t.powi(5) / (5.0 * r.powi(4))
        };
        let mut x = 0.0;
        for (a, e) in self.intervals(b, ym) {
            let (t0, t1) = ((a - ux).max(-w), (e - ux).min(w));
            if t1 > t0 {
                x += anti(t1) - anti(t0);
            }
        }
        // ∫∫ (1 − d²/r²)² over the disc = π r² / 3.
        x * height / (std::f64::consts::PI * r * r / 3.0)
    }
}

/// Sorted band limits: every vertex ordinate plus a regular `step` over the window's y-range.
fn band_limits(edges: &[[f64; 4]], step: f64) -> Result<Vec<f64>, DensityError> {
    let ymin = edges.iter().map(|e| e[1]).fold(f64::MAX, f64::min);
    let ymax = edges.iter().map(|e| e[3]).fold(f64::MIN, f64::max);
    let n_reg = ((ymax - ymin) / step).ceil();
    if !(n_reg.is_finite()) || n_reg as usize + 2 * edges.len() > MAX_BANDS {
        return Err(DensityError::InvalidWindow(
            "window too large for this bandwidth",
        ));
    }
    let mut ys: Vec<f64> = edges.iter().flat_map(|e| [e[1], e[3]]).collect();
    ys.extend((1..n_reg as usize).map(|k| ymin + k as f64 * step));
    ys.sort_by(f64::total_cmp);
    ys.dedup();
    Ok(ys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{MultiPolygon, polygon};

    fn square() -> MultiPolygon<f64> {
        MultiPolygon(vec![
            polygon![(x: 0.0, y: 0.0), (x: 1000.0, y: 0.0), (x: 1000.0, y: 1000.0), (x: 0.0, y: 1000.0)],
        ])
    }

    #[test]
    fn gaussian_mass_in_square_is_erf_product() {
        let w = Window::new(&square(), Kernel::Gaussian, 50.0).expect("window");
        for (x, y) in [(500.0, 500.0), (0.0, 0.0), (20.0, 700.0), (-30.0, 980.0)] {
            let want = (phi((1000.0 - x) / 50.0) - phi(-x / 50.0))
                * (phi((1000.0 - y) / 50.0) - phi(-y / 50.0));
            assert!(
                (w.mass(x, y) - want).abs() < 1e-11,
                "{x},{y}: {} vs {want}",
                w.mass(x, y)
            );
        }
        assert!(w.contains(0.0, 0.0) && w.contains(500.0, 1000.0) && !w.contains(-1.0, 5.0));
    }

    #[test]
    fn quartic_mass_halves_on_a_straight_edge() {
        let w = Window::new(&square(), Kernel::Quartic, 100.0).expect("window");
        assert!(
            (w.mass(500.0, 500.0) - 1.0).abs() < 1e-4,
            "{}",
            w.mass(500.0, 500.0)
        );
        assert!(
            (w.mass(0.0, 500.0) - 0.5).abs() < 1e-4,
            "{}",
            w.mass(0.0, 500.0)
        );
        assert!(
            (w.mass(0.0, 0.0) - 0.25).abs() < 1e-4,
            "{}",
            w.mass(0.0, 0.0)
        );
    }
}
