//! Coverage across organisations (issue 7, item 3): which signals each organisation has, and
//! which it misses.
//!
//! Per organisation (incident `source`):
//! * its share of all incidents;
//! * the share of the hot-spot cells in which it has at least one incident, and the list of
//!   hot cells where it has none ("hot spots without signal"). A hot cell may have any H3
//!   resolution up to 12; an incident is in it when the parent of the incident's res-12 cell at
//!   the hot cell's resolution is the hot cell;
//! * the share of the multi-organisation subjects (subjects seen by ≥ 2 organisations) that it
//!   has signals on.
//!
//! Overlap matrices between organisations, `m[a][b]` with `a`, `b` source codes:
//! * **place and time**: the number of `a`'s incidents that have at least one `b` incident in
//!   the same H3 cell at `resolution` with `|t_a − t_b| ≤ window_days · 86 400 s`. The
//!   diagonal `m[a][a]` counts `a`'s incidents with *another* `a` incident so close (a repeat
//!   within the organisation). The matrix is not symmetric.
//! * **subjects**: the number of subjects seen by both `a` and `b`; the diagonal is the number
//!   of subjects `a` has seen. Symmetric.
//!
//! Algorithm: each incident becomes one integer key (its cell's code, time offset, source;
//! a `u64` when the three fit, else a `u128`), the keys are sorted once, and within a cell
//! one forward and one backward pass over its time-ordered incidents find, for every incident
//! and every source present in the cell, the nearest report of that source before and after
//! it, so the cost is `O(n log n + n · s)` for `n` incidents and `s` organisations in a
//! cell, never quadratic in the incidents of a cell.
//! Hot cells at the overlap resolution are looked up once per cell of the sorted keys.
//! Checked against an O(n²) brute force in Python (fixtures/reference/concentration).
//! 1M incidents over 5 organisations take about 80 ms in a release build (the benchmark data
//! of `benches/analysis/insights.rs`; 120-150 ms with the previous merge of each pair of
//! source runs per cell over `u128` keys and a hash lookup per incident for the hot cells).
//!
//! ```
//! use hotspots::analysis::coverage::{coverage, CovIncident, CoverageParams};
//! use h3o::{LatLng, Resolution};
//! let cell = u64::from(LatLng::new(52.44, 4.82).expect("valid").to_cell(Resolution::Twelve));
//! let day = 86_400;
//! let incidents = [
//!     CovIncident { cell, t: 0, source: 0, subject: Some(1) },
//!     CovIncident { cell, t: 10 * day, source: 1, subject: Some(1) },
//!     CovIncident { cell, t: 90 * day, source: 1, subject: None },
//! ];
//! let names = ["gemeente".to_string(), "ggd".to_string()];
//! let out = coverage(&incidents, &names, &[], &CoverageParams::default()).expect("data");
//! // Within 30 days: gemeente's report has a ggd report, and one of ggd's two has one back.
//! assert_eq!(out.overlap_place, vec![vec![0, 1], vec![1, 0]]);
//! assert_eq!(out.overlap_subjects, vec![vec![1, 1], vec![1, 1]]);
//! ```

use std::ops::Range;

use h3o::{CellIndex, Resolution};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Default H3 resolution at which two incidents are "at the same place".
pub const DEFAULT_RESOLUTION: u8 = 10;
/// Default half-width of the time window, in days.
pub const DEFAULT_WINDOW_DAYS: u32 = 30;
/// Largest window accepted (ten years).
pub const MAX_WINDOW_DAYS: u32 = 3660;
/// Finest resolution accepted (incidents are stored at res 12).
pub const MAX_RESOLUTION: u8 = 12;
const SECONDS_PER_DAY: i64 = 86_400;
/// Times are stored as 48-bit offsets in the sort key.
const MAX_TIME_SPAN_S: i64 = (1 << 48) - 1;

