//! Concentration of incidents over units (places or subjects): top-x % shares, the Lorenz
//! curve, the Gini coefficient, the generalized Gini of Bernasco & Steenbeek (2017), the
//! fewest units holding half of the incidents, repeat units, and for subjects the number of
//! organisations each subject is known to (issue 7, items 1-2).
//!
//! Input is one count per unit: places are H3 cells at a chosen resolution ([`place_counts`]
//! aggregates the res-12 incident cells to their parents), subjects are pseudonyms
//! ([`subject_counts`]). Units with zero incidents (the cells of the study area without a
//! report) enter through `n_units_total`: they are data, and they raise the Gini (Eck et al.
//! 2017 warn that zero-crime units inflate place concentration; the generalized Gini removes
//! the part of it that is forced by sparsity, fewer incidents than units).
//!
//! Definitions, with `n` units, `N` incidents and counts `x`:
//! * **Lorenz curve**, ordered from the **most** to the **least** affected unit (as in the
//!   crime-concentration literature and the `lorenzgini` vignette): `L(k/n) = C_k / N`, with
//!   `C_k` the sum of the `k` largest counts, linearly interpolated between the points, so
//!   `L(p) = (C_⌊pn⌋ + (pn − ⌊pn⌋) · x_(⌊pn⌋+1)) / N`. The interpolation treats the unit
//!   straddling `p` as split fractionally; because tied units have equal counts, the order
//!   among ties never changes a result. The curve is returned at every `k/n` when `n ≤ 100`,
//!   otherwise at the 101 points `p = 0, 0.01, …, 1`.
//! * **Top shares**: `L(p)` at `p` = 1 %, 5 %, 10 %, 20 % (the same interpolation).
//! * **Gini**: `G = Σ_i (2i − n − 1) x_(i) / (n Σx)` with `x` ascending and `i = 1..n`,
//!   zero units included (the "biased" Gini, `DescTools::Gini(unbiased = FALSE)`; it equals
//!   `1 − 2 · area under the Lorenz curve`). Computed exactly in integers.
//! * **Generalized Gini** (Bernasco, W. & Steenbeek, W. (2017). More places than crimes:
//!   implications for evaluating the law of crime concentration at place. *Journal of
//!   Quantitative Criminology* 33(3), 451-467, doi:10.1007/s10940-016-9324-7): when `N < n`,
//!   compare with *maximal equality given N incidents* (N units with one incident, the rest
//!   none) instead of perfect equality: `G' = max(1, n/N) · (G − 1) + 1`, which is the
//!   authors' own implementation (`lorenzgini::gini(generalized = TRUE, unbiased = FALSE)`).
//!   Equivalently `G' = (S − N(n − N)) / N²` with `S = Σ (2i − n − 1) x_(i)`: 0 at maximal
//!   equality, `1 − 1/N` when one unit holds everything (like `G`, whose maximum is
//!   `1 − 1/n`, it is the "biased" form); `G' = G` when `N ≥ n`.
//! * **Units for half**: the smallest `k` with `C_k ≥ N / 2`.
//! * **Repeat units**: units with at least 2 incidents, their number and share of incidents.
//!
//! Speed: sorting the non-zero counts dominates; 1M incidents (place counts at res 10 plus
//! the measures) take about 25 ms in a release build.
//!
//! ```
//! use hotspots::analysis::concentration::{concentration, known_to, ConcentrationParams};
//! // 10 places, 5 incidents at three of them (Bernasco & Steenbeek's example).
//! let c = concentration(&[3, 1, 1], Some(10), &ConcentrationParams::default()).expect("data");
//! assert!((c.gini - 0.78).abs() < 1e-12);
//! assert!((c.gini_generalized - 0.56).abs() < 1e-12);
//! assert_eq!((c.units_for_half, c.repeat_units), (1, 1));
//! // Subject 7 is known to organisations 0 and 2, subject 8 only to organisation 1.
//! let k = known_to(&[(7, 0), (7, 2), (7, 0), (8, 1)]);
//! assert_eq!((k.multi_organisation_subjects, k.multi_organisation_incidents), (1, 3));
//! ```

use std::collections::HashMap;

