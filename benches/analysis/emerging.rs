//! Issue 8, emerging hot spots: `GET /datasets/bench/emerging` at resolution 9, monthly bins
//! over the three years of data (36 bins), k = 1 ring, time_k = 1 previous month, uniform
//! kernels, FDR on (the defaults, spelled out in the query), through the whole router:
//! uncached (the analysis cache off, every request computes), and a cached repeat. Also the
//! before/after comparison `GET /datasets/bench/emerging/compare?split_at=2025-07-01`
//! (uncached). Issue 8's target: under 1 s at 1M incidents.
//!
//! The stage breakdown calls the same core functions as the handler on the dataset's
//! snapshot (selection, cube, spatial weights, Gi*, p + FDR, Mann-Kendall of the z and of
//! the count series, classification); "api" is the request median minus the core, i.e.
//! the GeoJSON feature collection (cell polygons, per-bin series) and its serialisation.
//!
//! The peer (`benches/peers/emerging.py`) is the same computation in numpy/scipy/h3 (no
//! standard Python Emerging Hot Spot Analysis exists). The service's per-cell answer of the
//! last request is dumped to `<dir>/emerging_service_cells.csv`; the peer compares it with
//! its own cell by cell (Gi* z and bins of every (cell, month), trend z/p, category).

use crate::common::{DATASET, Server, peer as run_peer, ratio, summary_ms};
use crate::util::{quantile, rss, timed};
use hotspots::analysis::emerging::{self, EmergingParams, classify, cube, gi};
use hotspots::analysis::stats::{fdr_bins, two_sided_p};
use hotspots::analysis::trend::mann_kendall;
use hotspots::api::analysis::cell_geometry;
use hotspots::index::Filter;
use hotspots::model::DatasetId;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::Path;

const QUERY: &str = "resolution=9&bin=month&k=1&time_k=1";
const SPLIT: &str = "2025-07-01";
const DUMP: &str = "emerging_service_cells.csv";

fn uri() -> String {
    format!("/datasets/{DATASET}/emerging?{QUERY}")
}

fn compare_uri() -> String {
    format!("/datasets/{DATASET}/emerging/compare?resolution=9&split_at={SPLIT}")
}

/// Writes the cells of a `/emerging` answer as CSV for the peer's agreement check:
/// `h3,category,trend_z,trend_p,count_trend_z,total_count,counts,z,bins` (series `;`-joined).
fn dump_cells(path: &Path, answer: &Value) -> usize {
    let feats = answer["features"].as_array().cloned().unwrap_or_default();
    let mut out =
        String::from("h3,category,trend_z,trend_p,count_trend_z,total_count,counts,z,bins\n");
    let join = |s: &Value, k: &str| {
        s.as_array()
            .map(|a| {
                a.iter()
                    .map(|b| b[k].to_string())
                    .collect::<Vec<_>>()
                    .join(";")
            })
            .unwrap_or_default()
    };
    for f in &feats {
        let p = &f["properties"];
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            p["h3"].as_str().unwrap_or_default(),
            p["category"].as_str().unwrap_or_default(),
            p["trend_z"],
            p["trend_p"],
            p["count_trend"]["z"],
            p["total_count"],
            join(&p["series"], "count"),
            join(&p["series"], "z"),
            join(&p["series"], "bin"),
        );
    }
    std::fs::write(path, out).expect("write service cells");
    feats.len()
}