/// Errors of the coverage measures.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CoverageError {
    /// No incidents in the selection.
    #[error("no incidents match the selection; coverage is undefined")]
    NoIncidents,
    /// H3 resolution outside 0..=12.
    #[error("resolution must be between 0 and 12, got {resolution}")]
    ResolutionOutOfRange {
        /// Resolution asked for.
        resolution: u8,
    },
    /// `window_days` above 3660.
    #[error("window_days must be between 0 and 3660, got {window_days}")]
    WindowOutOfRange {
        /// Value asked for.
        window_days: u32,
    },
    /// An incident's source code has no name in the source list.
    #[error("source code {source_code} has no name (only {n_sources} sources are known)")]
    UnknownSource {
        /// The code.
        source_code: u16,
        /// Number of names given.
        n_sources: usize,
    },
    /// `organisation` names no known source.
    #[error("organisation {name:?} is not a source of this dataset")]
    UnknownOrganisation {
        /// The name asked for.
        name: String,
    },
    /// A 64-bit value that is not a valid H3 cell index.
    #[error("{cell:#x} is not a valid H3 cell index")]
    InvalidCell {
        /// The value.
        cell: u64,
    },
    /// An incident cell coarser than a resolution it must be compared at.
    #[error(
        "an incident cell has resolution {cell_resolution}, coarser than resolution {resolution}"
    )]
    CellTooCoarse {
        /// Resolution of the incident cell.
        cell_resolution: u8,
        /// Resolution of the comparison.
        resolution: u8,
    },
    /// Incident times spread over more than 2^48 seconds.
    #[error("incident times span more than 2^48 seconds")]
    TimeSpanTooLarge,
}

impl CoverageError {
    /// Stable snake_case code for API problem responses.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoIncidents => "no_incidents",
            Self::ResolutionOutOfRange { .. } => "resolution_out_of_range",
            Self::WindowOutOfRange { .. } => "window_out_of_range",
            Self::UnknownSource { .. } => "unknown_source",
            Self::UnknownOrganisation { .. } => "unknown_organisation",
            Self::InvalidCell { .. } => "invalid_cell",
            Self::CellTooCoarse { .. } => "cell_too_coarse",
            Self::TimeSpanTooLarge => "time_span_too_large",
        }
    }
}

/// Query parameters of `GET /datasets/{id}/coverage` (minus the common filters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoverageParams {
    /// H3 resolution of "the same place" in the overlap matrix, 0..=12 (default 10).
    pub resolution: u8,
    /// Half-width of the time window of the overlap matrix, days (default 30).
    pub window_days: u32,
    /// When given, only this organisation's `hot_cells_without_signal` list is filled (the
    /// others keep their counts); it must name a source.
    pub organisation: Option<String>,
}

impl Default for CoverageParams {
    fn default() -> Self {
        Self {
            resolution: DEFAULT_RESOLUTION,
            window_days: DEFAULT_WINDOW_DAYS,
            organisation: None,
        }
    }
}

impl CoverageParams {
    /// Checks the ranges that do not depend on the data.
    pub fn validate(&self) -> Result<(), CoverageError> {
        if self.resolution > MAX_RESOLUTION {
            return Err(CoverageError::ResolutionOutOfRange {
                resolution: self.resolution,
            });
        }
        if self.window_days > MAX_WINDOW_DAYS {
            return Err(CoverageError::WindowOutOfRange {
                window_days: self.window_days,
            });
        }
        Ok(())
    }
}

/// One incident as coverage needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CovIncident {
    /// H3 cell at res 12 (`model::FINE_RES`).
    pub cell: u64,
    /// Occurred at, unix seconds UTC.
    pub t: i64,
    /// Source (organisation) code, an index into the source names.
    pub source: u16,
    /// Subject code, when the incident has one.
    pub subject: Option<u32>,
}

/// What one organisation has signals on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrgCoverage {
    /// Source name.
    pub organisation: String,
    /// Its incidents.
    pub incidents: u64,
    /// `incidents / n_incidents`.
    pub incidents_share: f64,
    /// Hot cells with at least one of its incidents.
    pub hot_cells_with_signal: u64,
    /// `hot_cells_with_signal / n_hot_cells` (0 without hot cells).
    pub hot_cells_share: f64,
    /// Hot cells without any of its incidents.
    pub hot_cells_without_signal_count: u64,
    /// Those cells (H3 hex strings, sorted); empty for other organisations when
    /// `organisation` is given.
    pub hot_cells_without_signal: Vec<String>,
    /// Distinct subjects it has signals on.
    pub subjects: u64,
    /// Multi-organisation subjects it has signals on.
    pub multi_organisation_subjects: u64,
    /// `multi_organisation_subjects / n_multi_organisation_subjects` (0 when there are none).
    pub multi_organisation_subjects_share: f64,
}

