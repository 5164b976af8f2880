//! Reference tests of concentration (Gini, generalized Gini, Lorenz, top shares, known-to) and
//! coverage (overlap matrices, hot spots without signal) against hand computations, numpy and
//! an O(n²) Python brute force (fixtures/reference/concentration, made by
//! make_concentration.py; provenance in its README), and against the planted heavy tail of the
//! synthetic fixtures.

use h3o::{CellIndex, LatLng, Resolution};
use hotspots::analysis::concentration::{
    self, Concentration, ConcentrationBy, ConcentrationError, ConcentrationParams,
};
use hotspots::analysis::coverage::{self, CovIncident, CoverageError, CoverageParams};
use serde_json::Value;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/reference/concentration/"
);

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{DIR}{name}")).expect("fixture present");
    serde_json::from_str(&text).expect("valid json")
}

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("u64"))
        .collect()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

fn conc(counts: &[u64], total: Option<u64>) -> Concentration {
    concentration::concentration(counts, total, &ConcentrationParams::default()).expect("ok")
}

#[test]
fn ginis_equal_hand_computed_values() {
    // 10 places, counts 3,1,1 and seven zeros (the lorenzgini vignette, Figure 2).
    // Ascending x = 0×7, 1, 1, 3 at ranks i = 8, 9, 10; n = 10, N = 5.
    // S = Σ(2i − n − 1)x = (16−11)·1 + (18−11)·1 + (20−11)·3 = 5 + 7 + 27 = 39.
    // G = S/(nN) = 39/50 = 0.78 (the vignette's G = .78).
    // G' = max(1, n/N)(G − 1) + 1 = 2·(−0.22) + 1 = 0.56 (= (S − N(n−N))/N² = (39−25)/25).
    // (The vignette caption prints G' = .58; its own formula, and the area ratio
    // (area between the Lorenz curve and the max-equality line) / (area above that line)
    // = (0.89 − 0.75)/0.25 = 0.56, both give 0.56.)
    let c = conc(&[3, 1, 1], Some(10));
    assert!(close(c.gini, 0.78, 1e-15), "{}", c.gini);
    assert!(
        close(c.gini_generalized, 0.56, 1e-15),
        "{}",
        c.gini_generalized
    );
    assert!(c.sparse);
    // Top 10 % = 1 unit = 3 of 5 incidents; top 20 % = 2 units = 4; top 5 % = half a unit of 3
    // (interpolated) = 1.5; top 1 % = 0.1 unit = 0.3 incidents.
    let tops: Vec<f64> = c.top_shares.iter().map(|t| t.incidents).collect();
    for (got, want) in tops.iter().zip([0.3, 1.5, 3.0, 4.0]) {
        assert!(close(*got, want, 1e-12), "{tops:?}");
    }
    // Half of 5 = 2.5: the first unit has 3 ≥ 2.5, so 1 unit.
    assert_eq!(c.units_for_half, 1);
    // Repeat units: only the unit with 3.
    assert_eq!((c.repeat_units, c.repeat_incidents), (1, 3));
    assert!(close(c.repeat_incidents_share, 0.6, 1e-15));

    // lorenzgini docs: c(5,2,1,0×7): ranks 8, 9, 10, S = 5·1 + 7·2 + 9·5 = 64, N = 8,
    // G = 64/80 = 0.8, G' = (64 − 8·2)/64 = 0.75 (documented: 0.8 and 0.75).
    let c = conc(&[5, 2, 1, 0, 0, 0, 0, 0, 0, 0], None);
    assert!(close(c.gini, 0.8, 1e-15) && close(c.gini_generalized, 0.75, 1e-15));

    // lorenzgini docs: c(10,8,2,0×7): N = 20 ≥ n = 10, so G' = G.
    // S = 5·2 + 7·8 + 9·10 = 156, G = 156/200 = 0.78.
    let c = conc(&[10, 8, 2], Some(10));
    assert!(close(c.gini, 0.78, 1e-15) && c.gini_generalized == c.gini && !c.sparse);

    // One incident among 10 places: G = 9/10 = 0.9, but it is as equal as 1 incident can be:
    // G' = (9 − 1·9)/1 = 0.
    let c = conc(&[1], Some(10));
    assert!(close(c.gini, 0.9, 1e-15) && c.gini_generalized == 0.0);

    // Everything at one of 10 places, N = 5 < n: S = 9·5 = 45, G = 45/50 = 0.9,
    // G' = (45 − 5·5)/25 = 0.8 = 1 − 1/N (the biased generalized Gini's maximum).
    let c = conc(&[5], Some(10));
    assert!(close(c.gini, 0.9, 1e-15) && close(c.gini_generalized, 0.8, 1e-15));

    // Maximal equality with N < n: 4 units with one incident among 8: S = Σ_{i=5..8}(2i−9)
    // = 1+3+5+7 = 16, G = 16/32 = 0.5, G' = (16 − 4·4)/16 = 0.
    let c = conc(&[1, 1, 1, 1], Some(8));
    assert!(close(c.gini, 0.5, 1e-15) && c.gini_generalized == 0.0);

    // Perfect equality: G = G' = 0; everything at one of 4 units: S = 3·N, G = 3/4.
    let c = conc(&[2, 2, 2, 2], None);
    assert!(c.gini == 0.0 && c.gini_generalized == 0.0);
    let c = conc(&[0, 0, 12, 0], None);
    assert!(close(c.gini, 0.75, 1e-15) && close(c.gini_generalized, 0.75, 1e-15));
}

