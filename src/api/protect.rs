//! The disclosure rules that need the incidents behind each published count, on top of the
//! per-count thresholds of `privacy::disclosure`:
//!
//! - **Cell-key noise** (`privacy::cellkey`): at the open tier of a dataset with the `noise`
//!   setting, every shown count is perturbed by the cell key of the incidents it counts.
//! - **Category and source differencing.** Below the private tier, a request restricted by
//!   `category` or `source` could be subtracted from the unrestricted one (or from another
//!   restriction) to reveal a small count that no single answer shows. The counts per category
//!   (for a category restriction), per source (for a source restriction) or per (category,
//!   source) pair (for both) in a cell and period are the atoms such differences are made of:
//!   a restricted answer shows a cell's count only when every atom of that cell and period is
//!   0 or at least the tier's threshold, so the difference of two answers of one kind is too.
//!   (A category answer and a source answer cannot be combined into the count of a set without
//!   the answer restricted by both, which checks the pairs.)
//!
//! A [`Guard`] is built per output from the rows the answer counts, grouping them by H3 cell
//! at the output resolution and by a period (0 for answers over the whole time filter, the
//! bin index for time series).

use super::analysis::Scope;
use crate::index::DatasetSnapshot;
use crate::index::Filter;
use crate::model::Tier;
use crate::privacy::cellkey;
use h3o::Resolution;
use std::collections::{HashMap, HashSet};

/// What the scope needs to know to build guards: set by `analysis::scope`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Protection {
    /// Open tier with the dataset's `noise` setting.
    pub noise: bool,
    /// The request's filter without its category and source restriction, when it has one and
    /// the tier has a threshold above 1.
    pub unrestricted: Option<Filter>,
    /// Which restrictions the request has: the atoms are its categories, its sources, or
    /// (category, source) pairs when it has both.
    pub by_category: bool,
    pub by_source: bool,
}

impl Protection {
    pub fn new(
        filter: &Filter,
        base_categories: Option<Vec<String>>,
        tier: Tier,
        noise: bool,
        (by_category, by_source): (bool, bool),
        min_count: u32,
    ) -> Protection {
        let restricted = by_category || by_source;
        let unrestricted = (restricted && min_count > 1).then(|| Filter {
            categories: base_categories,
            sources: None,
            ..filter.clone()
        });
        Protection {
            noise: noise && tier == Tier::Open,
            unrestricted,
            by_category,
            by_source,
        }
    }

    /// Whether any guard would change an answer.
    pub fn active(&self) -> bool {
        self.noise || self.unrestricted.is_some()
    }
}

/// Per (cell, period) of one output: key sums for the noise and the cells whose atoms forbid a
/// restricted answer.
pub(crate) struct Guard {
    noise: bool,
    min_count: u32,
    keys: HashMap<(u64, i64), u64>,
    /// Key of a total over all the rows (`with_total`).
    total_key: Option<u64>,
    unsafe_groups: HashSet<(u64, i64)>,
}

fn cell_at(snap: &DatasetSnapshot, row: u32, res: Resolution) -> Option<u64> {
    snap.incidents.cells_at(u8::from(res)).cell_of(row)
}

impl Guard {
    /// A guard of no effect (private tier, or nothing to protect).
    pub fn none() -> Guard {
        Guard {
            noise: false,
            min_count: 1,
            keys: HashMap::new(),
            total_key: None,
            unsafe_groups: HashSet::new(),
        }
    }

    /// Builds the guard of an output at `res` counting `rows`, with `period(t)` the period of
    /// an instant (return 0 for outputs over the whole time filter).
    pub fn build(
        snap: &DatasetSnapshot,
        sc: &Scope,
        rows: &[u32],
        res: u8,
        period: &dyn Fn(i64) -> i64,
    ) -> Guard {
        Guard::build_with(snap, &sc.protection, sc.rules.min_count, rows, res, period)
    }

    /// As [`Guard::build`] with the protection given (an output over another time window
    /// than the request's filter gives its own: the unrestricted counts must cover the same
    /// window as `rows`).
    pub fn build_with(
        snap: &DatasetSnapshot,
        p: &Protection,
        min_count: u32,
        rows: &[u32],
        res: u8,
        period: &dyn Fn(i64) -> i64,
    ) -> Guard {
        match Sums::count(snap, p, rows, res, period) {
            Some(sums) => sums.guard(p, min_count),
            None => Guard::none(),
        }
    }