/// Coverage across organisations (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coverage {
    /// Source names; row/column order of the matrices.
    pub organisations: Vec<String>,
    /// H3 resolution of the place overlap.
    pub resolution: u8,
    /// Half-width of the time window, days.
    pub window_days: u32,
    /// Incidents.
    pub n_incidents: u64,
    /// Distinct hot cells.
    pub n_hot_cells: u64,
    /// Distinct subjects.
    pub n_subjects: u64,
    /// Subjects seen by at least two organisations.
    pub n_multi_organisation_subjects: u64,
    /// One entry per organisation, in source-code order.
    pub per_organisation: Vec<OrgCoverage>,
    /// `[a][b]`: `a`'s incidents with a `b` incident in the same cell within the window.
    pub overlap_place: Vec<Vec<u64>>,
    /// `[a][b]`: subjects seen by both `a` and `b`.
    pub overlap_subjects: Vec<Vec<u64>>,
}

/// Coverage of `incidents` by the organisations named in `sources` (indexed by source code),
/// against the hot-spot cells `hot_cells` (any resolution ≤ 12, duplicates ignored).
pub fn coverage(
    incidents: &[CovIncident],
    sources: &[String],
    hot_cells: &[u64],
    params: &CoverageParams,
) -> Result<Coverage, CoverageError> {
    params.validate()?;
    if incidents.is_empty() {
        return Err(CoverageError::NoIncidents);
    }
    let s = sources.len();
    if let Some(bad) = incidents.iter().find(|i| usize::from(i.source) >= s) {
        return Err(CoverageError::UnknownSource {
            source_code: bad.source,
            n_sources: s,
        });
    }
    let focus = match &params.organisation {
        Some(name) => Some(
            sources
                .iter()
                .position(|x| x == name)
                .ok_or_else(|| CoverageError::UnknownOrganisation { name: name.clone() })?,
        ),
        None => None,
    };
    let place = PlaceKeys::new(incidents, s, params)?;
    let overlap_place = place.overlap(s, params.window_days);
    let hot = HotCells::new(hot_cells)?;
    let signal = hot.signal(incidents, &place, s)?;
    let subj = SubjectOverlap::new(incidents, s);
    let mut per_source = vec![0u64; s];
    for inc in incidents {
        per_source[usize::from(inc.source)] += 1;
    }
    let n = incidents.len() as u64;
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let per_organisation = (0..s)
        .map(|a| {
            let with = signal[a].iter().filter(|&&x| x).count() as u64;
            let list = focus.is_none_or(|f| f == a);
            OrgCoverage {
                organisation: sources[a].clone(),
                incidents: per_source[a],
                incidents_share: ratio(per_source[a], n),
                hot_cells_with_signal: with,
                hot_cells_share: ratio(with, hot.cells.len() as u64),
                hot_cells_without_signal_count: hot.cells.len() as u64 - with,
                hot_cells_without_signal: if list {
                    hot.without(&signal[a])
                } else {
                    vec![]
                },
                subjects: subj.matrix[a][a],
                multi_organisation_subjects: subj.multi_per_source[a],
                multi_organisation_subjects_share: ratio(subj.multi_per_source[a], subj.n_multi),
            }
        })
        .collect();
    Ok(Coverage {
        organisations: sources.to_vec(),
        resolution: params.resolution,
        window_days: params.window_days,
        n_incidents: n,
        n_hot_cells: hot.cells.len() as u64,
        n_subjects: subj.n_subjects,
        n_multi_organisation_subjects: subj.n_multi,
        per_organisation,
        overlap_place,
        overlap_subjects: subj.matrix,
    })
}

/// Parent of a res-12 incident cell at `res`.
fn parent(raw: u64, res: Resolution) -> Result<u64, CoverageError> {
    let cell = CellIndex::try_from(raw).map_err(|_| CoverageError::InvalidCell { cell: raw })?;
    cell.parent(res)
        .map(u64::from)
        .ok_or(CoverageError::CellTooCoarse {
            cell_resolution: u8::from(cell.resolution()),
            resolution: u8::from(res),
        })
}

