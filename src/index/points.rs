//! A static spatial index of the incidents' metric points: a packed Hilbert R-tree (as
//! flatbush builds one). Rows are sorted along a Hilbert curve over the data's extent; each
//! run of [`NODE`] rows is a leaf with its bounding box, each run of [`NODE`] boxes a parent,
//! up to one root. It holds 4 bytes per incident for the order and about 2 for the boxes
//! (rstar's tree took 72), is built by one sort, and answers a box query by visiting the
//! nodes whose boxes meet it.

/// Entries per node.
const NODE: usize = 16;

/// The index; the points themselves stay in the caller's `x` and `y` columns.
#[derive(Default)]
pub struct PointIndex {
    /// Rows in Hilbert order of their points.
    order: Vec<u32>,
    /// Node boxes `[minx, miny, maxx, maxy]`, level by level from the leaves to the root.
    boxes: Vec<[f64; 4]>,
    /// Where each level starts in `boxes`, and the end of the last.
    levels: Vec<usize>,
}

/// Position of `(x, y)` (each in `0..2^16`) along the Hilbert curve of order 16.
fn hilbert(mut x: u32, mut y: u32) -> u64 {
    const N: u32 = 1 << 16;
    let mut d = 0u64;
    let mut s = N / 2;
    while s > 0 {
        let rx = u32::from(x & s > 0);
        let ry = u32::from(y & s > 0);
        d += u64::from(s) * u64::from(s) * u64::from((3 * rx) ^ ry);
        if ry == 0 {
            if rx == 1 {
                x = N - 1 - x;
                y = N - 1 - y;
            }
            std::mem::swap(&mut x, &mut y);
        }
        s /= 2;
    }
    d
}

fn union(a: [f64; 4], b: [f64; 4]) -> [f64; 4] {
    [
        a[0].min(b[0]),
        a[1].min(b[1]),
        a[2].max(b[2]),
        a[3].max(b[3]),
    ]
}

const EMPTY: [f64; 4] = [
    f64::INFINITY,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NEG_INFINITY,
];

impl PointIndex {
    /// Indexes the points `(x[i], y[i])` (finite).
    pub fn build(x: &[f64], y: &[f64]) -> PointIndex {
        let n = x.len().min(y.len());
        if n == 0 {
            return PointIndex::default();
        }
        let ext = (0..n).fold(EMPTY, |b, i| union(b, [x[i], y[i], x[i], y[i]]));
        let scale = |lo: f64, hi: f64| {
            if hi > lo {
                f64::from(u16::MAX) / (hi - lo)
            } else {
                0.0
            }
        };
        let (sx, sy) = (scale(ext[0], ext[2]), scale(ext[1], ext[3]));
        let mut keyed: Vec<(u64, u32)> = (0..n)
            .map(|i| {
                let gx = ((x[i] - ext[0]) * sx) as u32;
                let gy = ((y[i] - ext[1]) * sy) as u32;
                (hilbert(gx.min(65535), gy.min(65535)), i as u32)
            })
            .collect();
        keyed.sort_unstable();
        let order: Vec<u32> = keyed.into_iter().map(|(_, r)| r).collect();
        let mut boxes: Vec<[f64; 4]> = Vec::with_capacity(n / NODE * NODE / (NODE - 1) + 2);
        let mut levels = vec![0];
        for leaf in order.chunks(NODE) {
            boxes.push(leaf.iter().fold(EMPTY, |b, &r| {
                let (px, py) = (x[r as usize], y[r as usize]);
                union(b, [px, py, px, py])
            }));
        }
        levels.push(boxes.len());
        while levels[levels.len() - 1] - levels[levels.len() - 2] > 1 {
            let (a, b) = (levels[levels.len() - 2], levels[levels.len() - 1]);
            for start in (a..b).step_by(NODE) {
                let end = (start + NODE).min(b);
                let bx = boxes[start..end].iter().fold(EMPTY, |u, &c| union(u, c));
                boxes.push(bx);
            }
            levels.push(boxes.len());
        }
        boxes.shrink_to_fit();
        PointIndex {
            order,
            boxes,
            levels,
        }
    }

