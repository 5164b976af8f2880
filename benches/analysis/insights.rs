//! Issue 7, the data lab's own questions: `GET /datasets/bench/concentration`, `/coverage` and
//! `/picture`, each timed through the whole router (authentication, audit append, parameter
//! parsing, disclosure rules, the analysis on the blocking pool, JSON or HTML), uncached (the
//! analysis cache off: every request computes) and as a cached repeat. Issue 7's target: each
//! route under 200 ms at 1M incidents.
//!
//! Requests (private tier, so no suppression and the subject profiles are in the answer):
//! - `concentration?by=place` (the default resolution 10), `&resolution=9`, and `&resolution=12`
//!   (the finest, every incident cell a unit: the worst case);
//! - `concentration?by=subject` (20 % of the incidents have one of 50 000 subjects);
//! - `coverage` (resolution 10, window 30 days) and `coverage?organisation=ggd` (only ggd's list
//!   of hot cells without signal is filled);
//! - `picture` (JSON) and `picture?f=html` (the last 12 whole months of data against the 12
//!   before: counts by category, source, month and res-8 area, trend, top Gi* hot spots at res
//!   8, proximity summary with 99 CSR simulations).
//!
//! The stage breakdown calls the same core functions as the handlers on the dataset's snapshot
//! (`src/api/insights.rs`, `src/api/picture.rs` replicated, with the per-row `String` keys of
//! the picture's breakdowns as the handler builds them, and the same breakdowns keyed by code
//! for comparison). "api" is the request median minus the stages.
//!
//! The peer (`benches/peers/insights.py`) does the same aggregations in pandas/numpy/h3/esda/
//! scipy from `peer_incidents.csv` (+ the `subject` column of `incidents.csv`, same rows).
//! Agreement: the child writes the service's answers (and the coverage route's hot cells) to
//! `<dir>/insights_service.json`; the peer compares Gini / generalized Gini / top shares per
//! place and per subject, the known-to histogram, both overlap matrices, the per-organisation
//! figures, the hot cell set, and the picture's breakdowns.

use crate::common::{DATASET, Server, peer as run_peer, ratio, summary_ms};
use crate::util::{quantile, rss, timed};
use geo::{ConvexHull, MultiPoint, MultiPolygon, Point};
use hotspots::analysis::concentration::{self as conc, ConcentrationParams};
use hotspots::analysis::coverage::{self as cov, CovIncident, CoverageParams};
use hotspots::analysis::proximity::facility::FacilityIndex;
use hotspots::analysis::proximity::{NullModel, ProximityOptions, Window, global, null};
use hotspots::analysis::{hotspot, proximity};
use hotspots::index::{DatasetSnapshot, Filter, TimeRange, month_end, month_start};
use hotspots::model::DatasetId;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

const DUMP: &str = "insights_service.json";

/// (name, path and query after `/datasets/bench/`, description).
const ROUTES: [(&str, &str, &str); 9] = [
    (
        "conc_place",
        "concentration?by=place",
        "places, res 10 (default)",
    ),
    (
        "conc_place_r9",
        "concentration?by=place&resolution=9",
        "places, res 9",
    ),
    (
        "conc_place_r12",
        "concentration?by=place&resolution=12",
        "places, res 12 (finest)",
    ),
    ("conc_subject", "concentration?by=subject", "subjects"),
    ("coverage", "coverage", "res 10, 30 days (defaults)"),
    (
        "coverage_ggd",
        "coverage?organisation=ggd",
        "the same, ggd's missed hot cells",
    ),
    ("picture", "picture", "JSON, last 12 months"),
    ("picture_html", "picture?f=html", "HTML page"),
    (
        "picture_since",
        "picture?since=2025-07-01",
        "JSON with the changes since 2025-07-01 (monitoring)",
    ),
];
/// The routes with a peer, and the target applies to all of them at 1M.
const SINCE: &str = "picture_since";

fn uri(q: &str) -> String {
    format!("/datasets/{DATASET}/{q}")
}

