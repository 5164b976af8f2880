//! Issue 6, "no differencing": the cell-key noise of the `noise` dataset setting, and the rule
//! that a count restricted by category or source cannot be subtracted from another answer to
//! reveal a small count.

use crate::privacy_attacks::{DS, Who, World, cells, properties_by_id, world};
use crate::support::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn req(uri: String, body: &Value) -> Req {
    Req {
        method: axum::http::Method::PATCH,
        ..post_json(uri, body)
    }
}

const NOT_SENSITIVE: &str = "jeugdoverlast,geluidsoverlast,burenruzie,drugsoverlast,zwerfafval";

async fn set_noise(w: &World, on: bool) {
    let settings = json!({"k_open": 10, "k_closed": 5, "noise": on,
                          "sensitive_categories": ["verward_persoon"],
                          "sensitive_max_resolution": 7});
    w.app
        .call(req(format!("/datasets/{DS}"), &json!({ "settings": settings })).admin())
        .await
        .expect(204);
}

/// h3 -> count (None when suppressed) of a hotspot answer.
async fn counts(w: &World, who: &Who, query: &str) -> BTreeMap<String, Option<u64>> {
    let v = w
        .call(who, get(format!("/datasets/{DS}/hotspots?{query}")))
        .await
        .expect(200)
        .json();
    cells(&v)
        .into_iter()
        .map(|(h, (c, _, _))| (h, c.as_u64()))
        .collect()
}

#[tokio::test]
async fn cell_key_noise_is_bounded_fixed_per_cell_and_off_by_default() {
    let w = world().await;
    let q = "resolution=8&k=1";
    // below the private tier, res 8 leaves the sensitive category out
    let exact = counts(&w, &w.private, &format!("{q}&category={NOT_SENSITIVE}")).await;
    let plain = counts(&w, &w.open, q).await;
    for (h, c) in &plain {
        if let Some(c) = c {
            assert_eq!(Some(*c), exact[h], "noise is off by default: cell {h}");
        }
    }
    set_noise(&w, true).await;
    let noisy = counts(&w, &w.open, q).await;
    assert_eq!(
        noisy.keys().collect::<Vec<_>>(),
        plain.keys().collect::<Vec<_>>()
    );
    let (mut shown, mut moved) = (0, 0);
    for (h, c) in &noisy {
        let e = exact[h].expect("private sees every count");
        match c {
            None => assert!(plain[h].is_none(), "{h}: noise does not change suppression"),
            Some(c) => {
                shown += 1;
                assert!(c.abs_diff(e) <= 2, "{h}: {c} vs exact {e}");
                if e == 0 {
                    assert_eq!(*c, 0, "{h}: an empty cell stays empty");
                } else {
                    assert!(*c >= 10, "{h}: a shown count is never below k_open");
                }
                moved += usize::from(*c != e);
            }
        }
    }
    // the table moves half of the counts; with dozens of cells both kinds occur
    assert!(shown >= 20, "{shown} cells shown");
    assert!(
        moved > 0 && moved < shown,
        "{moved} of {shown} counts moved"
    );
    // the same cell gives the same value: repeated, and in an overlapping bbox
    assert_eq!(counts(&w, &w.open, q).await, noisy);
    let boxed = counts(&w, &w.open, &format!("{q}&bbox=4.78,52.41,4.84,52.45")).await;
    assert!(boxed.len() >= 3);
    for (h, c) in &boxed {
        assert_eq!(c, &noisy[h], "{h} differs inside a bbox");
    }
    // the private tier still gets exact counts; turning noise off restores them
    assert_eq!(
        counts(&w, &w.private, &format!("{q}&category={NOT_SENSITIVE}")).await,
        exact
    );
    set_noise(&w, false).await;
    assert_eq!(counts(&w, &w.open, q).await, plain);
}

