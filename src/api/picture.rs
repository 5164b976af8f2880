//! `GET /datasets/{id}/picture`: the region's factual picture ("feitelijke foto") for a period,
//! as JSON or as one printable HTML page with inline SVG charts. Counts by category, source,
//! month and area (H3), the trend against the previous period of the same length, the top hot
//! spots and the proximity summary, all under the caller's tier rules.

use super::AppState;
use super::analysis::{SnapshotCells, cache_key, cached, disclosure_json, scope, snapshot};
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Query};
use super::features::year_month;
use super::protect::Guard;
use crate::analysis::{hotspot, monitor, proximity};
use crate::index::{DatasetSnapshot, TimeRange, month_end, month_start};
use crate::model::Tier;
use crate::privacy::disclosure::{CellRules, hidden_counts, hidden_counts_with};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

fn shown(n: u64, rules: &CellRules) -> Value {
    rules.count(n).map_or(Value::Null, |n| json!(n))
}

/// Counts of `rows` by a cheap integer key (a code, a month index, an H3 index), named once
/// per key: a `String` per row took 135 ms at 1M.
fn by(
    rows: &[u32],
    key: impl Fn(usize) -> u64,
    name: impl Fn(u64) -> String,
) -> BTreeMap<String, u64> {
    let mut m: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    for &r in rows {
        *m.entry(key(r as usize)).or_insert(0) += 1;
    }
    let mut out = BTreeMap::new();
    for (k, n) in m {
        *out.entry(name(k)).or_insert(0) += n;
    }
    out
}

/// The period: the `datetime` filter, or the last 12 whole calendar months of data.
fn period(snap: &DatasetSnapshot, asked: Option<TimeRange>) -> (i64, i64) {
    let last = snap.incidents.t.iter().max().copied().unwrap_or(0);
    let first = snap.incidents.t.iter().min().copied().unwrap_or(0);
    match asked {
        Some(TimeRange { start, end }) => (start.unwrap_or(first), end.unwrap_or(last)),
        None => (month_start(last, -11), month_end(last)),
    }
}

