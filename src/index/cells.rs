//! The incidents' H3 cells at coarser resolutions, built once per snapshot and resolution
//! (on first use) so that an analysis counts a selection per cell with one array increment per
//! incident: no per-request validation of the stored cells, no parent computation, no hashing.

use super::Incidents;
use crate::h3bits::{self, CellMap};
use std::sync::OnceLock;

/// Sentinel of a row without a cell at the column's resolution (an invalid stored cell, or
/// one coarser than the resolution).
const NONE: u32 = u32::MAX;

/// Per row, the position of its cell: 2 bytes a row while the cells fit (a town at res 10
/// has some 30,000), else 4. The largest value of the width means "no cell".
enum Slots {
    Narrow(Vec<u16>),
    Wide(Vec<u32>),
}

impl Slots {
    fn new(positions: Vec<u32>, cells: usize) -> Slots {
        if cells < usize::from(u16::MAX) {
            Slots::Narrow(
                positions
                    .into_iter()
                    .map(|s| if s == NONE { u16::MAX } else { s as u16 })
                    .collect(),
            )
        } else {
            Slots::Wide(positions)
        }
    }

    fn get(&self, row: usize) -> Option<usize> {
        match self {
            Slots::Narrow(v) => v
                .get(row)
                .filter(|&&s| s != u16::MAX)
                .map(|&s| usize::from(s)),
            Slots::Wide(v) => v.get(row).filter(|&&s| s != NONE).map(|&s| s as usize),
        }
    }

    /// Adds one to `counts[slot]` for each row (`counts` has one extra entry, for rows
    /// without a cell).
    fn count(&self, rows: &[u32], counts: &mut [u32]) {
        let last = counts.len() - 1;
        match self {
            Slots::Narrow(v) => {
                for &r in rows {
                    counts[usize::from(v[r as usize]).min(last)] += 1;
                }
            }
            Slots::Wide(v) => {
                for &r in rows {
                    counts[(v[r as usize] as usize).min(last)] += 1;
                }
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Slots::Narrow(v) => v.capacity() * 2,
            Slots::Wide(v) => v.capacity() * 4,
        }
    }
}

/// Every incident's cell at one resolution, as an index into the sorted distinct cells.
pub struct CellColumn {
    pub resolution: u8,
    /// The distinct cells holding at least one incident, ascending.
    pub cells: Vec<u64>,
    /// Per row, the position of its cell in `cells`.
    of_row: Slots,
    /// Incidents per cell over all rows (the unfiltered answer).
    all: Vec<u32>,
}

/// Cells of a selection at one resolution: ascending, each with at least one incident.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CellCounts {
    pub cells: Vec<u64>,
    pub counts: Vec<u32>,
}

impl CellColumn {
    /// The column of the stored cells `fine` at `res` (what [`Incidents::cells_at`] keeps).
    pub fn build(fine: &[u64], res: u8) -> CellColumn {
        let valid = |c: u64| h3o::CellIndex::try_from(c).is_ok() && h3bits::resolution(c) >= res;
        let mut slot: CellMap<u32> = CellMap::default();
        let mut first: Vec<u64> = Vec::new();
        let mut of_row: Vec<u32> = Vec::with_capacity(fine.len());
        // the parent of the previous row is often the same (rows come in batches of nearby
        // incidents): skip the lookup then
        let (mut last_cell, mut last_slot) = (u64::MAX, NONE);
        for &c in fine {
            let s = if c == last_cell {
                last_slot
            } else if valid(c) {
                let p = h3bits::parent(c, res);
                let next = first.len() as u32;
                let s = *slot.entry(p).or_insert(next);
                if s == next {
                    first.push(p);
                }
                s
            } else {
                NONE
            };
            (last_cell, last_slot) = (c, s);
            of_row.push(s);
        }
        // renumber the slots in cell order
        let mut order: Vec<u32> = (0..first.len() as u32).collect();
        order.sort_unstable_by_key(|&s| first[s as usize]);
        let mut rank = vec![0u32; order.len()];
        for (r, &s) in order.iter().enumerate() {
            rank[s as usize] = r as u32;
        }
        let mut all = vec![0u32; order.len()];
        for s in &mut of_row {
            if *s != NONE {
                *s = rank[*s as usize];
                all[*s as usize] += 1;
            }
        }
        CellColumn {
            resolution: res,
            cells: order.iter().map(|&s| first[s as usize]).collect(),
            of_row: Slots::new(of_row, order.len()),
            all,
        }
    }

    /// Incidents per cell of `rows` (all rows when `None`).
    pub fn count(&self, rows: Option<&[u32]>) -> CellCounts {
        let counts = match rows {
            None => self.all.clone(),
            Some(rows) => {
                let mut counts = vec![0u32; self.cells.len() + 1];
                self.of_row.count(rows, &mut counts);
                counts.truncate(self.cells.len());
                counts
            }
        };
        let (cells, counts) = self
            .cells
            .iter()
            .zip(counts)
            .filter(|&(_, n)| n > 0)
            .map(|(&c, n)| (c, n))
            .unzip();
        CellCounts { cells, counts }
    }

