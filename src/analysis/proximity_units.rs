//! Units of analysis for the repeat-aware tests (issue 4 §6): a few persons and addresses
//! cause many reports, so besides every report (naive) the tests run on
//! - distinct fine H3 cells: one point per cell, at the mean position of its reports;
//! - distinct subjects: one point per subject, at the mean position of its reports in its
//!   most frequent cell (ties: smallest cell id); reports without a subject stay units of
//!   their own.
//!
//! Output order is deterministic (sorted by cell / subject id), independent of input order
//! except for the naive list.

use super::{Dedup, ProxIncident, ProximityError};
use std::collections::{BTreeMap, HashMap};

/// Point sets of the three variants (only incidents inside the window).
#[derive(Debug, Clone, PartialEq)]
pub struct Units {
    /// Every incident.
    pub naive: Vec<[f64; 2]>,
    /// One point per distinct cell.
    pub cell: Vec<[f64; 2]>,
    /// One point per distinct subject (plus subject-less incidents); `None` when no incident
    /// has a subject.
    pub subject: Option<Vec<[f64; 2]>>,
}

impl Units {
    /// The point set used for `dedup` (subject falls back to naive only when validated).
    pub fn chosen(&self, dedup: Dedup) -> &[[f64; 2]] {
        match dedup {
            Dedup::None => &self.naive,
            Dedup::Cell => &self.cell,
            Dedup::Subject => self.subject.as_deref().unwrap_or(&self.naive),
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Acc {
    n: u64,
    sx: f64,
    sy: f64,
}

impl Acc {
    fn add(&mut self, i: &ProxIncident) {
        self.n += 1;
        self.sx += i.x;
        self.sy += i.y;
    }
    fn mean(&self) -> [f64; 2] {
        [self.sx / self.n as f64, self.sy / self.n as f64]
    }
}

/// Builds the variants from the incidents with indices `inside`; errors with
/// [`ProximityError::NoSubjects`] when `dedup = subject` and nobody has a subject.
pub fn analysis_units(
    incidents: &[ProxIncident],
    inside: &[usize],
    dedup: Dedup,
) -> Result<Units, ProximityError> {
    let naive = inside
        .iter()
        .map(|&i| [incidents[i].x, incidents[i].y])
        .collect();
    let mut cells: BTreeMap<u64, Acc> = BTreeMap::new();
    let mut subjects: BTreeMap<u32, HashMap<u64, Acc>> = BTreeMap::new();
    let mut loose = Vec::new();
    for &i in inside {
        let inc = &incidents[i];
        cells.entry(inc.cell).or_default().add(inc);
        match inc.subject {
            Some(s) => subjects
                .entry(s)
                .or_default()
                .entry(inc.cell)
                .or_default()
                .add(inc),
            None => loose.push([inc.x, inc.y]),
        }
    }
    let cell = cells.values().map(Acc::mean).collect();
    let subject = if subjects.is_empty() {
        if dedup == Dedup::Subject {
            return Err(ProximityError::NoSubjects);
        }
        None
    } else {
        let mut pts: Vec<[f64; 2]> = subjects
            .values()
            .map(|by_cell| {
                let (_, acc) = by_cell
                    .iter()
                    .max_by(|a, b| a.1.n.cmp(&b.1.n).then(b.0.cmp(a.0)))
                    .expect("a subject has at least one report");
                acc.mean()
            })
            .collect();
        pts.extend(loose);
        Some(pts)
    };
    Ok(Units {
        naive,
        cell,
        subject,
    })
}