pub async fn picture(
    State(st): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Query,
) -> ApiResult<Response> {
    let snap = snapshot(&st, &who, &id)?;
    let html = match q.get("f") {
        None | Some("json") => false,
        Some("html") => true,
        Some(f) => {
            return Err(ApiError::bad_request(
                "bad_format",
                format!("f={f:?}: expected json or html"),
            ));
        }
    };
    let rest = Query(q.0.iter().filter(|(k, _)| k != "f").cloned().collect());
    rest.allow(&[
        "datetime", "category", "source", "bbox", "bbox-crs", "since",
    ])?;
    let since = rest
        .get("since")
        .map(|v| {
            super::filters::parse_instant(v, false).ok_or_else(|| {
                ApiError::bad_request(
                    "bad_datetime",
                    format!("since={v:?}: expected an RFC 3339 date or instant such as 2025-07-01"),
                )
            })
        })
        .transpose()?;
    let rest = Query(rest.0.into_iter().filter(|(k, _)| k != "since").collect());
    let sc = scope(&rest, &snap, &who, None)?;
    let key = cache_key("picture", &snap, &who, &q);
    let v = cached(&st, key, move || {
        let mut filter = sc.filter.clone();
        let (t0, t1) = period(&snap, filter.time);
        filter.time = Some(TimeRange { start: Some(t0), end: Some(t1) });
        let rows = snap.incidents.select(&filter);
        let len = t1 - t0 + 1;
        filter.time = Some(TimeRange { start: Some(t0 - len), end: Some(t0 - 1) });
        let prev = snap.incidents.select(&filter);
        let changes = since.map(|s| {
            // the open tier's instants are whole months
            let s = if who.tier == Tier::Open { month_start(s, 0) } else { s };
            filter.time = Some(TimeRange { start: Some(s - len), end: Some(s - 1) });
            let then = snap.incidents.select(&filter);
            filter.time = None;
            let all = snap.incidents.select(&filter);
            changes_since(&snap, (s, len), &then, &rows, &all, &sc.rules, who.tier)
        });
        let inc = &snap.incidents;
        let r = &sc.rules;
        // secondary suppression within each breakdown: their totals are published
        let counts = |m: BTreeMap<String, u64>| -> Map<String, Value> {
            let n: Vec<u64> = m.values().copied().collect();
            let hide = hidden_counts(&n, r);
            m.into_iter().zip(hide).map(|((k, n), h)| (k, if h { Value::Null } else { json!(n) })).collect()
        };
        let cat_name = |c: u64| inc.categories[c as usize].clone();
        let cats = by(&rows, |i| u64::from(inc.cat[i]), cat_name);
        let mut prev_cats = by(&prev, |i| u64::from(inc.cat[i]), cat_name);
        for c in cats.keys() {
            prev_cats.entry(c.clone()).or_insert(0);
        }
        let (now_shown, prev_shown) = (counts(cats.clone()), counts(prev_cats.clone()));
        let trend: Vec<Value> = cats
            .keys()
            .map(|c| {
                let (n, p) = (&now_shown[c], &prev_shown[c]);
                let change = match (n.as_f64(), p.as_f64()) {
                    (Some(n), Some(p)) if p > 0.0 => Some((n - p) / p),
                    _ => None,
                };
                json!({"category": c, "count": n, "previous": p, "change": change})
            })
            .collect();
        let res = r.max_resolution.min(8);
        let column = inc.cells_at(res);
        let area_counts = column.count(Some(&rows));
        // areas through the guard, over the period's window: cell-key noise at the open tier
        // when the dataset has it, and areas hidden whose difference with the unrestricted
        // picture would reveal a small category or source count
        let mut protection = sc.protection.clone();
        if let Some(u) = &mut protection.unrestricted {
            u.time = Some(TimeRange { start: Some(t0), end: Some(t1) });
        }
        let guard = Guard::build_with(&snap, &protection, r.min_count, &rows, res, &|_| 0);
        let n: Vec<u64> = area_counts.counts.iter().map(|&c| u64::from(c)).collect();
        let diff: Vec<bool> = area_counts.cells.iter().map(|&c| guard.differencing(c, 0)).collect();
        let hide = hidden_counts_with(&n, r, &diff);
        let mut areas: Vec<(String, Value)> = area_counts
            .cells
            .iter()
            .zip(&n)
            .zip(hide)
            .map(|((&c, &n), h)| (format!("{c:x}"), if h { Value::Null } else { json!(guard.show(c, 0, n)) }))
            .collect();
        areas.sort_by(|a, b| b.1.as_u64().cmp(&a.1.as_u64()).then(a.0.cmp(&b.0)));
        let body = json!({
            "dataset": snap.meta.id, "title": snap.meta.title,
            "period": {"start": super::features::rfc3339(t0), "end": super::features::rfc3339(t1)},
            "previous_period": {"start": super::features::rfc3339(t0 - len), "end": super::features::rfc3339(t0 - 1)},
            "total": shown(rows.len() as u64, r), "previous_total": shown(prev.len() as u64, r),
            "by_category": counts(cats.clone()),
            "by_source": counts(by(&rows, |i| u64::from(inc.src[i]), |c| inc.sources[c as usize].clone())),
            "by_month": counts(by(&rows, |i| month_index(inc.t[i]), |m| year_month(month_start_of(m)))),
            "by_area": {"resolution": res, "cells": areas.iter().take(25).map(|(c, n)| json!({"h3": c, "count": n})).collect::<Vec<_>>()},
            "trend": trend,
            "top_hot_spots": top_hot_spots(&snap, &rows, r.max_resolution.min(9), who.tier),
            "proximity": proximity_summary(&snap, &rows, who.tier),
            "disclosure": disclosure_json(&sc, &who),
        });
        let mut body = body;
        if let Some(c) = changes {
            body["changes"] = c;
        }
        Ok(body)
    })
    .await?;
    let resp = if html {
        (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            render_html(&v),
        )
            .into_response()
    } else {
        axum::Json((*v).clone()).into_response()
    };
    let _ = headers;
    Ok(super::audit::with_info(resp, 1, 0))
}

/// Months since year 0 (cheap integer arithmetic; named once per month by `year_month`).
fn month_index(t: i64) -> u64 {
    crate::analysis::emerging::TimeBin::Month.index_of(t).max(0) as u64
}

fn month_start_of(m: u64) -> i64 {
    crate::analysis::emerging::TimeBin::Month.start_of(m as i64)
}

