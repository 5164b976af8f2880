//! Reference tests for `analysis::density` against fixtures/reference/density/density.json
//! (numpy exact kernel sums, closed-form rectangle edge correction, ArcGIS radius rule in numpy,
//! spatstat `bw.ppl`; see make_density.py, make_ppl.R and the README there).

use geo::{MultiPolygon, Rect, coord};
use hotspots::analysis::density::{
    BandwidthMethod, BandwidthSource, DensityParams, Kernel, Window, bandwidth, density_at_points,
    density_grid, resolve_bandwidth,
};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/reference/density/density.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON")
}

fn pairs(v: &Value) -> Vec<[f64; 2]> {
    let a = v.as_array().expect("array");
    a.iter()
        .map(|p| [p[0].as_f64().expect("x"), p[1].as_f64().expect("y")])
        .collect()
}

fn opt_floats(v: &Value) -> Vec<Option<f64>> {
    v.as_array()
        .expect("array")
        .iter()
        .map(Value::as_f64)
        .collect()
}

fn window(w: &Value) -> MultiPolygon<f64> {
    let w: Vec<f64> = w
        .as_array()
        .expect("window")
        .iter()
        .map(|v| v.as_f64().expect("f"))
        .collect();
    let r = Rect::new(coord! { x: w[0], y: w[2] }, coord! { x: w[1], y: w[3] });
    MultiPolygon(vec![r.to_polygon()])
}

fn kernel(v: &Value) -> Kernel {
    match v.as_str() {
        Some("gaussian") => Kernel::Gaussian,
        _ => Kernel::Quartic,
    }
}

/// Largest |got − want| over cells, as a fraction of the reference peak; `None` patterns equal.
fn max_rel_dev(got: &[Option<f64>], want: &[Option<f64>]) -> f64 {
    assert_eq!(got.len(), want.len());
    let peak = want.iter().flatten().fold(0.0, |m: f64, v| m.max(*v));
    got.iter()
        .zip(want)
        .map(|(g, w)| match (g, w) {
            (Some(g), Some(w)) => (g - w).abs() / peak,
            (None, None) => 0.0,
            _ => panic!("window mask differs: {g:?} vs {w:?}"),
        })
        .fold(0.0, f64::max)
}

/// Exact mode equals the numpy sum to 1e-9 of the peak; fast mode to 1e-4 (the issue's bar).
/// Grid geometry and total mass match too.
#[test]
fn grids_match_numpy_exact_sums() {
    let fx = fixture();
    let pts = pairs(&fx["points"]);
    for case in fx["grids"].as_array().expect("grids") {
        let win = (!case["window"].is_null()).then(|| window(&case["window"]));
        let want = opt_floats(&case["values_km2"]);
        for exact in [true, false] {
            let p = DensityParams {
                bandwidth_m: case["bandwidth_m"].as_f64(),
                kernel: kernel(&case["kernel"]),
                cell_m: case["cell_m"].as_f64().expect("cell"),
                exact,
                ..Default::default()
            };
            let g = density_grid(&pts, &p, win.as_ref()).expect("grid");
            assert_eq!(g.origin_x, case["origin_x"].as_f64().expect("ox"));
            assert_eq!(g.origin_y, case["origin_y"].as_f64().expect("oy"));
            assert_eq!(g.ncols as u64, case["ncols"].as_u64().expect("nc"));
            assert_eq!(g.nrows as u64, case["nrows"].as_u64().expect("nr"));
            assert_eq!(g.edge_corrected, win.is_some());
            let dev = max_rel_dev(&g.values_km2, &want);
            let tol = if exact { 1e-9 } else { 1e-4 };
            assert!(
                dev <= tol,
                "{:?} exact={exact}: deviation {dev:e} of peak",
                p.kernel
            );
            let mass = case["total_mass"].as_f64().expect("mass");
            assert!(
                (g.total_mass - mass).abs() <= tol * mass,
                "mass {} vs {mass}",
                g.total_mass
            );
        }
    }
}

#[test]
fn samples_match_numpy_exact_sums() {
    let fx = fixture();
    let pts = pairs(&fx["points"]);
    let s = &fx["samples"];
    let want = opt_floats(&s["values_km2"]);
    for (exact, tol) in [(true, 1e-9), (false, 1e-4)] {
        let p = DensityParams {
            bandwidth_m: s["bandwidth_m"].as_f64(),
            kernel: kernel(&s["kernel"]),
            exact,
            ..Default::default()
        };
        let got = density_at_points(&pts, &pairs(&s["points"]), &p, None).expect("samples");
        let dev = max_rel_dev(&got.values_km2, &want);
        assert!(dev <= tol, "exact={exact}: deviation {dev:e}");
    }
}

/// Samples with the rectangle window: the uniform edge correction at each sample point equals the
/// closed form (exact mode 1e-9 of the peak, fast 1e-4); samples outside the window are `None`.
#[test]
fn windowed_samples_match_closed_form() {
    let fx = fixture();
    let pts = pairs(&fx["points"]);
    let s = &fx["samples"];
    let w = window(&fx["window"]);
    let want = opt_floats(&s["windowed_values_km2"]);
    for (exact, tol) in [(true, 1e-9), (false, 1e-4)] {
        let p = DensityParams {
            bandwidth_m: s["bandwidth_m"].as_f64(),
            kernel: Kernel::Gaussian,
            exact,
            ..Default::default()
        };
        let got = density_at_points(&pts, &pairs(&s["points"]), &p, Some(&w)).expect("samples");
        assert!(got.edge_corrected);
        let dev = max_rel_dev(&got.values_km2, &want);
        assert!(dev <= tol, "exact={exact}: deviation {dev:e}");
    }
}

