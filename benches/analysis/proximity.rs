//! Proximity to facilities (issue 4): the three figures the issue sets targets for, each
//! timed through the whole router and as the core function alone, against scipy's cKDTree
//! (and shapely, pointpats) in `benches/peers/proximity.py` on the same data.
//!
//! - (a) nearest facility of every incident: `GET /datasets/bench/proximity/nearest` (private
//!   tier; it runs the analysis with `simulations=0` and serialises one GeoJSON feature per
//!   incident) and the core `FacilityIndex::new` + `nearest_many` over all incidents (what the
//!   100 ms target is about); peer `cKDTree(facilities).query(incidents)`.
//! - (b) per-facility rings (`radius_m=250`, `rings_m=100,250,500`): `GET .../proximity` with
//!   `simulations=0` (the whole analysis: rings, expectations, global tests, histogram, rho(d),
//!   L_cross) and the core `count_near` (counts within the radius and per annular ring for all
//!   60 facilities in one pass); peer `cKDTree(incidents).query_ball_point(facilities, r,
//!   return_length=True)` per ring radius (and shapely `STRtree.query(dwithin)`).
//! - (c) 999 simulations of the global test under CSR (the data have no baseline layer):
//!   `GET .../proximity?simulations=999&null=csr&seed=7`, its difference with `simulations=0`,
//!   and the core `global_test` (share within `radius_m` of any facility, Monte Carlo pseudo p,
//!   plus KS) alone; peer: 99 simulated CSR patterns of n points in the incidents' convex hull
//!   (numpy + shapely rejection sampling; also `pointpats.random.poisson` for 1-3 patterns),
//!   each counted with cKDTree, extrapolated to 999 and labelled so.
//!
//! Agreement: the child writes the service's coordinates (metres, after the WGS84 round
//! trip of ingest), nearest facilities and ring counts to `<dir>/proximity_check.*`; the peer
//! recomputes them with cKDTree on those coordinates (must be equal: max |Δd| in metres,
//! ring counts exactly) and also reports the difference with its own CSV coordinates.

use crate::common::{DATASET, Server, ratio, summary_ms};
use crate::util::{quantile, rss, timed};
use geo::{ConvexHull, MultiPoint, MultiPolygon, Point};
use hotspots::analysis::proximity::facility::{FacilityIndex, count_near, facility_stats};
use hotspots::analysis::proximity::{
    self as prox, NullModel, ProxFacility, ProxIncident, ProximityOptions, ProximityParams, Window,
    global, lcross, null, rhohat, units,
};
use hotspots::model::DatasetId;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::Path;

const RADIUS: f64 = 250.0;
const RINGS: [f64; 3] = [100.0, 250.0, 500.0];
const RING_LABELS: [&str; 3] = ["ring_0_100", "ring_100_250", "ring_250_500"];
const SEED: u64 = 7;
const SIMS: u32 = 999;
/// Simulations the peer runs (its per-simulation time is extrapolated to [`SIMS`]).
const PEER_SIMS: u32 = 99;

fn base_query() -> String {
    format!("radius_m={RADIUS}&rings_m=100,250,500&null=csr&seed={SEED}")
}

/// Runs `f` `warmup + reps` times; seconds of the timed runs and the last value.
fn repeat<T>(warmup: usize, reps: usize, mut f: impl FnMut() -> T) -> (Vec<f64>, T) {
    for _ in 0..warmup {
        std::hint::black_box(f());
    }
    let mut secs = Vec::with_capacity(reps);
    let mut last = None;
    for _ in 0..reps {
        let (s, v) = timed(&mut f);
        secs.push(s);
        last = Some(v);
    }
    (secs, last.expect("reps > 0"))
}

#[derive(Deserialize)]
struct NearestBody {
    features: Vec<NearestFeature>,
}
#[derive(Deserialize)]
struct NearestFeature {
    id: i64,
    properties: NearestProps,
}
#[derive(Deserialize)]
struct NearestProps {
    near_fid: String,
    near_dist_m: f64,
}

/// Hex SHA-256 of a body: identical answers before and after a core change.
fn sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn mb(b: u64) -> f64 {
    b as f64 / 1_048_576.0
}