/// `since` (issue 7, monitoring): hot spots of the window of the picture's length ending at
/// `s` against the picture's window (`analysis::monitor`), subjects newly known to several
/// organisations (pseudonyms at the private tier only), and the reports since `s`.
fn changes_since(
    snap: &DatasetSnapshot,
    (s, len): (i64, i64),
    then: &[u32],
    now: &[u32],
    all: &[u32],
    r: &CellRules,
    tier: Tier,
) -> Value {
    let inc = &snap.incidents;
    // res 8 has a few dozen cells in a town: too coarse for Gi* with FDR
    let res = r.max_resolution.min(9);
    let area = snap.study_area.as_ref().map(|a| &a.wgs84);
    let hot = match monitor::hot_changes(&cells(snap, then), &cells(snap, now), area, res) {
        Ok(h) => json!(h),
        Err(e) => json!({"error": e.to_string()}),
    };
    let pairs = |rows: Vec<u32>| {
        rows.into_iter()
            .filter(|&i| inc.subject[i as usize] > 0)
            .map(|i| (inc.subject[i as usize], inc.src[i as usize]))
            .collect::<Vec<_>>()
    };
    let before: Vec<u32> = all
        .iter()
        .copied()
        .filter(|&i| inc.t[i as usize] < s)
        .collect();
    let multi_then = monitor::multi_org_subjects(pairs(before).into_iter());
    let multi_now = monitor::multi_org_subjects(pairs(all.to_vec()).into_iter());
    let mut new: Vec<&str> = multi_now
        .difference(&multi_then)
        .map(|&c| inc.subjects[c as usize - 1].as_str())
        .collect();
    new.sort_unstable();
    let mut subjects = json!({
        "rule": "subjects reported by at least two organisations, among all reports up to then and up to now",
        "then": shown(multi_then.len() as u64, r), "now": shown(multi_now.len() as u64, r),
        "new": shown(new.len() as u64, r),
    });
    if tier == Tier::Private {
        subjects["new_pseudonyms"] = json!(new);
    }
    let since_n = all.iter().filter(|&&i| inc.t[i as usize] >= s).count() as u64;
    json!({
        "since": super::features::rfc3339(s),
        "window_then": {"start": super::features::rfc3339(s - len), "end": super::features::rfc3339(s - 1)},
        "hot_spots": hot,
        "multi_organisation_subjects": subjects,
        "reports_since": shown(since_n, r),
    })
}

/// The incidents of `rows` as input of the H3 analyses.
fn cells<'a>(snap: &'a DatasetSnapshot, rows: &'a [u32]) -> SnapshotCells<'a> {
    SnapshotCells {
        inc: &snap.incidents,
        rows: Some(rows),
    }
}

fn top_hot_spots(snap: &DatasetSnapshot, rows: &[u32], res: u8, tier: Tier) -> Value {
    let cells = cells(snap, rows);
    let p = hotspot::HotspotParams {
        resolution: Some(res),
        k: Some(1),
        fdr: true,
        ..Default::default()
    };
    match hotspot::run(&cells, snap.study_area.as_ref().map(|a| &a.wgs84), &p) {
        Ok(r) => {
            let mut hot: Vec<&hotspot::CellResult> =
                r.cells.iter().filter(|c| c.gi_bin >= 2).collect();
            hot.sort_by(|a, b| b.gi_z.total_cmp(&a.gi_z));
            json!({"rule": "Gi* (k = 1, FDR) bins +2/+3, highest z first", "resolution": res,
                   // as /hotspots: the open tier gets the bins, not the exact z
                   "cells": hot.iter().take(10).map(|c| json!({"h3": c.h3, "gi_bin": c.gi_bin,
                       "gi_z": if tier == Tier::Open { Value::Null } else { json!(c.gi_z) }})).collect::<Vec<_>>()})
        }
        Err(e) => json!({"error": e.to_string()}),
    }
}

