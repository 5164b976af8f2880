//! The common filters of items and analyses (`bbox`, `bbox-crs`, `datetime`, `category`,
//! `source`) and the output `crs`, parsed into an [`index::Filter`].

use super::error::{ApiError, ApiResult};
use super::extract::Query;
use crate::crs::{Crs, Transformer};
use crate::index::{DatasetSnapshot, Filter, TimeRange};

/// The CRSs a dataset's layers can be served in: CRS84 and its metric CRS.
pub fn supported_crs(snap: &DatasetSnapshot) -> Vec<Crs> {
    let mut v = vec![Crs::WGS84];
    if let Some(m) = snap.metric_crs {
        v.push(m);
    }
    v
}

/// Parses `crs`-like parameters, allowing only the supported ones.
pub fn parse_crs_param(q: &Query, name: &str, snap: &DatasetSnapshot) -> ApiResult<Crs> {
    let Some(v) = q.get(name) else {
        return Ok(Crs::WGS84);
    };
    let c = Crs::parse(v)?;
    let ok = supported_crs(snap);
    if ok.contains(&c) {
        Ok(c)
    } else {
        Err(ApiError::bad_request(
            "unsupported_crs",
            format!(
                "{name}={v} is not offered for this collection; use one of: {}",
                ok.iter().map(|c| c.uri()).collect::<Vec<_>>().join(", ")
            ),
        ))
    }
}

fn parse_bbox(v: &str) -> ApiResult<[f64; 4]> {
    let nums: Result<Vec<f64>, _> = v.split(',').map(|s| s.trim().parse::<f64>()).collect();
    let bad = |why: &str| ApiError::bad_request("bad_bbox", format!("bbox={v:?}: {why}"));
    let n = nums.map_err(|_| bad("expected 4 (or 6) comma-separated numbers"))?;
    let b = match n.len() {
        4 => [n[0], n[1], n[2], n[3]],
        6 => [n[0], n[1], n[3], n[4]],
        _ => return Err(bad("expected 4 (or 6) comma-separated numbers")),
    };
    if b.iter().any(|x| !x.is_finite()) {
        return Err(bad("numbers must be finite"));
    }
    if b[1] > b[3] {
        return Err(bad("the lower y is above the upper y"));
    }
    if b[0] > b[2] {
        return Err(bad(
            "west > east (crossing the antimeridian) is not supported",
        ));
    }
    Ok(b)
}

/// Envelope in `to` of a bbox in `from`, sampling each edge so that curved edges are covered.
fn envelope(b: [f64; 4], t: &Transformer) -> Option<[f64; 4]> {
    let mut env = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    const STEPS: usize = 16;
    for i in 0..=STEPS {
        let f = i as f64 / STEPS as f64;
        let x = b[0] + f * (b[2] - b[0]);
        let y = b[1] + f * (b[3] - b[1]);
        for (px, py) in [(x, b[1]), (x, b[3]), (b[0], y), (b[2], y)] {
            let (mx, my) = t.point(px, py)?;
            env = [
                env[0].min(mx),
                env[1].min(my),
                env[2].max(mx),
                env[3].max(my),
            ];
        }
    }
    Some(env)
}

/// Parses an RFC 3339 instant or a date (as the whole day when `end`).
pub(crate) fn parse_instant(s: &str, end: bool) -> Option<i64> {
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(d.timestamp());
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let t = d.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
    Some(if end { t + 86_399 } else { t })
}

/// `datetime`: an instant, or an interval `start/end` with `..` (or empty) for an open end.
pub fn parse_datetime(v: &str) -> ApiResult<TimeRange> {
    let bad = || {
        ApiError::bad_request(
            "bad_datetime",
            format!(
                "datetime={v:?}: expected an RFC 3339 instant or interval such as 2024-01-01T00:00:00Z/.. or 2024-01-01/2024-06-30"
            ),
        )
    };
    let open = |s: &str| s.is_empty() || s == "..";
    match v.split_once('/') {
        None => {
            if open(v) {
                return Err(bad());
            }
            let (s, e) = (
                parse_instant(v, false).ok_or_else(bad)?,
                parse_instant(v, true).ok_or_else(bad)?,
            );
            Ok(TimeRange {
                start: Some(s),
                end: Some(e),
            })
        }
        Some((a, b)) => {
            let start = if open(a) {
                None
            } else {
                Some(parse_instant(a, false).ok_or_else(bad)?)
            };
            let end = if open(b) {
                None
            } else {
                Some(parse_instant(b, true).ok_or_else(bad)?)
            };
            if start.is_none() && end.is_none() {
                return Err(bad());
            }
            if let (Some(s), Some(e)) = (start, end)
                && s > e
            {
                return Err(ApiError::bad_request(
                    "bad_datetime",
                    format!("datetime={v:?}: the start is after the end"),
                ));
            }
            Ok(TimeRange { start, end })
        }
    }
}

/// The common filters of a request on a dataset.
pub fn parse_filter(q: &Query, snap: &DatasetSnapshot) -> ApiResult<Filter> {
    let mut f = Filter {
        time: q.get("datetime").map(parse_datetime).transpose()?,
        categories: q.list("category"),
        sources: q.list("source"),
        ..Filter::default()
    };
    if let Some(v) = q.get("bbox") {
        let b = parse_bbox(v)?;
        let bbox_crs = parse_crs_param(q, "bbox-crs", snap)?;
        let Some(metric) = snap.metric_crs else {
            // no data yet: nothing can match, but the bbox is still checked
            f.bbox_lonlat = Some(b);
            return Ok(f);
        };
        if bbox_crs == Crs::WGS84 {
            if b[1] < -90.0 || b[3] > 90.0 || b[0] < -180.0 || b[2] > 180.0 {
                return Err(ApiError::bad_request(
                    "bad_bbox",
                    format!("bbox={v:?} is not in lon/lat degrees (CRS84)"),
                ));
            }
            f.bbox_lonlat = Some(b);
            let t = Transformer::new(Crs::WGS84, metric)?;
            // clamp to the metric CRS's area so PROJ does not fail at the poles
            let (w, s, e, n) = metric.area_of_use()?;
            let c = [
                b[0].max(w - 1.0),
                b[1].max(s - 1.0),
                b[2].min(e + 1.0),
                b[3].min(n + 1.0),
            ];
            // (outside that area no incident can lie: the exact lon/lat test alone answers)
            if c[0] <= c[2] && c[1] <= c[3] {
                f.bbox_metric = Some(envelope(c, &t).ok_or_else(|| {
                    ApiError::bad_request(
                        "bad_bbox",
                        format!("bbox={v:?} cannot be transformed to {metric}"),
                    )
                })?);
            }
        } else {
            f.bbox_metric = Some(b);
        }
    } else if q.get("bbox-crs").is_some() {
        parse_crs_param(q, "bbox-crs", snap)?;
    }
    Ok(f)
}
