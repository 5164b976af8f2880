//! Issue 5: clusters and density. DBSCAN (eps 100 m, min 20), HDBSCAN (min cluster size 20)
//! and Gaussian kernel density, each timed through the whole router
//! (`/datasets/bench/clusters`, `/datasets/bench/density`) and as the core function alone on
//! the service's metric coordinates, against scikit-learn, the `dbscan` package, `hdbscan`
//! and numpy/scipy KDE (`benches/peers/clusters.py`) on the same points in the same run.
//!
//! Core functions run in their own fresh processes (this binary again, `child clusters DIR N`
//! with `HOTSPOTS_CLUSTERS_STAGE=<stage>`), one per algorithm, so that their peak memory is
//! not hidden by pages an earlier stage left to the allocator: the peak is VmHWM growth over
//! VmRSS just before the call, after resetting VmHWM (`/proc/self/clear_refs`, 5).
//!
//! Files for the peer (and the agreement checks) under `<dir>/clusters_bench/`: the service's
//! coordinates in row (fid) order (`xy.f64`, little-endian x,y pairs), its DBSCAN labels and
//! core flags (`dbscan_labels.i32`, `dbscan_core.u8`), HDBSCAN labels (`hdbscan_labels.i32`;
//! -1 = noise) and the KDE check (`kde.json`: the grid, the sampled nodes, the fast values and
//! the service's exact values there).

use crate::common::{DATASET, Server, ratio, summary_ms};
use crate::util::{rss, timed};
use hotspots::analysis::cluster::dbscan;
use hotspots::analysis::density::{self, DensityParams, Kernel};
use hotspots::analysis::hdbscan::hdbscan;
use hotspots::crs::{Crs, Transformer};
use hotspots::model::DatasetId;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// DBSCAN radius (m) and minimum neighbourhood size (the benchmark).
pub const EPS_M: f64 = 100.0;
pub const MIN_POINTS: usize = 20;
/// At 1M the uniform background alone has ~43 points within 100 m, so min 20 makes every
/// point core and one cluster. A second DBSCAN run keeps the density threshold of min 20 at
/// 100k: `min_points = 20 n / 100 000` (200 at 1M), run only when above 20.
pub fn scaled_min_points(n: usize) -> usize {
    (MIN_POINTS * n / 100_000).max(MIN_POINTS)
}
/// HDBSCAN min_cluster_size (min_samples defaults to it, as in the hdbscan package).
pub const MIN_CLUSTER_SIZE: usize = 20;
/// Gaussian KDE on the grid of the density module's docs: sigma 200 m, 50 m cells.
pub const KDE_SIGMA: f64 = 200.0;
pub const KDE_CELL: f64 = 50.0;
/// A coarse grid on which the route's `exact=true` is within its pair cap at 1M.
pub const COARSE_SIGMA: f64 = 500.0;
pub const COARSE_CELL: f64 = 1000.0;
/// KDE check nodes: the highest cells of the fast grid plus a deterministic random draw.
const KDE_TOP: usize = 100;
const KDE_RANDOM: usize = 200;
const STAGE_ENV: &str = "HOTSPOTS_CLUSTERS_STAGE";

fn out_dir(dir: &Path) -> PathBuf {
    dir.join("clusters_bench")
}

fn dbscan_uri() -> String {
    format!("/datasets/{DATASET}/clusters?method=dbscan&eps_m={EPS_M}&min_points={MIN_POINTS}")
}

fn hdbscan_uri() -> String {
    format!("/datasets/{DATASET}/clusters?method=hdbscan&min_cluster_size={MIN_CLUSTER_SIZE}")
}

fn density_uri(sigma: f64, cell: f64, exact: bool) -> String {
    format!(
        "/datasets/{DATASET}/density?kernel=gaussian&bandwidth_m={sigma}&cell_m={cell}{}",
        if exact { "&exact=true" } else { "" }
    )
}

