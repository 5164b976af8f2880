//! Reference tests of `analysis::trend` and `analysis::emerging` against the committed values
//! in `fixtures/reference/emerging/` (pymannkendall, scipy, a numpy brute-force space-time
//! Gi*; see the README there), the 17 categories on hand-made series, and planted patterns.

use hotspots::analysis::emerging::{
    Category, CompareParams, EmergingError, EmergingParams, TimeBin, classify,
    compare::binom_test_two_sided, compare_periods, emerging_hot_spots,
};
use hotspots::analysis::stats::two_sided_p;
use hotspots::analysis::trend::mann_kendall;
use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/reference/emerging/");

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{DIR}{name}")).expect("fixture");
    serde_json::from_str(&text).expect("json")
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

#[test]
fn mann_kendall_equals_pymannkendall_and_scipy() {
    let cases = load("mann_kendall.json");
    for case in cases.as_array().expect("list") {
        let name = case["name"].as_str().expect("name");
        let x: Vec<f64> = case["x"]
            .as_array()
            .expect("x")
            .iter()
            .map(|v| v.as_f64().expect("f64"))
            .collect();
        let mk = mann_kendall(&x).expect("valid series");
        for (field, ours) in [
            ("s", mk.s),
            ("var_s", mk.var_s),
            ("z", mk.z),
            ("p", mk.p),
            ("tau", mk.tau),
            ("slope", mk.slope),
            ("intercept", mk.intercept),
        ] {
            let theirs = case[field].as_f64().expect("number");
            assert!(
                close(ours, theirs, 1e-12),
                "{name}.{field}: {ours} vs pymannkendall {theirs}"
            );
        }
        if let Some(p) = case["scipy_kendalltau_p"].as_f64() {
            // scipy's asymptotic Kendall tau-b p has no continuity correction.
            let ours = two_sided_p(mk.s / mk.var_s.sqrt());
            assert!(close(ours, p, 1e-12), "{name}: {ours} vs scipy {p}");
        }
    }
}