    /// Calls `f` with every row whose point lies in the closed box `[minx, miny, maxx, maxy]`
    /// (in no particular order).
    pub fn within(&self, x: &[f64], y: &[f64], q: [f64; 4], mut f: impl FnMut(u32)) {
        if self.order.is_empty() {
            return;
        }
        let meets = |b: &[f64; 4]| b[0] <= q[2] && b[2] >= q[0] && b[1] <= q[3] && b[3] >= q[1];
        let inside = |b: &[f64; 4]| b[0] >= q[0] && b[2] <= q[2] && b[1] >= q[1] && b[3] <= q[3];
        let top = self.levels.len() - 2;
        let mut stack = vec![(top, 0usize)];
        while let Some((level, j)) = stack.pop() {
            let b = &self.boxes[self.levels[level] + j];
            if !meets(b) {
                continue;
            }
            if level == 0 {
                let rows = &self.order[j * NODE..((j + 1) * NODE).min(self.order.len())];
                if inside(b) {
                    rows.iter().for_each(|&r| f(r));
                } else {
                    for &r in rows {
                        let (px, py) = (x[r as usize], y[r as usize]);
                        if px >= q[0] && px <= q[2] && py >= q[1] && py <= q[3] {
                            f(r);
                        }
                    }
                }
            } else {
                let below = self.levels[level] - self.levels[level - 1];
                for c in j * NODE..((j + 1) * NODE).min(below) {
                    stack.push((level - 1, c));
                }
            }
        }
    }

    /// Indexed points.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Bytes held (capacities).
    pub fn heap_bytes(&self) -> usize {
        self.order.capacity() * 4
            + self.boxes.capacity() * std::mem::size_of::<[f64; 4]>()
            + self.levels.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn brute(x: &[f64], y: &[f64], q: [f64; 4]) -> Vec<u32> {
        (0..x.len() as u32)
            .filter(|&i| {
                let (px, py) = (x[i as usize], y[i as usize]);
                px >= q[0] && px <= q[2] && py >= q[1] && py <= q[3]
            })
            .collect()
    }

    fn query(idx: &PointIndex, x: &[f64], y: &[f64], q: [f64; 4]) -> Vec<u32> {
        let mut out = Vec::new();
        idx.within(x, y, q, |r| out.push(r));
        out.sort_unstable();
        out
    }

    #[test]
    fn box_queries_equal_brute_force() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut next = || rng.random::<f64>();
        // clustered and uniform points, duplicates, and a stray point 500 km away (the
        // extent a uniform grid would choke on)
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..20_000 {
            let (cx, cy) = if i % 2 == 0 {
                (115_000.0, 490_000.0)
            } else {
                (118_000.0 + 50.0 * (i % 7) as f64, 495_000.0)
            };
            let spread = if i % 3 == 0 { 20_000.0 } else { 300.0 };
            x.push(cx + spread * (next() - 0.5));
            y.push(cy + spread * (next() - 0.5));
        }
        for _ in 0..50 {
            x.push(120_000.0);
            y.push(500_000.0);
        }
        x.push(600_000.0);
        y.push(100_000.0);
        let idx = PointIndex::build(&x, &y);
        assert_eq!(idx.len(), x.len());
        let mut seen = vec![false; x.len()];
        for &r in &idx.order {
            assert!(!std::mem::replace(&mut seen[r as usize], true), "row twice");
        }
        for _ in 0..300 {
            let (a, b) = (100_000.0 + 30_000.0 * next(), 480_000.0 + 30_000.0 * next());
            let (w, h) = (5_000.0 * next() * next(), 5_000.0 * next() * next());
            let q = [a, b, a + w, b + h];
            assert_eq!(query(&idx, &x, &y, q), brute(&x, &y, q), "{q:?}");
        }
        // exact edges (closed box), one point, the stray, everything, nothing
        let q = [120_000.0, 500_000.0, 120_000.0, 500_000.0];
        assert_eq!(query(&idx, &x, &y, q).len(), 50);
        let q = [599_999.0, 99_999.0, 600_001.0, 100_001.0];
        assert_eq!(query(&idx, &x, &y, q), vec![x.len() as u32 - 1]);
        let all = [f64::MIN, f64::MIN, f64::MAX, f64::MAX];
        assert_eq!(query(&idx, &x, &y, all).len(), x.len());
        assert!(query(&idx, &x, &y, [0.0, 0.0, 1.0, 1.0]).is_empty());
        // small and empty indexes
        for n in [0, 1, 15, 16, 17, 257] {
            let idx = PointIndex::build(&x[..n], &y[..n]);
            assert_eq!(query(&idx, &x[..n], &y[..n], all).len(), n);
        }
        assert!(idx.heap_bytes() < x.len() * 7, "{}", idx.heap_bytes());
    }
}
