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
//! Algorithm: each incident becomes one `u128` key (cell, source, time offset), the keys are
//! sorted once, and within a cell each pair of source runs is merged with two pointers, so the
//! cost is `O(n log n + n · s)` for `n` incidents and `s` organisations in a cell, never
//! quadratic in the incidents of a cell. Checked against an O(n²) brute force in Python
//! (fixtures/reference/concentration).
//! 1M incidents over 5 organisations take about 100-130 ms in a release build.
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

use std::collections::HashMap;
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
const TIME_MASK: u64 = (1 << 48) - 1;

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
    let overlap_place = place_overlap(incidents, s, params)?;
    let hot = HotCells::new(hot_cells)?;
    let signal = hot.signal(incidents, s)?;
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

/// The place-and-time overlap matrix (module docs), by one sort of packed keys.
fn place_overlap(
    incidents: &[CovIncident],
    s: usize,
    params: &CoverageParams,
) -> Result<Vec<Vec<u64>>, CoverageError> {
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
    let mut keys = Vec::with_capacity(incidents.len());
    for inc in incidents {
        let cell = parent(inc.cell, res)?;
        let low = (u64::from(inc.source) << 48) | (inc.t - t0) as u64;
        keys.push((u128::from(cell) << 64) | u128::from(low));
    }
    keys.sort_unstable();
    let times: Vec<i64> = keys
        .iter()
        .map(|&k| (k as u64 & TIME_MASK) as i64)
        .collect();
    let window = i64::from(params.window_days) * SECONDS_PER_DAY;
    let mut m = vec![vec![0u64; s]; s];
    let mut runs: Vec<(usize, Range<usize>)> = Vec::new();
    let mut start = 0;
    while start < keys.len() {
        let cell = keys[start] >> 64;
        let mut end = start + 1;
        while end < keys.len() && keys[end] >> 64 == cell {
            end += 1;
        }
        source_runs(&keys, start..end, &mut runs);
        count_cell(&runs, &times, window, &mut m);
        start = end;
    }
    Ok(m)
}

/// Splits the sorted keys of one cell into runs of one source (times ascending in each run).
fn source_runs(keys: &[u128], cell: Range<usize>, runs: &mut Vec<(usize, Range<usize>)>) {
    runs.clear();
    for i in cell {
        let src = (keys[i] as u64 >> 48) as usize;
        match runs.last_mut() {
            Some((r, range)) if *r == src => range.end = i + 1,
            _ => runs.push((src, i..i + 1)),
        }
    }
}

/// Adds one cell's contribution to the matrix.
fn count_cell(runs: &[(usize, Range<usize>)], times: &[i64], window: i64, m: &mut [Vec<u64>]) {
    for (a, ra) in runs {
        let ta = &times[ra.clone()];
        for (b, rb) in runs {
            m[*a][*b] += if a == b {
                repeats_within(ta, window)
            } else {
                hits_within(ta, &times[rb.clone()], window)
            };
        }
    }
}

/// Elements of `ta` with at least one element of `tb` within `window` (both ascending).
fn hits_within(ta: &[i64], tb: &[i64], window: i64) -> u64 {
    let mut p = 0;
    let mut hits = 0;
    for &t in ta {
        while p < tb.len() && tb[p] < t - window {
            p += 1;
        }
        if p < tb.len() && tb[p] <= t + window {
            hits += 1;
        }
    }
    hits
}

/// Elements of ascending `ts` with another element within `window` (a neighbour in order).
fn repeats_within(ts: &[i64], window: i64) -> u64 {
    (0..ts.len())
        .filter(|&i| {
            (i > 0 && ts[i] - ts[i - 1] <= window)
                || (i + 1 < ts.len() && ts[i + 1] - ts[i] <= window)
        })
        .count() as u64
}

/// Distinct hot cells, grouped by resolution for lookups.
struct HotCells {
    /// Sorted distinct cells.
    cells: Vec<CellIndex>,
    /// Per resolution present: cell → position in `cells`.
    by_res: Vec<(Resolution, HashMap<u64, usize>)>,
}

impl HotCells {
    fn new(raw: &[u64]) -> Result<Self, CoverageError> {
        let mut cells = raw
            .iter()
            .map(|&c| CellIndex::try_from(c).map_err(|_| CoverageError::InvalidCell { cell: c }))
            .collect::<Result<Vec<_>, _>>()?;
        cells.sort_unstable();
        cells.dedup();
        let mut by_res: Vec<(Resolution, HashMap<u64, usize>)> = Vec::new();
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
                None => by_res.push((r, HashMap::from([(u64::from(*c), i)]))),
            }
        }
        Ok(Self { cells, by_res })
    }

    /// `signal[source][hot cell]`: the source has an incident in the cell.
    fn signal(&self, incidents: &[CovIncident], s: usize) -> Result<Vec<Vec<bool>>, CoverageError> {
        let mut signal = vec![vec![false; self.cells.len()]; s];
        for inc in incidents {
            for (r, map) in &self.by_res {
                if let Some(&i) = map.get(&parent(inc.cell, *r)?) {
                    signal[usize::from(inc.source)][i] = true;
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
