//! The foundation benchmark of issue 2: ingest throughput (WGS84 comma CSV and RD New `;`-CSV
//! with decimal commas, through `App::ingest`: parse, validate, CRS transform, SQLite write with
//! `synchronous=FULL`, snapshot rebuild), start-up reload (`App::open`), bbox items query
//! latency through the router, memory per incident, and the same read-and-transform job done
//! by pandas + pyproj (`benches/peer_pandas.py`) on the same files in the same run.
//!
//! `cargo bench --bench foundation`. Every measurement runs in a fresh child process (this
//! binary with a `child-*` argument) so that memory figures are not polluted by earlier runs.
//! Environment:
//! - `HOTSPOTS_BENCH_SIZES`: comma list of incident counts (default `10000,100000`);
//!   `HOTSPOTS_BENCH_1M=1` appends 1,000,000.
//! - `HOTSPOTS_BENCH_REPS`: repetitions of ingest/reload/peer per size up to 100k (default 3;
//!   larger sizes run once).
//! - `HOTSPOTS_BENCH_QUERIES`: timed items requests per size (default 200).
//! - `HOTSPOTS_BENCH_DIR`: work directory (default: a temporary directory, removed after).
//! - `HOTSPOTS_BENCH_NO_PEER=1`: skip the pandas peer.
//!
//! For profiling, the child modes can be run by hand on the bench binary:
//! `child-gen DIR N` writes the two CSVs; `child-ingest FILE DATADIR EPSG:4326`,
//! `child-split FILE DATADIR CRS`, `child-reload DATADIR`, `child-query DATADIR N COUNT`; `child-sqlexp FILE DIR` runs the
//! SQLite what-if experiments of `foundation/sqlexp.rs` (not part of the default run).
//!
//! Figures and their interpretation: `benches/README.md`.