/// H3 cell -> position.
type CellMap = crate::h3bits::CellMap<usize>;

/// Bits needed for `x`.
fn bits(x: u64) -> u32 {
    u64::BITS - x.leading_zeros()
}

/// The incidents grouped by their cell at the overlap resolution, each group ordered by time
/// (then source): per incident `((t − t0) << sbits) | source`.
struct PlaceKeys {
    res: Resolution,
    sbits: u32,
    keys: Vec<u64>,
    /// `(cell, first key index)` per distinct cell.
    cells: Vec<(u64, usize)>,
}

impl PlaceKeys {
    /// The time span is checked first, then every incident's cell (in input order). The cells
    /// get dense codes in order of appearance; `(code, time, source)` is packed in a `u64`
    /// when the bits of the number of incidents, of the time span and of the source count fit
    /// (else a `u128`) and sorted once.
    fn new(
        incidents: &[CovIncident],
        s: usize,
        params: &CoverageParams,
    ) -> Result<Self, CoverageError> {
        let res = Resolution::try_from(params.resolution).map_err(|_| {
            CoverageError::ResolutionOutOfRange {
                resolution: params.resolution,
            }
        })?;
        let t0 = incidents.iter().map(|i| i.t).min().unwrap_or(0);
        let t1 = incidents.iter().map(|i| i.t).max().unwrap_or(0);
        if t1.checked_sub(t0).is_none_or(|span| span > MAX_TIME_SPAN_S) {
            return Err(CoverageError::TimeSpanTooLarge);
        }
        let sbits = bits(s.saturating_sub(1) as u64);
        let low_bits = bits((t1 - t0) as u64) + sbits;
        let mut code: crate::h3bits::CellMap<u32> = Default::default();
        let mut distinct: Vec<u64> = Vec::new();
        let mut id_of = |raw: u64| -> Result<u64, CoverageError> {
            let cell = parent(raw, res)?;
            Ok(u64::from(*code.entry(cell).or_insert_with(|| {
                distinct.push(cell);
                (distinct.len() - 1) as u32
            })))
        };
        let low = |inc: &CovIncident| (((inc.t - t0) as u64) << sbits) | u64::from(inc.source);
        // codes are below the number of incidents: one u64 when that and the time fit
        let mut cells: Vec<(u64, usize)> = Vec::new();
        // the first key of each cell (keys sorted by code, one code per cell)
        let mut start = |i: usize, id: u64, distinct: &[u64]| {
            let cell = distinct[id as usize];
            if cells.last().is_none_or(|c| c.0 != cell) {
                cells.push((cell, i));
            }
        };
        let keys = if bits(incidents.len() as u64) + low_bits <= u64::BITS {
            let mut packed = Vec::with_capacity(incidents.len());
            for inc in incidents {
                packed.push((id_of(inc.cell)? << low_bits) | low(inc));
            }
            packed.sort_unstable();
            let mask = (1u64 << low_bits) - 1;
            for (i, k) in packed.iter_mut().enumerate() {
                start(i, *k >> low_bits, &distinct);
                *k &= mask;
            }
            packed
        } else {
            let mut packed = Vec::with_capacity(incidents.len());
            for inc in incidents {
                packed.push((u128::from(id_of(inc.cell)?) << 64) | u128::from(low(inc)));
            }
            packed.sort_unstable();
            let mut keys = Vec::with_capacity(packed.len());
            for (i, &k) in packed.iter().enumerate() {
                start(i, (k >> 64) as u64, &distinct);
                keys.push(k as u64);
            }
            keys
        };
        Ok(Self {
            res,
            sbits,
            keys,
            cells,
        })
    }

    /// The key range of the `g`-th cell.
    fn range(&self, g: usize) -> Range<usize> {
        let end = self.cells.get(g + 1).map_or(self.keys.len(), |c| c.1);
        self.cells[g].1..end
    }

    fn source(&self, key: u64) -> usize {
        (key & ((1u64 << self.sbits) - 1)) as usize
    }