/// Medians over `reps` runs of each stage of the computation, on the dataset's snapshot:
/// the core functions the handler calls, then a replica of the handler's GeoJSON assembly
/// (`cell_collection` in src/api/analysis.rs: each cell serialised to a `Value`, its
/// polygon, the features put together with `json!`, which deep-copies every `Value` it
/// interpolates, the body serialised and the trees dropped), and the same assembly moving
/// the `Value`s instead of copying them.
fn stages(srv: &Server, reps: usize) -> Value {
    let id = DatasetId::new(DATASET).expect("id");
    let snap = srv.state.app.catalog.get(&id).expect("dataset");
    let params = EmergingParams::default();
    let mut runs: Vec<Vec<(&str, f64)>> = Vec::new();
    for _ in 0..reps {
        let mut st = Vec::new();
        let (s, rows) = timed(|| snap.incidents.select(&Filter::default()));
        st.push(("select", s));
        let (s, pts) = timed(|| {
            rows.iter()
                .map(|&r| {
                    (
                        snap.incidents.cell[r as usize],
                        snap.incidents.t[r as usize],
                    )
                })
                .collect::<Vec<(u64, i64)>>()
        });
        st.push(("points", s));
        let (s, cube) = timed(|| {
            let (start, end) = params.validate().expect("params");
            let spec = cube::CubeSpec {
                resolution: h3o::Resolution::Nine,
                bin: params.bin,
                k: params.k,
                window: cube::resolve_window(&pts, start, end).expect("window"),
                min_bins: params.min_bins as usize,
            };
            cube::build_cube(&pts, &spec, None).expect("cube")
        });
        st.push(("cube", s));
        let (s, w) = timed(|| cube::spatial_weights(&cube.cells, params.k, params.kernel));
        st.push(("weights", s));
        let (s, z) = timed(|| {
            let x: Vec<f64> = cube.counts.iter().map(|&c| c as f64).collect();
            let tw: Vec<f64> = (0..=params.time_k)
                .map(|d| params.time_kernel.weight(d, params.time_k))
                .collect();
            gi::space_time_gi(&x, cube.n_bins, &w, &tw).expect("variance")
        });
        st.push(("gi", s));
        let (s, bins) = timed(|| {
            let p: Vec<f64> = z.iter().map(|&z| two_sided_p(z)).collect();
            fdr_bins(&z, &p)
        });
        st.push(("p_fdr", s));
        let t_n = cube.n_bins;
        let (s, trends) = timed(|| {
            z.chunks(t_n)
                .map(|r| mann_kendall(r).expect("mk"))
                .collect::<Vec<_>>()
        });
        st.push(("mk_z", s));
        let (s, _) = timed(|| {
            cube.counts
                .chunks(t_n)
                .map(|r| {
                    let v: Vec<f64> = r.iter().map(|&c| c as f64).collect();
                    mann_kendall(&v).expect("mk")
                })
                .collect::<Vec<_>>()
        });
        st.push(("mk_counts", s));
        let (s, _) = timed(|| {
            bins.chunks(t_n)
                .zip(&trends)
                .map(|(b, t)| classify(b, t))
                .collect::<Vec<_>>()
        });
        st.push(("classify", s));
        let (s, result) = timed(|| emerging::emerging_hot_spots(&pts, &params).expect("emerging"));
        st.push(("core_total", s));
        // the handler's GeoJSON assembly, replicated
        let (s, props) = timed(|| {
            result
                .cells
                .iter()
                .map(|c| serde_json::to_value(c).expect("cell"))
                .collect::<Vec<_>>()
        });
        st.push(("api_cells_to_value", s));
        let geometry = || -> Vec<Value> {
            result
                .cells
                .iter()
                .map(|c| cell_geometry(c.h3.parse().expect("cell")))
                .collect()
        };
        let (s, geoms) = timed(geometry);
        st.push(("api_polygons", s));
        let (props2, geoms2) = (props.clone(), geoms.clone());
        let (s, fc) = timed(|| {
            let features: Vec<Value> = props
                .into_iter()
                .zip(geoms)
                .map(|(p, g)| json!({"type": "Feature", "geometry": g, "properties": p}))
                .collect();
            json!({"type": "FeatureCollection", "features": features})
        });
        st.push(("api_assemble_json_macro", s));
        let (s, body) = timed(|| serde_json::to_vec(&fc).expect("body"));
        st.push(("api_body", s));
        let (s, _) = timed(|| drop(fc));
        st.push(("api_drop_tree", s));
        let (s, fc) = timed(|| {
            let features: Vec<Value> = props2
                .into_iter()
                .zip(geoms2)
                .map(|(p, g)| {
                    let mut f = serde_json::Map::new();
                    f.insert("type".into(), "Feature".into());
                    f.insert("geometry".into(), g);
                    f.insert("properties".into(), p);
                    Value::Object(f)
                })
                .collect();
            let mut m = serde_json::Map::new();
            m.insert("type".into(), "FeatureCollection".into());
            m.insert("features".into(), Value::Array(features));
            Value::Object(m)
        });
        st.push(("api_assemble_moves", s));
        drop((fc, body));
        runs.push(st);
    }
    let mut out = serde_json::Map::new();
    for (i, (name, _)) in runs[0].iter().enumerate() {
        let v: Vec<f64> = runs.iter().map(|r| r[i].1).collect();
        out.insert(format!("{name}_ms"), json!(quantile(&v, 0.5) * 1e3));
    }
    let pts: Vec<(u64, i64)> = snap
        .incidents
        .cell
        .iter()
        .zip(&snap.incidents.t)
        .map(|(&c, &t)| (c, t))
        .collect();
    let cparams = emerging::CompareParams {
        split_at: Some(SPLIT.into()),
        ..Default::default()
    };
    let v: Vec<f64> = (0..reps)
        .map(|_| timed(|| emerging::compare_periods(&pts, &cparams).expect("compare")).0)
        .collect();
    out.insert("compare_core_ms".into(), json!(quantile(&v, 0.5) * 1e3));
    out.insert("reps".into(), json!(reps));
    Value::Object(out)
}