/// Quartic kernel mass inside the window against scipy `dblquad`: 1e-6 absolute (Simpson rule
/// over bands of r/64 in y, exact in x; measured 5e-9).
#[test]
fn quartic_window_mass_matches_quadrature() {
    let fx = fixture();
    let w = window(&fx["window"]);
    let r = fx["quartic_radius_m"].as_f64().expect("r");
    let win = Window::new(&w, Kernel::Quartic, r).expect("window");
    for row in fx["quartic_window_mass"].as_array().expect("rows") {
        let (x, y, m) = (
            row[0].as_f64().expect("x"),
            row[1].as_f64().expect("y"),
            row[2].as_f64().expect("m"),
        );
        let got = win.mass(x, y);
        assert!((got - m).abs() < 1e-6, "mass at ({x}, {y}): {got} vs {m}");
    }
}

#[test]
fn arcgis_radius_matches_numpy() {
    let fx = fixture();
    let pts = pairs(&fx["points"]);
    let want = fx["arcgis_radius_m"].as_f64().expect("radius");
    let got = bandwidth::arcgis_radius(&pts).expect("radius");
    assert!((got - want).abs() <= 1e-12 * want, "{got} vs {want}");
    let (h, src) = resolve_bandwidth(&pts, &DensityParams::default(), None).expect("auto");
    assert_eq!((h, src), (got, BandwidthSource::Arcgis));
}

/// spatstat `bw.ppl(X, shortcut=TRUE)` with and without edge correction (rectangle window): same
/// candidates, criterion values to 1e-9 relative (both are leave-one-out sums reaching
/// max(8σ, 2·max nn distance), and both edge masses are exact for a rectangle), same choice.
#[test]
fn ppl_matches_spatstat() {
    let fx = fixture();
    let n = fx["ppl_n"].as_u64().expect("n") as usize;
    let pts = &pairs(&fx["points"])[..n];
    let w = window(&fx["window"]);
    let ws: Vec<f64> = fx["window"]
        .as_array()
        .expect("w")
        .iter()
        .map(|v| v.as_f64().expect("f"))
        .collect();
    let diameter = ((ws[1] - ws[0]).powi(2) + (ws[3] - ws[2]).powi(2)).sqrt();
    for (case, win, tol) in [("plain", None, 1e-9), ("edge", Some(&w), 1e-9)] {
        let want = &fx["ppl"][case];
        let got = bandwidth::ppl(pts, Kernel::Gaussian, win, diameter).expect("ppl");
        let hs: Vec<f64> = opt_floats(&want["h"]).into_iter().flatten().collect();
        for (a, b) in got.candidates_m.iter().zip(&hs) {
            assert!((a - b).abs() <= 1e-12 * b, "candidate {a} vs {b}");
        }
        for (a, b) in got.cv.iter().zip(opt_floats(&want["cv"])) {
            match (a, b) {
                (Some(a), Some(b)) => {
                    assert!((a - b).abs() <= tol * b.abs(), "{case}: cv {a} vs {b}")
                }
                (None, None) => {}
                _ => panic!("{case}: finite/infinite mismatch {a:?} vs {b:?}"),
            }
        }
        let chosen = want["chosen"].as_f64().expect("chosen");
        assert!(
            (got.bandwidth_m - chosen).abs() <= 1e-12 * chosen,
            "{case}: {} vs {chosen}",
            got.bandwidth_m
        );
    }
    let p = DensityParams {
        bandwidth_method: BandwidthMethod::Ppl,
        kernel: Kernel::Gaussian,
        ..Default::default()
    };
    let (h, src) = resolve_bandwidth(pts, &p, Some(&w)).expect("ppl bandwidth");
    let chosen = fx["ppl"]["edge"]["chosen"].as_f64().expect("chosen");
    assert!(
        (h - chosen).abs() <= 1e-12 * chosen && src == BandwidthSource::Ppl,
        "{h} {src:?}"
    );
}

/// Quartic fast mode is exact (compact support), and edge correction leaves mass ≈ n inside
/// the window.
#[test]
fn quartic_fast_equals_exact_and_edge_mass() {
    let fx = fixture();
    let pts = pairs(&fx["points"]);
    let w = window(&fx["window"]);
    let base = DensityParams {
        bandwidth_m: Some(250.0),
        cell_m: 25.0,
        ..Default::default()
    };
    let fast = density_grid(&pts, &base, Some(&w)).expect("fast");
    let exact = density_grid(
        &pts,
        &DensityParams {
            exact: true,
            ..base.clone()
        },
        Some(&w),
    )
    .expect("exact");
    assert!(max_rel_dev(&fast.values_km2, &exact.values_km2) < 1e-12);
    let n = pts.len() as f64;
    assert!(
        (fast.total_mass - n).abs() < 0.02 * n,
        "mass {} vs n {n}",
        fast.total_mass
    );
    let plain = density_grid(
        &pts,
        &DensityParams {
            edge_correction: false,
            ..base
        },
        Some(&w),
    )
    .expect("plain");
    assert!(plain.total_mass < fast.total_mass && !plain.edge_corrected);
}