#[test]
fn measures_equal_numpy_on_committed_cases() {
    let cases = load("gini_cases.json");
    for case in cases.as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let counts = u64s(&case["counts"]);
        let c = conc(&counts, case["n_units_total"].as_u64());
        assert_eq!(c.n_units, case["n_units"].as_u64().expect("n"), "{name}");
        assert_eq!(
            c.n_incidents,
            case["n_incidents"].as_u64().expect("N"),
            "{name}"
        );
        let with = case["n_units_with_incidents"].as_u64().expect("m");
        assert_eq!(c.n_units_with_incidents, with, "{name}");
        assert!(
            close(c.gini, case["gini"].as_f64().expect("g"), 1e-12),
            "{name}"
        );
        let gg = case["gini_generalized"].as_f64().expect("gg");
        assert!(
            close(c.gini_generalized, gg, 1e-12),
            "{name} {} {gg}",
            c.gini_generalized
        );
        for (t, want) in c
            .top_shares
            .iter()
            .zip(case["top_incidents"].as_array().expect("t"))
        {
            let want = want.as_f64().expect("f");
            assert!(close(t.incidents, want, 1e-12), "{name} {t:?} {want}");
            assert!(close(t.incidents_share, want / c.n_incidents as f64, 1e-12));
        }
        let lorenz = case["lorenz"].as_array().expect("lorenz");
        assert_eq!(c.lorenz.len(), lorenz.len(), "{name}");
        for (p, q) in c.lorenz.iter().zip(lorenz) {
            assert!(
                close(p.units_share, q[0].as_f64().expect("x"), 1e-12),
                "{name}"
            );
            assert!(
                close(p.incidents_share, q[1].as_f64().expect("y"), 1e-12),
                "{name}"
            );
        }
        assert_eq!(
            c.units_for_half,
            case["units_for_half"].as_u64().expect("h"),
            "{name}"
        );
        assert_eq!(
            c.repeat_units,
            case["repeat_units"].as_u64().expect("r"),
            "{name}"
        );
        let ri = case["repeat_incidents"].as_u64().expect("ri");
        assert_eq!(c.repeat_incidents, ri, "{name}");
    }
}