#[test]
fn space_time_gi_equals_numpy_brute_force() {
    let fixture = load("gi_cube.json");
    let incidents: Vec<(u64, i64)> = fixture["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .map(|r| (r[0].as_u64().expect("cell"), r[1].as_i64().expect("t")))
        .collect();
    for case in fixture["cases"].as_array().expect("cases") {
        let mut params: EmergingParams =
            serde_json::from_value(case["params"].clone()).expect("params");
        params.min_bins = 3;
        let result = emerging_hot_spots(&incidents, &params).expect("analysis");
        let cells: Vec<&str> = case["cells"]
            .as_array()
            .expect("cells")
            .iter()
            .map(|c| c.as_str().expect("h3"))
            .collect();
        let ours: Vec<&str> = result.cells.iter().map(|c| c.h3.as_str()).collect();
        assert_eq!(ours, cells, "cell set for {params:?}");
        let bin_starts: Vec<String> =
            serde_json::from_value(case["bin_starts"].clone()).expect("bins");
        assert_eq!(result.summary.bin_starts, bin_starts);
        let t_n = bin_starts.len();
        for (c, cell) in result.cells.iter().enumerate() {
            for (t, v) in cell.series.iter().enumerate() {
                let o = c * t_n + t;
                assert_eq!(v.count as u64, case["counts"][o].as_u64().expect("count"));
                let (z, p) = (
                    case["z"][o].as_f64().expect("z"),
                    case["p"][o].as_f64().expect("p"),
                );
                assert!(
                    close(v.z, z, 1e-10),
                    "{} {}: z {} vs {z}",
                    cell.h3,
                    v.bin_start,
                    v.z
                );
                assert!(
                    (v.p - p).abs() <= 1e-12,
                    "{} {}: p {} vs {p}",
                    cell.h3,
                    v.bin_start,
                    v.p
                );
                assert_eq!(
                    v.bin as i64,
                    case["bins"][o].as_i64().expect("bin"),
                    "{} {}",
                    cell.h3,
                    v.bin_start
                );
            }
        }
    }
}

#[test]
fn binomial_test_equals_scipy_binomtest() {
    for case in load("binomtest.json").as_array().expect("list") {
        let (k, n, p) = (
            case["k"].as_u64().expect("k"),
            case["n"].as_u64().expect("n"),
            case["p"].as_f64().expect("p"),
        );
        let ours = binom_test_two_sided(k, n, p);
        let theirs = case["pvalue"].as_f64().expect("pvalue");
        assert!(
            (ours - theirs).abs() <= 1e-9 * theirs.max(1e-300),
            "k={k} n={n} p={p}: {ours} vs {theirs}"
        );
    }
}

// ------------------------------------------------------------ the 17 categories

/// Category of a hand-made series: bins as given, trend = Mann-Kendall of `z`.
fn category(bins: &[i8], z: &[f64]) -> Category {
    classify(bins, &mann_kendall(z).expect("trend"))
}

/// Mirror of a hot-spot series into a cold-spot one.
fn neg(bins: &[i8], z: &[f64]) -> (Vec<i8>, Vec<f64>) {
    (
        bins.iter().map(|b| -b).collect(),
        z.iter().map(|v| -v).collect(),
    )
}

const FLAT: [f64; 10] = [1.0; 10];

/// (category met, bins, z, category of the version one bin off, its bins, its z)
type Case = (Category, Vec<i8>, Vec<f64>, Category, Vec<i8>, Vec<f64>);

fn hot_cases() -> Vec<Case> {
    use Category::*;
    let up: Vec<f64> = (0..10).map(|i| 2.0 + 0.1 * i as f64).collect();
    let down: Vec<f64> = (0..10).map(|i| 3.9 - 0.1 * i as f64).collect();
    // No trend: the first value is low, the rest wander (asserted below).
    let wander = vec![1.0, 2.6, 3.0, 2.5, 2.9, 2.4, 3.1, 2.7, 2.2, 2.8];
    let f = FLAT.to_vec();
    vec![
        (
            NewHotSpot,
            vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            f.clone(),
            SporadicHotSpot,
            vec![2, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            f.clone(),
        ),
        (
            ConsecutiveHotSpot,
            vec![0, 0, 0, 0, 0, 0, 0, 2, 3, 2],
            f.clone(),
            SporadicHotSpot,
            vec![0, 0, 0, 0, 0, 2, 0, 2, 3, 2],
            f.clone(),
        ),
        (
            IntensifyingHotSpot,
            vec![0, 2, 2, 2, 2, 2, 2, 2, 2, 3],
            up.clone(),
            ConsecutiveHotSpot,
            vec![0, 0, 2, 2, 2, 2, 2, 2, 2, 3],
            up.clone(),
        ),
        (
            PersistentHotSpot,
            vec![0, 2, 2, 2, 2, 2, 2, 2, 2, 2],
            wander.clone(),
            ConsecutiveHotSpot,
            vec![0, 0, 2, 2, 2, 2, 2, 2, 2, 2],
            wander.clone(),
        ),
        (
            DiminishingHotSpot,
            vec![3, 3, 3, 2, 2, 2, 2, 2, 2, 2],
            down.clone(),
            HistoricalHotSpot,
            vec![3, 3, 3, 2, 2, 2, 2, 2, 2, 0],
            down.clone(),
        ),
        (
            SporadicHotSpot,
            vec![2, 0, 0, 2, 0, 0, 0, 0, 0, 2],
            f.clone(),
            OscillatingHotSpot,
            vec![2, 0, -2, 2, 0, 0, 0, 0, 0, 2],
            f.clone(),
        ),
        (
            OscillatingHotSpot,
            vec![-2, 0, 0, 2, 0, 0, 0, 0, 0, 2],
            f.clone(),
            SporadicHotSpot,
            vec![-1, 0, 0, 2, 0, 0, 0, 0, 0, 2],
            f.clone(),
        ),
        (
            HistoricalHotSpot,
            vec![2, 2, 2, 2, 2, 2, 2, 2, 2, 0],
            f.clone(),
            NoPattern,
            vec![1, 2, 2, 2, 2, 2, 2, 2, 2, 0],
            f.clone(),
        ),
    ]
}

fn mirror(c: Category) -> Category {
    use Category::*;
    match c {
        NewHotSpot => NewColdSpot,
        ConsecutiveHotSpot => ConsecutiveColdSpot,
        IntensifyingHotSpot => IntensifyingColdSpot,
        PersistentHotSpot => PersistentColdSpot,
        DiminishingHotSpot => DiminishingColdSpot,
        SporadicHotSpot => SporadicColdSpot,
        OscillatingHotSpot => OscillatingColdSpot,
        HistoricalHotSpot => HistoricalColdSpot,
        other => other,
    }
}

#[test]
fn each_category_is_met_by_its_rule_and_missed_one_bin_off() {
    let wander = [1.0, 2.6, 3.0, 2.5, 2.9, 2.4, 3.1, 2.7, 2.2, 2.8];
    assert!(
        mann_kendall(&wander).expect("trend").p >= 0.05,
        "the 'no trend' series has none"
    );
    assert!(
        mann_kendall(&(0..10).map(f64::from).collect::<Vec<_>>())
            .expect("trend")
            .p
            < 0.05
    );
    let mut seen = std::collections::BTreeSet::new();
    for (want, bins, z, off_want, off_bins, off_z) in hot_cases() {
        // Exactly one bin differs between the series that meets the rule and the one that misses.
        let diff = bins.iter().zip(&off_bins).filter(|(a, b)| a != b).count();
        assert_eq!(diff, 1, "{want:?}: the 'off' series must differ in one bin");
        assert_eq!(category(&bins, &z), want, "{bins:?}");
        assert_eq!(
            category(&off_bins, &off_z),
            off_want,
            "{want:?} one bin off: {off_bins:?}"
        );
        let (cb, cz) = neg(&bins, &z);
        let (ob, oz) = neg(&off_bins, &off_z);
        assert_eq!(category(&cb, &cz), mirror(want), "{cb:?}");
        assert_eq!(category(&ob, &oz), mirror(off_want), "{ob:?}");
        seen.insert(want);
        seen.insert(mirror(want));
    }
    // No pattern, and one bin off it (a hot final bin) is new.
    assert_eq!(category(&[0; 10], &FLAT), Category::NoPattern);
    assert_eq!(
        category(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 3], &FLAT),
        Category::NewHotSpot
    );
    seen.insert(Category::NoPattern);
    assert_eq!(seen.len(), 17, "all 17 categories produced");
}

#[test]
fn ninety_percent_rule_counts_bins_in_integers() {
    // 36 bins: 33 hot (91.7 %) is persistent, 32 hot (88.9 %) is consecutive.
    let mut bins = vec![2i8; 36];
    bins[..3].fill(0);
    let z: Vec<f64> = (0..36)
        .map(|i| if i % 2 == 0 { 2.5 } else { 3.0 })
        .collect();
    assert!(mann_kendall(&z).expect("trend").p >= 0.05);
    assert_eq!(category(&bins, &z), Category::PersistentHotSpot);
    bins[3] = 0;
    assert_eq!(category(&bins, &z), Category::ConsecutiveHotSpot);
    // Exactly 90 % (9 of 10, final not hot) is historical.
    assert_eq!(
        category(&[2, 2, 2, 2, 2, 2, 2, 2, 2, 1], &FLAT),
        Category::HistoricalHotSpot
    );
    // 90 % confidence (|bin| = 1) is not significant for the categories.
    assert_eq!(
        category(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 1], &FLAT),
        Category::NoPattern
    );
}