    /// The guards of an output with a count per period and a total over the periods
    /// (`/emerging`'s series and total): `(total, per period)`, from one pass over the rows
    /// and one over the unrestricted selection; the same guards as [`Guard::build`] with
    /// `|_| 0` and with `period`.
    pub fn build_total_and_periods(
        snap: &DatasetSnapshot,
        sc: &Scope,
        rows: &[u32],
        res: u8,
        period: &dyn Fn(i64) -> i64,
    ) -> (Guard, Guard) {
        let p = &sc.protection;
        let k = sc.rules.min_count;
        match Sums::count(snap, p, rows, res, period) {
            Some(sums) => (sums.over_periods().guard(p, k), sums.guard(p, k)),
            None => (Guard::none(), Guard::none()),
        }
    }

    /// Whether the count of `cell` (an H3 index at the guard's resolution) in `period` must be
    /// hidden because a difference with an unrestricted answer would reveal a small atom.
    pub fn differencing(&self, cell: u64, period: i64) -> bool {
        self.unsafe_groups.contains(&(cell, period))
    }

    /// The published value of a shown count.
    pub fn show(&self, cell: u64, period: i64, count: u64) -> u64 {
        if !self.noise {
            return count;
        }
        let key = self.keys.get(&(cell, period)).copied().unwrap_or(0);
        cellkey::noisy(count, key, self.min_count)
    }

    /// Adds the key of a total over all `rows`, shown with [`Guard::show_total`].
    pub fn with_total(mut self, snap: &DatasetSnapshot, rows: &[u32]) -> Guard {
        if self.noise && snap.incidents.rkey.len() == snap.incidents.len() {
            self.total_key = Some(
                rows.iter()
                    .map(|&r| u64::from(snap.incidents.rkey[r as usize]))
                    .sum(),
            );
        }
        self
    }

    /// The published value of the total given to [`Guard::with_total`].
    pub fn show_total(&self, count: u64) -> u64 {
        match self.total_key {
            Some(key) if self.noise => cellkey::noisy(count, key, self.min_count),
            _ => count,
        }
    }

    /// Whether the guard perturbs counts.
    pub fn noisy(&self) -> bool {
        self.noise
    }
}

/// Per (cell, period): the record-key sums of the counted rows (noise) and the counts of the
/// unrestricted selection's atoms (differencing).
struct Sums {
    keys: HashMap<(u64, i64), u64>,
    atoms: HashMap<(u64, i64, u16, u16), u32>,
}

impl Sums {
    /// `None` when nothing is protected.
    fn count(
        snap: &DatasetSnapshot,
        p: &Protection,
        rows: &[u32],
        res: u8,
        period: &dyn Fn(i64) -> i64,
    ) -> Option<Sums> {
        let res = Resolution::try_from(res).ok()?;
        if !p.active() {
            return None;
        }
        let inc = &snap.incidents;
        let mut keys = HashMap::new();
        if p.noise && inc.rkey.len() == inc.len() {
            for &r in rows {
                if let Some(c) = cell_at(snap, r, res) {
                    let t = inc.t[r as usize];
                    *keys.entry((c, period(t))).or_insert(0u64) += u64::from(inc.rkey[r as usize]);
                }
            }
        }
        let mut atoms = HashMap::new();
        if let Some(f) = &p.unrestricted {
            for r in inc.select(f) {
                if let Some(c) = cell_at(snap, r, res) {
                    let i = r as usize;
                    let cat = if p.by_category { inc.cat[i] } else { u16::MAX };
                    let src = if p.by_source { inc.src[i] } else { u16::MAX };
                    *atoms.entry((c, period(inc.t[i]), cat, src)).or_insert(0u32) += 1;
                }
            }
        }
        Some(Sums { keys, atoms })
    }

    /// The sums over all periods (period 0): a key sum and an atom count add up.
    fn over_periods(&self) -> Sums {
        let mut keys = HashMap::new();
        for (&(c, _), &k) in &self.keys {
            *keys.entry((c, 0)).or_insert(0u64) += k;
        }
        let mut atoms = HashMap::new();
        for (&(c, _, cat, src), &n) in &self.atoms {
            *atoms.entry((c, 0, cat, src)).or_insert(0u32) += n;
        }
        Sums { keys, atoms }
    }

    fn guard(self, p: &Protection, min_count: u32) -> Guard {
        let unsafe_groups = self
            .atoms
            .into_iter()
            .filter(|(_, n)| *n > 0 && *n < min_count)
            .map(|((c, p, _, _), _)| (c, p))
            .collect();
        Guard {
            noise: p.noise,
            min_count,
            keys: self.keys,
            total_key: None,
            unsafe_groups,
        }
    }
}