#[test]
fn ties_and_top_units_are_deterministic() {
    // Ties: permuting the input never changes a result; top units break ties by index.
    let a = [4, 1, 4, 0, 2, 4, 1];
    let b = [1, 4, 2, 4, 0, 1, 4];
    let params = ConcentrationParams {
        top: Some(3),
        ..Default::default()
    };
    let ca = concentration::concentration(&a, Some(20), &params).expect("a");
    let cb = concentration::concentration(&b, Some(20), &params).expect("b");
    assert_eq!(ca.gini, cb.gini);
    assert_eq!(ca.top_shares, cb.top_shares);
    assert_eq!(ca.lorenz, cb.lorenz);
    let idx: Vec<usize> = ca.top_units.iter().map(|u| u.index).collect();
    assert_eq!(idx, [0, 2, 5]);
    let idx: Vec<usize> = cb.top_units.iter().map(|u| u.index).collect();
    assert_eq!(idx, [1, 3, 6]);
    // Top larger than the units with incidents: zeros are never listed.
    let params = ConcentrationParams {
        top: Some(100),
        ..Default::default()
    };
    let c = concentration::concentration(&a, None, &params).expect("c");
    assert_eq!(c.top_units.len(), 6);
    assert_eq!(c.top_units.last().map(|u| (u.index, u.count)), Some((6, 1)));
}

fn incidents_of(v: &Value) -> Vec<CovIncident> {
    v.as_array()
        .expect("incidents")
        .iter()
        .map(|r| CovIncident {
            cell: r[0].as_u64().expect("cell"),
            t: r[1].as_i64().expect("t"),
            source: r[2].as_u64().expect("src") as u16,
            subject: r[3].as_i64().filter(|&s| s >= 0).map(|s| s as u32),
        })
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("strings")
        .iter()
        .map(|s| s.as_str().expect("str").to_string())
        .collect()
}

fn matrix(v: &Value) -> Vec<Vec<u64>> {
    v.as_array().expect("rows").iter().map(u64s).collect()
}

/// Compares a coverage result with one brute-force case of the fixture.
fn check_coverage(inc: &[CovIncident], sources: &[String], hot: &[u64], case: &Value) {
    let params = CoverageParams {
        resolution: case["resolution"].as_u64().expect("res") as u8,
        window_days: case["window_days"].as_u64().expect("w") as u32,
        organisation: None,
    };
    let cov = coverage::coverage(inc, sources, hot, &params).expect("coverage");
    let tag = format!("res {} window {}", params.resolution, params.window_days);
    assert_eq!(cov.overlap_place, matrix(&case["overlap_place"]), "{tag}");
    assert_eq!(
        cov.overlap_subjects,
        matrix(&case["overlap_subjects"]),
        "{tag}"
    );
    assert_eq!(cov.n_subjects, case["n_subjects"].as_u64().expect("ns"));
    let nm = case["n_multi_organisation_subjects"].as_u64().expect("nm");
    assert_eq!(cov.n_multi_organisation_subjects, nm);
    let n_hot = cov.n_hot_cells;
    for (got, want) in cov
        .per_organisation
        .iter()
        .zip(case["per_organisation"].as_array().expect("p"))
    {
        assert_eq!(
            got.organisation,
            want["organisation"].as_str().expect("name")
        );
        assert_eq!(got.incidents, want["incidents"].as_u64().expect("i"));
        assert!(close(
            got.incidents_share,
            got.incidents as f64 / inc.len() as f64,
            1e-15
        ));
        let without = strings(&want["hot_cells_without_signal"]);
        assert_eq!(
            got.hot_cells_without_signal, without,
            "{tag} {}",
            got.organisation
        );
        assert_eq!(got.hot_cells_without_signal_count, without.len() as u64);
        assert_eq!(got.hot_cells_with_signal, n_hot - without.len() as u64);
        assert_eq!(got.subjects, want["subjects"].as_u64().expect("s"));
        let m = want["multi_organisation_subjects"].as_u64().expect("m");
        assert_eq!(got.multi_organisation_subjects, m);
        assert!(close(
            got.multi_organisation_subjects_share,
            m as f64 / nm as f64,
            1e-15
        ));
    }
}