fn kde_params(sigma: f64, cell: f64, exact: bool) -> DensityParams {
    DensityParams {
        bandwidth_m: Some(sigma),
        kernel: Kernel::Gaussian,
        cell_m: cell,
        exact,
        ..DensityParams::default()
    }
}

/// Resets VmHWM to the current VmRSS (Linux >= 4.0); false when not possible.
fn reset_hwm() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// CPU seconds of the calling thread so far (`/proc/thread-self/schedstat`, ns on CPU); the
/// core functions are single-threaded, so this is their CPU time, less sensitive than the wall
/// clock to other jobs on a shared machine.
fn thread_cpu_s() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}

/// Wall and CPU seconds of `f` (see [`thread_cpu_s`]).
fn timed_cpu<T>(f: impl FnOnce() -> T) -> (f64, f64, T) {
    let c = thread_cpu_s();
    let (s, v) = timed(f);
    (s, thread_cpu_s() - c, v)
}

/// Runs `f` once: seconds, peak resident growth in bytes over the resident size just before
/// (VmHWM after a reset), and its value.
fn peak<T>(f: impl FnOnce() -> T) -> (f64, u64, T) {
    reset_hwm();
    let (before, _) = rss();
    let (s, v) = timed(f);
    let (_, hwm) = rss();
    (s, hwm.saturating_sub(before), v)
}

/// Runs a core function `reps` times: the first call gives the peak memory growth, all give
/// wall and thread CPU seconds. Returns the figures and the first call's value.
fn core_run<T>(reps: usize, f: impl Fn() -> T) -> (Value, T) {
    reset_hwm();
    let (before, _) = rss();
    let (s, c, v) = timed_cpu(&f);
    let (_, hwm) = rss();
    let (mut secs, mut cpu) = (vec![s], vec![c]);
    for _ in 1..reps {
        let (s, c, _) = timed_cpu(&f);
        secs.push(s);
        cpu.push(c);
    }
    let j = json!({"secs": secs, "cpu_secs": cpu, "time": summary_ms(&secs),
                   "cpu": summary_ms(&cpu), "peak_growth_mb": mb(hwm.saturating_sub(before)),
                   "rss_before_mb": mb(before)});
    (j, v)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn write_bytes(path: &Path, bytes: Vec<u8>) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn labels_i32(labels: &[Option<u32>]) -> Vec<u8> {
    labels
        .iter()
        .flat_map(|l| l.map_or(-1i32, |v| v as i32).to_le_bytes())
        .collect()
}

fn read_xy(dir: &Path) -> Vec<[f64; 2]> {
    let b = std::fs::read(out_dir(dir).join("xy.f64")).expect("xy.f64");
    b.chunks_exact(16)
        .map(|c| {
            let f = |k: usize| f64::from_le_bytes(c[k..k + 8].try_into().expect("8 bytes"));
            [f(0), f(8)]
        })
        .collect()
}

/// One core stage in a fresh process (this binary with `STAGE_ENV` set).
fn run_stage(dir: &Path, n: usize, stage: &str) -> Value {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe)
        .args(["child", "clusters", &dir.to_string_lossy(), &n.to_string()])
        .env(STAGE_ENV, stage)
        .stderr(Stdio::inherit())
        .output()
        .expect("spawn stage");
    assert!(out.status.success(), "stage {stage} failed");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or("{}")).expect("stage JSON")
}

