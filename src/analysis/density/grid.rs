//! The output grid of [`super::density_grid`] and its fast path: every point spread over the
//! cells within its reach. Quartic: direct (compact support, exact). Gaussian (truncated at
//! [`GAUSS_TRUNCATION_SIGMAS`]σ): the separable direct sum, or — when cheaper — the same sum
//! with the y-factor expanded in a Taylor series around row centres (a one-dimensional fast Gauss
//! transform, Greengard & Strain 1991), see [`gaussian_rows_taylor`].

use super::{DensityError, GAUSS_TRUNCATION_SIGMAS, Kernel, MAX_CELLS};

/// The cells of a grid: origin (south-west corner), size and shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GridSpec {
    pub(crate) ox: f64,
    pub(crate) oy: f64,
    pub(crate) cell: f64,
    pub(crate) ncols: usize,
    pub(crate) nrows: usize,
}

impl GridSpec {
    /// Grid over `bb` snapped to multiples of `cell`; errors above [`MAX_CELLS`].
    pub(crate) fn covering(bb: [f64; 4], cell: f64) -> Result<Self, DensityError> {
        let ox = (bb[0] / cell).floor() * cell;
        let oy = (bb[1] / cell).floor() * cell;
        let nc = ((bb[2] - ox) / cell).floor() + 1.0;
        let nr = ((bb[3] - oy) / cell).floor() + 1.0;
        let cells = nc * nr;
        if cells.is_nan() || cells > MAX_CELLS as f64 {
            let cells = if cells.is_finite() {
                cells as u64
            } else {
                u64::MAX
            };
            return Err(DensityError::TooManyCells {
                cells,
                max: MAX_CELLS,
            });
        }
        Ok(GridSpec {
            ox,
            oy,
            cell,
            ncols: nc as usize,
            nrows: nr as usize,
        })
    }

    pub(crate) fn centre(&self, col: usize, row: usize) -> [f64; 2] {
        [
            self.ox + (col as f64 + 0.5) * self.cell,
            self.oy + (row as f64 + 0.5) * self.cell,
        ]
    }

    /// Inclusive index range of cell centres within `[lo, hi]` along an axis.
    pub(crate) fn span(
        origin: f64,
        cell: f64,
        n: usize,
        lo: f64,
        hi: f64,
    ) -> Option<(usize, usize)> {
        let a = ((lo - origin) / cell - 0.5).ceil().max(0.0);
        let b = ((hi - origin) / cell - 0.5).floor().min(n as f64 - 1.0);
        (a <= b).then_some((a as usize, b as usize))
    }
}

/// Raw kernel sums per m² on the grid, fast path (see the module docs).
pub(crate) fn fast_grid(coords: &[[f64; 2]], g: &GridSpec, kernel: Kernel, h: f64) -> Vec<f64> {
    if kernel == Kernel::Gaussian
        && let Some(plan) = TaylorPlan::new(g, h, coords.len())
    {
        return gaussian_rows_taylor(coords, g, h, &plan);
    }
    direct_grid(coords, g, kernel, h)
}