#[test]
fn coverage_equals_brute_force() {
    let fx = load("coverage_small.json");
    let inc = incidents_of(&fx["incidents"]);
    let sources = strings(&fx["sources"]);
    let hot = u64s(&fx["hot_cells"]);
    for case in fx["cases"].as_array().expect("cases") {
        check_coverage(&inc, &sources, &hot, case);
    }
}

#[test]
fn planted_heavy_tail_and_missing_signal_are_found_exactly() {
    let fx = load("coverage_small.json");
    let inc = incidents_of(&fx["incidents"]);
    let sources = strings(&fx["sources"]);
    let hot = u64s(&fx["hot_cells"]);
    let planted = fx["planted_heavy"].as_array().expect("planted");
    // Subjects: the five planted persons are exactly the top five, with their report counts.
    let subjects: Vec<u32> = inc.iter().filter_map(|i| i.subject).collect();
    let per_subject = concentration::subject_counts(&subjects);
    let counts: Vec<u64> = per_subject.iter().map(|p| p.1).collect();
    let params = ConcentrationParams {
        by: ConcentrationBy::Subject,
        top: Some(5),
        ..Default::default()
    };
    let c = concentration::concentration(&counts, None, &params).expect("subjects");
    assert_eq!(c.resolution, None);
    let top: Vec<(u64, u64)> = c
        .top_units
        .iter()
        .map(|u| (u64::from(per_subject[u.index].0), u.count))
        .collect();
    let want: Vec<(u64, u64)> = planted
        .iter()
        .map(|p| {
            (
                p["subject"].as_u64().expect("s"),
                p["reports"].as_u64().expect("r"),
            )
        })
        .collect();
    assert_eq!(top, want);
    // Subject measures equal numpy.
    let sc = &fx["subject_concentration"];
    assert!(close(c.gini, sc["gini"].as_f64().expect("g"), 1e-12));
    assert_eq!(c.units_for_half, sc["units_for_half"].as_u64().expect("h"));
    // Known-to: background persons are known to one organisation each; the planted ones to
    // 3 or 4; the histogram equals the Python count.
    let pairs: Vec<(u32, u16)> = inc
        .iter()
        .filter_map(|i| i.subject.map(|s| (s, i.source)))
        .collect();
    let kt = concentration::known_to(&pairs);
    let hist: Vec<[u64; 3]> = kt
        .histogram
        .iter()
        .map(|b| [u64::from(b.organisations), b.subjects, b.incidents])
        .collect();
    let want_hist: Vec<[u64; 3]> = fx["known_to"]
        .as_array()
        .expect("kt")
        .iter()
        .map(|r| [0, 1, 2].map(|k| r[k].as_u64().expect("n")))
        .collect();
    assert_eq!(hist, want_hist);
    assert_eq!(kt.multi_organisation_subjects, 5);
    let profiles = concentration::subject_profiles(&pairs);
    for (p, w) in profiles.iter().zip(planted) {
        assert_eq!(u64::from(p.subject), w["subject"].as_u64().expect("s"));
        let srcs: Vec<u64> = p.per_source.iter().map(|s| u64::from(s.source)).collect();
        assert_eq!(srcs, u64s(&w["sources"]));
        assert_eq!(p.organisations as usize, srcs.len());
    }
    // Coverage: ggd (code 2) has no signal in exactly HS2; every other organisation has a
    // signal in every hot cell; the planted persons are the multi-organisation subjects.
    let params = CoverageParams {
        organisation: Some("ggd".into()),
        ..Default::default()
    };
    let cov = coverage::coverage(&inc, &sources, &hot, &params).expect("coverage");
    let hs2 = CellIndex::try_from(hot[1]).expect("cell").to_string();
    for org in &cov.per_organisation {
        let missing = u64::from(org.organisation == "ggd");
        assert_eq!(
            org.hot_cells_without_signal_count, missing,
            "{}",
            org.organisation
        );
        if org.organisation == "ggd" {
            assert_eq!(org.hot_cells_without_signal, std::slice::from_ref(&hs2));
            assert!(close(org.hot_cells_share, 0.75, 1e-15));
        }
        let planted_here = planted
            .iter()
            .filter(|p| {
                let code = sources
                    .iter()
                    .position(|s| *s == org.organisation)
                    .expect("code");
                u64s(&p["sources"]).contains(&(code as u64))
            })
            .count() as u64;
        assert_eq!(org.multi_organisation_subjects, planted_here);
    }
    assert_eq!(cov.n_multi_organisation_subjects, 5);
}