#[tokio::test]
async fn noisy_series_and_totals_hide_the_exact_trend() {
    let w = world().await;
    set_noise(&w, true).await;
    let v = w
        .call(
            &w.open,
            get(format!(
                "/datasets/{DS}/emerging?resolution=8&bin=month&min_bins=3"
            )),
        )
        .await
        .expect(200)
        .json();
    let exact = w
        .call(
            &w.private,
            get(format!(
                "/datasets/{DS}/emerging?resolution=8&bin=month&min_bins=3&category={NOT_SENSITIVE}"
            )),
        )
        .await
        .expect(200)
        .json();
    let (n, e) = (properties_by_id(&v), properties_by_id(&exact));
    let mut moved = 0;
    for (h, p) in &n {
        assert!(
            p.get("count_trend").is_none(),
            "{h}: the count slope is exact"
        );
        if let Some(t) = p["total_count"].as_u64() {
            let te = e[h]["total_count"].as_u64().expect("exact total");
            assert!(t.abs_diff(te) <= 2);
            moved += usize::from(t != te);
        }
        for (b, be) in p["series"]
            .as_array()
            .expect("series")
            .iter()
            .zip(e[h]["series"].as_array().expect("series"))
        {
            if let Some(c) = b["count"].as_u64() {
                let ce = be["count"].as_u64().expect("exact");
                assert!(c.abs_diff(ce) <= 2 && (ce == 0) == (c == 0));
            }
        }
    }
    assert!(moved > 0, "some total carries noise");
}

/// For every key shown with a count both without (`all`) and with a restriction (`part`), the
/// difference is 0 or at least `k`: the restricted answer cannot be subtracted to reveal a
/// small count. Returns the keys compared.
fn assert_no_small_differences<'a, K: Ord + std::fmt::Debug>(
    all: &BTreeMap<K, Option<u64>>,
    part: &'a BTreeMap<K, Option<u64>>,
    k: u64,
    what: &str,
) -> Vec<&'a K> {
    let mut compared = Vec::new();
    for (key, p) in part {
        if let (Some(p), Some(Some(a))) = (p, all.get(key)) {
            let d = a - p;
            assert!(
                d == 0 || d >= k,
                "{what}: {key:?} all={a} restricted={p}: difference {d} < k={k}"
            );
            compared.push(key);
        }
    }
    compared
}

/// [`assert_no_small_differences`] of the hot-spot cells of `base` and `base&restriction`.
async fn assert_no_small_difference(w: &World, who: &Who, base: &str, restriction: &str) -> usize {
    let all = counts(w, who, base).await;
    let part = counts(w, who, &format!("{base}&{restriction}")).await;
    let what = format!("{} {restriction}", who.name);
    assert_no_small_differences(&all, &part, who.k(), &what).len()
}

#[tokio::test]
async fn category_and_source_restrictions_cannot_be_subtracted() {
    let w = world().await;
    let restrictions = [
        "category=jeugdoverlast",
        "category=geluidsoverlast,burenruzie",
        "category=drugsoverlast",
        "source=politie",
        "source=gemeente,woningcorporatie",
        "category=jeugdoverlast&source=politie",
    ];
    for (who, base) in [
        (&w.open, "resolution=8&k=1"),
        (&w.anon, "resolution=8&k=2"),
        (&w.closed, "resolution=9&k=1"),
    ] {
        let mut compared = 0;
        for r in restrictions {
            compared += assert_no_small_difference(&w, who, base, r).await;
        }
        assert!(
            compared >= 10,
            "{}: only {compared} cells compared",
            who.name
        );
    }
    // the private tier is not restricted: its differences are the exact atoms
    let all = counts(&w, &w.private, "resolution=9&k=1").await;
    let part = counts(&w, &w.private, "resolution=9&k=1&source=politie").await;
    assert!(
        part.iter()
            .any(|(h, p)| matches!((p, all[h]), (Some(p), Some(a)) if a > *p && a - p < 5)),
        "the data has small atoms, so the rule above is tested"
    );
}

/// h3 -> count of the places an answer lists: `concentration` (`top_units`) or `picture`
/// (`by_area.cells`).
async fn places(w: &World, who: &Who, route: &str, query: &str) -> BTreeMap<String, Option<u64>> {
    let v = w
        .call(who, get(format!("/datasets/{DS}/{route}?{query}")))
        .await
        .expect(200)
        .json();
    let list = match route {
        "concentration" => &v["top_units"],
        _ => &v["by_area"]["cells"],
    };
    list.as_array()
        .expect("places")
        .iter()
        .map(|u| {
            (
                u["h3"].as_str().expect("h3").to_owned(),
                u["count"].as_u64(),
            )
        })
        .collect()
}