pub fn child(dir: &Path, n: usize) -> Value {
    let big = n >= 500_000;
    let server = Server::open(dir, false);
    let snap = server
        .state
        .app
        .catalog
        .get(&DatasetId::new(DATASET).expect("id"))
        .expect("bench dataset");
    let inc = &snap.incidents;
    let pts: Vec<[f64; 2]> = inc.x.iter().zip(&inc.y).map(|(&x, &y)| [x, y]).collect();
    let incidents: Vec<ProxIncident> = (0..inc.len())
        .map(|r| ProxIncident {
            x: inc.x[r],
            y: inc.y[r],
            cell: inc.cell[r],
            subject: inc.subject[r].checked_sub(1),
        })
        .collect();
    let facs: Vec<ProxFacility> = snap
        .facilities
        .iter()
        .map(|(_, f)| ProxFacility {
            id: f.id.clone(),
            kind: f.kind.clone(),
            x: f.x,
            y: f.y,
        })
        .collect();
    let fpts: Vec<[f64; 2]> = facs.iter().map(|f| [f.x, f.y]).collect();
    let nf = facs.len();
    let reps = if big { 9 } else { 15 };

    // (a) core: nearest facility of every incident
    let (near_s, nearest) = repeat(1, reps, || FacilityIndex::new(&fpts).nearest_many(&pts));
    let idx = FacilityIndex::new(&fpts);

    // (b) core: counts within radius_m and per ring, all facilities, one pass
    let (rings_s, counts) = repeat(1, reps, || count_near(&idx, nf, &pts, None, RADIUS, &RINGS));

    // (c) core: the global test, after the same preparation as the analysis
    let params = |sims: u32| ProximityParams {
        radius_m: RADIUS,
        rings_m: RINGS.to_vec(),
        simulations: sims,
        seed: SEED,
        null: Some(NullModel::Csr),
        ..ProximityParams::default()
    };
    let (p0, p999) = (params(0), params(SIMS));
    let opts = ProximityOptions::default();
    let mut stages = serde_json::Map::new();
    let mut stage = |name: &str, s: f64| {
        stages.insert(name.into(), json!(s * 1e3));
    };
    let (s, win) = timed(|| {
        let mp: MultiPoint<f64> = pts.iter().map(|p| Point::new(p[0], p[1])).collect();
        Window::new(&MultiPolygon(vec![mp.convex_hull()])).expect("window")
    });
    stage("window_convex_hull", s);
    let (s, _) = timed(|| FacilityIndex::new(&fpts).nearest_many(&pts));
    stage("nearest", s);
    let inside: Vec<usize> = (0..incidents.len()).collect();
    let (s, u) = timed(|| units::analysis_units(&incidents, &inside, prox::Dedup::None));
    let u = u.expect("units");
    stage("units_dedup_cell_subject", s);
    let (s, reference) = timed(|| {
        null::make_reference(&win, NullModel::Csr, None, &p0, &opts, &idx).expect("reference")
    });
    let (reference, ref_info) = reference;
    stage("reference_pixel_grid", s);
    let dist_of =
        |p: &[[f64; 2]]| -> Vec<f64> { idx.nearest_many(p).into_iter().map(|x| x.1).collect() };
    let (s, dist) = timed(|| units::VariantDistances {
        naive: nearest.iter().map(|x| x.1).collect(),
        cell: dist_of(&u.cell),
        subject: u.subject.as_deref().map(dist_of),
    });
    stage("unit_distances", s);
    let (s, _) = timed(|| {
        let obs = count_near(&idx, nf, &u.naive, None, RADIUS, &RINGS);
        let exp = null::expected_counts(
            NullModel::Csr,
            u.naive.len(),
            &win,
            &reference,
            &facs,
            &idx,
            &p0,
        );
        facility_stats(&facs, &obs, &exp, &RINGS)
    });
    stage("facility_rings_expected_p", s);
    let (s, _) = timed(|| units::repeats_summary(&dist, &p0, &reference));
    stage("global_tests_3_variants_0_sims", s);
    let (s, _) = timed(|| units::repeats_summary(&dist, &p999, &reference));
    stage("global_tests_3_variants_999_sims", s);
    let (s, _) = timed(|| global::histogram(&dist.naive, &reference, RADIUS, 500.0));
    stage("histogram", s);
    let (s, _) = timed(|| {
        let area = win.area_m2();
        rhohat::rhohat(
            &dist.naive,
            &reference.dist_m,
            &reference.weights,
            area,
            true,
            256,
        )
    });
    stage("rhohat", s);
    let (s, _) =
        timed(|| lcross::l_cross_curve(&win, &facs, &u.naive, &reference, &p0, &opts, 500.0));
    stage("l_cross_0_sims", s);
    let (s, _) =
        timed(|| lcross::l_cross_curve(&win, &facs, &u.naive, &reference, &p999, &opts, 500.0));
    stage("l_cross_999_sims", s);
    let greps = if big { 3 } else { 5 };
    let glob = |sims: u32| {
        let mut rng = ChaCha8Rng::seed_from_u64(SEED);
        global::global_test("naive", &dist.naive, RADIUS, &reference, sims, &mut rng)
    };
    let (g999_s, g999) = repeat(1, greps, || glob(SIMS));
    let (g0_s, _) = repeat(1, greps, || glob(0));
    let (analyze0_s, report0) = repeat(0, greps, || {
        prox::analyze(&incidents, &facs, None, None, &p0).expect("analyze")
    });
    let (analyze999_s, _) = repeat(0, greps, || {
        prox::analyze(&incidents, &facs, None, None, &p999).expect("analyze")
    });
    let core_hwm = rss().1;
    let med = |v: &[f64]| quantile(v, 0.5) * 1e3;
    let core = json!({
        "nearest": summary_ms(&near_s),
        "nearest_min_ms": quantile(&near_s, 0.0) * 1e3,
        "rings": summary_ms(&rings_s),
        "rings_min_ms": quantile(&rings_s, 0.0) * 1e3,
        "global_test_999": summary_ms(&g999_s),
        "global_test_0": summary_ms(&g0_s),
        "global_999_sims_only_ms": med(&g999_s) - med(&g0_s),
        "analyze_0": summary_ms(&analyze0_s),
        "analyze_999": summary_ms(&analyze999_s),
        "stages_ms": Value::Object(stages),
        "reference_points": ref_info.points,
        "global_999": {"within_radius": g999.within_radius, "expected_share": g999.expected_share,
                       "p_mc": g999.p_mc, "z": g999.z, "ks_d": g999.ks.d},
        "report_n_units": report0.summary.n_units,
    });
    if std::env::var("HOTSPOTS_PROX_CORE_ONLY").is_ok_and(|v| v == "1") {
        // for profiling the core by hand: no routes, no files for the peer
        return json!({"n": inc.len(), "facilities": nf, "core": core,
                      "mem": {"core_hwm_mb": mb(core_hwm)}});
    }

    // routes
    let q = base_query();
    let rings_uri = format!("/datasets/{DATASET}/proximity?{q}&simulations=0");
    let (route_rings_s, rings_body) = server.time(&rings_uri, 1, reps.min(5));
    let sims_uri = format!("/datasets/{DATASET}/proximity?{q}&simulations={SIMS}");
    let (route_sims_s, sims_body) = server.time(&sims_uri, 1, greps);
    let near_uri = format!("/datasets/{DATASET}/proximity/nearest?{q}");
    let mut route_near_s = Vec::new();
    let mut near_body = Vec::new();
    // at 1M the answer is ~200 MB of GeoJSON and takes seconds: no warm-up, 2 runs
    let (near_warm, near_reps) = if big { (0, 2) } else { (1, 3) };
    for i in 0..near_warm + near_reps {
        let (s, status, body) = server.get(&near_uri);
        assert!(status.is_success(), "{near_uri}: {status}");
        if i >= near_warm {
            route_near_s.push(s);
        }
        near_body = body;
    }
    let near_bytes = near_body.len();
    let near_sha = sha(&near_body);
    let parsed: NearestBody = serde_json::from_slice(&near_body).expect("nearest JSON");
    drop(near_body);

    // agreement inside the service: route vs core
    let mut near_max_diff = 0.0_f64;
    let mut near_fid_mismatch = 0usize;
    for f in &parsed.features {
        let r = inc.row_of(f.id).expect("fid");
        let (fi, d) = nearest[r];
        near_max_diff = near_max_diff.max((f.properties.near_dist_m - d).abs());
        near_fid_mismatch += usize::from(f.properties.near_fid != facs[fi as usize].id);
    }
    let mut ring_mismatch = 0u64;
    let mut fac_out = Vec::new();
    let features = rings_body["features"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (k, f) in facs.iter().enumerate() {
        let feat = features.iter().find(|v| v["id"] == json!(f.id));
        let route_rings: Vec<u64> = RING_LABELS
            .iter()
            .map(|l| {
                feat.and_then(|v| v["properties"][*l].as_u64())
                    .unwrap_or(u64::MAX)
            })
            .collect();
        let route_count = feat
            .and_then(|v| v["properties"]["count"].as_u64())
            .unwrap_or(u64::MAX);
        let core_rings: Vec<u64> = counts.rings[k].iter().map(|v| *v as u64).collect();
        let core_count = counts.within[k] as u64;
        ring_mismatch += route_rings
            .iter()
            .zip(&core_rings)
            .filter(|(a, b)| a != b)
            .count() as u64;
        ring_mismatch += u64::from(route_count != core_count);
        fac_out.push(json!({"id": f.id, "x": f.x, "y": f.y, "count": route_count,
            "rings": route_rings, "expected": feat.map(|v| v["properties"]["expected"].clone())}));
    }
    let glob_route = sims_body["summary"]["global"].clone();
    let glob_route0 = rings_body["summary"]["global"].clone();

    // files for the peer's agreement check
    let check = dir.join("proximity_check.bin");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&check).expect("check file"));
        for (r, &(fi, d)) in nearest.iter().enumerate() {
            for v in [inc.fid[r] as f64, inc.x[r], inc.y[r], fi as f64, d] {
                w.write_all(&v.to_le_bytes()).expect("write");
            }
        }
    }
    let meta = json!({"n": inc.len(), "columns": ["fid", "x", "y", "near_index", "near_dist_m"],
        "radius_m": RADIUS, "rings_m": RINGS, "ring_labels": RING_LABELS, "seed": SEED,
        "facilities": fac_out, "global_999": glob_route, "global_0": glob_route0,
        "window_area_km2": sims_body["summary"]["window_area_km2"],
        "peer_simulations": PEER_SIMS});
    std::fs::write(dir.join("proximity_check.json"), meta.to_string()).expect("check meta");

    let (rss_now, hwm) = rss();
    json!({
        "n": inc.len(), "facilities": nf,
        "core": core,
        "route": {
            "nearest": summary_ms(&route_near_s),
            "nearest_bytes": near_bytes,
            "nearest_features": parsed.features.len(),
            "rings_sims0": summary_ms(&route_rings_s),
            "sims999": summary_ms(&route_sims_s),
            "sims_only_ms": med(&route_sims_s) - med(&route_rings_s),
            "global_999": glob_route,
            "sha256": {"nearest": near_sha, "rings_sims0": sha(rings_body.to_string().as_bytes()),
                       "sims999": sha(sims_body.to_string().as_bytes())},
        },
        "agree": {
            "route_vs_core_nearest_max_abs_m": near_max_diff,
            "route_vs_core_nearest_fid_mismatch": near_fid_mismatch,
            "route_vs_core_ring_mismatch": ring_mismatch,
        },
        "mem": {"core_hwm_mb": mb(core_hwm), "rss_mb": mb(rss_now), "hwm_mb": mb(hwm)},
    })
}

