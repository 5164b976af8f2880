//! Monitoring (issue 7, item 5): what changed since a date.
//!
//! - **Hot spots.** The picture's window of length `L` ending now is compared with the window
//!   of the same length ending at `since` (`[since − L, since)`): a cell is *hot* in a window
//!   when its Gi* bin (k = 1, binary weights, FDR) is +2 or +3 (95 % or 99 %). New hot spots
//!   are hot now and not then; ended ones were hot then and are not now. Each window is
//!   analysed as `/hotspots` would: on the study area's cells when one is loaded, else on the
//!   k-ring hull of its own non-empty cells.
//! - **Subjects known to several organisations.** Cumulative: the subjects reported by at
//!   least two distinct sources among all incidents up to now, minus those that already were
//!   before `since`.

use super::h3grid::IncidentCells;
use super::hotspot::{self, HotspotError, HotspotParams};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Hot-spot cells of two windows and how they differ.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HotChanges {
    pub resolution: u8,
    pub rule: &'static str,
    pub hot_then: usize,
    pub hot_now: usize,
    /// Hot now, not then (H3 indexes, sorted).
    pub new: Vec<String>,
    /// Hot then, not now.
    pub ended: Vec<String>,
    /// Hot in both.
    pub persisting: usize,
}

pub const HOT_RULE: &str = "Gi* (k = 1, binary weights, FDR) bin +2 or +3 (95 or 99 % confidence)";

fn hot_cells(
    cells: &(impl IncidentCells + ?Sized),
    area: Option<&geo::MultiPolygon<f64>>,
    res: u8,
) -> Result<BTreeSet<String>, HotspotError> {
    let p = HotspotParams {
        resolution: Some(res),
        k: Some(1),
        fdr: true,
        ..Default::default()
    };
    let r = hotspot::run(cells, area, &p)?;
    Ok(r.cells
        .into_iter()
        .filter(|c| c.gi_bin >= 2)
        .map(|c| c.h3)
        .collect())
}

/// Hot spots of the `then` and `now` windows (fine-resolution cells of their incidents).
pub fn hot_changes(
    then: &(impl IncidentCells + ?Sized),
    now: &(impl IncidentCells + ?Sized),
    area: Option<&geo::MultiPolygon<f64>>,
    res: u8,
) -> Result<HotChanges, HotspotError> {
    let (a, b) = (hot_cells(then, area, res)?, hot_cells(now, area, res)?);
    Ok(HotChanges {
        resolution: res,
        rule: HOT_RULE,
        hot_then: a.len(),
        hot_now: b.len(),
        new: b.difference(&a).cloned().collect(),
        ended: a.difference(&b).cloned().collect(),
        persisting: a.intersection(&b).count(),
    })
}

/// Subjects (by code) reported by at least two distinct sources among `(subject, source)`.
pub fn multi_org_subjects(pairs: impl Iterator<Item = (u32, u16)>) -> HashSet<u32> {
    let mut first: HashMap<u32, u16> = HashMap::new();
    let mut multi = HashSet::new();
    for (s, src) in pairs {
        match first.get(&s) {
            None => {
                first.insert(s, src);
            }
            Some(&f) if f != src => {
                multi.insert(s);
            }
            _ => {}
        }
    }
    multi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_org_subjects_need_two_distinct_sources() {
        let m = multi_org_subjects(
            [
                (1, 0),
                (1, 0),
                (2, 0),
                (2, 3),
                (3, 1),
                (4, 2),
                (4, 2),
                (4, 1),
            ]
            .into_iter(),
        );
        let mut v: Vec<u32> = m.into_iter().collect();
        v.sort();
        assert_eq!(v, vec![2, 4]);
    }
}
