//! Selecting incidents by time, category, source and bounding box.

use super::Incidents;
use rstar::AABB;

/// A closed time interval in unix seconds; `None` = open end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

impl TimeRange {
    pub fn contains(&self, t: i64) -> bool {
        self.start.is_none_or(|s| t >= s) && self.end.is_none_or(|e| t <= e)
    }
}

/// The common filters of items and analyses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub time: Option<TimeRange>,
    /// Category names (any of).
    pub categories: Option<Vec<String>>,
    /// Source organisations (any of).
    pub sources: Option<Vec<String>>,
    /// Envelope in the dataset's metric CRS `[minx, miny, maxx, maxy]` (pre-selection).
    pub bbox_metric: Option<[f64; 4]>,
    /// Exact test in lon/lat `[minlon, minlat, maxlon, maxlat]`, applied after the envelope.
    pub bbox_lonlat: Option<[f64; 4]>,
}

fn codes(names: &Option<Vec<String>>, dict: &[String]) -> Option<Vec<bool>> {
    names
        .as_ref()
        .map(|names| dict.iter().map(|d| names.iter().any(|n| n == d)).collect())
}

impl Incidents {
    /// Rows matching the filter, ascending (= fid order).
    pub fn select(&self, f: &Filter) -> Vec<u32> {
        let cats = codes(&f.categories, &self.categories);
        let srcs = codes(&f.sources, &self.sources);
        let keep = |i: usize| {
            f.time.is_none_or(|r| r.contains(self.t[i]))
                && cats.as_ref().is_none_or(|c| c[self.cat[i] as usize])
                && srcs.as_ref().is_none_or(|s| s[self.src[i] as usize])
                && f.bbox_lonlat.is_none_or(|b| {
                    self.lon[i] >= b[0]
                        && self.lon[i] <= b[2]
                        && self.lat[i] >= b[1]
                        && self.lat[i] <= b[3]
                })
        };
        let mut out: Vec<u32> = match f.bbox_metric {
            Some(b) => {
                let env = AABB::from_corners([b[0], b[1]], [b[2], b[3]]);
                self.tree
                    .locate_in_envelope(&env)
                    .map(|p| p.data)
                    .filter(|&i| keep(i as usize))
                    .collect()
            }
            None => (0..self.len() as u32)
                .filter(|&i| keep(i as usize))
                .collect(),
        };
        out.sort_unstable();
        out
    }
}