/// The core functions alone on the service's coordinates (see the module docs).
fn core_stage(dir: &Path, n: usize, stage: &str) -> Value {
    let xy = read_xy(dir);
    let od = out_dir(dir);
    let reps = if n >= 1_000_000 { 2 } else { 4 };
    match stage {
        "dbscan" | "dbscan_scaled" => {
            let (min, tag) = if stage == "dbscan" {
                (MIN_POINTS, "dbscan")
            } else {
                (scaled_min_points(n), "dbscan_scaled")
            };
            let (mut j, d) = core_run(reps, || dbscan(&xy, EPS_M, min).expect("dbscan"));
            write_bytes(&od.join(format!("{tag}_labels.i32")), labels_i32(&d.labels));
            write_bytes(
                &od.join(format!("{tag}_core.u8")),
                d.is_core.iter().map(|&c| u8::from(c)).collect(),
            );
            j["min_points"] = json!(min);
            j["n_clusters"] = json!(d.n_clusters);
            j["n_core"] = json!(d.is_core.iter().filter(|c| **c).count());
            j["noise"] = json!(d.labels.iter().filter(|l| l.is_none()).count());
            j
        }
        "hdbscan" => {
            let (mut j, h) = core_run(reps.min(2), || {
                hdbscan(&xy, MIN_CLUSTER_SIZE, MIN_CLUSTER_SIZE).expect("hdbscan")
            });
            write_bytes(&od.join("hdbscan_labels.i32"), labels_i32(&h.labels));
            j["n_clusters"] = json!(h.n_clusters);
            j["noise"] = json!(h.labels.iter().filter(|l| l.is_none()).count());
            j
        }
        "kde" => kde_stage(&xy, &od, reps),
        _ => panic!("unknown stage {stage}"),
    }
}

/// Fast Gaussian grid (time, peak memory), then the exact sum at sampled grid nodes through
/// the same module (`density_at_points` with `exact`), for the error relative to the peak.
fn kde_stage(xy: &[[f64; 2]], od: &Path, reps: usize) -> Value {
    let p = kde_params(KDE_SIGMA, KDE_CELL, false);
    let (mut j, g) = core_run(reps, || density::density_grid(xy, &p, None).expect("kde"));
    let vals: Vec<f64> = g.values_km2.iter().map(|v| v.unwrap_or(0.0)).collect();
    // nodes: the KDE_TOP highest cells and KDE_RANDOM others (xorshift, fixed seed)
    let mut order: Vec<usize> = (0..vals.len()).collect();
    order.sort_by(|a, b| vals[*b].total_cmp(&vals[*a]).then(a.cmp(b)));
    let mut nodes: Vec<usize> = order[..KDE_TOP.min(order.len())].to_vec();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    while nodes.len() < (KDE_TOP + KDE_RANDOM).min(vals.len()) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let k = (state % vals.len() as u64) as usize;
        if !nodes.contains(&k) {
            nodes.push(k);
        }
    }
    let centre = |k: usize| {
        let (r, c) = (k / g.ncols, k % g.ncols);
        [
            g.origin_x + (c as f64 + 0.5) * g.cell_m,
            g.origin_y + (r as f64 + 0.5) * g.cell_m,
        ]
    };
    let samples: Vec<[f64; 2]> = nodes.iter().map(|&k| centre(k)).collect();
    let pe = kde_params(KDE_SIGMA, KDE_CELL, true);
    let (exact_s, ex) =
        timed(|| density::density_at_points(xy, &samples, &pe, None).expect("exact"));
    let exact: Vec<f64> = ex
        .values_km2
        .iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect();
    let fast: Vec<f64> = nodes.iter().map(|&k| vals[k]).collect();
    let peak_exact = exact.iter().fold(0.0f64, |m, v| m.max(*v));
    let max_err = fast
        .iter()
        .zip(&exact)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f64, f64::max);
    let cells = g.ncols * g.nrows;
    let check = json!({"origin": [g.origin_x, g.origin_y], "cell_m": g.cell_m, "ncols": g.ncols,
        "nrows": g.nrows, "sigma_m": g.bandwidth_m, "max_km2": g.max_km2, "total_mass": g.total_mass,
        "nodes": nodes.iter().map(|k| [k % g.ncols, k / g.ncols]).collect::<Vec<_>>(),
        "fast_km2": fast, "exact_km2": exact});
    std::fs::write(
        od.join("kde.json"),
        serde_json::to_string(&check).expect("json"),
    )
    .expect("kde.json");
    for (k, v) in [
        ("ncols", json!(g.ncols)),
        ("nrows", json!(g.nrows)),
        ("cells", json!(cells)),
        ("max_km2", json!(g.max_km2)),
        ("total_mass", json!(g.total_mass)),
        ("n_nodes", json!(nodes.len())),
        ("exact_nodes_s", json!(exact_s)),
        (
            "exact_full_grid_s_extrapolated",
            json!(exact_s * cells as f64 / nodes.len() as f64),
        ),
        ("max_err_rel_peak", json!(max_err / g.max_km2)),
        ("peak_exact_nodes_km2", json!(peak_exact)),
    ] {
        j[k] = v;
    }
    j
}

