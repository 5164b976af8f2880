//! Hot spots (issue 3): `GET /datasets/bench/hotspots?resolution=R&k=1` (Gi*, binary k-ring
//! weights, self included) through the whole router, against the same pipeline in Python
//! (pandas, h3, libpysal, esda `G_Local(star=True, transform='B')`, GeoJSON dump;
//! `benches/peers/hotspots.py`) on the same incidents and the same cells.
//!
//! Measured in the child (one process, private-tier key, rate limit off):
//! - **uncached**: `Server::open(dir, false)` (every request computes: filter, aggregation of
//!   the res-12 incident cells to their parents, k-ring hull, neighbours, Gi*, global Moran,
//!   permutations, GeoJSON) for each case of [`CASES`]: res 9 and res 10, 0 and 999
//!   permutations (seed [`SEED`]), plus res 9 with a one-year `datetime` filter;
//! - **stages**: the same computation called through the library on the dataset snapshot,
//!   stage by stage (select, cells, aggregate, hull + counts, neighbours, Gi* z/p/bins,
//!   global Moran, permutations, and a replica of the GeoJSON builder `cell_collection`
//!   + `serde_json::to_vec`), to show where the time goes;
//! - **cached**: `Server::open(dir, true)`, the same URI once (computes) and then repeated
//!   (the answer comes from the analysis cache), and the same URI with `If-None-Match` and the
//!   answer's ETag (a 304, as a web map revalidating its layer); plus the floor of any audited
//!   request, `GET /datasets/bench`.
//!
//! The child writes the service's cells (`h3`, `count`, `gi_z`, `gi_p`, `gi_p_sim`) of each
//! case to `<dir>/hotspots_service_<case>.csv`; the peer recomputes every case and compares
//! esda's `Zs` with the service's `gi_z` cell by cell (same cell set required).

use crate::common::{DATASET, Server, peer as run_peer, ratio, summary_ms};
use crate::util::{quantile, rss, timed};
use h3o::Resolution;
use hotspots::analysis::h3grid::IncidentCells;
use hotspots::analysis::h3grid::{CellGrid, Kernel, Neighbours};
use hotspots::analysis::hotspot::{self, HotspotParams};
use hotspots::analysis::{moran, stats};
use hotspots::api::analysis::{SnapshotCells, write_hotspot_feature};
use hotspots::api::render::{outlines, write_outline};
use hotspots::index::CellColumn;
use hotspots::index::{Filter, TimeRange};
use hotspots::model::DatasetId;
use serde_json::{Map, Value, json};
use std::fmt::Write as _;
use std::path::Path;

/// Seed of the permutations (service and esda).
pub const SEED: u64 = 12_345;
/// The one-year filter of the `filtered` case, inclusive bounds in epoch seconds
/// (2025-01-01T00:00:00Z .. 2025-12-31T23:59:59Z).
const YEAR: (i64, i64) = (1_735_689_600, 1_767_225_599);
const YEAR_PARAM: &str = "2025-01-01T00:00:00Z/2025-12-31T23:59:59Z";

/// One measured request.
pub struct Case {
    pub name: &'static str,
    pub res: u8,
    pub permutations: u32,
    /// Whether the one-year `datetime` filter is applied.
    pub year: bool,
}

pub const CASES: [Case; 5] = [
    Case {
        name: "r9_p0",
        res: 9,
        permutations: 0,
        year: false,
    },
    Case {
        name: "r10_p0",
        res: 10,
        permutations: 0,
        year: false,
    },
    Case {
        name: "r9_p999",
        res: 9,
        permutations: 999,
        year: false,
    },
    Case {
        name: "r10_p999",
        res: 10,
        permutations: 999,
        year: false,
    },
    Case {
        name: "r9_p0_year",
        res: 9,
        permutations: 0,
        year: true,
    },
];

impl Case {
    fn uri(&self) -> String {
        let mut u = format!("/datasets/{DATASET}/hotspots?resolution={}&k=1", self.res);
        if self.permutations > 0 {
            let _ = write!(u, "&permutations={}&seed={SEED}", self.permutations);
        }
        if self.year {
            let _ = write!(u, "&datetime={YEAR_PARAM}");
        }
        u
    }

