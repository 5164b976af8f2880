//! The analysis benchmarks of issues 3, 4, 5 and 8: hot spots, proximity, clusters and
//! density, emerging hot spots, each timed through the whole router at 1M incidents and
//! compared with the Python/R peer doing the same job on the same data in the same run.
//!
//! `cargo bench --bench analysis`. Environment:
//! - `HOTSPOTS_BENCH_SIZES`: comma list of incident counts (default `1000000`).
//! - `HOTSPOTS_BENCH_TOPICS`: comma list of `hotspots,proximity,clusters,emerging` (default all).
//! - `HOTSPOTS_BENCH_DIR`: where each size's data is generated and ingested once and then
//!   reused (default `target/bench-analysis`; delete it to regenerate).
//! - `HOTSPOTS_BENCH_NO_PEER=1`: skip the Python peers.
//!
//! Each topic runs in a fresh child process (this binary with `child <topic> DIR N`) so that
//! memory figures of one do not leak into the next; the peer runs after it, alone. The data
//! are described in `analysis/data.rs`; figures and their reading in `benches/README.md`.
//! The results of the last run are written to `<HOTSPOTS_BENCH_DIR>/results.json`.

#[path = "analysis/clusters.rs"]
mod clusters;
#[path = "analysis/common.rs"]
mod common;
#[path = "analysis/data.rs"]
mod data;
#[path = "analysis/emerging.rs"]
mod emerging;
#[path = "analysis/hotspots.rs"]
mod hotspots_bench;
#[path = "analysis/insights.rs"]
mod insights;
#[path = "analysis/proximity.rs"]
mod proximity;
#[path = "foundation/util.rs"]
#[allow(dead_code)]
mod util;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TOPICS: [&str; 5] = ["hotspots", "proximity", "clusters", "emerging", "insights"];

fn list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().replace('_', ""))
        .filter(|s| !s.is_empty())
        .collect()
}

/// Runs this binary as `args` and returns the JSON of its last stdout line.
fn child(args: &[&str]) -> Value {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("spawn child");
    assert!(out.status.success(), "child {args:?} failed");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or("{}")).expect("child JSON")
}

/// The Rust side of one topic, in this (child) process.
fn run_topic(topic: &str, dir: &Path, n: usize) -> Value {
    match topic {
        "hotspots" => hotspots_bench::child(dir, n),
        "proximity" => proximity::child(dir, n),
        "clusters" => clusters::child(dir, n),
        "emerging" => emerging::child(dir, n),
        "insights" => insights::child(dir, n),
        _ => panic!("unknown topic {topic}"),
    }
}

/// The peer of one topic (in python, after the Rust child has exited).
fn peer_topic(topic: &str, dir: &Path, n: usize) -> Option<Value> {
    match topic {
        "hotspots" => hotspots_bench::peer(dir, n),
        "proximity" => proximity::peer(dir, n),
        "clusters" => clusters::peer(dir, n),
        "emerging" => emerging::peer(dir, n),
        "insights" => insights::peer(dir, n),
        _ => None,
    }
}

/// The markdown rows of one topic.
fn report(topic: &str, n: usize, rust: &Value, peer: Option<&Value>) -> String {
    match topic {
        "hotspots" => hotspots_bench::report(n, rust, peer),
        "proximity" => proximity::report(n, rust, peer),
        "clusters" => clusters::report(n, rust, peer),
        "emerging" => emerging::report(n, rust, peer),
        "insights" => insights::report(n, rust, peer),
        _ => String::new(),
    }
}

fn parent() {
    let root: PathBuf = std::env::var("HOTSPOTS_BENCH_DIR").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-analysis"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&root).expect("bench dir");
    let sizes: Vec<usize> = list("HOTSPOTS_BENCH_SIZES", "1000000")
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let topics = list("HOTSPOTS_BENCH_TOPICS", &TOPICS.join(","));
    let mut results = Vec::new();
    let mut tables = String::new();
    println!("machine: {} cores, load {}", num_cpus(), util::loadavg());
    for &n in &sizes {
        let dir = common::size_dir(&root, n);
        let d = dir.to_string_lossy().into_owned();
        let ns = n.to_string();
        let setup = child(&["child-setup", &d, &ns]);
        eprintln!("n={n}: setup {setup}");
        for topic in &topics {
            eprintln!("n={n}: {topic} (service)");
            let rust = child(&["child", topic, &d, &ns]);
            eprintln!("n={n}: {topic} (peer)");
            let peer = peer_topic(topic, &dir, n);
            let rows = report(topic, n, &rust, peer.as_ref());
            println!("\n### {topic}, n = {n}\n\n{rows}");
            tables.push_str(&format!("\n### {topic}, n = {n}\n\n{rows}\n"));
            results.push(
                json!({"n": n, "topic": topic, "service": rust, "peer": peer,
                                "load": util::loadavg()}),
            );
        }
    }
    let out = json!({"results": results});
    std::fs::write(
        root.join("results.json"),
        serde_json::to_string_pretty(&out).expect("json"),
    )
    .expect("write results");
    std::fs::write(root.join("results.md"), tables).expect("write tables");
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    let out = match a(0) {
        "child-setup" => common::setup(Path::new(a(1)), a(2).parse().expect("n")),
        "child" => run_topic(a(1), Path::new(a(2)), a(3).parse().expect("n")),
        _ => return parent(),
    };
    println!("{out}");
}
