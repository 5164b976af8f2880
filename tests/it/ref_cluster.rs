//! Reference tests for `analysis::cluster` (DBSCAN), `analysis::hdbscan` and `analysis::hull`.
//!
//! Fixture: fixtures/reference/cluster/clusters.json, made by make_clusters.py (scikit-learn
//! DBSCAN, hdbscan package; versions in the file and the README).

use std::collections::HashMap;

use geo::{Intersects, Point};
use hotspots::analysis::cluster::{
    ClusterMethod, ClusterParams, ClusterPoint, cluster_points, dbscan,
};
use hotspots::analysis::hdbscan::hdbscan;
use hotspots::analysis::hull::{HullKind, PolygonKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/reference/cluster/clusters.json"
    );
    let text = std::fs::read_to_string(path).expect("fixture readable");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// (data set, case) pairs of the main set and the `duplicates` set for `method`.
fn datasets<'a>(fx: &'a Value, method: &str) -> Vec<(&'a Value, &'a Value)> {
    [fx, &fx["duplicates"]]
        .into_iter()
        .flat_map(|set| {
            set[method]
                .as_array()
                .expect("cases")
                .iter()
                .map(move |c| (set, c))
        })
        .collect()
}

fn points_of(v: &Value) -> Vec<[f64; 2]> {
    let arr = v["points"].as_array().expect("points");
    arr.iter()
        .map(|p| [p[0].as_f64().expect("x"), p[1].as_f64().expect("y")])
        .collect()
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_i64().expect("int"))
        .collect()
}

fn as_sklearn(labels: &[Option<u32>]) -> Vec<i64> {
    labels.iter().map(|l| l.map_or(-1, i64::from)).collect()
}

/// Adjusted Rand index (Hubert & Arabie 1985), noise (-1) treated as one more label, as
/// sklearn.metrics.adjusted_rand_score does.
fn adjusted_rand_index(a: &[i64], b: &[i64]) -> f64 {
    let c2 = |x: f64| x * (x - 1.0) / 2.0;
    let mut table: HashMap<(i64, i64), f64> = HashMap::new();
    let (mut ra, mut rb): (HashMap<i64, f64>, HashMap<i64, f64>) = Default::default();
    for (x, y) in a.iter().zip(b) {
        *table.entry((*x, *y)).or_default() += 1.0;
        *ra.entry(*x).or_default() += 1.0;
        *rb.entry(*y).or_default() += 1.0;
    }
    let index: f64 = table.values().map(|&v| c2(v)).sum();
    let sa: f64 = ra.values().map(|&v| c2(v)).sum();
    let sb: f64 = rb.values().map(|&v| c2(v)).sum();
    let expected = sa * sb / c2(a.len() as f64);
    let max = (sa + sb) / 2.0;
    if max == expected {
        1.0
    } else {
        (index - expected) / (max - expected)
    }
}

#[test]
fn ari_sanity() {
    assert_eq!(adjusted_rand_index(&[0, 0, 1, 1], &[5, 5, 7, 7]), 1.0);
    // sklearn: adjusted_rand_score([0,0,1,1],[0,0,1,2]) = 0.5714285714285715
    let v = adjusted_rand_index(&[0, 0, 1, 1], &[0, 0, 1, 2]);
    assert!((v - 0.571_428_571_428_571_5).abs() < 1e-12, "{v}");
}

/// Core points and every label (border points included) equal scikit-learn's. Border points
/// reachable from two clusters: sklearn gives them to the cluster it expands first, i.e. the one
/// with the lowest id (clusters are numbered by their lowest-index core point); ours do the same,
/// so the comparison is exact. The test also counts such contested border points, to show the
/// rule is exercised.
#[test]
fn dbscan_matches_sklearn_exactly() {
    let fx = fixture();
    let mut contested_total = 0;
    for (set, case) in datasets(&fx, "dbscan") {
        let pts = points_of(set);
        let eps = case["eps_m"].as_f64().expect("eps");
        let mp = case["min_points"].as_u64().expect("mp") as usize;
        let got = dbscan(&pts, eps, mp).expect("dbscan runs");
        let core: Vec<i64> = (0..pts.len())
            .filter(|&i| got.is_core[i])
            .map(|i| i as i64)
            .collect();
        assert_eq!(
            core,
            ints(&case["core_sample_indices"]),
            "core points eps={eps} mp={mp}"
        );
        assert_eq!(
            as_sklearn(&got.labels),
            ints(&case["labels"]),
            "labels eps={eps} mp={mp}"
        );
        contested_total += contested_borders(&pts, &got.is_core, &got.labels, eps);
    }
    assert!(
        contested_total > 0,
        "fixture should contain border points shared by clusters"
    );
}