#[tokio::test]
async fn concentration_and_picture_places_cannot_be_subtracted_and_carry_the_noise() {
    let w = world().await;
    let routes = [
        ("concentration", "by=place&resolution=8&top=10000"),
        ("picture", "datetime=2024-01-01/2024-12-31"),
    ];
    let restrictions = [
        "category=jeugdoverlast",
        "category=geluidsoverlast,burenruzie",
        "source=politie",
        "category=jeugdoverlast&source=politie",
    ];
    for (route, base) in routes {
        // places compared over both tiers (the rule hides many of the open tier's)
        let mut compared = 0;
        for who in [&w.open, &w.closed] {
            let all = places(&w, who, route, base).await;
            let k = who.k();
            for r in restrictions {
                let part = places(&w, who, route, &format!("{base}&{r}")).await;
                let what = format!("{route} {} {r}", who.name);
                compared += assert_no_small_differences(&all, &part, k, &what).len();
            }
        }
        assert!(compared >= 10, "{route}: only {compared} places compared");
    }
    // the private tier is not restricted, and the data has small atoms there
    let all = places(
        &w,
        &w.private,
        "concentration",
        "by=place&resolution=8&top=10000",
    )
    .await;
    let part = places(
        &w,
        &w.private,
        "concentration",
        "by=place&resolution=8&top=10000&source=politie",
    )
    .await;
    assert!(
        part.iter()
            .any(|(h, p)| matches!((p, all[h]), (Some(p), Some(a)) if a > *p && a - p < 5)),
        "the data has small atoms, so the rule above is tested"
    );
    // with the dataset's noise on, the open tier's place counts move by at most 2
    let exact = [
        places(&w, &w.private, "concentration", "by=place&resolution=8&top=10000&category=jeugdoverlast,geluidsoverlast,burenruzie,drugsoverlast,zwerfafval").await,
        places(&w, &w.private, "picture", "datetime=2023-01-01/2025-12-31&category=jeugdoverlast,geluidsoverlast,burenruzie,drugsoverlast,zwerfafval").await,
    ];
    set_noise(&w, true).await;
    let noisy = [
        places(
            &w,
            &w.open,
            "concentration",
            "by=place&resolution=8&top=10000",
        )
        .await,
        places(&w, &w.open, "picture", "datetime=2023-01-01/2025-12-31").await,
    ];
    for (exact, noisy) in exact.iter().zip(&noisy) {
        let (mut shown, mut moved) = (0, 0);
        for (h, c) in noisy {
            if let (Some(c), Some(Some(e))) = (c, exact.get(h)) {
                assert!(c.abs_diff(*e) <= 2, "place {h}: {c} against {e}");
                shown += 1;
                moved += usize::from(c != e);
            }
        }
        assert!(shown >= 10 && moved > 0, "{shown} shown, {moved} moved");
    }
}

/// `(h3, bin start or "total") -> count` of an emerging answer.
async fn emerging_counts(
    w: &World,
    who: &Who,
    query: &str,
) -> BTreeMap<(String, String), Option<u64>> {
    let v = w
        .call(who, get(format!("/datasets/{DS}/emerging?{query}")))
        .await
        .expect(200)
        .json();
    let mut out = BTreeMap::new();
    for f in v["features"].as_array().expect("features") {
        let p = &f["properties"];
        let h = p["h3"].as_str().expect("h3").to_owned();
        out.insert((h.clone(), "total".into()), p["total_count"].as_u64());
        for b in p["series"].as_array().expect("series") {
            let start = b["bin_start"].as_str().expect("bin").to_owned();
            out.insert((h.clone(), start), b["count"].as_u64());
        }
    }
    out
}

#[tokio::test]
async fn emerging_totals_and_bins_cannot_be_subtracted() {
    let w = world().await;
    let mut compared = (0, 0);
    // the closed tier at res 8 (small atoms in some bins) and res 9 (in some totals too)
    for (who, base) in [
        (&w.open, "resolution=8&bin=quarter&min_bins=3"),
        (&w.closed, "resolution=8&bin=quarter&min_bins=3"),
        (&w.closed, "resolution=9&bin=quarter&min_bins=3"),
    ] {
        let all = emerging_counts(&w, who, base).await;
        let k = who.k();
        for r in [
            "category=jeugdoverlast",
            "source=politie",
            "category=geluidsoverlast,burenruzie&source=gemeente",
        ] {
            let part = emerging_counts(&w, who, &format!("{base}&{r}")).await;
            let what = format!("{} {r}", who.name);
            for key in assert_no_small_differences(&all, &part, k, &what) {
                if key.1 == "total" {
                    compared.0 += 1;
                } else {
                    compared.1 += 1;
                }
            }
        }
    }
    assert!(
        compared.0 >= 10 && compared.1 >= 10,
        "compared (totals, bins): {compared:?}"
    );
}