#[test]
fn labels_are_snake_case_strings() {
    let json = serde_json::to_string(&[
        Category::NewHotSpot,
        Category::NoPattern,
        Category::OscillatingColdSpot,
    ])
    .expect("json");
    assert_eq!(
        json,
        r#"["new_hot_spot","no_pattern","oscillating_cold_spot"]"#
    );
    assert_eq!(
        Category::IntensifyingColdSpot.label(),
        "intensifying_cold_spot"
    );
    assert_eq!(Category::HistoricalHotSpot.arcgis_code(), 8);
    assert_eq!(Category::NewColdSpot.arcgis_code(), -1);
}

// ------------------------------------------------------------ guards and parameters

#[test]
fn params_come_from_a_query_string_and_are_validated() {
    let p: EmergingParams = serde_urlencoded::from_str(
        "resolution=8&bin=week&k=2&time_k=3&kernel=gaussian&fdr=false&min_bins=12&start=2024-01-01",
    )
    .expect("query");
    assert_eq!(
        (p.resolution, p.bin, p.k, p.time_k, p.fdr, p.min_bins),
        (8, TimeBin::Week, 2, 3, false, 12)
    );
    assert!(serde_urlencoded::from_str::<EmergingParams>("bogus=1").is_err());
    let bad = |q: &str| {
        let p: EmergingParams = serde_urlencoded::from_str(q).expect("query");
        p.validate().expect_err("invalid").code()
    };
    assert_eq!(bad("resolution=13"), "invalid_resolution");
    assert_eq!(bad("k=11"), "invalid_k");
    assert_eq!(bad("time_k=13"), "invalid_time_k");
    assert_eq!(bad("min_bins=2"), "invalid_min_bins");
    assert_eq!(bad("start=2024-02-30"), "invalid_date");
    assert_eq!(bad("start=2024-03-01&end=2024-02-01"), "empty_time_window");
}