#[test]
fn place_counts_and_concentration_equal_h3_py_and_numpy() {
    let fx = load("coverage_small.json");
    let inc = incidents_of(&fx["incidents"]);
    let pc = &fx["place_concentration_r10"];
    let cells: Vec<u64> = inc.iter().map(|i| i.cell).collect();
    let counts = concentration::place_counts(&cells, 10).expect("counts");
    let want: Vec<(u64, u64)> = pc["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|r| (r[0].as_u64().expect("c"), r[1].as_u64().expect("n")))
        .collect();
    let mut sorted_want = want.clone();
    sorted_want.sort_unstable();
    assert_eq!(counts, sorted_want);
    let n: Vec<u64> = counts.iter().map(|c| c.1).collect();
    let c = conc(&n, pc["n_units"].as_u64());
    assert_eq!(c.resolution, Some(10));
    assert!(close(c.gini, pc["gini"].as_f64().expect("g"), 1e-12));
    let gg = pc["gini_generalized"].as_f64().expect("gg");
    assert!(close(c.gini_generalized, gg, 1e-12));
    assert!(
        c.sparse,
        "more cells than incidents: the generalized Gini applies"
    );
    for (t, w) in c
        .top_shares
        .iter()
        .zip(pc["top_incidents"].as_array().expect("t"))
    {
        assert!(close(t.incidents, w.as_f64().expect("f"), 1e-12));
    }
    assert_eq!(c.units_for_half, pc["units_for_half"].as_u64().expect("h"));
}

/// Unix seconds of `YYYY-MM-DDTHH:MM:SSZ` (days from civil, H. Hinnant's algorithm).
fn unix_seconds(s: &str) -> i64 {
    let num = |a: usize, b: usize| s[a..b].parse::<i64>().expect("digits");
    let (y, m, d) = (num(0, 4), num(5, 7), num(8, 10));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + num(11, 13) * 3600 + num(14, 16) * 60 + num(17, 19)
}

/// The lead's Zaandam fixture as coverage incidents, with source and subject names (codes are
/// positions in the sorted name lists, as in make_concentration.py).
fn zaandam() -> (Vec<CovIncident>, Vec<String>, Vec<String>) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/zaandam/incidents_wgs84.csv"
    );
    let text = std::fs::read_to_string(path).expect("fixture");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let names = |k: usize| {
        let mut v: Vec<String> = rows
            .iter()
            .map(|r| r[k].to_string())
            .filter(|s| !s.is_empty())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let (sources, subjects) = (names(3), names(4));
    let code = |list: &[String], s: &str| list.binary_search_by(|x| x.as_str().cmp(s)).ok();
    let inc = rows
        .iter()
        .map(|r| {
            let ll =
                LatLng::new(r[7].parse().expect("lat"), r[6].parse().expect("lon")).expect("ll");
            CovIncident {
                cell: u64::from(ll.to_cell(Resolution::Twelve)),
                t: unix_seconds(r[1]),
                source: code(&sources, r[3]).expect("source") as u16,
                subject: code(&subjects, r[4]).map(|s| s as u32),
            }
        })
        .collect();
    (inc, sources, subjects)
}