use h3o::{CellIndex, Resolution};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Default H3 resolution of places (res 10: cells of about 15 000 m², edge ≈ 76 m).
pub const DEFAULT_PLACE_RESOLUTION: u8 = 10;
/// Finest resolution accepted: incidents are stored at res 12 (`model::FINE_RES`).
pub const MAX_RESOLUTION: u8 = 12;
/// Most units listed by `top`.
pub const MAX_TOP: usize = 10_000;
/// Unit percentages whose incident share is reported.
pub const TOP_PERCENTS: [f64; 4] = [1.0, 5.0, 10.0, 20.0];
/// Largest number of Lorenz points returned.
pub const LORENZ_POINTS: usize = 101;

/// Errors of the concentration measures.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConcentrationError {
    /// No incidents in the selection, so no share is defined.
    #[error("no incidents match the selection; concentration is undefined")]
    NoIncidents,
    /// `n_units_total` is smaller than the number of units with a count.
    #[error("the total number of units ({total}) is smaller than the {given} units given")]
    TotalBelowUnits {
        /// Total given.
        total: u64,
        /// Units given.
        given: u64,
    },
    /// H3 resolution outside 0..=12.
    #[error("resolution must be between 0 and 12, got {resolution}")]
    ResolutionOutOfRange {
        /// Resolution asked for.
        resolution: u8,
    },
    /// `top` outside 1..=10000.
    #[error("top must be between 1 and 10000, got {top}")]
    TopOutOfRange {
        /// Value asked for.
        top: usize,
    },
    /// A 64-bit value that is not a valid H3 cell index.
    #[error("{cell:#x} is not a valid H3 cell index")]
    InvalidCell {
        /// The value.
        cell: u64,
    },
    /// An incident cell coarser than the resolution asked for.
    #[error(
        "an incident cell has resolution {cell_resolution}, coarser than resolution {resolution}"
    )]
    CellTooCoarse {
        /// Resolution of the cell.
        cell_resolution: u8,
        /// Resolution asked for.
        resolution: u8,
    },
    /// The counts sum beyond 2^64.
    #[error("the incident counts overflow a 64-bit total")]
    CountOverflow,
}

impl ConcentrationError {
    /// Stable snake_case code for API problem responses.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoIncidents => "no_incidents",
            Self::TotalBelowUnits { .. } => "total_below_units",
            Self::ResolutionOutOfRange { .. } => "resolution_out_of_range",
            Self::TopOutOfRange { .. } => "top_out_of_range",
            Self::InvalidCell { .. } => "invalid_cell",
            Self::CellTooCoarse { .. } => "cell_too_coarse",
            Self::CountOverflow => "count_overflow",
        }
    }
}

/// The kind of unit counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConcentrationBy {
    /// H3 cells at `resolution`.
    #[default]
    Place,
    /// Pseudonymous subjects (incidents without a subject are left out).
    Subject,
}

/// Query parameters of `GET /datasets/{id}/concentration` (minus the common filters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConcentrationParams {
    /// `place` (default) or `subject`.
    pub by: ConcentrationBy,
    /// H3 resolution of places, 0..=12 (default 10); ignored for subjects.
    pub resolution: u8,
    /// List the `top` units with the most incidents (1..=10000); none when absent.
    pub top: Option<usize>,
}

impl Default for ConcentrationParams {
    fn default() -> Self {
        Self {
            by: ConcentrationBy::Place,
            resolution: DEFAULT_PLACE_RESOLUTION,
            top: None,
        }
    }
}

impl ConcentrationParams {
    /// Checks the ranges that do not depend on the data.
    pub fn validate(&self) -> Result<(), ConcentrationError> {
        if self.resolution > MAX_RESOLUTION {
            return Err(ConcentrationError::ResolutionOutOfRange {
                resolution: self.resolution,
            });
        }
        if let Some(top) = self.top
            && !(1..=MAX_TOP).contains(&top)
        {
            return Err(ConcentrationError::TopOutOfRange { top });
        }
        Ok(())
    }
}

/// Share of incidents at the top `units_pct` % of units.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopShare {
    /// Percentage of units (1, 5, 10, 20).
    pub units_pct: f64,
    /// That many units, `units_pct / 100 · n` (may be fractional).
    pub units: f64,
    /// Incidents at those units, interpolated on the Lorenz curve.
    pub incidents: f64,
    /// `incidents / N`.
    pub incidents_share: f64,
}

/// One point of the Lorenz curve (units ordered from most to least incidents).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LorenzPoint {
    /// Cumulative share of units, 0..=1.
    pub units_share: f64,
    /// Cumulative share of incidents held by those units, 0..=1.
    pub incidents_share: f64,
}