    fn label(&self) -> String {
        format!(
            "res {}, {} perm.{}",
            self.res,
            self.permutations,
            if self.year { ", 1-year filter" } else { "" }
        )
    }

    /// Timed repetitions (after one warm-up) of the uncached request.
    fn reps(&self, n: usize) -> usize {
        match (self.permutations > 0, n >= 500_000) {
            (true, _) => 5,
            (false, true) => 15,
            (false, false) => 25,
        }
    }
}

fn service_file(dir: &Path, case: &Case) -> std::path::PathBuf {
    dir.join(format!("hotspots_service_{}.csv", case.name))
}

/// Writes `h3,count,gi_z,gi_p,gi_p_sim` of every feature (shortest round-trip floats).
fn write_cells(dir: &Path, case: &Case, v: &Value) {
    let mut out = String::from("h3,count,gi_z,gi_p,gi_p_sim\n");
    for f in v["features"].as_array().map_or(&[][..], Vec::as_slice) {
        let p = &f["properties"];
        let num = |k: &str| p[k].as_f64().map_or(String::new(), |x| format!("{x:?}"));
        let _ = writeln!(
            out,
            "{},{},{},{},{}",
            p["h3"].as_str().unwrap_or_default(),
            p["count"].as_u64().unwrap_or(0),
            num("gi_z"),
            num("gi_p"),
            num("gi_p_sim")
        );
    }
    std::fs::write(service_file(dir, case), out).expect("write service cells");
}

/// CPU seconds (user + system, all threads, also those that have exited) of this process so
/// far, from `/proc/self/stat` (clock ticks of 10 ms: use it over many requests). The
/// machine is shared, so wall times are noisy; CPU time is not inflated by waiting.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<f64>() / 100.0
}

/// The cases named in `HOTSPOTS_BENCH_HOTSPOTS_CASES` (comma list of `Case::name`), else all.
fn selected() -> Vec<&'static Case> {
    let only = std::env::var("HOTSPOTS_BENCH_HOTSPOTS_CASES").unwrap_or_default();
    CASES
        .iter()
        .filter(|c| only.is_empty() || only.split(',').any(|o| o.trim() == c.name))
        .collect()
}

fn median_ms(secs: &[f64]) -> f64 {
    quantile(secs, 0.5) * 1e3
}