#[test]
fn zaandam_frequent_subjects_and_coverage() {
    let (inc, sources, subjects) = zaandam();
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/zaandam/manifest.json"
        ))
        .expect("manifest"),
    )
    .expect("json");
    let fx = load("zaandam_expected.json");
    assert_eq!(sources, strings(&fx["sources"]));
    // The ten planted frequent subjects are exactly the ten with the most reports.
    let pairs: Vec<(u32, u16)> = inc
        .iter()
        .filter_map(|i| i.subject.map(|s| (s, i.source)))
        .collect();
    let profiles = concentration::subject_profiles(&pairs);
    let frequent = manifest["planted"]["frequent_subjects"]
        .as_array()
        .expect("frequent");
    let top: Vec<(String, u64, usize)> = profiles[..frequent.len()]
        .iter()
        .map(|p| {
            (
                subjects[p.subject as usize].clone(),
                p.incidents,
                p.organisations as usize,
            )
        })
        .collect();
    let mut want: Vec<(String, u64, usize)> = frequent
        .iter()
        .map(|f| {
            let srcs = f["reporting_sources"].as_array().expect("src").len();
            (
                f["subject"].as_str().expect("s").to_string(),
                f["reports"].as_u64().expect("r"),
                srcs,
            )
        })
        .collect();
    want.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut got = top.clone();
    got.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    assert_eq!(got, want);
    let max_other = manifest["counts"]["max_reports_of_a_non_frequent_subject"]
        .as_u64()
        .expect("m");
    assert!(profiles[frequent.len()].incidents <= max_other);
    // Counts from the manifest, and the known-to histogram from Python.
    let kt = concentration::known_to(&pairs);
    assert_eq!(
        kt.subjects,
        manifest["counts"]["distinct_subjects"].as_u64().expect("d")
    );
    assert_eq!(
        kt.incidents,
        manifest["counts"]["incidents_with_subject"]
            .as_u64()
            .expect("i")
    );
    let hist: Vec<Vec<u64>> = kt
        .histogram
        .iter()
        .map(|b| vec![u64::from(b.organisations), b.subjects, b.incidents])
        .collect();
    assert_eq!(hist, matrix(&fx["known_to"]));
    // Subject and place (res 9) concentration equal numpy.
    let subj: Vec<u32> = inc.iter().filter_map(|i| i.subject).collect();
    let sc: Vec<u64> = concentration::subject_counts(&subj)
        .iter()
        .map(|p| p.1)
        .collect();
    let c = conc(&sc, None);
    let want = &fx["subject_concentration"];
    assert!(close(c.gini, want["gini"].as_f64().expect("g"), 1e-12));
    assert_eq!(
        c.units_for_half,
        want["units_for_half"].as_u64().expect("h")
    );
    let cells: Vec<u64> = inc.iter().map(|i| i.cell).collect();
    let pc: Vec<u64> = concentration::place_counts(&cells, 9)
        .expect("pc")
        .iter()
        .map(|p| p.1)
        .collect();
    let c = conc(&pc, None);
    let want = &fx["place_concentration_r9"];
    assert!(close(c.gini, want["gini"].as_f64().expect("g"), 1e-12));
    for (t, w) in c
        .top_shares
        .iter()
        .zip(want["top_incidents"].as_array().expect("t"))
    {
        assert!(close(t.incidents, w.as_f64().expect("f"), 1e-12));
    }
    // Coverage by organisation with the planted hot spots (res 9) equals the brute force, and
    // the incident counts per source equal the manifest.
    let hot = u64s(&fx["hot_cells"]);
    check_coverage(&inc, &sources, &hot, &fx["coverage_r10_w30"]);
    let cov = coverage::coverage(&inc, &sources, &hot, &CoverageParams::default()).expect("cov");
    for org in &cov.per_organisation {
        let want = manifest["counts"]["incidents_by_source"][&org.organisation].as_u64();
        assert_eq!(Some(org.incidents), want);
    }
}