/// A unit among the `top` units: its position in the input `counts` and its count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TopUnit {
    /// Index into the `counts` slice given (the caller maps it to a cell or pseudonym).
    pub index: usize,
    /// Incidents at the unit.
    pub count: u64,
}

/// Concentration of incidents over units (see the module docs for every definition).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Concentration {
    /// Kind of unit.
    pub by: ConcentrationBy,
    /// H3 resolution of places (`None` for subjects).
    pub resolution: Option<u8>,
    /// Units, zero units included.
    pub n_units: u64,
    /// Units with at least one incident.
    pub n_units_with_incidents: u64,
    /// Incidents.
    pub n_incidents: u64,
    /// `N < n`: fewer incidents than units, so the generalized Gini differs from the Gini.
    pub sparse: bool,
    /// Shares at the top 1, 5, 10 and 20 % of units.
    pub top_shares: Vec<TopShare>,
    /// Lorenz curve from most to least affected unit, at most 101 points.
    pub lorenz: Vec<LorenzPoint>,
    /// Gini coefficient (zero units included).
    pub gini: f64,
    /// Generalized Gini of Bernasco & Steenbeek (2017).
    pub gini_generalized: f64,
    /// Fewest units holding at least half of the incidents.
    pub units_for_half: u64,
    /// `units_for_half / n`.
    pub units_for_half_share: f64,
    /// Units with at least two incidents.
    pub repeat_units: u64,
    /// Incidents at repeat units.
    pub repeat_incidents: u64,
    /// `repeat_incidents / N`.
    pub repeat_incidents_share: f64,
    /// The `top` units by count (count descending, then index ascending); empty without `top`.
    pub top_units: Vec<TopUnit>,
}

/// Concentration of `counts` (one count per unit). `n_units_total`, when given, is the number
/// of units including those without incidents (e.g. every cell of the study area); units not in
/// `counts` count as zero. Errors: no incidents, a total below `counts.len()`, bad params.
pub fn concentration(
    counts: &[u64],
    n_units_total: Option<u64>,
    params: &ConcentrationParams,
) -> Result<Concentration, ConcentrationError> {
    params.validate()?;
    let given = counts.len() as u64;
    let n = n_units_total.unwrap_or(given);
    if n < given {
        return Err(ConcentrationError::TotalBelowUnits { total: n, given });
    }
    let mut desc: Vec<u64> = counts.iter().copied().filter(|&c| c > 0).collect();
    desc.sort_unstable_by(|a, b| b.cmp(a));
    let cum = cumulative(&desc)?;
    let total = *cum.last().unwrap_or(&0);
    if total == 0 {
        return Err(ConcentrationError::NoIncidents);
    }
    let curve = Curve {
        desc: &desc,
        cum: &cum,
        n,
        total,
    };
    let (gini, gini_generalized) = curve.ginis();
    let half = curve.units_for_half();
    let (repeat_units, repeat_incidents) = desc
        .iter()
        .filter(|&&c| c >= 2)
        .fold((0u64, 0u64), |(u, s), &c| (u + 1, s + c));
    Ok(Concentration {
        by: params.by,
        resolution: (params.by == ConcentrationBy::Place).then_some(params.resolution),
        n_units: n,
        n_units_with_incidents: desc.len() as u64,
        n_incidents: total,
        sparse: total < n,
        top_shares: curve.top_shares(),
        lorenz: curve.lorenz(),
        gini,
        gini_generalized,
        units_for_half: half,
        units_for_half_share: half as f64 / n as f64,
        repeat_units,
        repeat_incidents,
        repeat_incidents_share: repeat_incidents as f64 / total as f64,
        top_units: params.top.map_or_else(Vec::new, |k| top_units(counts, k)),
    })
}

/// `cum[k]` = sum of the `k` largest counts, `cum[0] = 0`.
fn cumulative(desc: &[u64]) -> Result<Vec<u64>, ConcentrationError> {
    let mut cum = Vec::with_capacity(desc.len() + 1);
    let mut s = 0u64;
    cum.push(0);
    for &c in desc {
        s = s.checked_add(c).ok_or(ConcentrationError::CountOverflow)?;
        cum.push(s);
    }
    Ok(cum)
}