/// scikit-learn's `dbscan_inner`, literally: neighbourhoods by brute force (`d² <= eps²`), then
/// a depth-first expansion from each unlabelled core point in input order.
fn sklearn_dbscan_brute(pts: &[[f64; 2]], eps: f64, min_samples: usize) -> (Vec<bool>, Vec<i64>) {
    let nb: Vec<Vec<usize>> = pts
        .iter()
        .map(|p| {
            (0..pts.len())
                .filter(|&j| (p[0] - pts[j][0]).powi(2) + (p[1] - pts[j][1]).powi(2) <= eps * eps)
                .collect()
        })
        .collect();
    let core: Vec<bool> = nb.iter().map(|n| n.len() >= min_samples).collect();
    let mut labels = vec![-1i64; pts.len()];
    let mut label = 0;
    for start in 0..pts.len() {
        if labels[start] != -1 || !core[start] {
            continue;
        }
        let (mut i, mut stack) = (start, Vec::new());
        loop {
            if labels[i] == -1 {
                labels[i] = label;
                if core[i] {
                    stack.extend(nb[i].iter().copied().filter(|&j| labels[j] == -1));
                }
            }
            match stack.pop() {
                Some(j) => i = j,
                None => break,
            }
        }
        label += 1;
    }
    (core, labels)
}

/// Integer coordinates with many duplicates and exact ties `d == eps` (3-4-5 triangles), against
/// the literal sklearn algorithm: the grid's cell edges and the `<=` rule must not matter.
#[test]
fn dbscan_matches_brute_force_on_ties_and_duplicates() {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    for round in 0..6 {
        let side = [40, 60, 120][round % 3];
        let n = 400 + 100 * round;
        let pts: Vec<[f64; 2]> = (0..n)
            .map(|_| {
                [
                    rng.random_range(0..side) as f64 * 3.0,
                    rng.random_range(0..side) as f64 * 4.0,
                ]
            })
            .collect();
        for (eps, mp) in [(5.0, 2), (5.0, 4), (12.0, 6), (25.0, 15)] {
            let got = dbscan(&pts, eps, mp).expect("dbscan");
            let (core, labels) = sklearn_dbscan_brute(&pts, eps, mp);
            assert_eq!(got.is_core, core, "core round={round} eps={eps} mp={mp}");
            assert_eq!(
                as_sklearn(&got.labels),
                labels,
                "labels round={round} eps={eps} mp={mp}"
            );
        }
    }
}

fn contested_borders(pts: &[[f64; 2]], core: &[bool], labels: &[Option<u32>], eps: f64) -> usize {
    (0..pts.len())
        .filter(|&i| !core[i] && labels[i].is_some())
        .filter(|&i| {
            let mut ids: Vec<u32> = (0..pts.len())
                .filter(|&j| core[j])
                .filter(|&j| {
                    let d2 = (pts[i][0] - pts[j][0]).powi(2) + (pts[i][1] - pts[j][1]).powi(2);
                    d2 <= eps * eps
                })
                .filter_map(|j| labels[j])
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids.len() > 1
        })
        .count()
}

/// HDBSCAN labels against the hdbscan package (exact MST): ARI >= 0.99 and the same number of
/// clusters. Tied mutual-reachability distances (an edge weighted by a core distance) let a point
/// join a child or its parent at the very same lambda depending on the MST edge order, so a
/// handful of points may sit in a different cluster or in noise. For every cluster whose
/// membership is identical to one of the package's (required: at least a third of them),
/// stability-based persistence must agree to 1e-9 relative.
#[test]
fn hdbscan_matches_package() {
    let fx = fixture();
    for (set, case) in datasets(&fx, "hdbscan") {
        let pts = points_of(set);
        let mcs = case["min_cluster_size"].as_u64().expect("mcs") as usize;
        let ms = case["min_samples"].as_u64().expect("ms") as usize;
        let got = hdbscan(&pts, mcs, ms).expect("hdbscan runs");
        let want = ints(&case["labels"]);
        let mine = as_sklearn(&got.labels);
        let ari = adjusted_rand_index(&mine, &want);
        assert!(ari >= 0.99, "ARI {ari} for mcs={mcs} ms={ms}");
        let pers: Vec<f64> = case["persistence"]
            .as_array()
            .expect("persistence")
            .iter()
            .map(|v| v.as_f64().expect("f64"))
            .collect();
        assert_eq!(
            got.n_clusters as usize,
            pers.len(),
            "cluster count mcs={mcs}"
        );
        let mut identical = 0;
        for c in 0..got.n_clusters as i64 {
            let members: Vec<usize> = (0..mine.len()).filter(|&i| mine[i] == c).collect();
            let theirs = want[members[0]];
            let same = theirs >= 0
                && want.iter().filter(|&&w| w == theirs).count() == members.len()
                && members.iter().all(|&i| want[i] == theirs);
            if same {
                identical += 1;
                let (a, b) = (got.persistence[c as usize], pers[theirs as usize]);
                assert!(
                    (a - b).abs() <= 1e-9 * b.abs().max(1e-12),
                    "persistence {a} vs {b}"
                );
            }
        }
        assert!(
            3 * identical >= pers.len(),
            "only {identical} identical clusters, mcs={mcs}"
        );
    }
}