#[test]
fn params_come_from_a_query_string_and_bad_input_gives_typed_errors() {
    let p: ConcentrationParams = serde_urlencoded::from_str("by=subject&top=25").expect("params");
    assert_eq!(p.by, ConcentrationBy::Subject);
    assert_eq!((p.resolution, p.top), (10, Some(25)));
    let p: ConcentrationParams = serde_urlencoded::from_str("resolution=8").expect("params");
    assert_eq!(
        (p.by, p.resolution, p.top),
        (ConcentrationBy::Place, 8, None)
    );
    assert!(serde_urlencoded::from_str::<ConcentrationParams>("by=street").is_err());
    assert!(serde_urlencoded::from_str::<ConcentrationParams>("gini=1").is_err());
    let p: CoverageParams =
        serde_urlencoded::from_str("window_days=7&organisation=ggd").expect("p");
    assert_eq!(
        (p.resolution, p.window_days, p.organisation.as_deref()),
        (10, 7, Some("ggd"))
    );
    assert!(serde_urlencoded::from_str::<CoverageParams>("window=7").is_err());

    let err = |r: Result<Concentration, ConcentrationError>| r.expect_err("error").code();
    let d = ConcentrationParams::default();
    assert_eq!(
        err(concentration::concentration(&[], None, &d)),
        "no_incidents"
    );
    assert_eq!(
        err(concentration::concentration(&[0, 0], Some(5), &d)),
        "no_incidents"
    );
    assert_eq!(
        err(concentration::concentration(&[1, 2, 3], Some(2), &d)),
        "total_below_units"
    );
    let bad = ConcentrationParams {
        resolution: 13,
        ..d.clone()
    };
    assert_eq!(
        err(concentration::concentration(&[1], None, &bad)),
        "resolution_out_of_range"
    );
    let bad = ConcentrationParams {
        top: Some(0),
        ..d.clone()
    };
    assert_eq!(
        err(concentration::concentration(&[1], None, &bad)),
        "top_out_of_range"
    );
    let e = concentration::place_counts(&[12345], 9).expect_err("invalid");
    assert_eq!(e.code(), "invalid_cell");
    let coarse = u64::from(
        LatLng::new(52.4, 4.8)
            .expect("ll")
            .to_cell(Resolution::Eight),
    );
    let e = concentration::place_counts(&[coarse], 9).expect_err("coarse");
    assert_eq!(e.code(), "cell_too_coarse");
    assert!(!e.to_string().is_empty());
    let err = concentration::concentration(&[u64::MAX, 1], None, &d).expect_err("overflow");
    assert_eq!(err.code(), "count_overflow");

    let cell = u64::from(
        LatLng::new(52.4, 4.8)
            .expect("ll")
            .to_cell(Resolution::Twelve),
    );
    let one = [CovIncident {
        cell,
        t: 0,
        source: 1,
        subject: None,
    }];
    let names = vec!["a".to_string(), "b".to_string()];
    let cov = |inc: &[CovIncident], hot: &[u64], p: &CoverageParams| {
        coverage::coverage(inc, &names, hot, p)
            .expect_err("error")
            .code()
    };
    let p = CoverageParams::default();
    assert_eq!(cov(&[], &[], &p), "no_incidents");
    assert_eq!(cov(&one, &[12345], &p), "invalid_cell");
    let bad = [CovIncident {
        source: 2,
        ..one[0]
    }];
    assert_eq!(cov(&bad, &[], &p), "unknown_source");
    let q = CoverageParams {
        organisation: Some("ggd".into()),
        ..p.clone()
    };
    assert_eq!(cov(&one, &[], &q), "unknown_organisation");
    let q = CoverageParams {
        window_days: 5000,
        ..p.clone()
    };
    assert_eq!(cov(&one, &[], &q), "window_out_of_range");
    let q = CoverageParams {
        resolution: 14,
        ..p.clone()
    };
    assert_eq!(cov(&one, &[], &q), "resolution_out_of_range");
    let coarse_inc = [CovIncident {
        cell: coarse,
        ..one[0]
    }];
    assert_eq!(cov(&coarse_inc, &[], &p), "cell_too_coarse");
    let span = [
        one[0],
        CovIncident {
            t: i64::MAX,
            ..one[0]
        },
    ];
    assert_eq!(cov(&span, &[], &p), "time_span_too_large");
    let e: CoverageError = coverage::coverage(&[], &names, &[], &p).expect_err("e");
    assert!(!e.to_string().is_empty());
}