/// The direct truncated sum: each point adds its kernel to every cell within reach.
fn direct_grid(coords: &[[f64; 2]], g: &GridSpec, kernel: Kernel, h: f64) -> Vec<f64> {
    let mut acc = vec![0.0; g.ncols * g.nrows];
    let reach = kernel.reach(h);
    let (mut wx, mut wy) = (Vec::new(), Vec::new());
    for (i, p) in coords.iter().enumerate() {
        if i % 4096 == 0 {
            crate::cancel::checkpoint();
        }
        let Some((c0, c1)) = GridSpec::span(g.ox, g.cell, g.ncols, p[0] - reach, p[0] + reach)
        else {
            continue;
        };
        let Some((r0, r1)) = GridSpec::span(g.oy, g.cell, g.nrows, p[1] - reach, p[1] + reach)
        else {
            continue;
        };
        let dx2 = |c: usize| (g.ox + (c as f64 + 0.5) * g.cell - p[0]).powi(2);
        let dy2 = |r: usize| (g.oy + (r as f64 + 0.5) * g.cell - p[1]).powi(2);
        match kernel {
            Kernel::Gaussian => {
                // exp(-(dx²+dy²)/2σ²) = exp(-dx²/2σ²)·exp(-dy²/2σ²): separable weights.
                let norm = kernel.value(0.0, h);
                gauss_run(
                    &mut wx,
                    g.ox + (c0 as f64 + 0.5) * g.cell,
                    g.cell,
                    c1 - c0 + 1,
                    p[0],
                    h,
                );
                gauss_run(
                    &mut wy,
                    g.oy + (r0 as f64 + 0.5) * g.cell,
                    g.cell,
                    r1 - r0 + 1,
                    p[1],
                    h,
                );
                wy.iter_mut().for_each(|v| *v *= norm);
                for (r, fy) in (r0..=r1).zip(&wy) {
                    let row = &mut acc[r * g.ncols + c0..=r * g.ncols + c1];
                    row.iter_mut().zip(&wx).for_each(|(a, fx)| *a += fy * fx);
                }
            }
            Kernel::Quartic => {
                for r in r0..=r1 {
                    let d2y = dy2(r);
                    for c in c0..=c1 {
                        acc[r * g.ncols + c] += kernel.value(d2y + dx2(c), h);
                    }
                }
            }
        }
    }
    acc
}

/// `out[k] = exp(−((x0 + k·step − x)/σ)²/2)` for `k in 0..count` by the recurrence
/// `w_k = w_{k−1}·ρ_k`, `ρ_{k+1} = ρ_k·exp(−(step/σ)²)` (three `exp` calls instead of `count`).
fn gauss_run(out: &mut Vec<f64>, x0: f64, step: f64, count: usize, x: f64, h: f64) {
    let (t, d) = ((x0 - x) / h, step / h);
    let mut w = (-0.5 * t * t).exp();
    let mut rho = (-t * d - 0.5 * d * d).exp();
    let decay = (-d * d).exp();
    out.clear();
    for _ in 0..count {
        out.push(w);
        w *= rho;
        rho *= decay;
    }
}

/// Largest `q = Δmax·δmax/σ²` for which the Taylor path is used.
const TAYLOR_MAX_Q: f64 = 4.0;
/// Bound on the dropped series remainder per point, relative to the kernel's peak value (the
/// error at a cell is then below ~13 × this of the density peak: within 5σ a kernel averages
/// 0.08 of its peak).
const TAYLOR_TOL: f64 = 1e-10;

/// Parameters of the Taylor path: row offsets `-jmax..=jmax` and `terms` series terms.
pub(crate) struct TaylorPlan {
    jmax: i64,
    terms: usize,
}

impl TaylorPlan {
    /// A plan when the series converges fast and the path is cheaper than the direct sum.
    fn new(g: &GridSpec, h: f64, n: usize) -> Option<Self> {
        let reach = GAUSS_TRUNCATION_SIGMAS * h;
        let jmax = ((reach + g.cell / 2.0) / g.cell).ceil() as i64;
        let q = jmax as f64 * g.cell * (g.cell / 2.0) / (h * h);
        if q > TAYLOR_MAX_Q {
            return None;
        }
        // Remainder of exp(q) after K terms <= q^K / K! · e^q.
        let (mut term, mut terms) = (1.0f64, 0usize);
        while term * q.exp() > TAYLOR_TOL {
            terms += 1;
            term *= q / terms as f64;
        }
        let side = (2 * jmax + 1) as f64;
        let direct = n as f64 * side * side;
        let bins = (g.nrows as f64 + side).min(n as f64);
        let taylor = n as f64 * side * terms as f64 + bins * side * g.ncols as f64 * terms as f64;
        (taylor < direct).then_some(TaylorPlan { jmax, terms })
    }
}