    /// The place-and-time overlap matrix (module docs).
    fn overlap(&self, s: usize, window_days: u32) -> Vec<Vec<u64>> {
        let window = i64::from(window_days) * SECONDS_PER_DAY;
        let mut m = vec![0u64; s * s];
        let mut scratch = CellScratch::new(s);
        for g in 0..self.cells.len() {
            scratch.count(self, self.range(g), window, s, &mut m);
        }
        m.chunks(s.max(1)).map(<[u64]>::to_vec).collect()
    }

    /// The sources present in the `g`-th cell, each once.
    fn sources(&self, g: usize, out: &mut Vec<usize>) {
        out.clear();
        out.extend(self.keys[self.range(g)].iter().map(|&k| self.source(k)));
        out.sort_unstable();
        out.dedup();
    }
}

/// Far outside any window: time offsets are below 2^48 and windows below 2^29 s.
const NO_TIME: i64 = 1 << 60;

/// Per-cell working memory of the place overlap.
struct CellScratch {
    /// Source code -> local slot in the cell (`u32::MAX`: absent).
    slot: Vec<u32>,
    /// Local slot -> source code.
    present: Vec<usize>,
    /// Per incident of the cell: its local slot and the bit set of the slots with an
    /// incident within the window (itself excluded).
    own: Vec<u32>,
    hits: Vec<u64>,
    times: Vec<i64>,
    /// Per cell: `counts[a * 64 + j]`, incidents of local slot `a` with a hit in slot `lo + j`.
    counts: Vec<u64>,
}

impl CellScratch {
    fn new(s: usize) -> Self {
        Self {
            slot: vec![u32::MAX; s],
            present: Vec::new(),
            own: Vec::new(),
            hits: Vec::new(),
            times: Vec::new(),
            counts: Vec::new(),
        }
    }

    /// Adds one cell's contribution to the flat `s × s` matrix `m`. Its keys are sorted by
    /// time, so the incident of source `b` nearest in time to an incident (other than itself)
    /// is the last `b` before it in key order or the first `b` after it: one forward and one
    /// backward pass per group of up to 64 sources present, `O(n · sources in the cell)`.
    fn count(
        &mut self,
        place: &PlaceKeys,
        cell: Range<usize>,
        window: i64,
        s: usize,
        m: &mut [u64],
    ) {
        self.present.clear();
        self.own.clear();
        self.times.clear();
        for &k in &place.keys[cell] {
            let src = place.source(k);
            if self.slot[src] == u32::MAX {
                self.slot[src] = self.present.len() as u32;
                self.present.push(src);
            }
            self.own.push(self.slot[src]);
            self.times.push((k >> place.sbits) as i64);
        }
        let l = self.present.len();
        self.counts.resize(l * 64, 0);
        for lo in (0..l).step_by(64) {
            let w = (l - lo).min(64);
            let mut last = [-NO_TIME; 64];
            self.hits.clear();
            for (&t, &a) in self.times.iter().zip(&self.own) {
                let mut bits = 0u64;
                for (j, &p) in last[..w].iter().enumerate() {
                    bits |= u64::from(t - p <= window) << j;
                }
                self.hits.push(bits);
                if let Some(x) = (a as usize).checked_sub(lo).filter(|&x| x < w) {
                    last[x] = t;
                }
            }
            let mut next = [NO_TIME; 64];
            for ((&t, &a), bits) in self.times.iter().zip(&self.own).zip(&mut self.hits).rev() {
                for (j, &q) in next[..w].iter().enumerate() {
                    *bits |= u64::from(q - t <= window) << j;
                }
                if let Some(x) = (a as usize).checked_sub(lo).filter(|&x| x < w) {
                    next[x] = t;
                }
            }
            for (&a, &bits) in self.own.iter().zip(&self.hits) {
                let row = &mut self.counts[a as usize * 64..a as usize * 64 + w];
                for (j, c) in row.iter_mut().enumerate() {
                    *c += (bits >> j) & 1;
                }
            }
            for (a, &src) in self.present.iter().enumerate() {
                let row = &mut self.counts[a * 64..a * 64 + w];
                for (c, &b) in row.iter_mut().zip(&self.present[lo..lo + w]) {
                    m[src * s + b] += *c;
                    *c = 0;
                }
            }
        }
        for &src in &self.present {
            self.slot[src] = u32::MAX;
        }
    }
}

