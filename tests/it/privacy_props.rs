//! Property tests of the open tier's suppression rules (issue 6): random filters (datetime
//! ranges, categories, sources), resolutions and bboxes on `/hotspots`, seeded ChaCha8. No
//! count in 1..k_open is ever returned, and a cell's count is the same whatever bbox or
//! datetime (within the same months) selected it.

use crate::privacy_attacks::{DS, cells, world};
use crate::support::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

const CATEGORIES: [&str; 6] = [
    "burenruzie",
    "drugsoverlast",
    "geluidsoverlast",
    "jeugdoverlast",
    "verward_persoon",
    "zwerfafval",
];
const SOURCES: [&str; 5] = [
    "gemeente",
    "ggd",
    "politie",
    "woningcorporatie",
    "zorgaanbieder",
];
/// The incidents' lon/lat extent, a little widened.
const EXTENT: [f64; 4] = [4.78, 52.41, 4.87, 52.47];

fn subset(rng: &mut ChaCha8Rng, items: &[&str]) -> Option<String> {
    if rng.random_bool(0.5) {
        return None;
    }
    let mut s: Vec<&str> = items
        .iter()
        .copied()
        .filter(|_| rng.random_bool(0.5))
        .collect();
    if s.is_empty() {
        s.push(items[rng.random_range(0..items.len())]);
    }
    Some(s.join(","))
}

fn bbox(rng: &mut ChaCha8Rng) -> String {
    let (w, h) = (EXTENT[2] - EXTENT[0], EXTENT[3] - EXTENT[1]);
    let x0 = EXTENT[0] + rng.random_range(0.0..0.7) * w;
    let y0 = EXTENT[1] + rng.random_range(0.0..0.7) * h;
    let x1 = x0 + rng.random_range(0.2..0.8) * w;
    let y1 = y0 + rng.random_range(0.2..0.8) * h;
    format!("{x0:.5},{y0:.5},{x1:.5},{y1:.5}")
}

/// A datetime interval from (year, month, day) to (year, month, day), with a time of day.
fn interval(a: (i32, u32, u32), b: (i32, u32, u32), hour: u32) -> String {
    format!(
        "{}-{:02}-{:02}T{hour:02}:00:00Z/{}-{:02}-{:02}T{:02}:30:00Z",
        a.0,
        a.1,
        a.2,
        b.0,
        b.1,
        b.2,
        23 - hour
    )
}

fn month(rng: &mut ChaCha8Rng) -> (i32, u32) {
    (rng.random_range(2023..=2025), rng.random_range(1..=12))
}

#[tokio::test]
async fn open_tier_suppression_holds_for_random_filters_and_bboxes() {
    let w = world().await;
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let (mut answered, mut compared, mut suppressed) = (0, 0, 0);
    for case in 0..200 {
        // res 8 is the finest open resolution; the study area has too few cells below 8
        let (res, k) = (8, rng.random_range(1..=3u8));
        let (mut m0, mut m1) = (month(&mut rng), month(&mut rng));
        if m1 < m0 {
            std::mem::swap(&mut m0, &mut m1);
        }
        let mut filters = Vec::new();
        // two datetimes within the same months: different days and hours
        // (start days 1..=14, end days 15..=28, so a one-month interval stays ordered)
        let (d0, d1) = (
            |r: &mut ChaCha8Rng| r.random_range(1..=14u32),
            |r: &mut ChaCha8Rng| r.random_range(15..=28u32),
        );
        let t1 = interval((m0.0, m0.1, d0(&mut rng)), (m1.0, m1.1, d1(&mut rng)), 1);
        let t2 = interval((m0.0, m0.1, d0(&mut rng)), (m1.0, m1.1, d1(&mut rng)), 7);
        if let Some(c) = subset(&mut rng, &CATEGORIES) {
            filters.push(format!("category={c}"));
        }
        if let Some(s) = subset(&mut rng, &SOURCES) {
            filters.push(format!("source={s}"));
        }
        let base = format!(
            "/datasets/{DS}/hotspots?resolution={res}&k={k}&{}",
            filters.join("&")
        );
        let whole = w.app.call(get(format!("{base}&datetime={t1}"))).await;
        if whole.status != 200 {
            // too few incidents, or only sensitive categories at a fine resolution
            let code = whole.json()["code"].as_str().unwrap_or("").to_owned();
            assert!(
                matches!(
                    code.as_str(),
                    "too_few_incidents" | "tier_sensitive" | "zero_variance" | "too_few_cells"
                ),
                "case {case}: {base} {}: {}",
                whole.status,
                whole.text()
            );
            continue;
        }
        answered += 1;
        let whole = whole.json();
        let all = cells(&whole);
        let mut answers: Vec<Value> = vec![whole];
        for t in [&t1, &t2] {
            let b = bbox(&mut rng);
            let r = w
                .app
                .call(get(format!("{base}&datetime={t}&bbox={b}")))
                .await
                .expect(200)
                .json();
            let part = cells(&r);
            for (c, v) in &part {
                assert_eq!(
                    Some(v),
                    all.get(c),
                    "case {case}: cell {c} of {base}&datetime={t}&bbox={b}"
                );
                compared += 1;
            }
            answers.push(r);
        }
        for v in &answers {
            for f in v["features"].as_array().expect("features") {
                let n = &f["properties"]["count"];
                if n.is_null() {
                    suppressed += 1;
                    assert_eq!(f["properties"]["count_suppressed"], true);
                } else {
                    let n = n.as_u64().expect("count");
                    assert!(
                        n == 0 || n >= 10,
                        "case {case}: {base}: count {n} in {}",
                        f["id"]
                    );
                }
            }
        }
    }
    assert!(answered >= 100, "only {answered} of 200 cases answered");
    assert!(
        compared > 1000 && suppressed > 100,
        "{compared} compared, {suppressed} suppressed"
    );
}