fn proximity_summary(snap: &DatasetSnapshot, rows: &[u32], tier: Tier) -> Value {
    // every kind, no confidential facility below the private tier (as /proximity)
    let fac: Vec<proximity::ProxFacility> = super::proximity::facilities(snap, None, tier)
        .into_iter()
        .map(|(_, f)| f)
        .collect();
    let (pts, baseline) = super::proximity::inputs(snap, rows);
    let params = proximity::ProximityParams {
        simulations: 99,
        seed: 1,
        ..Default::default()
    };
    let base = (!baseline.is_empty()).then_some(baseline.as_slice());
    // only the global figures are shown: the global test alone (same window, null and RNG
    // stream as the full analysis, without its per-facility, rho(d) and L_cross parts)
    match proximity::global_summary(
        &pts,
        &fac,
        snap.study_area.as_ref().map(|a| &a.metric),
        base,
        &params,
        &proximity::ProximityOptions::default(),
    ) {
        Ok(r) => {
            let g = &r.global;
            json!({"radius_m": params.radius_m, "null": r.null, "share_within": g.share_within,
                   "expected_share": g.expected_share, "ratio": g.ratio, "p_mc": g.p_mc})
        }
        Err(e) => json!({"error": e.to_string()}),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart of a `{label: count|null}` object as inline SVG.
fn bars(title: &str, m: &Value) -> String {
    let Some(obj) = m.as_object() else {
        return String::new();
    };
    let max = obj.values().filter_map(Value::as_f64).fold(1.0, f64::max);
    let mut svg = format!(
        "<h2>{}</h2><svg class=\"chart\" width=\"640\" height=\"{}\" role=\"img\">",
        esc(title),
        22 * obj.len() + 4
    );
    for (i, (k, v)) in obj.iter().enumerate() {
        let y = 22 * i + 2;
        let (w, label) = match v.as_f64() {
            Some(n) => (n / max * 380.0, format!("{n}")),
            None => (0.0, "&lt;k".to_owned()),
        };
        svg += &format!(
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text><rect x=\"200\" y=\"{y}\" width=\"{w:.1}\" height=\"16\" fill=\"#c0392b\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"12\">{label}</text>",
            y + 13,
            esc(k),
            205.0 + w,
            y + 13
        );
    }
    svg + "</svg>"
}

fn render_html(v: &Value) -> String {
    let title = esc(v["title"].as_str().unwrap_or("hotspots"));
    let mut s = format!(
        "<!DOCTYPE html><html lang=\"nl\"><head><meta charset=\"utf-8\"><title>Feitelijke foto: {title}</title>\
         <style>body{{font-family:sans-serif;max-width:760px;margin:2em auto}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 6px}}@media print{{h2{{page-break-after:avoid}}}}</style></head><body>\
         <h1>Feitelijke foto: {title}</h1><p>Period {} to {}; {} reports (previous period: {}).</p>",
        esc(v["period"]["start"].as_str().unwrap_or("")),
        esc(v["period"]["end"].as_str().unwrap_or("")),
        v["total"],
        v["previous_total"]
    );
    s += &bars("Reports by category", &v["by_category"]);
    s += &bars("Reports by organisation", &v["by_source"]);
    s += &bars("Reports by month", &v["by_month"]);
    s += "<h2>Trend against the previous period</h2><table><tr><th>category</th><th>now</th><th>before</th><th>change</th></tr>";
    for t in v["trend"].as_array().into_iter().flatten() {
        let change = t["change"]
            .as_f64()
            .map_or("-".to_owned(), |c| format!("{:+.0} %", c * 100.0));
        s += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{change}</td></tr>",
            esc(t["category"].as_str().unwrap_or("")),
            t["count"],
            t["previous"]
        );
    }
    s += "</table><h2>Top hot spots (H3 cells)</h2><table><tr><th>cell</th><th>Gi* z</th><th>bin</th></tr>";
    let top = v["top_hot_spots"]["cells"]
        .as_array()
        .map_or(&[][..], |c| c.as_slice());
    for c in top {
        s += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(c["h3"].as_str().unwrap_or("")),
            c["gi_z"]
                .as_f64()
                .map_or("-".to_owned(), |z| format!("{z:.2}")),
            c["gi_bin"]
        );
    }
    if top.is_empty() {
        s += "<tr><td colspan=\"3\">none at 90 % confidence or more</td></tr>";
    }
    let p = &v["proximity"];
    s += &format!(
        "</table><h2>Near facilities</h2><p>Share of reports within {} m of a facility: {:.1} % (expected under the {} null: {:.1} %; Monte Carlo p = {}).</p>",
        p["radius_m"],
        p["share_within"].as_f64().unwrap_or(0.0) * 100.0,
        esc(p["null"].as_str().unwrap_or("")),
        p["expected_share"].as_f64().unwrap_or(0.0) * 100.0,
        p["p_mc"]
    );
    let c = &v["changes"];
    if c.is_object() {
        let h = &c["hot_spots"];
        let list = |k: &str| {
            h[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(esc)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "none".into())
        };
        s += &format!(
            "<h2>Changes since {}</h2><p>Reports since then: {}. Hot spots (H3 res {}): {} then, {} now; new: {}; no longer hot: {}. Subjects known to two or more organisations: {} then, {} now ({} new).</p>",
            esc(c["since"].as_str().unwrap_or("")),
            c["reports_since"],
            h["resolution"],
            h["hot_then"],
            h["hot_now"],
            list("new"),
            list("ended"),
            c["multi_organisation_subjects"]["then"],
            c["multi_organisation_subjects"]["now"],
            c["multi_organisation_subjects"]["new"],
        );
    }
    s += &format!(
        "<p><small>Tier: {}. Counts below the tier's threshold are shown as &lt;k.</small></p></body></html>",
        esc(v["disclosure"]["tier"].as_str().unwrap_or(""))
    );
    s
}