#[path = "foundation/child.rs"]
mod child;
#[path = "foundation/data.rs"]
mod data;
#[path = "foundation/query.rs"]
mod query;
#[path = "foundation/sqlexp.rs"]
mod sqlexp;
#[path = "foundation/util.rs"]
mod util;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use util::quantile;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sizes() -> Vec<usize> {
    let mut v: Vec<usize> = std::env::var("HOTSPOTS_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().replace('_', "").parse().ok())
        .collect();
    if std::env::var("HOTSPOTS_BENCH_1M").is_ok_and(|v| v == "1") && !v.contains(&1_000_000) {
        v.push(1_000_000);
    }
    v
}

/// Runs this binary in a child mode and returns the JSON it prints.
fn child(args: &[&str]) -> Value {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("spawn child");
    assert!(out.status.success(), "child {args:?} failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or("{}");
    serde_json::from_str(last).expect("child JSON")
}

/// Runs the pandas + pyproj peer on `file`; `None` when skipped or python fails.
fn peer(file: &Path, from: &str, to: &str) -> Option<Value> {
    if std::env::var("HOTSPOTS_BENCH_NO_PEER").is_ok_and(|v| v == "1") {
        return None;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peer_pandas.py");
    let t = std::time::Instant::now();
    let out = Command::new("python3")
        .arg(script)
        .arg(file)
        .args(["--from", from, "--to", to])
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    let wall = t.elapsed().as_secs_f64();
    let mut v: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last()?).ok()?;
    v["wall_s"] = wall.into();
    Some(v)
}

fn med(v: &[Value], key: &str) -> f64 {
    let xs: Vec<f64> = v.iter().filter_map(|x| x[key].as_f64()).collect();
    quantile(&xs, 0.5)
}

/// One format at one size: ingest runs, the stage split and the peer.
fn format_runs(n: usize, reps: usize, work: &Path, fmt: &str, file: &Path, crs: &str) -> Value {
    let other = if crs == "EPSG:4326" {
        "EPSG:28992"
    } else {
        "EPSG:4326"
    };
    let f = file.to_str().expect("utf-8 path");
    let mut runs = Vec::new();
    for r in 0..reps {
        let dir = work.join(format!("{n}-{fmt}-{r}"));
        let v = child(&["child-ingest", f, dir.to_str().expect("path"), crs]);
        println!("ingest n={n} {fmt} rep={r}: {v}");
        runs.push(v);
        if r + 1 < reps || fmt != "rd" {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    let split_dir = work.join(format!("{n}-{fmt}-split"));
    let split = child(&["child-split", f, split_dir.to_str().expect("path"), crs]);
    let _ = std::fs::remove_dir_all(&split_dir);
    println!("split  n={n} {fmt}: {split}");
    let peers: Vec<Value> = (0..reps).filter_map(|_| peer(file, crs, other)).collect();
    if let Some(p) = peers.first() {
        println!("peer   n={n} {fmt}: {p}");
    }
    let ingest_s = med(&runs, "ingest_s");
    serde_json::json!({
        "n": n, "format": fmt, "ingest_s": ingest_s, "rows_per_s": n as f64 / ingest_s,
        "accepted": runs[0]["accepted"], "rejected": runs[0]["rejected"],
        "read_s": med(&runs, "read_s"), "hwm": med(&runs, "hwm"), "split": split,
        "peer_read_transform_s": med(&peers, "read_transform_s"),
        "peer_total_s": med(&peers, "total_s"), "peer_wall_s": med(&peers, "wall_s"),
        "peer_versions": peers.first().map(|p| format!("pandas {} pyproj {} PROJ {}",
            p["pandas"], p["pyproj"], p["proj"])),
    })
}

/// Everything at one size.
fn size_runs(n: usize, work: &Path) -> (Vec<Value>, Value) {
    let reps = if n <= 100_000 {
        env_usize("HOTSPOTS_BENCH_REPS", 3).max(1)
    } else {
        1
    };
    let files = data::write(work, n).expect("write data");
    let mut fmts = Vec::new();
    for (fmt, file, crs) in [
        ("wgs84", &files.wgs84, "EPSG:4326"),
        ("rd", &files.rd, "EPSG:28992"),
    ] {
        fmts.push(format_runs(n, reps, work, fmt, file, crs));
    }
    let dir = work.join(format!("{n}-rd-{}", reps - 1));
    let d = dir.to_str().expect("path");
    let reloads: Vec<Value> = (0..reps).map(|_| child(&["child-reload", d])).collect();
    println!("reload n={n}: {}", reloads[0]);
    let queries = env_usize("HOTSPOTS_BENCH_QUERIES", 200).to_string();
    let q = child(&["child-query", d, &n.to_string(), &queries]);
    println!("query  n={n}: {q}");
    let r = &reloads[0];
    let summary = serde_json::json!({
        "n": n, "open_s": med(&reloads, "open_s"), "scan_s": med(&reloads, "scan_s"),
        "rtree_s": med(&reloads, "rtree_s"),
        "heap_per_incident": r["heap_bytes"].as_f64().unwrap_or(0.0) / n as f64,
        "exact_per_incident": (r["column_bytes"].as_f64().unwrap_or(0.0)
            + r["tree_bytes"].as_f64().unwrap_or(0.0)) / n as f64,
        "rss_per_incident": med(&reloads, "rss_delta") / n as f64, "query": q,
    });
    for f in [&files.wgs84, &files.rd] {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_dir_all(&dir);
    (fmts, summary)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |c| c.get());
    format!("{cores} cores, {cpu}")
}

fn report(fmts: &[Value], sizes: &[Value]) {
    println!(
        "\n| N | file | ingest s | rows/s | stages parse / validate+transform / SQLite write / snapshot (s) | pandas+pyproj read+transform s | ratio |"
    );
    println!("|---|---|---|---|---|---|---|");
    for f in fmts {
        let s = &f["split"];
        let g = |k: &str| s[k].as_f64().unwrap_or(0.0);
        let peer = f["peer_read_transform_s"].as_f64().unwrap_or(0.0);
        let ingest = f["ingest_s"].as_f64().unwrap_or(0.0);
        println!(
            "| {} | {} | {:.3} | {:.0} | {:.3} / {:.3} / {:.3} / {:.3} | {:.3} | {:.1} |",
            f["n"],
            f["format"].as_str().unwrap_or(""),
            ingest,
            f["rows_per_s"].as_f64().unwrap_or(0.0),
            g("parse_s"),
            g("prepare_s"),
            g("write_s"),
            g("snapshot_s"),
            peer,
            if peer > 0.0 { ingest / peer } else { f64::NAN }
        );
    }
    println!(
        "\n| N | reload s (scan / point index) | heap_bytes() B/incident | columns + index B/incident | RSS B/incident | items median ms | p95 ms | gzip median ms | RD bbox (no PROJ) median / p95 ms | returned |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for s in sizes {
        let q = &s["query"];
        let g = |v: &Value, k: &str| v[k].as_f64().unwrap_or(0.0);
        println!(
            "| {} | {:.3} ({:.3} / {:.3}) | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} / {:.2} | {:.0} |",
            s["n"],
            g(s, "open_s"),
            g(s, "scan_s"),
            g(s, "rtree_s"),
            g(s, "heap_per_incident"),
            g(s, "exact_per_incident"),
            g(s, "rss_per_incident"),
            g(q, "median_ms"),
            g(q, "p95_ms"),
            g(q, "gzip_median_ms"),
            g(q, "rd_bbox_median_ms"),
            g(q, "rd_bbox_p95_ms"),
            g(q, "returned_mean")
        );
        println!("  query stages (median ms) n={}: {}", s["n"], q["stages"]);
    }
}

fn parent() {
    let (tmp, work): (Option<tempfile::TempDir>, PathBuf) =
        match std::env::var_os("HOTSPOTS_BENCH_DIR") {
            Some(d) => (None, PathBuf::from(d)),
            None => {
                let t = tempfile::tempdir().expect("tempdir");
                let p = t.path().to_owned();
                (Some(t), p)
            }
        };
    std::fs::create_dir_all(&work).expect("work dir");
    println!(
        "foundation bench {} | {} | load at start {}",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        machine(),
        util::loadavg()
    );
    let (mut fmts, mut summaries) = (Vec::new(), Vec::new());
    for n in sizes() {
        let (f, s) = size_runs(n, &work);
        fmts.extend(f);
        summaries.push(s);
    }
    println!("load at end {}", util::loadavg());
    report(&fmts, &summaries);
    drop(tmp);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    let p = |i: usize| Path::new(a(i)).to_owned();
    let out = match a(0) {
        "child-ingest" => child::ingest(&p(1), &p(2), a(3)),
        "child-split" => child::split(&p(1), &p(2), a(3)),
        "child-reload" => child::reload(&p(1)),
        "child-gen" => {
            let files = data::write(&p(1), a(2).parse().unwrap_or(0)).expect("write data");
            serde_json::json!({"wgs84": files.wgs84, "rd": files.rd})
        }
        "child-sqlexp" => sqlexp::run(&p(1), &p(2)),
        "child-query" => query::query(&p(1), a(2).parse().unwrap_or(0), a(3).parse().unwrap_or(0)),
        _ => return parent(),
    };
    println!("{out}");
}
