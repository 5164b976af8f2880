//! Units of analysis for the repeat-aware tests (issue 4 §6): a few persons and addresses
//! cause many reports, so besides every report (naive) the tests run on
//! - distinct fine H3 cells: one point per cell, at the mean position of its reports;
//! - distinct subjects: one point per subject, at the mean position of its reports in its
//!   most frequent cell (ties: smallest cell id); reports without a subject stay units of
//!   their own.
//!
//! `repeats_summary` runs the global tests on each variant and reports the inflation factor
//! z_naive / z_dedup.
//!
//! Output order is deterministic (sorted by cell / subject id), independent of input order
//! except for the naive list.

use super::global::{self, GlobalResult, Reference};
use super::{Dedup, ProxIncident, ProximityError, ProximityParams, RepeatsSummary, params, rng};

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
///
/// Grouping is by sorting (cell, position in `inside`) and (subject, cell, position): each
/// group's sums are then taken in `inside` order, as a map of accumulators filled in that
/// order would (the reference implementation in the tests), to the bit.
pub fn analysis_units(
    incidents: &[ProxIncident],
    inside: &[usize],
    dedup: Dedup,
) -> Result<Units, ProximityError> {
    let naive = inside
        .iter()
        .map(|&i| [incidents[i].x, incidents[i].y])
        .collect();
    let mut by_cell: Vec<(u64, u32)> = inside
        .iter()
        .enumerate()
        .map(|(k, &i)| (incidents[i].cell, k as u32))
        .collect();
    by_cell.sort_unstable();
    let mut cell = Vec::new();
    for group in by_cell.chunk_by(|a, b| a.0 == b.0) {
        let mut acc = Acc::default();
        group
            .iter()
            .for_each(|&(_, k)| acc.add(&incidents[inside[k as usize]]));
        cell.push(acc.mean());
    }
    drop(by_cell);
    let mut by_subject: Vec<(u32, u64, u32)> = Vec::new();
    let mut loose = Vec::new();
    for (k, &i) in inside.iter().enumerate() {
        let inc = &incidents[i];
        match inc.subject {
            Some(s) => by_subject.push((s, inc.cell, k as u32)),
            None => loose.push([inc.x, inc.y]),
        }
    }
    let subject = if by_subject.is_empty() {
        if dedup == Dedup::Subject {
            return Err(ProximityError::NoSubjects);
        }
        None
    } else {
        by_subject.sort_unstable();
        let mut pts: Vec<[f64; 2]> = Vec::new();
        for group in by_subject.chunk_by(|a, b| a.0 == b.0) {
            // the cell with most reports; ties: the smallest cell id (the first)
            let mut best = Acc::default();
            for cell_group in group.chunk_by(|a, b| a.1 == b.1) {
                let mut acc = Acc::default();
                cell_group
                    .iter()
                    .for_each(|&(_, _, k)| acc.add(&incidents[inside[k as usize]]));
                if acc.n > best.n {
                    best = acc;
                }
            }
            pts.push(best.mean());
        }
        pts.extend(loose);
        Some(pts)
    };
    Ok(Units {
        naive,
        cell,
        subject,
    })
}

/// Distance to the nearest facility of the units of each variant.
pub struct VariantDistances {
    /// Every incident inside the window.
    pub naive: Vec<f64>,
    /// Distinct cells.
    pub cell: Vec<f64>,
    /// Distinct subjects.
    pub subject: Option<Vec<f64>>,
}

impl VariantDistances {
    /// Distances of the variant used for `dedup`.
    pub fn chosen(&self, dedup: Dedup) -> &[f64] {
        match dedup {
            Dedup::None => &self.naive,
            Dedup::Cell => &self.cell,
            Dedup::Subject => self.subject.as_deref().unwrap_or(&self.naive),
        }
    }
}