/// Stage times (median ms over `reps` runs) of one case, through the library on the
/// snapshot, as the handler and `hotspot::run` do it.
fn stages(server: &Server, case: &Case, reps: usize) -> Value {
    let id = DatasetId::new(DATASET).expect("id");
    let snap = server.state.0.app.catalog.get(&id).expect("dataset");
    let filter = Filter {
        time: case.year.then_some(TimeRange {
            start: Some(YEAR.0),
            end: Some(YEAR.1),
        }),
        ..Filter::default()
    };
    let res = Resolution::try_from(case.res).expect("res");
    let kernel = Kernel::Uniform;
    let names = [
        "select",
        "aggregate",
        "hull_counts",
        "neighbours",
        "gi_z_p_bins",
        "global_moran",
        "permutations",
        "features",
        "run_total",
        "polygons_cold",
        "column_build",
    ];
    let mut t: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let params = HotspotParams {
        resolution: Some(case.res),
        k: Some(1),
        permutations: Some(case.permutations),
        seed: SEED,
        ..HotspotParams::default()
    };
    let inc = &snap.incidents;
    for _ in 0..reps {
        // as the handler: no row list without a filter
        let (s, rows) = timed(|| (!filter.is_empty()).then(|| inc.select(&filter)));
        t[0].push(s);
        let cells = SnapshotCells {
            inc,
            rows: rows.as_deref(),
        };
        let (s, (agg_cells, agg_counts)) = timed(|| cells.aggregate(res));
        t[1].push(s);
        let (s, g) = timed(|| {
            CellGrid::build(&cells, None, res, 1, hotspot::DEFAULT_MAX_CELLS).expect("grid")
        });
        std::hint::black_box((agg_cells, agg_counts));
        t[2].push(s);
        let (s, nb) = timed(|| Neighbours::for_grid(&g, 1, hotspot::MAX_LINKS).expect("nb"));
        t[3].push(s);
        let (grid, counts) = (g.cells, g.counts);
        let x: Vec<f64> = counts.iter().map(|&c| f64::from(c)).collect();
        let (s, w) = timed(|| {
            let w = nb.weights(kernel);
            let z = hotspot::gi_star_rows(&x, &nb, &w, 1.0).expect("variance");
            let p: Vec<f64> = z.iter().map(|&z| stats::two_sided_p(z)).collect();
            let bins: Vec<i8> = z
                .iter()
                .zip(&p)
                .map(|(&z, &p)| stats::confidence_bin(z, p))
                .collect();
            std::hint::black_box((z, p, bins));
            w
        });
        t[4].push(s);
        let (s, _) = timed(|| std::hint::black_box(moran::global_moran(&x, &nb, kernel)));
        t[5].push(s);
        let (s, _) = timed(|| {
            (case.permutations > 0).then(|| {
                hotspot::gi_pseudo_p(
                    &x,
                    &nb,
                    &w,
                    case.permutations as usize,
                    SEED,
                    stats::Alternative::TwoSided,
                )
            })
        });
        t[6].push(s);
        let (s, result) = timed(|| hotspot::run(&cells, None, &params).expect("run"));
        t[8].push(s);
        // the features as the handler writes them (polygons from the warm cache)
        let (s, body) = timed(|| {
            let mut b = Vec::with_capacity(result.cells.len() * 420);
            let polygons = outlines(result.cells.iter().map(|c| c.cell));
            for c in &result.cells {
                b.push(b',');
                let count = Some(u64::from(c.count));
                write_hotspot_feature(&mut b, &polygons, c, count, true, false);
            }
            b
        });
        t[7].push(s);
        std::hint::black_box(body);
        // what the polygon cache saves: the outlines computed and written
        let (s, _) = timed(|| {
            let mut b = Vec::new();
            for &c in &grid {
                write_outline(&mut b, c);
            }
            b.len()
        });
        t[9].push(s);
        // once per snapshot and resolution: the column the counts come from
        let (s, _) = timed(|| CellColumn::build(&inc.cell, case.res).cells.len());
        t[10].push(s);
    }
    let mut out = Map::new();
    for (name, secs) in names.iter().zip(&t) {
        out.insert(format!("{name}_ms"), json!(median_ms(secs)));
    }
    Value::Object(out)
}

pub fn child(dir: &Path, n: usize) -> Value {
    let mut cases = Map::new();
    let server = Server::open(dir, false);
    for case in selected() {
        let uri = case.uri();
        eprintln!("  hotspots: {uri}");
        let (_, _, body) = server.get(&uri);
        let cpu0 = cpu_secs();
        let (secs, v) = server.time(&uri, 0, case.reps(n));
        let cpu_ms = (cpu_secs() - cpu0) * 1e3 / secs.len() as f64;
        write_cells(dir, case, &v);
        let s = &v["summary"];
        let stage_reps = if case.permutations > 0 { 3 } else { 7 };
        cases.insert(
            case.name.into(),
            json!({
                "uri": uri,
                "uncached": summary_ms(&secs),
                "uncached_cpu_ms": cpu_ms,
                "n_cells": s["n_cells"],
                "n_nonempty_cells": s["n_nonempty_cells"],
                "incidents_used": s["incidents_used"],
                "n_features": s["n_features"],
                "n_hot": s["n_hot"],
                "n_cold": s["n_cold"],
                "body_bytes": body.len(),
                "stages": stages(&server, case, stage_reps),
            }),
        );
    }
    let (_, hwm_uncached) = rss();
    drop(server);
    let server = Server::open(dir, true);
    for case in selected() {
        let uri = case.uri();
        let (first, status, _) = server.get(&uri);
        assert!(status.is_success(), "{uri}: {status}");
        let (secs, _) = server.time(&uri, 1, 30);
        let etag = revalidate(&server, &uri, 30);
        let c = cases.get_mut(case.name).expect("case");
        c["cached_first_ms"] = json!(first * 1e3);
        c["cached"] = summary_ms(&secs);
        c["cached_304"] = summary_ms(&etag);
    }
    // the floor of any audited request: GET /datasets/bench (auth, audit append, small JSON)
    let (floor, _) = server.time(&format!("/datasets/{DATASET}"), 3, 30);
    let (rss_now, hwm) = rss();
    json!({"measured": true, "n": n, "seed": SEED, "cases": cases,
           "router_floor": summary_ms(&floor),
           "rss_mb": rss_now as f64 / 1048576.0, "hwm_uncached_mb": hwm_uncached as f64 / 1048576.0,
           "hwm_mb": hwm as f64 / 1048576.0, "load": crate::util::loadavg()})
}