    /// The row's cell at this resolution.
    pub fn cell_of(&self, row: u32) -> Option<u64> {
        self.of_row.get(row as usize).map(|s| self.cells[s])
    }

    fn heap_bytes(&self) -> usize {
        self.cells.capacity() * 8 + self.of_row.heap_bytes() + self.all.capacity() * 4
    }
}

/// The lazily built columns of one snapshot, one per H3 resolution.
#[derive(Default)]
pub struct CellColumns([OnceLock<CellColumn>; 16]);

impl CellColumns {
    /// Bytes held by the columns built so far.
    pub fn heap_bytes(&self) -> usize {
        self.0
            .iter()
            .filter_map(OnceLock::get)
            .map(CellColumn::heap_bytes)
            .sum()
    }
}

impl Incidents {
    /// Every incident's cell at `res` (0..=15; coarser than or equal to the stored
    /// resolution), built on first use and kept with the snapshot.
    pub fn cells_at(&self, res: u8) -> &CellColumn {
        let res = res.min(15);
        self.columns.0[usize::from(res)].get_or_init(|| CellColumn::build(&self.cell, res))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use h3o::{CellIndex, LatLng, Resolution};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn incidents(points: &[(f64, f64)]) -> Incidents {
        let mut inc = Incidents::default();
        for (i, &(lat, lng)) in points.iter().enumerate() {
            let c = LatLng::new(lat, lng)
                .expect("ll")
                .to_cell(Resolution::Twelve);
            inc.fid.push(i as i64);
            inc.t.push(i as i64);
            inc.cat.push(0);
            inc.src.push(0);
            inc.subject.push(0);
            inc.cell.push(u64::from(c));
        }
        inc.cell.push(0); // an invalid stored cell
        inc.fid.push(points.len() as i64);
        inc.t.push(0);
        inc.cat.push(0);
        inc.src.push(0);
        inc.subject.push(0);
        inc.categories = vec!["a".into()];
        inc.sources = vec!["s".into()];
        inc
    }

    /// Brute force with h3o: parent of every valid cell, counted in a BTreeMap.
    fn brute(inc: &Incidents, res: u8, rows: &[u32]) -> CellCounts {
        let mut m = std::collections::BTreeMap::new();
        for &r in rows {
            if let Ok(c) = CellIndex::try_from(inc.cell[r as usize]) {
                let p = c
                    .parent(Resolution::try_from(res).expect("res"))
                    .expect("coarser");
                *m.entry(u64::from(p)).or_insert(0u32) += 1;
            }
        }
        CellCounts {
            cells: m.keys().copied().collect(),
            counts: m.values().copied().collect(),
        }
    }

    #[test]
    fn counts_equal_h3o_parents_for_every_selection() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let pts: Vec<(f64, f64)> = (0..5000)
            .map(|_| {
                (
                    52.3 + 0.3 * rng.random::<f64>(),
                    4.6 + 0.4 * rng.random::<f64>(),
                )
            })
            .collect();
        let inc = incidents(&pts);
        let all: Vec<u32> = (0..inc.len() as u32).collect();
        let odd: Vec<u32> = all.iter().copied().filter(|r| r % 3 == 1).collect();
        for res in [0u8, 5, 8, 9, 10, 12] {
            assert_eq!(
                inc.cells_at(res).count(None),
                brute(&inc, res, &all),
                "res {res}"
            );
            assert_eq!(inc.cells_at(res).count(Some(&odd)), brute(&inc, res, &odd));
            assert_eq!(inc.cells_at(res).cell_of(inc.len() as u32 - 1), None);
        }
        // finer than the stored cells: no cell
        assert!(inc.cells_at(13).count(None).cells.is_empty());
    }

    #[test]
    fn more_cells_than_two_bytes_hold_take_four() {
        // 84,035 distinct res-12 cells: the children of five res-7 cells
        let centre = LatLng::new(52.0, 5.0)
            .expect("ll")
            .to_cell(Resolution::Seven);
        let seen: Vec<CellIndex> = centre
            .grid_disk::<Vec<_>>(1)
            .into_iter()
            .take(5)
            .flat_map(|c| c.children(Resolution::Twelve))
            .collect();
        let mut inc = incidents(&[]);
        for (i, cell) in seen.iter().enumerate() {
            inc.cell.push(u64::from(*cell));
            inc.fid.push(i as i64 + 10);
            inc.t.push(0);
            inc.cat.push(0);
            inc.src.push(0);
            inc.subject.push(0);
        }
        let col = inc.cells_at(12);
        assert!(matches!(col.of_row, Slots::Wide(_)));
        assert_eq!(col.cells.len(), 5 * 16_807);
        let all: Vec<u32> = (0..inc.len() as u32).collect();
        assert_eq!(col.count(None), brute(&inc, 12, &all));
        assert_eq!(col.count(Some(&all[5..])), brute(&inc, 12, &all[5..]));
        assert!(matches!(inc.cells_at(9).of_row, Slots::Narrow(_)));
    }
}