/// Medians (ms) of named stages over `reps` runs of `run`.
fn medians(reps: usize, mut run: impl FnMut(&mut Vec<(&'static str, f64)>)) -> Value {
    let mut runs: Vec<Vec<(&'static str, f64)>> = Vec::new();
    for _ in 0..reps {
        let mut st = Vec::new();
        run(&mut st);
        runs.push(st);
    }
    let mut out = Map::new();
    for (i, (name, _)) in runs[0].iter().enumerate() {
        let v: Vec<f64> = runs.iter().map(|r| r[i].1).collect();
        out.insert((*name).into(), json!(quantile(&v, 0.5) * 1e3));
    }
    Value::Object(out)
}

/// Times `f`, records it under `name`, returns its value.
fn stage<T>(st: &mut Vec<(&'static str, f64)>, name: &'static str, f: impl FnOnce() -> T) -> T {
    let (s, v) = timed(f);
    st.push((name, s));
    v
}

fn conc_place_stages(snap: &DatasetSnapshot, res: u8, reps: usize) -> Value {
    medians(reps, |st| {
        let inc = &snap.incidents;
        let rows = stage(st, "select", || inc.select(&Filter::default()));
        let cells: Vec<u64> = stage(st, "gather", || {
            rows.iter().map(|&r| inc.cell[r as usize]).collect()
        });
        let counts = stage(st, "place_counts", || {
            conc::place_counts(&cells, res).expect("counts")
        });
        let params = ConcentrationParams {
            resolution: res,
            ..Default::default()
        };
        let c = stage(st, "measures", || {
            let n: Vec<u64> = counts.iter().map(|c| c.1).collect();
            conc::concentration(&n, None, &params).expect("measures")
        });
        stage(st, "to_json", || {
            serde_json::to_vec(&serde_json::to_value(&c).expect("value")).expect("body")
        });
    })
}

fn conc_subject_stages(snap: &DatasetSnapshot, reps: usize) -> Value {
    medians(reps, |st| {
        let inc = &snap.incidents;
        let rows = stage(st, "select", || inc.select(&Filter::default()));
        let pairs: Vec<(u32, u16)> = stage(st, "pairs", || {
            rows.iter()
                .filter_map(|&r| {
                    inc.subject[r as usize]
                        .checked_sub(1)
                        .map(|s| (s, inc.src[r as usize]))
                })
                .collect()
        });
        let counts = stage(st, "subject_counts", || {
            let subj: Vec<u32> = pairs.iter().map(|p| p.0).collect();
            conc::subject_counts(&subj)
        });
        let c = stage(st, "measures", || {
            let n: Vec<u64> = counts.iter().map(|c| c.1).collect();
            conc::concentration(&n, None, &ConcentrationParams::default()).expect("measures")
        });
        let k = stage(st, "known_to", || conc::known_to(&pairs));
        let p = stage(st, "subject_profiles", || conc::subject_profiles(&pairs));
        stage(st, "to_json", || {
            let top: Vec<Value> = p
                .iter()
                .take(50)
                .map(|p| serde_json::to_value(p).expect("p"))
                .collect();
            serde_json::to_vec(&json!({"c": c, "k": k, "p": top})).expect("body")
        });
    })
}

fn cov_points(snap: &DatasetSnapshot, rows: &[u32]) -> Vec<CovIncident> {
    let inc = &snap.incidents;
    rows.iter()
        .map(|&r| {
            let r = r as usize;
            CovIncident {
                cell: inc.cell[r],
                t: inc.t[r],
                source: inc.src[r],
                subject: inc.subject[r].checked_sub(1),
            }
        })
        .collect()
}

/// The coverage route's hot cells: Gi* at `res`, k = 1, FDR, bins +2 and +3.
fn hot_cells(snap: &DatasetSnapshot, pts: &[CovIncident], res: u8) -> Vec<u64> {
    let cells: Vec<h3o::CellIndex> = pts
        .iter()
        .filter_map(|p| h3o::CellIndex::try_from(p.cell).ok())
        .collect();
    let hp = hotspot::HotspotParams {
        resolution: Some(res),
        k: Some(1),
        fdr: true,
        ..Default::default()
    };
    hotspot::run(&cells, snap.study_area.as_ref().map(|a| &a.wgs84), &hp)
        .expect("hotspots")
        .cells
        .iter()
        .filter(|c| c.gi_bin >= 2)
        .filter_map(|c| u64::from_str_radix(&c.h3, 16).ok())
        .collect()
}

fn coverage_stages(snap: &DatasetSnapshot, reps: usize) -> Value {
    medians(reps, |st| {
        let inc = &snap.incidents;
        let rows = stage(st, "select", || inc.select(&Filter::default()));
        let pts = stage(st, "points", || cov_points(snap, &rows));
        let hot = stage(st, "hot_cells_gi", || hot_cells(snap, &pts, 10));
        let params = CoverageParams::default();
        let c = stage(st, "coverage_core", || {
            cov::coverage(&pts, &inc.sources, &hot, &params).expect("coverage")
        });
        stage(st, "coverage_core_no_hot", || {
            cov::coverage(&pts, &inc.sources, &[], &params).expect("coverage")
        });
        stage(st, "to_json", || {
            serde_json::to_vec(&serde_json::to_value(&c).expect("value")).expect("body")
        });
    })
}

fn by<K: Ord + Clone>(rows: &[u32], key: impl Fn(usize) -> K) -> BTreeMap<K, u64> {
    let mut m = BTreeMap::new();
    for &r in rows {
        *m.entry(key(r as usize)).or_insert(0) += 1;
    }
    m
}

fn year_month(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m").to_string())
        .unwrap_or_default()
}

/// The picture's period as the handler sets it: the last 12 whole months of data.
fn picture_period(snap: &DatasetSnapshot) -> (i64, i64) {
    let last = snap.incidents.t.iter().max().copied().unwrap_or(0);
    (month_start(last, -11), month_end(last))
}

fn picture_stages(snap: &DatasetSnapshot, reps: usize) -> Value {
    medians(reps, |st| {
        let inc = &snap.incidents;
        let (t0, t1) = stage(st, "period", || picture_period(snap));
        let len = t1 - t0 + 1;
        let (rows, prev) = stage(st, "select_two_periods", || {
            let mut f = Filter {
                time: Some(TimeRange {
                    start: Some(t0),
                    end: Some(t1),
                }),
                ..Default::default()
            };
            let rows = inc.select(&f);
            f.time = Some(TimeRange {
                start: Some(t0 - len),
                end: Some(t0 - 1),
            });
            (rows, inc.select(&f))
        });
        // the handler's breakdowns: a String key per row
        stage(st, "by_category_string_keys", || {
            let a = by(&rows, |i| inc.categories[inc.cat[i] as usize].clone());
            let b = by(&prev, |i| inc.categories[inc.cat[i] as usize].clone());
            (a, b)
        });
        stage(st, "by_source_string_keys", || {
            by(&rows, |i| inc.sources[inc.src[i] as usize].clone())
        });
        stage(st, "by_month_chrono_format", || {
            by(&rows, |i| year_month(inc.t[i]))
        });
        let res8 = h3o::Resolution::Eight;
        stage(st, "by_area_parent_to_string", || {
            by(&rows, |i| {
                h3o::CellIndex::try_from(inc.cell[i])
                    .ok()
                    .and_then(|c| c.parent(res8))
                    .map(|c| c.to_string())
                    .unwrap_or_default()
            })
        });
        // the same four breakdowns keyed by code, names attached per key afterwards
        stage(st, "breakdowns_by_code", || {
            let mut cat = vec![0u64; inc.categories.len()];
            let mut pcat = vec![0u64; inc.categories.len()];
            let mut src = vec![0u64; inc.sources.len()];
            let mut month: HashMap<i64, u64> = HashMap::new();
            let mut area: HashMap<u64, u64> = HashMap::new();
            for &r in &rows {
                let i = r as usize;
                cat[inc.cat[i] as usize] += 1;
                src[inc.src[i] as usize] += 1;
                *month.entry(month_start(inc.t[i], 0)).or_default() += 1;
                let p = h3o::CellIndex::try_from(inc.cell[i])
                    .ok()
                    .and_then(|c| c.parent(res8))
                    .map_or(0, u64::from);
                *area.entry(p).or_default() += 1;
            }
            for &r in &prev {
                pcat[inc.cat[r as usize] as usize] += 1;
            }
            let months: BTreeMap<String, u64> =
                month.into_iter().map(|(m, n)| (year_month(m), n)).collect();
            let areas: BTreeMap<String, u64> = area
                .into_iter()
                .map(|(c, n)| (format!("{c:x}"), n))
                .collect();
            (cat, pcat, src, months, areas)
        });
        let cells: Vec<h3o::CellIndex> = stage(st, "hot_spots_cells", || {
            rows.iter()
                .filter_map(|&r| h3o::CellIndex::try_from(inc.cell[r as usize]).ok())
                .collect()
        });
        stage(st, "hot_spots_gi_res9", || {
            let p = hotspot::HotspotParams {
                resolution: Some(9),
                k: Some(1),
                fdr: true,
                ..Default::default()
            };
            hotspot::run(&cells, snap.study_area.as_ref().map(|a| &a.wgs84), &p).expect("gi")
        });
        let (fac, pts) = stage(st, "proximity_inputs", || {
            let fac: Vec<proximity::ProxFacility> = snap
                .facilities
                .iter()
                .map(|(_, f)| proximity::ProxFacility {
                    id: f.id.clone(),
                    kind: f.kind.clone(),
                    x: f.x,
                    y: f.y,
                })
                .collect();
            let pts: Vec<proximity::ProxIncident> = rows
                .iter()
                .map(|&r| {
                    let r = r as usize;
                    proximity::ProxIncident {
                        x: inc.x[r],
                        y: inc.y[r],
                        cell: inc.cell[r],
                        subject: inc.subject[r].checked_sub(1),
                    }
                })
                .collect();
            (fac, pts)
        });
        let params = proximity::ProximityParams {
            simulations: 99,
            seed: 1,
            ..Default::default()
        };
        stage(st, "proximity_analyze_99", || {
            proximity::analyze(
                &pts,
                &fac,
                snap.study_area.as_ref().map(|a| &a.metric),
                None,
                &params,
            )
            .expect("proximity")
        });
        stage(st, "proximity_global_only_99", || {
            global_only(&pts, &fac, &params)
        });
    })
}

/// What the picture's proximity summary needs, without the rest of `proximity::analyze`
/// (per-facility rings, unit deduplication, the cell and subject variants, histogram,
/// rho(d), L_cross): the convex-hull window, the nearest facility of each incident, the CSR
/// reference and the naive global test with the analysis's RNG stream (seed, stream 1), as
/// `analyze` computes them. Valid for a dataset without study area and baseline, as here.
fn global_only(
    pts: &[proximity::ProxIncident],
    fac: &[proximity::ProxFacility],
    params: &proximity::ProximityParams,
) -> proximity::GlobalResult {
    let mp: MultiPoint<f64> = pts.iter().map(|p| Point::new(p.x, p.y)).collect();
    let win = Window::new(&MultiPolygon(vec![mp.convex_hull()])).expect("window");
    let fpts: Vec<[f64; 2]> = fac.iter().map(|f| [f.x, f.y]).collect();
    let idx = FacilityIndex::new(&fpts);
    let ipts: Vec<[f64; 2]> = pts.iter().map(|p| [p.x, p.y]).collect();
    let dist: Vec<f64> = idx.nearest_many(&ipts).into_iter().map(|x| x.1).collect();
    let (reference, _) = null::make_reference(
        &win,
        NullModel::Csr,
        None,
        params,
        &ProximityOptions::default(),
        &idx,
    )
    .expect("reference");
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    rng.set_stream(1);
    global::global_test(
        "naive",
        &dist,
        params.radius_m,
        &reference,
        params.simulations,
        &mut rng,
    )
}

pub fn child(dir: &Path, n: usize) -> Value {
    let big = n >= 1_000_000;
    let reps = if big { 5 } else { 10 };
    let (open_s, srv) = timed(|| Server::open(dir, false));
    let (open_rss, _) = rss();
    let mut routes = Map::new();
    let mut answers = Map::new();
    for (name, q, what) in ROUTES {
        let u = uri(q);
        let (first_s, status, body) = srv.get(&u);
        assert!(
            status.is_success(),
            "{u}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
        let (secs, answer) = srv.time(&u, 0, reps);
        eprintln!(
            "  {u}: first {:.0} ms, median {:.0} ms",
            first_s * 1e3,
            quantile(&secs, 0.5) * 1e3
        );
        if !name.ends_with("html") {
            answers.insert(name.into(), answer);
        }
        routes.insert(
            name.into(),
            json!({"uri": u, "what": what, "first_ms": first_s * 1e3,
                   "uncached": summary_ms(&secs), "response_bytes": body.len()}),
        );
    }
    let (_, hwm) = rss();
    let id = DatasetId::new(DATASET).expect("id");
    let snap: Arc<DatasetSnapshot> = srv.state.app.catalog.get(&id).expect("dataset");
    let sreps = 3;
    let pts = cov_points(&snap, &snap.incidents.select(&Filter::default()));
    let hot = hot_cells(&snap, &pts, 10);
    drop(pts);
    let (t0, t1) = picture_period(&snap);
    let stages = json!({
        "reps": sreps,
        "conc_place": conc_place_stages(&snap, 10, sreps),
        "conc_place_r9": conc_place_stages(&snap, 9, sreps),
        "conc_place_r12": conc_place_stages(&snap, 12, sreps),
        "conc_subject": conc_subject_stages(&snap, sreps),
        "coverage": coverage_stages(&snap, sreps),
        "picture": picture_stages(&snap, sreps),
    });
    let light = {
        let f = Filter {
            time: Some(TimeRange {
                start: Some(t0),
                end: Some(t1),
            }),
            ..Default::default()
        };
        let inc = &snap.incidents;
        let pts: Vec<proximity::ProxIncident> = inc
            .select(&f)
            .iter()
            .map(|&r| {
                let r = r as usize;
                proximity::ProxIncident {
                    x: inc.x[r],
                    y: inc.y[r],
                    cell: inc.cell[r],
                    subject: inc.subject[r].checked_sub(1),
                }
            })
            .collect();
        let fac: Vec<proximity::ProxFacility> = snap
            .facilities
            .iter()
            .map(|(_, f)| proximity::ProxFacility {
                id: f.id.clone(),
                kind: f.kind.clone(),
                x: f.x,
                y: f.y,
            })
            .collect();
        let params = proximity::ProximityParams {
            simulations: 99,
            seed: 1,
            ..Default::default()
        };
        let g = global_only(&pts, &fac, &params);
        let route = &answers["picture"]["proximity"];
        // the route's numbers went through JSON text (serde_json parses floats to within 1 ulp)
        let same = |k: &str, v: Option<f64>| match (route[k].as_f64(), v) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * b.abs(),
            (None, None) => true,
            _ => false,
        };
        json!({"share_within": g.share_within, "expected_share": g.expected_share,
               "p_mc": g.p_mc, "ratio": g.ratio,
               "equal_to_route": same("share_within", Some(g.share_within))
                   && same("expected_share", Some(g.expected_share))
                   && same("p_mc", g.p_mc) && same("ratio", g.ratio)})
    };
    let mut hot_hex: Vec<String> = hot.iter().map(|c| format!("{c:x}")).collect();
    hot_hex.sort();
    answers.insert("hot_cells_r10".into(), json!(hot_hex));
    answers.insert("picture_period".into(), json!([t0, t1]));
    std::fs::write(
        dir.join(DUMP),
        serde_json::to_vec(&Value::Object(answers)).expect("dump"),
    )
    .expect("write dump");
    drop(snap);
    drop(srv);
    let cached = Server::open(dir, true);
    let mut hits = Map::new();
    for (name, q, _) in ROUTES {
        let u = uri(q);
        let (fill_s, _, _) = cached.get(&u);
        let (secs, _) = cached.time(&u, 0, 20);
        hits.insert(
            name.into(),
            json!({"fill_ms": fill_s * 1e3, "cached": summary_ms(&secs)}),
        );
    }
    json!({
        "measured": true,
        "n": n,
        "open_s": open_s,
        "routes": routes,
        "cached": hits,
        "stages": stages,
        "n_hot_cells_r10": hot.len(),
        "picture_light_proximity": light,
        "peak_rss_mb": hwm as f64 / 1048576.0,
        "rss_after_open_mb": open_rss as f64 / 1048576.0,
    })
}

pub fn peer(dir: &Path, _n: usize) -> Option<Value> {
    run_peer("insights.py", &[&dir.to_string_lossy()])
}

fn f64_of(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn fmt_ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v < 10.0 => format!("{v:.1} ms"),
        Some(v) => format!("{v:.0} ms"),
        None => "-".into(),
    }
}

/// `yes` / `NO` for a boolean check of the peer, `-` when missing.
fn yes(v: &Value) -> &'static str {
    match v.as_bool() {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "-",
    }
}

pub fn report(n: usize, rust: &Value, peer: Option<&Value>) -> String {
    if rust["measured"] != json!(true) {
        return "not measured\n".into();
    }
    let big = n >= 1_000_000;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "n = {n} incidents (20 % with one of 50 000 subjects, 5 organisations), private tier, \
         whole router; load {}. Peer: {}.\n",
        crate::util::loadavg(),
        peer.and_then(|p| p["versions"].as_str())
            .unwrap_or("not run")
    );
    s.push_str(
        "| request | service uncached, median (p95) | cached repeat | peer (same aggregations) | peer / service | target (1M) |\n|---|---|---|---|---|---|\n",
    );
    for (name, q, what) in ROUTES {
        let r = &rust["routes"][name];
        let med = f64_of(&r["uncached"]["median_ms"]);
        let p95 = f64_of(&r["uncached"]["p95_ms"]);
        let cached = f64_of(&rust["cached"][name]["cached"]["median_ms"]);
        let peer_key = match name {
            "coverage_ggd" => "coverage",
            "picture_html" | SINCE => "",
            other => other,
        };
        let peer_ms = peer
            .and_then(|p| p["routes_s"][peer_key].as_f64())
            .map(|x| x * 1e3);
        let target = if name == SINCE {
            "(extra)".to_owned()
        } else if big {
            match med {
                Some(m) if m < 200.0 => "< 200 ms: met".to_owned(),
                Some(_) => "< 200 ms: **missed**".to_owned(),
                None => "-".to_owned(),
            }
        } else {
            "-".to_owned()
        };
        let peer_note = match name {
            "picture" => " (no CSR simulations)",
            "coverage_ggd" => " (= coverage)",
            _ => "",
        };
        let _ = writeln!(
            s,
            "| `{q}` ({what}) | {} ({}) | {} | {}{peer_note} | {} | {target} |",
            fmt_ms(med),
            fmt_ms(p95),
            fmt_ms(cached),
            fmt_ms(peer_ms),
            ratio(peer_ms, med)
        );
    }
    let st = &rust["stages"];
    let g = |route: &str, k: &str| st[route][k].as_f64().unwrap_or(f64::NAN);
    // the request median minus the stages; "≈ 0" when the stages (other runs) sum to more
    let api = |route: &str, keys: &[&str]| {
        let sum: f64 = keys.iter().map(|k| g(route, k)).sum();
        let rest =
            f64_of(&rust["routes"][route]["uncached"]["median_ms"]).unwrap_or(f64::NAN) - sum;
        if rest < 0.5 {
            "≈ 0".to_owned()
        } else {
            format!("{rest:.1}")
        }
    };
    let _ = writeln!(
        s,
        "\nService stages (ms, median of {} runs of the handlers' core calls on the snapshot; \
         api = request median - stages):",
        st["reps"]
    );
    for (route, label) in [
        ("conc_place", "places res 10"),
        ("conc_place_r9", "places res 9"),
        ("conc_place_r12", "places res 12"),
    ] {
        let keys = ["select", "gather", "place_counts", "measures", "to_json"];
        let _ = writeln!(
            s,
            "- concentration, {label}: select {:.1}, gather cells {:.1}, `place_counts` (parents + sort) {:.1}, measures {:.1}, JSON {:.1}; api {}.",
            g(route, "select"),
            g(route, "gather"),
            g(route, "place_counts"),
            g(route, "measures"),
            g(route, "to_json"),
            api(route, &keys)
        );
    }
    let keys = [
        "select",
        "pairs",
        "subject_counts",
        "measures",
        "known_to",
        "subject_profiles",
        "to_json",
    ];
    let _ = writeln!(
        s,
        "- concentration, subjects: select {:.1}, pairs {:.1}, `subject_counts` {:.1}, measures {:.1}, `known_to` {:.1}, `subject_profiles` {:.1} (the handler builds the profiles twice: once inside `known_to`), JSON {:.1}; api {}.",
        g("conc_subject", "select"),
        g("conc_subject", "pairs"),
        g("conc_subject", "subject_counts"),
        g("conc_subject", "measures"),
        g("conc_subject", "known_to"),
        g("conc_subject", "subject_profiles"),
        g("conc_subject", "to_json"),
        api("conc_subject", &keys)
    );
    let keys = [
        "select",
        "points",
        "hot_cells_gi",
        "coverage_core",
        "to_json",
    ];
    let _ = writeln!(
        s,
        "- coverage: select {:.1}, points {:.1}, hot cells (`hotspot::run` res 10, k = 1, FDR: {} hot cells) {:.1}, `coverage::coverage` {:.1} (without hot cells {:.1}), JSON {:.1}; api {}.",
        g("coverage", "select"),
        g("coverage", "points"),
        rust["n_hot_cells_r10"],
        g("coverage", "hot_cells_gi"),
        g("coverage", "coverage_core"),
        g("coverage", "coverage_core_no_hot"),
        g("coverage", "to_json"),
        api("coverage", &keys)
    );
    let handler = [
        "period",
        "select_two_periods",
        "by_category_string_keys",
        "by_source_string_keys",
        "by_month_chrono_format",
        "by_area_parent_to_string",
        "hot_spots_cells",
        "hot_spots_gi_res9",
        "proximity_inputs",
        "proximity_analyze_99",
    ];
    let light = &rust["picture_light_proximity"];
    let _ = writeln!(
        s,
        "- picture: period {:.1}, select both periods {:.1}; breakdowns as the handler builds them (a `String` key per row into a `BTreeMap`): by category (both periods) {:.1}, by source {:.1}, by month (chrono `format` per row) {:.1}, by res-8 area (`parent` + `to_string` per row) {:.1}, together {:.0}; the same four keyed by code (arrays, integer month, `u64` parent; names once per key) {:.1}; top hot spots: cells {:.1}, `hotspot::run` res 9 {:.1}; proximity: inputs {:.1}, `proximity::analyze` with 99 simulations {:.0} (the whole analysis, for 4 numbers); api (HTML/JSON, audit) {}. What the summary needs (hull window, nearest facility, CSR reference, naive global test with the same RNG stream) takes {:.0} ms and gives the same share, expected share, ratio and p (to 1e-12): {}.",
        g("picture", "period"),
        g("picture", "select_two_periods"),
        g("picture", "by_category_string_keys"),
        g("picture", "by_source_string_keys"),
        g("picture", "by_month_chrono_format"),
        g("picture", "by_area_parent_to_string"),
        [
            "by_category_string_keys",
            "by_source_string_keys",
            "by_month_chrono_format",
            "by_area_parent_to_string"
        ]
        .iter()
        .map(|k| g("picture", k))
        .sum::<f64>(),
        g("picture", "breakdowns_by_code"),
        g("picture", "hot_spots_cells"),
        g("picture", "hot_spots_gi_res9"),
        g("picture", "proximity_inputs"),
        g("picture", "proximity_analyze_99"),
        api("picture", &handler),
        g("picture", "proximity_global_only_99"),
        yes(&light["equal_to_route"]),
    );
    if let Some(p) = peer {
        let ps = &p["stages_s"];
        let h = |k: &str| ps[k].as_f64().unwrap_or(f64::NAN) * 1e3;
        let _ = writeln!(
            s,
            "\nPeer stages (ms): h3 res-12 cells {:.0} (not in any total: the service stores them at ingest); parents res 10 {:.0}, res 9 {:.0}; counts res 10/9/12 {:.0}/{:.0}/{:.0}; measures {:.1}/{:.1}/{:.1}; subjects: counts {:.0}, measures {:.1}, known-to {:.0}, top-50 profiles {:.0}; coverage: Gi* res 10 (cell set, libpysal W, esda, BH) {:.0}, signal {:.0}, per source {:.0}, place overlap (searchsorted) {:.0}, subject overlap (groupby size, BᵀB) {:.0}; picture: periods {:.1}, breakdowns + trend {:.0}, res-8 areas {:.0}, Gi* res 9 {:.0}, share within 250 m (cKDTree) {:.0}. Peak RSS {:.0} MB (service process: {:.0} MB, {:.0} MB after loading the snapshot).",
            h("h3_res12"),
            h("parents_r10"),
            h("parents_r9"),
            h("conc_place_counts"),
            h("conc_place_r9_counts"),
            h("conc_place_r12_counts"),
            h("conc_place_measures"),
            h("conc_place_r9_measures"),
            h("conc_place_r12_measures"),
            h("subject_counts"),
            h("subject_measures"),
            h("known_to"),
            h("subject_profiles"),
            h("coverage_gi_r10"),
            h("coverage_signal"),
            h("coverage_per_source"),
            h("coverage_overlap_place"),
            h("coverage_overlap_subjects"),
            h("picture_select"),
            h("picture_breakdowns"),
            h("picture_area_r8"),
            h("picture_gi"),
            h("picture_share_within_250m"),
            p["peak_rss_mb"].as_f64().unwrap_or(0.0),
            rust["peak_rss_mb"].as_f64().unwrap_or(0.0),
            rust["rss_after_open_mb"].as_f64().unwrap_or(0.0),
        );
        let c = &p["checks"];
        let e = |v: &Value| v.as_f64().map_or("-".into(), |x| format!("{x:.1e}"));
        let conc = |k: &str| {
            let x = &c[k];
            format!(
                "Gini |Δ| {}, generalized {}, top shares {}, Lorenz {}, units/half/repeats equal {}",
                e(&x["gini_abs_diff"]),
                e(&x["gini_generalized_abs_diff"]),
                e(&x["top_shares_max_abs_diff"]),
                e(&x["lorenz_max_abs_diff"]),
                yes(&x["units_equal"])
            )
        };
        let cv = &c["coverage"];
        let pc = &c["picture"];
        let _ = writeln!(
            s,
            "\nAgreement with the peer: places res 10: {}; res 9: {}; res 12: {}; subjects: {}; known-to histogram equal {}, top-50 profiles: counts in order {}, profiles above the cut {}. Coverage: place overlap matrix equal {}, subject overlap matrix equal {}, subjects and multi-organisation subjects equal {}, hot cells {} (service) / {} (peer), symmetric difference {}, per-organisation figures equal {}, ggd's {} missed hot cells equal {}. Picture: period {}, totals {}, by category {}, source {}, month {}, top-25 areas {}, trend {}, top hot spots (res {}) same cells {} with z |Δ| {}, share within 250 m {:.6} (service) / {:.6} (peer).",
            conc("conc_place"),
            conc("conc_place_r9"),
            conc("conc_place_r12"),
            conc("conc_subject"),
            yes(&c["conc_subject"]["known_to_equal"]),
            yes(&c["conc_subject"]["profiles_counts_equal"]),
            yes(&c["conc_subject"]["profiles_above_cut_equal"]),
            yes(&cv["overlap_place_equal"]),
            yes(&cv["overlap_subjects_equal"]),
            yes(&cv["n_subjects_equal"]),
            cv["hot_cells_service"],
            cv["hot_cells_peer"],
            cv["hot_cells_symmetric_difference"],
            yes(&cv["per_organisation_equal"]),
            cv["ggd_missed"],
            yes(&cv["ggd_missed_equal"]),
            yes(&pc["period_equal"]),
            yes(&pc["total_equal"]),
            yes(&pc["by_category_equal"]),
            yes(&pc["by_source_equal"]),
            yes(&pc["by_month_equal"]),
            yes(&pc["by_area_equal"]),
            yes(&pc["trend_equal"]),
            pc["top_hot_spots_resolution"],
            yes(&pc["top_hot_spots_same_cells"]),
            e(&pc["top_hot_spots_z_max_abs_diff"]),
            pc["share_within_service"].as_f64().unwrap_or(f64::NAN),
            pc["share_within_peer"].as_f64().unwrap_or(f64::NAN),
        );
    }
    s
}