/// Seconds of `reps` conditional GETs of `uri` with the ETag of its answer (as a web map
/// revalidating its layer), asserting the 304s.
fn revalidate(server: &Server, uri: &str, reps: usize) -> Vec<f64> {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use tower::ServiceExt;
    let req = |etag: Option<&str>| {
        let mut b = Request::get(uri)
            .header(header::HOST, "localhost")
            .header(header::AUTHORIZATION, format!("Bearer {}", server.key));
        if let Some(tag) = etag {
            b = b.header(header::IF_NONE_MATCH, tag);
        }
        b.body(Body::empty()).expect("request")
    };
    server.rt.block_on(async {
        let first = server
            .router
            .clone()
            .oneshot(req(None))
            .await
            .expect("infallible");
        let tag = first.headers()[header::ETAG]
            .to_str()
            .expect("ascii")
            .to_owned();
        drop(first);
        let mut secs = Vec::with_capacity(reps);
        for _ in 0..reps {
            let t = std::time::Instant::now();
            let resp = server
                .router
                .clone()
                .oneshot(req(Some(&tag)))
                .await
                .expect("infallible");
            let status = resp.status();
            let _ = axum::body::to_bytes(resp.into_body(), usize::MAX).await;
            secs.push(t.elapsed().as_secs_f64());
            assert_eq!(status, StatusCode::NOT_MODIFIED, "{uri}");
        }
        secs
    })
}

pub fn peer(dir: &Path, n: usize) -> Option<Value> {
    let d = dir.to_string_lossy();
    let ns = n.to_string();
    let seed = SEED.to_string();
    run_peer("hotspots.py", &[&d, &ns, &seed])
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| {
        if x >= 100.0 {
            format!("{x:.0}")
        } else if x >= 10.0 {
            format!("{x:.1}")
        } else {
            format!("{x:.2}")
        }
    })
}