#[test]
fn outputs_serialise_without_nan_and_edge_cases_are_finite() {
    // No hot cells, no subjects: shares are 0, never NaN.
    let cell = u64::from(
        LatLng::new(52.4, 4.8)
            .expect("ll")
            .to_cell(Resolution::Twelve),
    );
    let inc = [
        CovIncident {
            cell,
            t: 0,
            source: 0,
            subject: None,
        },
        CovIncident {
            cell,
            t: 86_400 * 30,
            source: 0,
            subject: None,
        },
        CovIncident {
            cell,
            t: 86_400 * 61,
            source: 1,
            subject: None,
        },
    ];
    let names = vec!["a".to_string(), "b".to_string()];
    let cov = coverage::coverage(&inc, &names, &[], &CoverageParams::default()).expect("cov");
    // Window 30 days inclusive: the two a's see each other; b is 31 days from the second a.
    assert_eq!(cov.overlap_place, vec![vec![2, 0], vec![0, 0]]);
    let json = serde_json::to_string(&cov).expect("json");
    assert!(!json.contains("NaN") && !json.contains("null"), "{json}");
    assert_eq!(cov.per_organisation[1].hot_cells_share, 0.0);
    for total in [None, Some(1), Some(1_000_000_000)] {
        let c = conc(&[1], total);
        let json = serde_json::to_string(&c).expect("json");
        assert!(c.gini.is_finite() && c.gini_generalized.is_finite() && !json.contains("NaN"));
        assert!(c.lorenz.len() <= 101 && c.lorenz.last().map(|p| p.incidents_share) == Some(1.0));
    }
    let kt = concentration::known_to(&[]);
    assert_eq!((kt.subjects, kt.histogram.len()), (0, 0));
    assert_eq!(kt.multi_organisation_incidents_share, 0.0);
}

/// Timing at 1M incidents (run with `cargo test --release -- --ignored overlap_at_1m`).
#[test]
#[ignore = "timing; run in release"]
fn overlap_at_1m_incidents() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let base = LatLng::new(52.44, 4.82).expect("ll");
    let inc: Vec<CovIncident> = (0..1_000_000)
        .map(|_| {
            let ll = LatLng::new(
                base.lat() + rng.random_range(-0.03..0.03),
                base.lng() + rng.random_range(-0.05..0.05),
            )
            .expect("ll");
            CovIncident {
                cell: u64::from(ll.to_cell(Resolution::Twelve)),
                t: rng.random_range(0..3 * 365 * 86_400),
                source: rng.random_range(0..5),
                subject: rng.random_bool(0.3).then(|| rng.random_range(0..50_000)),
            }
        })
        .collect();
    let names: Vec<String> = (0..5).map(|i| format!("org{i}")).collect();
    let hot: Vec<u64> = inc[..50]
        .iter()
        .map(|i| {
            u64::from(
                CellIndex::try_from(i.cell)
                    .expect("c")
                    .parent(Resolution::Nine)
                    .expect("p"),
            )
        })
        .collect();
    let t = std::time::Instant::now();
    let cov = coverage::coverage(&inc, &names, &hot, &CoverageParams::default()).expect("cov");
    let cov_ms = t.elapsed().as_millis();
    let t = std::time::Instant::now();
    let cells: Vec<u64> = inc.iter().map(|i| i.cell).collect();
    let counts: Vec<u64> = concentration::place_counts(&cells, 10)
        .expect("pc")
        .iter()
        .map(|p| p.1)
        .collect();
    let c = conc(&counts, Some(counts.len() as u64 * 2));
    let conc_ms = t.elapsed().as_millis();
    let t = std::time::Instant::now();
    let pairs: Vec<(u32, u16)> = inc
        .iter()
        .filter_map(|i| i.subject.map(|s| (s, i.source)))
        .collect();
    let kt = concentration::known_to(&pairs);
    let kt_ms = t.elapsed().as_millis();
    eprintln!(
        "1M incidents: coverage {cov_ms} ms, place concentration {conc_ms} ms, known_to {kt_ms} ms \
         (hot {}, gini {:.3}, subjects {})",
        cov.n_hot_cells, c.gini, kt.subjects
    );
}