/// The global test of one variant on the distances `dist` of its units, with the variant's
/// own RNG stream (`seed`; stream 1 naive, 2 cell, 3 subject).
pub fn variant_test(
    dedup: Dedup,
    dist: &[f64],
    params: &ProximityParams,
    reference: &Reference,
) -> GlobalResult {
    let (variant, stream) = match dedup {
        Dedup::None => ("naive", 1),
        Dedup::Cell => ("cell", 2),
        Dedup::Subject => ("subject", 3),
    };
    let mut r = rng(params.seed, stream);
    global::global_test(
        variant,
        dist,
        params.radius_m,
        reference,
        params.simulations,
        &mut r,
    )
}

/// Global results for the naive, cell and subject variants (each its own RNG stream).
pub fn repeats_summary(
    dist: &VariantDistances,
    params: &ProximityParams,
    reference: &Reference,
) -> RepeatsSummary {
    let enough = |d: &&Vec<f64>| d.len() >= params::MIN_INCIDENTS;
    let naive = variant_test(Dedup::None, &dist.naive, params, reference);
    let cell = Some(&dist.cell)
        .filter(enough)
        .map(|d| variant_test(Dedup::Cell, d, params, reference));
    let subject = dist
        .subject
        .as_ref()
        .filter(enough)
        .map(|d| variant_test(Dedup::Subject, d, params, reference));
    let inflation = |d: &Option<GlobalResult>| match (naive.z, d.as_ref().and_then(|g| g.z)) {
        (Some(a), Some(b)) if a > 0.0 && b > 0.0 => Some(a / b),
        _ => None,
    };
    RepeatsSummary {
        inflation_cell: inflation(&cell),
        inflation_subject: inflation(&subject),
        naive,
        cell,
        subject,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::collections::{BTreeMap, HashMap};

    /// The map-based grouping the sort-based one replaced (ordered maps of accumulators).
    fn reference(
        incidents: &[ProxIncident],
        inside: &[usize],
    ) -> (Vec<[f64; 2]>, Option<Vec<[f64; 2]>>) {
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
        let subject = (!subjects.is_empty()).then(|| {
            let mut pts: Vec<[f64; 2]> = subjects
                .values()
                .map(|by_cell| {
                    let (_, acc) = by_cell
                        .iter()
                        .max_by(|a, b| a.1.n.cmp(&b.1.n).then(b.0.cmp(a.0)))
                        .expect("non-empty");
                    acc.mean()
                })
                .collect();
            pts.extend(loose);
            pts
        });
        (cell, subject)
    }

    /// Sort-based units equal the map-based reference to the bit (cells with many reports
    /// in shuffled order, subjects with tied most frequent cells, a subset `inside`).
    #[test]
    fn units_equal_the_map_reference_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let incidents: Vec<ProxIncident> = (0..20_000)
            .map(|_| ProxIncident {
                x: rng.random::<f64>() * 1e5 + 1e5,
                y: rng.random::<f64>() * 1e5 + 4e5,
                cell: rng.random_range(0..3_000u64) * 7919,
                subject: rng.random_bool(0.3).then(|| rng.random_range(0..400u32)),
            })
            .collect();
        let bits = |v: &[[f64; 2]]| -> Vec<[u64; 2]> {
            v.iter().map(|p| [p[0].to_bits(), p[1].to_bits()]).collect()
        };
        for inside in [
            (0..incidents.len()).collect::<Vec<usize>>(),
            (0..incidents.len()).filter(|i| i % 3 != 1).collect(),
        ] {
            let got = analysis_units(&incidents, &inside, Dedup::None).expect("units");
            let (cell, subject) = reference(&incidents, &inside);
            assert_eq!(bits(&got.cell), bits(&cell));
            assert_eq!(
                got.subject.as_deref().map(bits),
                subject.as_deref().map(bits)
            );
        }
        let none: Vec<ProxIncident> = incidents
            .iter()
            .map(|i| ProxIncident {
                subject: None,
                ..*i
            })
            .collect();
        let all: Vec<usize> = (0..none.len()).collect();
        assert!(
            analysis_units(&none, &all, Dedup::None)
                .expect("units")
                .subject
                .is_none()
        );
        assert_eq!(
            analysis_units(&none, &all, Dedup::Subject),
            Err(ProximityError::NoSubjects)
        );
    }
}