/// The sorted counts of the non-zero units; zero units implicitly follow up to `n`.
struct Curve<'a> {
    desc: &'a [u64],
    cum: &'a [u64],
    n: u64,
    total: u64,
}

impl Curve<'_> {
    /// `(G, G')`, from the exact integer `S = Σ (2i − n − 1) x_(i)`.
    fn ginis(&self) -> (f64, f64) {
        // In descending position j (0-based) the ascending rank is i = n − j, so
        // 2i − n − 1 = n − 2j − 1 (zero units add nothing).
        let n = i128::from(self.n);
        let s: i128 = self
            .desc
            .iter()
            .enumerate()
            .map(|(j, &x)| (n - 2 * j as i128 - 1) * i128::from(x))
            .sum();
        let big_n = i128::from(self.total);
        let gini = s as f64 / (n as f64 * big_n as f64);
        let generalized = if big_n < n {
            (s - big_n * (n - big_n)) as f64 / (big_n as f64 * big_n as f64)
        } else {
            gini
        };
        (gini.clamp(0.0, 1.0), generalized.clamp(0.0, 1.0))
    }

    /// `L(p)` in incidents (not yet divided by N), linear between the points `k/n`.
    fn incidents_at(&self, p: f64) -> f64 {
        let pos = (p * self.n as f64).clamp(0.0, self.n as f64);
        let k = pos.floor() as usize;
        let base = self.cum.get(k).copied().unwrap_or(self.total) as f64;
        let next = self.desc.get(k).copied().unwrap_or(0) as f64;
        (base + (pos - k as f64) * next).min(self.total as f64)
    }

    fn top_shares(&self) -> Vec<TopShare> {
        TOP_PERCENTS
            .iter()
            .map(|&pct| {
                let incidents = self.incidents_at(pct / 100.0);
                TopShare {
                    units_pct: pct,
                    units: pct / 100.0 * self.n as f64,
                    incidents,
                    incidents_share: incidents / self.total as f64,
                }
            })
            .collect()
    }

    fn lorenz(&self) -> Vec<LorenzPoint> {
        let total = self.total as f64;
        if self.n < LORENZ_POINTS as u64 {
            return (0..=self.n)
                .map(|k| LorenzPoint {
                    units_share: k as f64 / self.n as f64,
                    incidents_share: self.cum.get(k as usize).copied().unwrap_or(self.total) as f64
                        / total,
                })
                .collect();
        }
        (0..LORENZ_POINTS)
            .map(|j| {
                let p = j as f64 / (LORENZ_POINTS - 1) as f64;
                LorenzPoint {
                    units_share: p,
                    incidents_share: self.incidents_at(p) / total,
                }
            })
            .collect()
    }

    /// Smallest k with 2·C_k ≥ N.
    fn units_for_half(&self) -> u64 {
        let target = self.total.div_ceil(2);
        self.cum.partition_point(|&c| c < target) as u64
    }
}

/// The `k` units with the most incidents (count descending, index ascending), zeros left out.
fn top_units(counts: &[u64], k: usize) -> Vec<TopUnit> {
    let mut idx: Vec<usize> = (0..counts.len()).filter(|&i| counts[i] > 0).collect();
    let order = |a: &usize, b: &usize| counts[*b].cmp(&counts[*a]).then(a.cmp(b));
    if idx.len() > k {
        idx.select_nth_unstable_by(k - 1, order);
        idx.truncate(k);
    }
    idx.sort_unstable_by(order);
    idx.into_iter()
        .map(|index| TopUnit {
            index,
            count: counts[index],
        })
        .collect()
}

/// Incidents per H3 cell at `resolution`, from the incidents' fine cells (any resolution at
/// least as fine): `(cell, count)` sorted by cell index.
pub fn place_counts(
    fine_cells: &[u64],
    resolution: u8,
) -> Result<Vec<(u64, u64)>, ConcentrationError> {
    let res = Resolution::try_from(resolution)
        .ok()
        .filter(|_| resolution <= MAX_RESOLUTION)
        .ok_or(ConcentrationError::ResolutionOutOfRange { resolution })?;
    let mut parents = Vec::with_capacity(fine_cells.len());
    for &raw in fine_cells {
        let cell =
            CellIndex::try_from(raw).map_err(|_| ConcentrationError::InvalidCell { cell: raw })?;
        let parent = cell.parent(res).ok_or(ConcentrationError::CellTooCoarse {
            cell_resolution: u8::from(cell.resolution()),
            resolution,
        })?;
        parents.push(u64::from(parent));
    }
    Ok(run_lengths(parents))
}