pub fn peer(dir: &Path, n: usize) -> Option<Value> {
    let d = dir.to_string_lossy().into_owned();
    let (ns, sims) = (n.to_string(), PEER_SIMS.to_string());
    crate::common::peer("proximity.py", &[&d, &ns, &sims])
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| {
        if x >= 10_000.0 {
            format!("{:.1} s", x / 1e3)
        } else if x >= 100.0 {
            format!("{x:.0} ms")
        } else {
            format!("{x:.1} ms")
        }
    })
}

/// A small number with 3 significant digits (or `-`).
fn g3(v: &Value) -> String {
    match v.as_f64() {
        Some(0.0) => "0".into(),
        Some(x) if x.abs() >= 0.1 => format!("{x:.3}"),
        Some(x) => format!("{x:.2e}"),
        None => v.to_string(),
    }
}

pub fn report(n: usize, rust: &Value, peer: Option<&Value>) -> String {
    let nul = Value::Null;
    let p = peer.unwrap_or(&nul);
    let c = &rust["core"];
    let r = &rust["route"];
    let med = |v: &Value| f(&v["median_ms"]);
    let met = |v: Option<f64>, target: f64| match v {
        Some(x) if x < target => "met",
        Some(_) => "missed",
        None => "-",
    };
    let mut s = String::new();
    s.push_str(&format!(
        "n = {n} incidents, {} facilities, radius 250 m, rings 100/250/500 m, CSR null \
         (no baseline layer), seed {SEED}; medians. Peer: scipy {} / numpy {} / shapely {} / \
         pointpats {}.\n\n",
        rust["facilities"],
        p["versions"]["scipy"].as_str().unwrap_or("-"),
        p["versions"]["numpy"].as_str().unwrap_or("-"),
        p["versions"]["shapely"].as_str().unwrap_or("-"),
        p["versions"]["pointpats"].as_str().unwrap_or("-"),
    ));
    s.push_str("| measure | service | peer | peer / service | target |\n|---|---|---|---|---|\n");
    let row = |s: &mut String, what: &str, a: Option<f64>, b: Option<f64>, target: &str| {
        s.push_str(&format!(
            "| {what} | {} | {} | {} | {target} |\n",
            ms(a),
            ms(b),
            ratio(b, a)
        ));
    };
    let near = med(&c["nearest"]);
    row(
        &mut s,
        &format!(
            "(a) nearest facility, core `nearest_many` (min {}) vs `cKDTree(fac).query(inc)`",
            ms(f(&c["nearest_min_ms"]))
        ),
        near,
        med(&p["nearest"]),
        &format!("< 100 ms: {}", met(near, 100.0)),
    );
    row(
        &mut s,
        "(a) same, peer with `workers=-1` (all cores, as the service)",
        near,
        med(&p["nearest_workers_all"]),
        "",
    );
    row(
        &mut s,
        &format!(
            "(a) route `/proximity/nearest` ({} features, {:.0} MB GeoJSON; whole analysis with 0 sims)",
            r["nearest_features"],
            f(&r["nearest_bytes"]).unwrap_or(0.0) / 1e6
        ),
        med(&r["nearest"]),
        None,
        "(target is the core)",
    );
    let rings = med(&c["rings"]);
    row(
        &mut s,
        &format!(
            "(b) rings, core `count_near` (min {}) vs cKDTree(inc) `query_ball_point` x3 (query only)",
            ms(f(&c["rings_min_ms"]))
        ),
        rings,
        med(&p["rings_query"]),
        &format!("< 20 ms: {}", met(rings, 20.0)),
    );
    row(
        &mut s,
        "(b) rings, peer incl. building cKDTree(incidents)",
        rings,
        med(&p["rings_total"]),
        "",
    );
    let fast = med(&p["rings_tree_build_fast"])
        .zip(med(&p["rings_query"]))
        .map(|(a, b)| a + b);
    row(
        &mut s,
        "(b) rings, peer with the fast tree build (`balanced_tree=False, compact_nodes=False`)",
        rings,
        fast,
        "",
    );
    row(
        &mut s,
        "(b) rings, peer shapely `STRtree.query(dwithin)` incl. tree",
        rings,
        f(&p["shapely_rings_ms"]),
        "",
    );
    row(
        &mut s,
        "(b) route `/proximity?simulations=0` (whole analysis)",
        med(&r["rings_sims0"]),
        None,
        "(target is the rings: the route also runs dedup, KS, rho(d), L_cross)",
    );
    let g = med(&c["global_test_999"]);
    row(
        &mut s,
        "(c) global test, 999 sims, core `global_test` (share + KS) vs peer 99 sims x 999/99 (extrapolated)",
        g,
        f(&p["sims_999_extrapolated_ms"]),
        &format!("< 1 s: {}", met(g, 1000.0)),
    );
    row(
        &mut s,
        "(c) peer: measured 99 simulations (numpy+shapely CSR in hull, cKDTree count)",
        None,
        f(&p["sims_measured_ms"]),
        "",
    );
    row(
        &mut s,
        "(c) peer: pointpats.random.poisson + cKDTree, per simulation x 999 (extrapolated)",
        None,
        f(&p["pointpats_999_extrapolated_ms"]),
        "",
    );
    let rs = med(&r["sims999"]);
    row(
        &mut s,
        "(c) route `/proximity?simulations=999` (all: 3 variants + L_cross envelope)",
        rs,
        None,
        &format!("< 1 s: {}", met(rs, 1000.0)),
    );
    row(
        &mut s,
        "(c) route: 999 sims minus 0 sims",
        f(&r["sims_only_ms"]),
        None,
        "",
    );
    s.push_str(&format!(
        "| core `analyze` (the whole analysis the routes run), 0 / 999 sims | {} / {} | - | - | |\n",
        ms(med(&c["analyze_0"])),
        ms(med(&c["analyze_999"]))
    ));
    let st = &c["stages_ms"];
    if let Some(m) = st.as_object() {
        let parts: Vec<String> = m
            .iter()
            .map(|(k, v)| format!("{k} {:.1}", v.as_f64().unwrap_or(0.0)))
            .collect();
        s.push_str(&format!(
            "\nCore stages of one analysis (ms, single runs): {}.\n",
            parts.join(", ")
        ));
    }
    let a = &rust["agree"];
    let pa = &p["agree"];
    s.push_str(&format!(
        "\nAgreement: route vs core nearest max |Δd| {} m (the route rounds to cm), near_fid \
         mismatches {}, ring/count mismatches {}. Peer cKDTree on the service's coordinates: \
         nearest max |Δd| {} m, near_fid mismatches {} (+ {} exact ties), ring and count \
         mismatches {} of {}, incidents within 250 m {} (service) / {} (peer). Peer on its own \
         CSV coordinates (they differ from the service's by the 1e-7° rounding of the ingest \
         CSV, max {} m): nearest max |Δd| {} m, ring counts differing {} (total |Δ| {}). \
         Global test: window {} km² (service, convex hull) / {} km² (peer, scipy ConvexHull); \
         share within 250 m {} / {}; null share {} (service, pixel grid of the hull) / {} \
         (peer, mean of its simulations, sd {}); p_mc {} (service, 999) / {} (peer, 99).\n",
        g3(&a["route_vs_core_nearest_max_abs_m"]),
        a["route_vs_core_nearest_fid_mismatch"],
        a["route_vs_core_ring_mismatch"],
        g3(&pa["svc_nearest_max_abs_m"]),
        pa["svc_near_index_mismatch"],
        pa["svc_near_index_ties"],
        pa["svc_ring_mismatch"],
        pa["svc_ring_values"],
        r["global_999"]["within_radius"],
        pa["svc_within_radius"],
        g3(&pa["csv_vs_svc_coord_max_abs_m"]),
        g3(&pa["csv_nearest_max_abs_m"]),
        pa["csv_ring_values_differing"],
        pa["csv_ring_abs_diff"],
        g3(&p["service_window_area_km2"]),
        g3(&p["global"]["hull_area_km2"]),
        g3(&r["global_999"]["share_within"]),
        g3(&p["global"]["share_within"]),
        g3(&r["global_999"]["expected_share"]),
        g3(&p["global"]["sim_mean_share"]),
        g3(&p["global"]["sim_sd_share"]),
        r["global_999"]["p_mc"],
        p["global"]["p_mc"],
    ));
    s.push_str(&format!(
        "\nMemory: service process peak {:.0} MB (after the core runs {:.0} MB); peer peak {} MB.\n",
        f(&rust["mem"]["hwm_mb"]).unwrap_or(0.0),
        f(&rust["mem"]["core_hwm_mb"]).unwrap_or(0.0),
        p["peak_rss_mb"],
    ));
    s
}