pub fn report(n: usize, rust: &Value, peer: Option<&Value>) -> String {
    if rust["measured"] != json!(true) {
        return "not measured\n".into();
    }
    let big = n >= 1_000_000;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Whole request `GET /datasets/bench/hotspots?resolution=R&k=1[&permutations=999&seed={SEED}]` \
         through the router (median ms), uncached and cached repeat; Python peer total \
         (pandas filter + h3 + groupby + cell set + libpysal W + esda G_Local + GeoJSON dump) \
         in the same run. Load at the end of the service run: {}.\n",
        rust["load"].as_str().unwrap_or("?")
    );
    let _ = writeln!(
        out,
        "| case | cells | service uncached ms (p95) | CPU ms | target | cached repeat ms | target | Python ms | ratio | target | gi_z max abs diff (cells) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---|---:|---|---:|---:|---|---|");
    for case in &CASES {
        let c = &rust["cases"][case.name];
        if c.is_null() {
            continue;
        }
        let p = peer.map(|p| &p["cases"][case.name]);
        let svc = f(&c["uncached"]["median_ms"]);
        let py = p.and_then(|p| f(&p["total_s"])).map(|s| s * 1e3);
        let target = match (big, case.permutations > 0) {
            (true, false) => "< 20",
            (true, true) => "< 50",
            _ => "-",
        };
        let agree = p.map_or("-".into(), |p| {
            format!(
                "{} ({}{})",
                p["gi_z_max_abs_diff"]
                    .as_f64()
                    .map_or("-".into(), |d| format!("{d:.1e}")),
                p["cells_compared"],
                if p["same_cells"] == json!(true) {
                    ""
                } else {
                    ", cell sets differ"
                }
            )
        });
        let _ = writeln!(
            out,
            "| {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} | {} | {} |",
            case.label(),
            c["n_cells"],
            ms(svc),
            ms(f(&c["uncached"]["p95_ms"])),
            ms(f(&c["uncached_cpu_ms"])),
            target,
            ms(f(&c["cached"]["median_ms"])),
            if big { "< 2" } else { "-" },
            ms(py),
            ratio(py, svc),
            if big { ">= 50x" } else { "-" },
            agree
        );
    }
    let _ = writeln!(
        out,
        "\nService stages (library calls on the snapshot, as the handler makes them, median ms): \
         select (only with a filter), counts per cell from the snapshot's cell column, the grid (counts, k-ring \
         hull, counts on it), neighbours (disks of the empty hull cells only), Gi* z/p/bins, global Moran, permutations, the features written \
         (polygons from the warm outline cache), `hotspot::run` alone (counts .. permutations); \
         and two costs the request does not pay each time: computing and writing every cell's \
         outline (a cold outline cache, as on the first request for these cells), and building \
         the cell column (once per snapshot and resolution).\n"
    );
    let _ = writeln!(
        out,
        "| case | select | counts | hull | neighbours | Gi* | Moran | perms | features | run | body MB | outlines (cold) | column (once) |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for case in &CASES {
        let s = &rust["cases"][case.name]["stages"];
        if s.is_null() {
            continue;
        }
        let g = |k: &str| ms(f(&s[format!("{k}_ms")]));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} |",
            case.label(),
            if case.year { g("select") } else { "-".into() },
            g("aggregate"),
            g("hull_counts"),
            g("neighbours"),
            g("gi_z_p_bins"),
            g("global_moran"),
            g("permutations"),
            g("features"),
            g("run_total"),
            rust["cases"][case.name]["body_bytes"]
                .as_f64()
                .unwrap_or(0.0)
                / 1e6,
            g("polygons_cold"),
            g("column_build")
        );
    }
    if let Some(p) = peer {
        let _ = writeln!(
            out,
            "\nPython stages (ms; {}): filter, h3 res-12 cell, parent, groupby, cell set + neighbour \
             dict, libpysal W, esda G_Local, GeoJSON dump. Direct `latlng_to_cell` at the analysis \
             resolution would put {} of the incidents in another cell than the service's H3 parent \
             of the stored res-12 cell.\n",
            p["versions"].as_str().unwrap_or("?"),
            p["direct_mismatch"].as_str().unwrap_or("?")
        );
        let _ = writeln!(
            out,
            "| case | filter | h3 res 12 | parent | groupby | cell set | W | esda | two-sided p | GeoJSON | total | p_sim<0.05 agreement |"
        );
        let _ = writeln!(
            out,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for case in &CASES {
            let c = &p["cases"][case.name];
            if c.is_null() {
                continue;
            }
            let g = |k: &str| ms(f(&c["stages_s"][k]).map(|s| s * 1e3));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                case.label(),
                g("filter"),
                g("h3_res12"),
                g("h3_parent"),
                g("groupby"),
                g("cell_set"),
                g("weights"),
                g("esda"),
                g("p_two_sided"),
                g("geojson"),
                ms(f(&c["total_s"]).map(|s| s * 1e3)),
                c.get("p_sim_agreement")
                    .and_then(Value::as_str)
                    .unwrap_or("-")
            );
        }
    }
    let revalidations: Vec<String> = CASES
        .iter()
        .filter(|c| !rust["cases"][c.name].is_null())
        .map(|c| {
            format!(
                "{} {} ms",
                c.label(),
                ms(f(&rust["cases"][c.name]["cached_304"]["median_ms"]))
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "\nRevalidation with `If-None-Match` (304, median): {}. Floor of an audited request \
         (`GET /datasets/bench`): {} ms median.",
        revalidations.join("; "),
        ms(f(&rust["router_floor"]["median_ms"]))
    );
    let _ = writeln!(
        out,
        "\nService memory: peak RSS {:.0} MB (uncached part {:.0} MB).",
        f(&rust["hwm_mb"]).unwrap_or(0.0),
        f(&rust["hwm_uncached_mb"]).unwrap_or(0.0)
    );
    out
}