/// Distinct hot cells, grouped by resolution for lookups.
struct HotCells {
    /// Sorted distinct cells.
    cells: Vec<CellIndex>,
    /// Per resolution present: cell → position in `cells`.
    by_res: Vec<(Resolution, CellMap)>,
}

impl HotCells {
    fn new(raw: &[u64]) -> Result<Self, CoverageError> {
        let mut cells = raw
            .iter()
            .map(|&c| CellIndex::try_from(c).map_err(|_| CoverageError::InvalidCell { cell: c }))
            .collect::<Result<Vec<_>, _>>()?;
        cells.sort_unstable();
        cells.dedup();
        let mut by_res: Vec<(Resolution, CellMap)> = Vec::new();
        for (i, c) in cells.iter().enumerate() {
            let r = c.resolution();
            if u8::from(r) > MAX_RESOLUTION {
                return Err(CoverageError::ResolutionOutOfRange {
                    resolution: u8::from(r),
                });
            }
            match by_res.iter_mut().find(|(x, _)| *x == r) {
                Some((_, map)) => {
                    map.insert(u64::from(*c), i);
                }
                None => {
                    let mut map = CellMap::default();
                    map.insert(u64::from(*c), i);
                    by_res.push((r, map));
                }
            }
        }
        Ok(Self { cells, by_res })
    }

    /// `signal[source][hot cell]`: the source has an incident in the cell. Hot cells at the
    /// overlap resolution are looked up once per incident cell of `place`; others by the
    /// parent of each incident's cell at their resolution.
    fn signal(
        &self,
        incidents: &[CovIncident],
        place: &PlaceKeys,
        s: usize,
    ) -> Result<Vec<Vec<bool>>, CoverageError> {
        let mut signal = vec![vec![false; self.cells.len()]; s];
        let (same, other): (Vec<_>, Vec<_>) =
            self.by_res.iter().partition(|(r, _)| *r == place.res);
        if let Some((_, map)) = same.first() {
            let mut sources = Vec::new();
            for (g, (cell, _)) in place.cells.iter().enumerate() {
                if let Some(&i) = map.get(cell) {
                    place.sources(g, &mut sources);
                    for &a in &sources {
                        signal[a][i] = true;
                    }
                }
            }
        }
        if !other.is_empty() {
            for inc in incidents {
                for (r, map) in &other {
                    if let Some(&i) = map.get(&parent(inc.cell, *r)?) {
                        signal[usize::from(inc.source)][i] = true;
                    }
                }
            }
        }
        Ok(signal)
    }

    fn without(&self, has: &[bool]) -> Vec<String> {
        self.cells
            .iter()
            .zip(has)
            .filter(|(_, h)| !**h)
            .map(|(c, _)| c.to_string())
            .collect()
    }
}

/// Subjects in common between organisations.
struct SubjectOverlap {
    matrix: Vec<Vec<u64>>,
    multi_per_source: Vec<u64>,
    n_subjects: u64,
    n_multi: u64,
}

impl SubjectOverlap {
    fn new(incidents: &[CovIncident], s: usize) -> Self {
        // (subject, source) packed in one u64 so the sort is a plain integer sort.
        let mut packed: Vec<u64> = incidents
            .iter()
            .filter_map(|i| {
                i.subject
                    .map(|j| (u64::from(j) << 16) | u64::from(i.source))
            })
            .collect();
        packed.sort_unstable();
        packed.dedup();
        let pairs: Vec<(u32, u16)> = packed
            .iter()
            .map(|&p| ((p >> 16) as u32, p as u16))
            .collect();
        let mut out = Self {
            matrix: vec![vec![0; s]; s],
            multi_per_source: vec![0; s],
            n_subjects: 0,
            n_multi: 0,
        };
        for group in pairs.chunk_by(|x, y| x.0 == y.0) {
            out.n_subjects += 1;
            let multi = group.len() >= 2;
            out.n_multi += u64::from(multi);
            for &(_, a) in group {
                out.multi_per_source[usize::from(a)] += u64::from(multi);
                for &(_, b) in group {
                    out.matrix[usize::from(a)][usize::from(b)] += 1;
                }
            }
        }
        out
    }
}