/// Gaussian grid sum with the y-factor expanded around the centre `y_i` of each point's nearest
/// row: with `Δ = y_r − y_i` (a multiple of the cell size) and `δ = y − y_i`,
/// `exp(−(Δ−δ)²/2σ²) = exp(−Δ²/2σ²) · Σ_k (Δ/σ)^k (δ/σ)^k / k! · exp(−δ²/2σ²)`.
/// Per row bin the moments `M_k(c) = Σ_p (δ_p/σ)^k/k! · exp(−δ_p²/2σ²) · exp(−(x_c−x_p)²/2σ²)`
/// are summed once, then spread over the rows within reach. The x-factor stays exact.
fn gaussian_rows_taylor(coords: &[[f64; 2]], g: &GridSpec, h: f64, plan: &TaylorPlan) -> Vec<f64> {
    let (nc, kt, jmax) = (g.ncols, plan.terms, plan.jmax);
    let reach = GAUSS_TRUNCATION_SIGMAS * h;
    let lo_bin = -jmax;
    let n_bins = (g.nrows as i64 + 2 * jmax) as usize;
    // Counting sort of the points by row bin, copying coordinates so the moment pass reads
    // memory in order (random access into `coords` dominated the run time).
    let bin_of = |p: &[f64; 2]| {
        let b = ((p[1] - g.oy) / g.cell).floor();
        (b >= lo_bin as f64 && b < (lo_bin + n_bins as i64) as f64)
            .then(|| (b as i64 - lo_bin) as usize)
    };
    let mut start = vec![0usize; n_bins + 1];
    coords
        .iter()
        .filter_map(bin_of)
        .for_each(|b| start[b + 1] += 1);
    for b in 0..n_bins {
        start[b + 1] += start[b];
    }
    let mut sorted = vec![[0.0; 2]; start[n_bins]];
    let mut fill = start.clone();
    for p in coords {
        if let Some(b) = bin_of(p) {
            sorted[fill[b]] = *p;
            fill[b] += 1;
        }
    }
    // gk[(j + jmax) * kt + k] = exp(−Δ²/2σ²) (Δ/σ)^k, Δ = j·cell.
    let mut gk = vec![0.0; (2 * jmax as usize + 1) * kt];
    for j in -jmax..=jmax {
        let t = j as f64 * g.cell / h;
        let mut v = (-0.5 * t * t).exp();
        for k in 0..kt {
            gk[(j + jmax) as usize * kt + k] = v;
            v *= t;
        }
    }
    let mut acc = vec![0.0; nc * g.nrows];
    let mut m = vec![0.0; kt * nc];
    let (mut a, mut wx) = (vec![0.0; kt], Vec::new());
    for bi in (0..n_bins).filter(|&b| start[b + 1] > start[b]) {
        crate::cancel::checkpoint();
        let pts = &sorted[start[bi]..start[bi + 1]];
        let bin = bi as i64 + lo_bin;
        let yc = g.oy + (bin as f64 + 0.5) * g.cell;
        let (mut cmin, mut cmax) = (usize::MAX, 0usize);
        for p in pts {
            let Some((c0, c1)) = GridSpec::span(g.ox, g.cell, nc, p[0] - reach, p[0] + reach)
            else {
                continue;
            };
            if cmin == usize::MAX {
                m.iter_mut().for_each(|v| *v = 0.0);
            }
            (cmin, cmax) = (cmin.min(c0), cmax.max(c1));
            let d = (p[1] - yc) / h;
            a[0] = (-0.5 * d * d).exp();
            for k in 1..kt {
                a[k] = a[k - 1] * d / k as f64;
            }
            let x0 = g.ox + (c0 as f64 + 0.5) * g.cell;
            gauss_run(&mut wx, x0, g.cell, c1 - c0 + 1, p[0], h);
            for (k, ak) in a.iter().enumerate() {
                let row = &mut m[k * nc + c0..=k * nc + c1];
                row.iter_mut().zip(&wx).for_each(|(v, w)| *v += ak * w);
            }
        }
        if cmin == usize::MAX {
            continue;
        }
        for j in -jmax..=jmax {
            let r = bin + j;
            if r < 0 || r >= g.nrows as i64 {
                continue;
            }
            let out = &mut acc[r as usize * nc + cmin..=r as usize * nc + cmax];
            for k in 0..kt {
                let f = gk[(j + jmax) as usize * kt + k];
                let mk = &m[k * nc + cmin..=k * nc + cmax];
                out.iter_mut().zip(mk).for_each(|(o, v)| *o += f * v);
            }
        }
    }
    let norm = 1.0 / (2.0 * std::f64::consts::PI * h * h);
    acc.iter_mut().for_each(|v| *v *= norm);
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn exact(coords: &[[f64; 2]], g: &GridSpec, h: f64) -> Vec<f64> {
        let mut out = Vec::with_capacity(g.ncols * g.nrows);
        for r in 0..g.nrows {
            for c in 0..g.ncols {
                let u = g.centre(c, r);
                out.push(
                    coords
                        .iter()
                        .map(|p| {
                            Kernel::Gaussian.value((p[0] - u[0]).powi(2) + (p[1] - u[1]).powi(2), h)
                        })
                        .sum(),
                );
            }
        }
        out
    }

    /// The Taylor path and the direct path agree with the full sum to 1e-5 of the peak, over
    /// several cell/σ ratios (including points outside the grid).
    #[test]
    fn taylor_and_direct_paths_match_exact_sum() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let pts: Vec<[f64; 2]> = (0..3000)
            .map(|i| {
                let (cx, cy) = if i % 3 == 0 {
                    (400.0, 300.0)
                } else {
                    (0.0, 0.0)
                };
                [
                    cx + rng.random_range(-900.0..900.0) * rng.random::<f64>(),
                    cy + rng.random_range(-700.0..700.0),
                ]
            })
            .collect();
        for (h, cell) in [(60.0, 20.0), (100.0, 60.0), (35.0, 40.0)] {
            let g = GridSpec::covering([-800.0, -600.0, 900.0, 700.0], cell).expect("grid");
            let want = exact(&pts, &g, h);
            let peak = want.iter().fold(0.0f64, |m, v| m.max(*v));
            let dev = |got: &[f64]| {
                got.iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max)
                    / peak
            };
            let reach = GAUSS_TRUNCATION_SIGMAS * h;
            let jmax = ((reach + cell / 2.0) / cell).ceil() as i64;
            let q = jmax as f64 * cell * (cell / 2.0) / (h * h);
            if q <= TAYLOR_MAX_Q {
                let plan = TaylorPlan { jmax, terms: 30 };
                let d = dev(&gaussian_rows_taylor(&pts, &g, h, &plan));
                assert!(d < 1e-5, "taylor h={h} cell={cell}: {d:e}");
            }
            let d = dev(&direct_grid(&pts, &g, Kernel::Gaussian, h));
            assert!(d < 1e-5, "direct h={h} cell={cell}: {d:e}");
            let d = dev(&fast_grid(&pts, &g, Kernel::Gaussian, h));
            assert!(d < 1e-5, "fast h={h} cell={cell}: {d:e}");
        }
    }

    #[test]
    fn plan_terms_meet_the_tolerance() {
        let g = GridSpec::covering([0.0, 0.0, 20_000.0, 20_000.0], 50.0).expect("grid");
        let plan = TaylorPlan::new(&g, 200.0, 1_000_000).expect("taylor pays off at 1M");
        let q = plan.jmax as f64 * 50.0 * 25.0 / (200.0f64 * 200.0);
        let rem = q.powi(plan.terms as i32) / (1..=plan.terms).map(|k| k as f64).product::<f64>()
            * q.exp();
        assert!(rem <= TAYLOR_TOL, "{rem}");
        assert!(
            TaylorPlan::new(&g, 200.0, 10).is_none(),
            "direct is cheaper for few points"
        );
    }
}