/// Times `uri` through the router (`warmup` + `reps`), with the peak memory growth of the first
/// call; returns the JSON of the last answer too.
fn route(server: &Server, uri: &str, warmup: usize, reps: usize) -> (Value, Value) {
    let (s0, grow, (_, status, body)) = peak(|| server.get(uri));
    if !status.is_success() {
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        eprintln!("{uri}: {status} {v}");
        return (
            json!({"uri": uri, "status": status.as_u16(), "code": v.get("code").cloned(),
                   "detail": v.get("detail").cloned()}),
            Value::Null,
        );
    }
    let (mut secs, last) = if warmup + reps > 1 {
        server.time(uri, warmup.saturating_sub(1), reps)
    } else {
        (vec![], serde_json::from_slice(&body).unwrap_or(Value::Null))
    };
    if secs.is_empty() {
        secs.push(s0);
    }
    let summary = last.get("summary").cloned().unwrap_or(Value::Null);
    (
        json!({"uri": uri, "time": summary_ms(&secs), "first_s": s0, "first_peak_growth_mb": mb(grow),
               "body_bytes": body.len(), "summary": summary}),
        last,
    )
}

/// What a grid density answer costs besides the kernel sum, redone here on the route's answer:
/// the corner transforms to WGS84 (5 per feature, as `density_squares` does them), the
/// serialisation of the `serde_json::Value` tree, and the size of that tree (peak growth when
/// parsing the body back).
fn answer_costs(answer: &Value) -> Value {
    let Some(feats) = answer["features"].as_array() else {
        return Value::Null;
    };
    let s = &answer["summary"];
    let (ox, oy, cell) = (
        s["origin"][0].as_f64().unwrap_or(0.0),
        s["origin"][1].as_f64().unwrap_or(0.0),
        s["cell_m"].as_f64().unwrap_or(1.0),
    );
    let to_wgs = Transformer::new(Crs::RD_NEW, Crs::WGS84).expect("transformer");
    let (proj_s, ok) = timed(|| {
        let mut ok = 0usize;
        for f in feats {
            let (c, r) = (
                f["properties"]["col"].as_f64().unwrap_or(0.0),
                f["properties"]["row"].as_f64().unwrap_or(0.0),
            );
            let (x, y) = (ox + c * cell, oy + r * cell);
            for (a, b) in [
                (x, y),
                (x + cell, y),
                (x + cell, y + cell),
                (x, y + cell),
                (x, y),
            ] {
                ok += usize::from(to_wgs.point(a, b).is_some());
            }
        }
        ok
    });
    let (ser_s, bytes) = timed(|| serde_json::to_vec(answer).expect("serialise"));
    let (parse_s, tree, _) = peak(|| serde_json::from_slice::<Value>(&bytes).expect("parse"));
    json!({"features": feats.len(), "corner_transforms": ok, "proj_s": proj_s,
           "serialise_s": ser_s, "body_mb": bytes.len() as f64 / 1e6,
           "value_tree_parse_s": parse_s, "value_tree_mb": mb(tree)})
}

