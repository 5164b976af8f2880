//! Kolmogorov–Smirnov test of distance-to-nearest-facility at the incidents against its
//! distribution under the null, as spatstat `cdf.test(X, distfun(F), test = "ks")`.
//!
//! The null CDF F₀ is the weighted empirical CDF of the distances at the reference points
//! (pixel centres of the window under CSR, weighted by pixel area; baseline points weighted by
//! their weight), linearly interpolated between its knots and extended with F₀ = 0 at the
//! smallest and 1 at the largest observed distance, exactly as spatstat `spatialCDFframe`
//! (`ewcdf` + `approxfun(rule = 2)`). Each incident distance is transformed to U = F₀(d) and
//! the one-sample KS test of U against Uniform(0, 1) is done as R `ks.test(U, "punif")`:
//! D = max_i max(i/n − U₍ᵢ₎, U₍ᵢ₎ − (i−1)/n); the p-value is exact (Marsaglia, Tsang & Wang
//! 2003, "Evaluating Kolmogorov's distribution", J. Stat. Softw. 8(18), as R
//! `C_pKolmogorov2x`) for n < 100 without ties, else the asymptotic Kolmogorov distribution
//! (R `pkstwo`). spatstat's default random jitter of U is not applied (deterministic).

use serde::Serialize;

/// The null CDF of the distance: knots (distinct sorted distances) and cumulative weight shares.
#[derive(Debug, Clone)]
pub struct NullCdf {
    knots: Vec<f64>,
    cum: Vec<f64>,
}

impl NullCdf {
    /// Weighted ECDF of `dist` with weights `weight` (non-negative, positive sum).
    pub fn new(dist: &[f64], weight: &[f64]) -> Self {
        let mut idx: Vec<usize> = (0..dist.len()).collect();
        idx.sort_by(|&a, &b| dist[a].total_cmp(&dist[b]));
        let total: f64 = weight.iter().sum();
        let (mut knots, mut cum) = (Vec::new(), Vec::new());
        let mut acc = 0.0;
        for &i in &idx {
            acc += weight[i];
            if knots.last() == Some(&dist[i]) {
                *cum.last_mut().expect("non-empty") = acc / total;
            } else {
                knots.push(dist[i]);
                cum.push(acc / total);
            }
        }
        Self { knots, cum }
    }

    /// Step ECDF value P₀(D ≤ d) (no interpolation), e.g. the null share within a radius.
    pub fn share_at_most(&self, d: f64) -> f64 {
        let k = self.knots.partition_point(|&x| x <= d);
        if k == 0 { 0.0 } else { self.cum[k - 1] }
    }

    /// U = F₀(d) for each observed distance, with spatstat's interpolation and extension.
    pub fn transform(&self, observed: &[f64]) -> Vec<f64> {
        let (xs, ys) = self.extended(observed);
        observed
            .iter()
            .map(|&d| interpolate(&xs, &ys, xs.partition_point(|&x| x <= d), d))
            .collect()
    }

    /// The knots extended to the observed range (spatstat's `approxfun(rule = 2)` frame).
    fn extended(&self, observed: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (mut xs, mut ys) = (self.knots.clone(), self.cum.clone());
        let min_o = observed.iter().copied().fold(f64::INFINITY, f64::min);
        let max_o = observed.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if xs.first().is_some_and(|&x| x > min_o) {
            xs.insert(0, min_o);
            ys.insert(0, 0.0);
        }
        if xs.last().is_some_and(|&x| x < max_o) {
            xs.push(max_o);
            ys.push(1.0);
        }
        (xs, ys)
    }

    /// [`transform`](Self::transform) of `observed` in ascending (`total_cmp`) order,
    /// walking the knots once instead of a binary search per value: the same value for
    /// every element (k = number of knots ≤ d either way).
    fn transform_sorted(&self, observed: &mut [f64]) -> Vec<f64> {
        observed.sort_by(f64::total_cmp);
        let (xs, ys) = self.extended(observed);
        let mut k = 0;
        observed
            .iter()
            .map(|&d| {
                if d.is_nan() {
                    return interpolate(&xs, &ys, xs.partition_point(|&x| x <= d), d);
                }
                while k < xs.len() && xs[k] <= d {
                    k += 1;
                }
                interpolate(&xs, &ys, k, d)
            })
            .collect()
    }
}

/// F₀(d) given k = #{knots ≤ d}: linear between knots, constant outside.
fn interpolate(xs: &[f64], ys: &[f64], k: usize, d: f64) -> f64 {
    if k == 0 {
        ys[0]
    } else if k == xs.len() {
        ys[k - 1]
    } else {
        let t = (d - xs[k - 1]) / (xs[k] - xs[k - 1]);
        ys[k - 1] + t * (ys[k] - ys[k - 1])
    }
}

/// Result of the KS test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KsTest {
    /// KS statistic D = sup |F_n − F₀|.
    pub d: f64,
    /// p-value (two-sided).
    pub p_value: f64,
    /// `"exact"` (Marsaglia–Tsang–Wang) or `"asymptotic"` (Kolmogorov limit).
    pub p_method: &'static str,
    /// Number of incidents tested.
    pub n: usize,
}