fn cell12(i: u64) -> u64 {
    // Res-12 children of neighbouring res-9 cells around Zaandam.
    use h3o::{LatLng, Resolution};
    let c = LatLng::new(52.44, 4.83)
        .expect("ll")
        .to_cell(Resolution::Nine);
    let disk: Vec<h3o::CellIndex> = c.grid_disk(3);
    u64::from(
        disk[(i as usize) % disk.len()]
            .center_child(Resolution::Twelve)
            .expect("child"),
    )
}

#[test]
fn guards_give_typed_errors() {
    let jan = TimeBin::Month.index_of(1_704_067_200); // 2024-01
    let month = |m: i64| TimeBin::Month.start_of(jan + m) + 86_400;
    let short: Vec<(u64, i64)> = (0..50).map(|i| (cell12(i), month(i as i64 % 5))).collect();
    let err = emerging_hot_spots(&short, &EmergingParams::default()).expect_err("5 months");
    assert_eq!(
        err,
        EmergingError::TooFewBins {
            bins: 5,
            min_bins: 10
        }
    );
    assert_eq!(err.code(), "too_few_time_bins");
    assert_eq!(
        emerging_hot_spots(&[], &EmergingParams::default())
            .expect_err("empty")
            .code(),
        "no_incidents"
    );
    let bad_cell = [(12345u64, 1_704_067_200i64)];
    assert_eq!(
        emerging_hot_spots(&bad_cell, &EmergingParams::default())
            .expect_err("cell")
            .code(),
        "invalid_h3_cell"
    );
    // k = 0, one incident per (cell, month) everywhere: all counts equal -> zero variance.
    let flat: Vec<(u64, i64)> = (0..12).map(|m| (cell12(0), month(m))).collect();
    let p = EmergingParams {
        k: 0,
        ..EmergingParams::default()
    };
    assert_eq!(
        emerging_hot_spots(&flat, &p).expect_err("flat"),
        EmergingError::ZeroVariance
    );
}