pub fn child(dir: &Path, n: usize) -> Value {
    let reps = if n >= 1_000_000 { 5 } else { 10 };
    let (open_s, srv) = timed(|| Server::open(dir, false));
    let (open_rss, _) = rss();
    let (first_s, status, body) = srv.get(&uri());
    assert!(
        status.is_success(),
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    let (secs, answer) = srv.time(&uri(), 0, reps);
    let summary = &answer["summary"];
    let dumped = dump_cells(&dir.join(DUMP), &answer);
    let (csecs, canswer) = srv.time(&compare_uri(), 1, reps);
    // peak before the stage replicas below, which hold extra copies
    let (_, hwm) = rss();
    let st = stages(&srv, 3);
    drop(srv);
    let cached = Server::open(dir, true);
    let (fill_s, _, _) = cached.get(&uri());
    let (hits, _) = cached.time(&uri(), 0, 20);
    json!({
        "measured": true,
        "uri": uri(),
        "open_s": open_s,
        "first_request_ms": first_s * 1e3,
        "uncached": summary_ms(&secs),
        "cached_fill_ms": fill_s * 1e3,
        "cached": summary_ms(&hits),
        "response_bytes": body.len(),
        "n_cells": summary["n_cells"], "n_bins": summary["n_bins"],
        "n_features": summary["n_features"],
        "incidents_used": summary["incidents_used"],
        "categories": summary["categories"],
        "dumped_cells": dumped,
        "compare_uri": compare_uri(),
        "compare_uncached": summary_ms(&csecs),
        "compare_cells": canswer["summary"]["n_features"],
        "stages": st,
        "peak_rss_mb": hwm as f64 / 1048576.0,
        "rss_after_open_mb": open_rss as f64 / 1048576.0,
    })
}

pub fn peer(dir: &Path, _n: usize) -> Option<Value> {
    run_peer("emerging.py", &[&dir.to_string_lossy()])
}

fn ms(v: &Value) -> Option<f64> {
    v.as_f64()
}

pub fn report(n: usize, rust: &Value, peer: Option<&Value>) -> String {
    if rust["measured"] != json!(true) {
        return "not measured\n".into();
    }
    let target = if n >= 1_000_000 { "< 1 s" } else { "-" };
    let svc = ms(&rust["uncached"]["median_ms"]);
    let peer_ms = peer.and_then(|p| p["total_s"].as_f64()).map(|s| s * 1e3);
    let peer_pmk = peer
        .and_then(|p| p["total_with_pymannkendall_s"].as_f64())
        .map(|s| s * 1e3);
    let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0} ms"));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "cube: {} cells x {} monthly bins, {} incidents; load {}\n",
        rust["n_cells"],
        rust["n_bins"],
        rust["incidents_used"],
        crate::util::loadavg()
    );
    s.push_str("| what | service | peer | service / peer | target |\n|---|---|---|---|---|\n");
    let _ = writeln!(
        s,
        "| `/emerging` uncached, whole request (median of {}) | {} | {} (numpy, vectorised MK) | {} | {target} |",
        rust["uncached"]["n"],
        f(svc),
        f(peer_ms),
        ratio(svc, peer_ms)
    );
    let _ = writeln!(
        s,
        "| same, peer with pymannkendall per cell | {} | {} | {} | |",
        f(svc),
        f(peer_pmk),
        ratio(svc, peer_pmk)
    );
    let core_ms = rust["stages"]["core_total_ms"].as_f64();
    let peer_core = peer.map(|p| {
        ["cube", "weights", "gi", "mk", "classify"]
            .iter()
            .map(|k| p["stages"][format!("{k}_s")].as_f64().unwrap_or(0.0) * 1e3)
            .sum::<f64>()
    });
    let _ = writeln!(
        s,
        "| analysis only, cube to categories (service: `emerging_hot_spots` on the snapshot's points; peer: its cube..classify stages, without reading the CSV and H3-indexing the points) | {} | {} | {} | |",
        f(core_ms),
        f(peer_core),
        ratio(core_ms, peer_core)
    );
    let _ = writeln!(
        s,
        "| `/emerging` cached repeat (median of {}) | {:.2} ms | - | - | |",
        rust["cached"]["n"],
        rust["cached"]["median_ms"].as_f64().unwrap_or(f64::NAN)
    );
    let _ = writeln!(
        s,
        "| `/emerging/compare` uncached (median of {}) | {} | - | - | |",
        rust["compare_uncached"]["n"],
        f(ms(&rust["compare_uncached"]["median_ms"]))
    );
    let _ = writeln!(
        s,
        "| peak RSS | {:.0} MB (process; {:.0} MB after loading the snapshot) | {} | | |",
        rust["peak_rss_mb"].as_f64().unwrap_or(0.0),
        rust["rss_after_open_mb"].as_f64().unwrap_or(0.0),
        peer.and_then(|p| p["peak_rss_mb"].as_f64())
            .map_or("-".into(), |m| format!("{m:.0} MB"))
    );
    let _ = writeln!(
        s,
        "| response | {:.1} MB, {} features | | | |",
        rust["response_bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
        rust["n_features"]
    );
    // stage breakdown
    let st = &rust["stages"];
    let g = |k: &str| st[format!("{k}_ms")].as_f64().unwrap_or(f64::NAN);
    let core = g("core_total");
    let api = svc.map_or(f64::NAN, |m| m - g("select") - g("points") - core);
    let _ = writeln!(
        s,
        "\nservice stages (ms, median of {}, the core functions on the snapshot): select {:.0}, points {:.0}, cube {:.0}, weights {:.0}, Gi* {:.0}, p + FDR {:.0}, MK of the z series {:.0}, MK of the counts {:.0}, classify {:.1}; `emerging_hot_spots` as a whole {:.0} (incl. the per-cell series). Request - select - points - core = {:.0} ms of API: its replica: cells to `Value` {:.0}, polygons {:.0}, features assembled with `json!` as `cell_collection` does {:.0} (the same with moves: {:.1}), body {:.0}, dropping the tree {:.0}.",
        st["reps"],
        g("select"),
        g("points"),
        g("cube"),
        g("weights"),
        g("gi"),
        g("p_fdr"),
        g("mk_z"),
        g("mk_counts"),
        g("classify"),
        core,
        api,
        g("api_cells_to_value"),
        g("api_polygons"),
        g("api_assemble_json_macro"),
        g("api_assemble_moves"),
        g("api_body"),
        g("api_drop_tree"),
    );
    let _ = writeln!(
        s,
        "\n`/emerging/compare`: core `compare_periods` {:.0} ms of the {} request.",
        g("compare_core"),
        f(ms(&rust["compare_uncached"]["median_ms"]))
    );
    if let Some(p) = peer {
        let ps = &p["stages"];
        let h = |k: &str| ps[format!("{k}_s")].as_f64().unwrap_or(f64::NAN) * 1e3;
        let _ = writeln!(
            s,
            "\npeer stages (ms): read CSV {:.0}, h3 {:.0}, cube {:.0}, weights {:.0}, Gi*+p+FDR {:.0}, MK (z and counts, vectorised) {:.0}, classify {:.1}; pymannkendall.original_test per cell on the z series {:.0} (not in the total). Peak RSS {:.0} MB.",
            h("read"),
            h("h3"),
            h("cube"),
            h("weights"),
            h("gi"),
            h("mk"),
            h("classify"),
            p["mk_pymannkendall_s"].as_f64().unwrap_or(f64::NAN) * 1e3,
            p["peak_rss_mb"].as_f64().unwrap_or(f64::NAN)
        );
        let a = &p["agreement"];
        if a.is_object() {
            let _ = writeln!(
                s,
                "\nagreement (all cells): {} matched of {} service / {} peer cells; counts equal in {}; Gi* z max |diff| {:.1e}, Gi* bins equal {:.4} of (cell, month); trend z max |diff| {:.1e}, trend p {:.1e}, count-trend z {:.1e}; category {}/{} equal; mismatches {}",
                a["matched"],
                a["service_cells"],
                a["peer_cells"],
                a["counts_equal_cells"],
                a["gi_z_max_abs_diff"].as_f64().unwrap_or(f64::NAN),
                a["gi_bins_equal_share"].as_f64().unwrap_or(f64::NAN),
                a["trend_z_max_abs_diff"].as_f64().unwrap_or(f64::NAN),
                a["trend_p_max_abs_diff"].as_f64().unwrap_or(f64::NAN),
                a["count_trend_z_max_abs_diff"].as_f64().unwrap_or(f64::NAN),
                a["category_matches"],
                a["matched"],
                a["category_mismatches"]
            );
        } else {
            s.push_str("\nagreement: no service dump found\n");
        }
        let m = &p["mk_vectorised_vs_pymannkendall"];
        let _ = writeln!(
            s,
            "\npeer check: vectorised MK vs pymannkendall.original_test on every cell: S equal {}/{}, max |dz| {:.1e}, max |dp| {:.1e}, max |d slope| {:.1e}. Res-9 cell of the point differs from the res-9 parent of its res-12 cell (what the service uses, and the peer) for {:.1} % of points.",
            m["s_equal"],
            m["cells"],
            m["max_abs_z_diff"].as_f64().unwrap_or(f64::NAN),
            m["max_abs_p_diff"].as_f64().unwrap_or(f64::NAN),
            m["max_abs_slope_diff"].as_f64().unwrap_or(f64::NAN),
            p["direct_res9_differs_from_parent_share"]
                .as_f64()
                .unwrap_or(f64::NAN)
                * 100.0
        );
    }
    s
}