fn incidents(pts: &[[f64; 2]], seed: u64) -> Vec<ClusterPoint> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    pts.iter()
        .map(|p| ClusterPoint {
            x: p[0],
            y: p[1],
            category: rng.random_range(0..4),
            source: rng.random_range(0..3),
            occurred_at: 1_700_000_000 + rng.random_range(0..31_536_000),
            // coarse "cell": 20 m squares stand in for fine H3 cells
            cell: ((p[0] / 20.0).floor() as u64) << 32 | (p[1] / 20.0).floor() as u64,
        })
        .collect()
}

fn check_summary(points: &[ClusterPoint], params: &ClusterParams) {
    let res = cluster_points(points, params).expect("clusters");
    let clustered: usize = res.clusters.iter().map(|c| c.count).sum();
    assert_eq!(clustered + res.noise_count, points.len());
    assert_eq!(res.n_clusters, res.clusters.len());
    for c in &res.clusters {
        assert_eq!(c.category_counts.values().sum::<usize>(), c.count);
        assert_eq!(c.source_counts.values().sum::<usize>(), c.count);
        assert!(c.distinct_locations >= 1 && c.distinct_locations <= c.count);
        assert!(c.first_occurred_at <= c.last_occurred_at);
        let members: Vec<usize> = (0..points.len())
            .filter(|&i| res.labels[i] == Some(c.cluster_id))
            .collect();
        assert_eq!(members.len(), c.count);
        for &i in &members {
            let p = Point::new(points[i].x, points[i].y);
            assert!(
                c.polygon.intersects(&p),
                "point {i} outside cluster {}",
                c.cluster_id
            );
        }
        if params.method == ClusterMethod::Hdbscan {
            assert!(c.persistence.is_some_and(f64::is_finite));
        }
    }
}

/// Every clustered point lies inside or on its cluster's polygon; all counts add up.
#[test]
fn polygons_contain_members_and_counts_add_up() {
    let fx = fixture();
    let points = incidents(&points_of(&fx), 7);
    for (method, hull) in [
        (ClusterMethod::Dbscan, HullKind::Convex),
        (ClusterMethod::Dbscan, HullKind::Concave),
        (ClusterMethod::Hdbscan, HullKind::Concave),
    ] {
        let params = ClusterParams {
            method,
            hull,
            eps_m: 15.0,
            min_points: 3,
            min_cluster_size: 15,
            concavity: 1.5,
            ..Default::default()
        };
        check_summary(&points, &params);
    }
}

/// Coincident and collinear clusters get buffers; duplicates do not break HDBSCAN.
#[test]
fn degenerate_clusters() {
    let mut pts = vec![[100.0, 100.0]; 12];
    pts.extend((0..12).map(|i| [500.0 + 3.0 * i as f64, 800.0 + 1.5 * i as f64]));
    pts.push([5_000.0, 5_000.0]);
    let points = incidents(&pts, 3);
    for method in [ClusterMethod::Dbscan, ClusterMethod::Hdbscan] {
        let params = ClusterParams {
            method,
            eps_m: 5.0,
            min_points: 3,
            min_cluster_size: 5,
            ..Default::default()
        };
        let res = cluster_points(&points, &params).expect("clusters");
        assert_eq!(res.n_clusters, 2, "{method:?}");
        assert_eq!(res.noise_count, 1);
        assert!(
            res.clusters
                .iter()
                .all(|c| c.polygon_kind == PolygonKind::Buffer)
        );
        let json = serde_json::to_string(&res).expect("serialises");
        assert!(!json.contains("NaN") && !json.contains("inf"));
        check_summary(&points, &params);
    }
    let few = cluster_points(&points[..2], &ClusterParams::default());
    assert_eq!(few.map_err(|e| e.code()).err(), Some("too_few_points"));
}