/// `density_km2` per feature id of a density answer.
fn density_by_id(v: &Value) -> HashMap<String, f64> {
    v["features"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .filter_map(|f| {
                    Some((
                        f["id"].as_str()?.to_owned(),
                        f["properties"]["density_km2"].as_f64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn child(dir: &Path, n: usize) -> Value {
    if let Ok(stage) = std::env::var(STAGE_ENV) {
        return core_stage(dir, n, &stage);
    }
    let od = out_dir(dir);
    std::fs::create_dir_all(&od).expect("clusters_bench dir");
    let (open_s, server) = timed(|| Server::open(dir, false));
    let snap = server
        .state
        .app
        .catalog
        .get(&DatasetId::new(DATASET).expect("id"))
        .expect("bench dataset");
    let inc = &snap.incidents;
    let xy: Vec<u8> = (0..inc.len())
        .flat_map(|r| [inc.x[r].to_le_bytes(), inc.y[r].to_le_bytes()])
        .flatten()
        .collect();
    write_bytes(&od.join("xy.f64"), xy);
    let study_area = snap.study_area.is_some();
    let n_rows = inc.len();
    drop(snap);

    // the core functions, each in a fresh process
    let stages: &[&str] = if scaled_min_points(n) > MIN_POINTS {
        &["dbscan", "dbscan_scaled", "hdbscan", "kde"]
    } else {
        &["dbscan", "hdbscan", "kde"]
    };
    let core: serde_json::Map<String, Value> = stages
        .iter()
        .map(|s| {
            eprintln!("n={n}: clusters core {s}");
            (s.to_string(), run_stage(dir, n, s))
        })
        .collect();

    // the routes
    let big = n >= 1_000_000;
    eprintln!("n={n}: clusters routes");
    let (dbscan_route, _) = route(&server, &dbscan_uri(), 1, 3);
    let (hdbscan_route, _) = if big {
        route(&server, &hdbscan_uri(), 0, 1)
    } else {
        route(&server, &hdbscan_uri(), 1, 2)
    };
    let (kde_route, kde_answer) = route(&server, &density_uri(KDE_SIGMA, KDE_CELL, false), 1, 2);
    let kde_breakdown = answer_costs(&kde_answer);
    drop(kde_answer);
    let (kde_default, _) = route(&server, &format!("/datasets/{DATASET}/density"), 1, 3);
    // the exact option on the fine grid is over the pair cap: record the answer
    let (_, st, body) = server.get(&density_uri(KDE_SIGMA, KDE_CELL, true));
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let kde_exact_fine = json!({"status": st.as_u16(), "code": body.get("code").cloned(),
        "detail": body.get("detail").cloned()});
    // coarse grid: fast and exact through the route, compared cell by cell
    let (coarse_fast, cf) = route(
        &server,
        &density_uri(COARSE_SIGMA, COARSE_CELL, false),
        1,
        3,
    );
    let (coarse_exact, ce) = route(&server, &density_uri(COARSE_SIGMA, COARSE_CELL, true), 0, 1);
    let (a, b) = (density_by_id(&cf), density_by_id(&ce));
    let peak_exact = b.values().fold(0.0f64, |m, v| m.max(*v));
    let max_err = b
        .iter()
        .map(|(k, v)| (a.get(k).copied().unwrap_or(0.0) - v).abs())
        .fold(0.0f64, f64::max);
    let coarse_check = json!({"cells": b.len(), "missing_in_fast": b.keys().filter(|k| !a.contains_key(*k)).count(),
        "peak_km2": peak_exact, "max_err_rel_peak": max_err / peak_exact});

    json!({"n": n, "rows": n_rows, "study_area": study_area, "open_s": open_s,
           "core": core,
           "routes": {"dbscan": dbscan_route, "hdbscan": hdbscan_route, "kde": kde_route,
                      "kde_default": kde_default, "kde_exact_fine": kde_exact_fine,
                      "kde_answer_costs": kde_breakdown,
                      "kde_coarse_fast": coarse_fast, "kde_coarse_exact": coarse_exact},
           "kde_coarse_check": coarse_check})
}

pub fn peer(dir: &Path, n: usize) -> Option<Value> {
    let d = dir.to_string_lossy();
    let ns = n.to_string();
    crate::common::peer("clusters.py", &[&d, &ns])
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| {
        if v >= 10_000.0 {
            format!("{:.1} s", v / 1e3)
        } else if v >= 100.0 {
            format!("{v:.0} ms")
        } else {
            format!("{v:.1} ms")
        }
    })
}

fn mbs(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0} MB"))
}

fn sci(v: &Value) -> String {
    f(v).map_or("-".into(), |v| format!("{v:.1e}"))
}

/// One table row: stage, service, peer, peer / service, target.
fn row(
    stage: &str,
    svc: (Option<f64>, String),
    peer: (Option<f64>, String),
    target: &str,
) -> String {
    format!(
        "| {stage} | {} | {} | {} | {target} |\n",
        svc.1,
        peer.1,
        ratio(peer.0, svc.0)
    )
}

pub fn report(n: usize, rust: &Value, peer: Option<&Value>) -> String {
    let null = Value::Null;
    let p = peer.unwrap_or(&null);
    let core = &rust["core"];
    let routes = &rust["routes"];
    // service time: wall median (thread CPU median)
    let core_t = |k: &str| {
        let w = f(&core[k]["time"]["median_ms"]);
        let c = f(&core[k]["cpu"]["median_ms"]);
        (w, format!("{} (CPU {})", ms(w), ms(c)))
    };
    let route_t = |k: &str| {
        let w = f(&routes[k]["time"]["median_ms"]);
        (w, ms(w))
    };
    let mem = |v: &Value| (f(v), mbs(f(v)));
    let job = |k: &str| &p["jobs"][k];
    let note = |k: &str| job(k)["note"].as_str().map(str::to_owned);
    let peer_t = |k: &str| {
        let v = f(&job(k)["secs"]).map(|s| s * 1e3);
        (v, note(k).unwrap_or_else(|| ms(v)))
    };
    let peer_m = |k: &str| {
        let v = f(&job(k)["peak_growth_mb"]);
        (v, note(k).unwrap_or_else(|| mbs(v)))
    };
    let mut out =
        format!("| n = {n} | service | peer | peer / service | target |\n|---|---|---|---|---|\n");
    out += &row(
        "DBSCAN core `dbscan()` time vs `dbscan` pkg",
        core_t("dbscan"),
        peer_t("dbscan_pkg"),
        "faster than `dbscan`",
    );
    out += &row(
        "DBSCAN core peak memory vs `dbscan` pkg",
        mem(&core["dbscan"]["peak_growth_mb"]),
        peer_m("dbscan_pkg"),
        "less than `dbscan`",
    );
    if core.get("dbscan_scaled").is_some() {
        let m = &core["dbscan_scaled"]["min_points"];
        out += &row(
            &format!(
                "DBSCAN eps 100 m, min {m} (same density threshold): core time vs `dbscan` pkg"
            ),
            core_t("dbscan_scaled"),
            peer_t("dbscan_pkg_scaled"),
            "",
        );
        out += &row(
            &format!("DBSCAN eps 100 m, min {m}: core peak memory vs `dbscan` pkg"),
            mem(&core["dbscan_scaled"]["peak_growth_mb"]),
            peer_m("dbscan_pkg_scaled"),
            "",
        );
    }
    out += &row(
        "DBSCAN route (whole request) vs `dbscan` pkg",
        route_t("dbscan"),
        peer_t("dbscan_pkg"),
        "",
    );
    out += &row(
        "DBSCAN core time vs sklearn `DBSCAN`",
        core_t("dbscan"),
        peer_t("sklearn_dbscan"),
        "",
    );
    out += &row(
        "DBSCAN core peak memory vs sklearn",
        mem(&core["dbscan"]["peak_growth_mb"]),
        peer_m("sklearn_dbscan"),
        "",
    );
    out += &row(
        "HDBSCAN core `hdbscan()` time vs hdbscan pkg",
        core_t("hdbscan"),
        peer_t("hdbscan_pkg"),
        "< 10 s",
    );
    let workers = f(&job("hdbscan_pkg")["loky_worker_peak_mb"]);
    let hm = peer_m("hdbscan_pkg");
    let hm = match workers {
        Some(w) => (
            hm.0,
            format!("{} (+ loky workers, largest {})", hm.1, mbs(Some(w))),
        ),
        None => hm,
    };
    out += &row(
        "HDBSCAN core peak memory vs hdbscan pkg",
        mem(&core["hdbscan"]["peak_growth_mb"]),
        hm,
        "< 1 GB",
    );
    out += &row(
        "HDBSCAN route (whole request)",
        route_t("hdbscan"),
        peer_t("hdbscan_pkg"),
        "< 10 s",
    );
    out += &row(
        "HDBSCAN route peak memory",
        mem(&routes["hdbscan"]["first_peak_growth_mb"]),
        (None, String::new()),
        "< 1 GB",
    );
    out += &row(
        "KDE core `density_grid()` (fast) vs scipy binned FFT",
        core_t("kde"),
        peer_t("kde_fft_simple"),
        "< 0.3 s",
    );
    out += &row(
        "KDE core peak memory vs scipy binned FFT",
        mem(&core["kde"]["peak_growth_mb"]),
        peer_m("kde_fft_simple"),
        "",
    );
    out += &row(
        "KDE route (whole request, GeoJSON grid) vs scipy binned FFT",
        route_t("kde"),
        peer_t("kde_fft_simple"),
        "< 0.3 s",
    );
    out += &row(
        "KDE route peak memory",
        mem(&routes["kde"]["first_peak_growth_mb"]),
        (None, String::new()),
        "",
    );
    let ex_s = f(&core["kde"]["exact_full_grid_s_extrapolated"]).map(|s| s * 1e3);
    let ex_p = f(&job("kde_exact_numpy")["full_grid_s_extrapolated"]).map(|s| s * 1e3);
    out += &row(
        "KDE exact sum, whole grid (extrapolated from the sampled nodes)",
        (ex_s, ms(ex_s)),
        (ex_p, note("kde_exact_numpy").unwrap_or_else(|| ms(ex_p))),
        "",
    );
    let kc = &p["kde_check"];
    out += &row(
        "KDE max error / peak vs numpy exact (sampled nodes)",
        (None, sci(&kc["service_vs_numpy"])),
        (
            None,
            format!("{} (FFT, simple binning)", sci(&kc["fft_simple_vs_numpy"])),
        ),
        "<= 1e-4",
    );
    // notes: grids, agreement
    let kde = &core["kde"];
    let costs = &routes["kde_answer_costs"];
    out += &format!(
        "\nKDE: Gaussian, sigma {KDE_SIGMA} m, {}x{} cells of {KDE_CELL} m (the service's grid, read by the peer from its answer); \
         {} sampled nodes ({KDE_TOP} highest cells + {KDE_RANDOM} random). Service fast vs its own exact sum at the nodes: {}; \
         service exact vs numpy exact: {} (the CSV's x,y differ from the service's by up to {:.1} mm); FFT with linear binning: {}. \
         Route `exact=true` on this grid: {} `{}`. Coarse grid (sigma {COARSE_SIGMA} m, {COARSE_CELL} m cells), route fast vs route exact: {} of the peak \
         (exact request {}).\n",
        kde["ncols"],
        kde["nrows"],
        kde["n_nodes"],
        sci(&kde["max_err_rel_peak"]),
        sci(&kc["service_exact_vs_numpy"]),
        f(&p["agreement"]["max_coord_diff_m"]).unwrap_or(f64::NAN) * 1e3,
        sci(&kc["fft_linear_vs_numpy"]),
        routes["kde_exact_fine"]["status"],
        routes["kde_exact_fine"]["code"].as_str().unwrap_or(""),
        sci(&rust["kde_coarse_check"]["max_err_rel_peak"]),
        ms(f(&routes["kde_coarse_exact"]["time"]["median_ms"])),
    );
    out += &format!(
        "KDE route beyond the kernel sum: {} features, {:.1} MB of GeoJSON; {} corner transforms take {} s, serialising the Value tree {} s, \
         the tree itself about {} (redone on the route's answer). Default request (quartic, ArcGIS radius {} m, 100 m cells): {}.\n",
        costs["features"],
        f(&costs["body_mb"]).unwrap_or(0.0),
        costs["corner_transforms"],
        f(&costs["proj_s"]).map_or("-".into(), |v| format!("{v:.2}")),
        f(&costs["serialise_s"]).map_or("-".into(), |v| format!("{v:.2}")),
        mbs(f(&costs["value_tree_mb"])),
        f(&routes["kde_default"]["summary"]["bandwidth_m"])
            .map_or("-".into(), |b| format!("{b:.0}")),
        ms(f(&routes["kde_default"]["time"]["median_ms"])),
    );
    let a = &p["agreement"];
    let d = &core["dbscan"];
    out += &format!(
        "DBSCAN agreement: service {} clusters, {} core points, {} noise. `dbscan` pkg: {} clusters; core flags differing {} on the CSV x,y and {} on the service's x,y; \
         core partition identical {} / {}; labels differing after matching clusters {} / {} (border points: the package does not give them to the lowest cluster id). \
         sklearn: {} clusters, labels differing {} on the CSV x,y, {} on the service's x,y.\n",
        d["n_clusters"],
        d["n_core"],
        d["noise"],
        a["dbscan_pkg"]["n_clusters"],
        a["dbscan_pkg"]["core_differ"],
        a["dbscan_pkg_on_service_xy"]["core_differ"],
        a["dbscan_pkg"]["core_partition_identical"],
        a["dbscan_pkg_on_service_xy"]["core_partition_identical"],
        a["dbscan_pkg"]["labels_differ_after_matching"],
        a["dbscan_pkg_on_service_xy"]["labels_differ_after_matching"],
        a["sklearn"]["n_clusters"],
        a["sklearn"]["labels_differ"],
        a["sklearn"]
            .get("labels_differ_on_service_xy")
            .unwrap_or(&json!("not run")),
    );
    if let Some(sc) = core.get("dbscan_scaled") {
        let b = &a["dbscan_pkg_scaled"];
        out += &format!(
            "DBSCAN min {}: service {} clusters, {} core, {} noise; `dbscan` pkg (service's x,y) {} clusters, core flags differing {}, core partition identical {}.\n",
            sc["min_points"],
            sc["n_clusters"],
            sc["n_core"],
            sc["noise"],
            b["n_clusters"],
            b["core_differ"],
            b["core_partition_identical"],
        );
    }
    let h = &a["hdbscan"];
    out += &format!(
        "HDBSCAN agreement: service {} clusters, {} noise; hdbscan pkg (defaults, approximate MST) {} clusters, {} noise, ARI {}; \
         exact MST on the service's x,y: {}.\n",
        core["hdbscan"]["n_clusters"],
        core["hdbscan"]["noise"],
        h["n_clusters"],
        h["noise"],
        h["ari"],
        h.get("exact_mst_on_service_xy")
            .map_or("not run at this size".into(), |e| format!(
                "{} clusters, {} noise, ARI {} ({} s)",
                e["n_clusters"],
                e["noise"],
                e["ari"],
                f(&job("hdbscan_pkg")["exact_mst_secs"]).map_or("-".into(), |v| format!("{v:.1}"))
            )),
    );
    out += &format!("Peer versions: {}.\n", p["versions"]);
    out
}