/// KS test of the observed distances against the null CDF.
pub fn ks_test(cdf: &NullCdf, observed: &[f64]) -> KsTest {
    // Transforming the sorted distances gives U almost sorted (F₀ is monotone up to
    // rounding), so the sort of U that follows is a near-linear pass; U is the same multiset
    // as `transform(observed)`, hence the same sorted vector.
    let mut u = cdf.transform_sorted(&mut observed.to_vec());
    u.sort_by(f64::total_cmp);
    let n = u.len();
    let nf = n as f64;
    let d = u
        .iter()
        .enumerate()
        .map(|(i, &v)| ((i as f64 + 1.0) / nf - v).max(v - i as f64 / nf))
        .fold(0.0, f64::max);
    let ties = u.windows(2).any(|w| w[0] == w[1]);
    let (p, method) = if n < 100 && !ties {
        (1.0 - kolmogorov_exact_cdf(n, d), "exact")
    } else {
        (1.0 - kolmogorov_limit_cdf(nf.sqrt() * d), "asymptotic")
    };
    KsTest {
        d,
        p_value: p.clamp(0.0, 1.0),
        p_method: method,
        n,
    }
}

/// Limit CDF of √n·D (R `pkstwo`, tol 1e-6 style series).
pub fn kolmogorov_limit_cdf(x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let pi = std::f64::consts::PI;
    if x < 1.0 {
        let z = -(pi * pi / 8.0) / (x * x);
        let w = x.ln();
        let s: f64 = (1..200)
            .step_by(2)
            .map(|k| ((k * k) as f64 * z - w).exp())
            .sum();
        s * (2.0 * pi).sqrt()
    } else {
        let z = -2.0 * x * x;
        let mut s = -1.0;
        let mut k = 1.0;
        let mut old = 0.0_f64;
        let mut new = 1.0;
        while (old - new).abs() > 1e-12 && k < 1000.0 {
            old = new;
            new += 2.0 * s * (z * k * k).exp();
            s *= -1.0;
            k += 1.0;
        }
        new
    }
}

/// Exact P(D_n < d) (Marsaglia, Tsang & Wang 2003), as R's `C_pKolmogorov2x`.
pub fn kolmogorov_exact_cdf(n: usize, d: f64) -> f64 {
    if d <= 0.0 {
        return 0.0;
    }
    if d >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let k = (nf * d) as usize + 1;
    let m = 2 * k - 1;
    let h = k as f64 - nf * d;
    let mut hm = vec![0.0; m * m];
    for i in 0..m {
        for j in 0..m {
            if i + 1 >= j {
                hm[i * m + j] = 1.0;
            }
        }
    }
    for i in 0..m {
        hm[i * m] -= h.powi(i as i32 + 1);
        hm[(m - 1) * m + i] -= h.powi((m - i) as i32);
    }
    if 2.0 * h - 1.0 > 0.0 {
        hm[(m - 1) * m] += (2.0 * h - 1.0).powi(m as i32);
    }
    for i in 0..m {
        for j in 0..m {
            if i + 1 > j {
                for g in 1..=(i + 1 - j) {
                    hm[i * m + j] /= g as f64;
                }
            }
        }
    }
    let (q, mut eq) = matrix_power(&hm, 0, m, n);
    let mut s = q[(k - 1) * m + k - 1];
    for i in 1..=n {
        s = s * i as f64 / nf;
        if s < 1e-140 {
            s *= 1e140;
            eq -= 140;
        }
    }
    (s * 10f64.powi(eq)).clamp(0.0, 1.0)
}

fn matrix_multiply(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * m];
    for i in 0..m {
        for l in 0..m {
            let x = a[i * m + l];
            if x != 0.0 {
                for j in 0..m {
                    c[i * m + j] += x * b[l * m + j];
                }
            }
        }
    }
    c
}

/// A^n with a decimal exponent kept aside to avoid overflow (R's `m_power`).
fn matrix_power(a: &[f64], ea: i32, m: usize, n: usize) -> (Vec<f64>, i32) {
    if n == 1 {
        return (a.to_vec(), ea);
    }
    let (v, ev) = matrix_power(a, ea, m, n / 2);
    let b = matrix_multiply(&v, &v, m);
    let eb = 2 * ev;
    let (mut v, mut ev) = if n.is_multiple_of(2) {
        (b, eb)
    } else {
        (matrix_multiply(a, &b, m), ea + eb)
    };
    if v[(m / 2) * m + m / 2] > 1e140 {
        v.iter_mut().for_each(|x| *x *= 1e-140);
        ev += 140;
    }
    (v, ev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The sorted walk gives the same sorted U as transforming value by value and sorting,
    /// to the bit (observed values beyond both ends of the knots, repeated values, values
    /// on knots).
    #[test]
    fn sorted_walk_equals_the_binary_search_transform() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let knots: Vec<f64> = (0..5000)
            .map(|_| 10.0 + rng.random::<f64>() * 3000.0)
            .collect();
        let w: Vec<f64> = (0..5000).map(|_| rng.random::<f64>() + 0.1).collect();
        let cdf = NullCdf::new(&knots, &w);
        let mut obs: Vec<f64> = (0..20_000)
            .map(|_| (rng.random::<f64>() * 3500.0).round() / 4.0 * 4.0)
            .collect();
        obs.extend_from_slice(&knots[..100]);
        obs.push(0.0);
        let mut want = cdf.transform(&obs);
        want.sort_by(f64::total_cmp);
        let mut got = cdf.transform_sorted(&mut obs.clone());
        got.sort_by(f64::total_cmp);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want));
    }
}
