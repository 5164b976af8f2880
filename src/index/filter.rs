//! Selecting incidents by time, category, source and bounding box.

use super::Incidents;

/// A closed time interval in unix seconds; `None` = open end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

/// First second (UTC) of the calendar month `months` months after the one holding `t`
/// (`months` may be negative); `t` itself if the date cannot be represented.
pub fn month_start(t: i64, months: i32) -> i64 {
    use chrono::{Datelike, TimeZone, Utc};
    let Some(d) = Utc.timestamp_opt(t, 0).single() else {
        return t;
    };
    let m = d.year() * 12 + d.month0() as i32 + months;
    Utc.with_ymd_and_hms(m.div_euclid(12), m.rem_euclid(12) as u32 + 1, 1, 0, 0, 0)
        .single()
        .map_or(t, |x| x.timestamp())
}

/// Last second (UTC) of the calendar month holding `t`.
pub fn month_end(t: i64) -> i64 {
    month_start(t, 1) - 1
}

impl TimeRange {
    /// The range widened to whole calendar months (UTC).
    pub fn whole_months(self) -> TimeRange {
        TimeRange {
            start: self.start.map(|s| month_start(s, 0)),
            end: self.end.map(month_end),
        }
    }

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

impl Filter {
    /// Whether the filter keeps every incident.
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }
}

impl Incidents {
    /// Rows matching the filter, ascending (= fid order).
    pub fn select(&self, f: &Filter) -> Vec<u32> {
        if f.is_empty() {
            return (0..self.len() as u32).collect();
        }
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
                let mut out = Vec::new();
                // corners in any order, as rstar's envelope took them
                let q = [
                    b[0].min(b[2]),
                    b[1].min(b[3]),
                    b[0].max(b[2]),
                    b[1].max(b[3]),
                ];
                self.points.within(&self.x, &self.y, q, |i| {
                    if keep(i as usize) {
                        out.push(i);
                    }
                });
                out
            }
            None => {
                // branch-free: write every row, advance past the kept ones (a filter keeping
                // a third of the rows mispredicts a branch per row)
                let mut out = vec![0u32; self.len()];
                let mut n = 0;
                if cats.is_none() && srcs.is_none() && f.bbox_lonlat.is_none() {
                    // time alone (the common case): one comparison pair per row
                    let r = f.time.unwrap_or_default();
                    let (lo, hi) = (r.start.unwrap_or(i64::MIN), r.end.unwrap_or(i64::MAX));
                    for (i, &t) in self.t.iter().enumerate() {
                        out[n] = i as u32;
                        n += usize::from((t >= lo) & (t <= hi));
                    }
                } else {
                    for i in 0..self.len() {
                        out[n] = i as u32;
                        n += usize::from(keep(i));
                    }
                }
                out.truncate(n);
                return out;
            }
        };
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|d| d.timestamp())
            .unwrap_or(i64::MIN)
    }

    #[test]
    fn months_cross_year_ends() {
        assert_eq!(
            month_start(t("2025-12-31T21:14:00Z"), 0),
            t("2025-12-01T00:00:00Z")
        );
        assert_eq!(
            month_end(t("2025-12-31T21:14:00Z")),
            t("2025-12-31T23:59:59Z")
        );
        assert_eq!(
            month_start(t("2025-12-31T21:14:00Z"), -11),
            t("2025-01-01T00:00:00Z")
        );
        assert_eq!(
            month_start(t("2025-03-15T00:00:00Z"), -11),
            t("2024-04-01T00:00:00Z")
        );
        assert_eq!(
            month_end(t("2024-02-10T00:00:00Z")),
            t("2024-02-29T23:59:59Z")
        );
        let r = TimeRange {
            start: Some(t("2024-01-15T00:00:00Z")),
            end: None,
        }
        .whole_months();
        assert_eq!(
            r,
            TimeRange {
                start: Some(t("2024-01-01T00:00:00Z")),
                end: None
            }
        );
    }
}