/// Incidents per subject: `(subject, count)` sorted by subject.
pub fn subject_counts(subjects: &[u32]) -> Vec<(u32, u64)> {
    run_lengths(subjects.to_vec())
}

fn run_lengths<T: Ord + Copy>(mut v: Vec<T>) -> Vec<(T, u64)> {
    v.sort_unstable();
    let mut out: Vec<(T, u64)> = Vec::new();
    for x in v {
        match out.last_mut() {
            Some((y, c)) if *y == x => *c += 1,
            _ => out.push((x, 1)),
        }
    }
    out
}

/// Subjects known to exactly `organisations` organisations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KnownToBin {
    /// Number of distinct organisations (1, 2, 3, ...).
    pub organisations: u32,
    /// Subjects known to exactly that many.
    pub subjects: u64,
    /// Incidents of those subjects.
    pub incidents: u64,
}

/// How many organisations know each subject.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KnownTo {
    /// Distinct subjects.
    pub subjects: u64,
    /// Incidents with a subject.
    pub incidents: u64,
    /// One bin per organisation count 1..=max (empty bins included).
    pub histogram: Vec<KnownToBin>,
    /// Subjects known to at least two organisations.
    pub multi_organisation_subjects: u64,
    /// Incidents of those subjects.
    pub multi_organisation_incidents: u64,
    /// `multi_organisation_incidents / incidents` (0 without incidents).
    pub multi_organisation_incidents_share: f64,
}

/// Incidents of one subject at one organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SourceCount {
    /// Source (organisation) code.
    pub source: u16,
    /// Incidents.
    pub incidents: u64,
}

/// One subject with its incidents per organisation (private tier only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectProfile {
    /// Subject code.
    pub subject: u32,
    /// All its incidents.
    pub incidents: u64,
    /// Distinct organisations.
    pub organisations: u32,
    /// Incidents per organisation, by source code.
    pub per_source: Vec<SourceCount>,
}

/// Per-subject profiles from `(subject, source)` pairs, one pair per incident.
pub fn subject_profiles(pairs: &[(u32, u16)]) -> Vec<SubjectProfile> {
    let mut out: Vec<SubjectProfile> = Vec::new();
    for ((subject, source), n) in run_lengths(pairs.to_vec()) {
        match out.last_mut() {
            Some(p) if p.subject == subject => {
                p.incidents += n;
                p.organisations += 1;
                p.per_source.push(SourceCount {
                    source,
                    incidents: n,
                });
            }
            _ => out.push(SubjectProfile {
                subject,
                incidents: n,
                organisations: 1,
                per_source: vec![SourceCount {
                    source,
                    incidents: n,
                }],
            }),
        }
    }
    out.sort_by(|a, b| {
        b.incidents
            .cmp(&a.incidents)
            .then(a.subject.cmp(&b.subject))
    });
    out
}

/// The known-to histogram from `(subject, source)` pairs, one pair per incident.
pub fn known_to(pairs: &[(u32, u16)]) -> KnownTo {
    let mut bins: HashMap<u32, (u64, u64)> = HashMap::new();
    let profiles = subject_profiles(pairs);
    for p in &profiles {
        let e = bins.entry(p.organisations).or_default();
        e.0 += 1;
        e.1 += p.incidents;
    }
    let max = bins.keys().copied().max().unwrap_or(0);
    let histogram: Vec<KnownToBin> = (1..=max)
        .map(|k| {
            let (subjects, incidents) = bins.get(&k).copied().unwrap_or((0, 0));
            KnownToBin {
                organisations: k,
                subjects,
                incidents,
            }
        })
        .collect();
    let multi = histogram.iter().filter(|b| b.organisations >= 2);
    let (ms, mi) = multi.fold((0, 0), |(s, i), b| (s + b.subjects, i + b.incidents));
    let incidents = pairs.len() as u64;
    KnownTo {
        subjects: profiles.len() as u64,
        incidents,
        histogram,
        multi_organisation_subjects: ms,
        multi_organisation_incidents: mi,
        multi_organisation_incidents_share: if incidents == 0 {
            0.0
        } else {
            mi as f64 / incidents as f64
        },
    }
}
