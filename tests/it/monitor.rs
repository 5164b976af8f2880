//! Issue 7, item 5: `since` on the picture reports what changed since a date, on the planted
//! patterns of the Zaandam fixture (`fixtures/zaandam/manifest.json`).

use crate::privacy_attacks::{DS, world};
use crate::support::*;
use h3o::{LatLng, Resolution};
use serde_json::Value;

fn cell(lon: f64, lat: f64) -> h3o::CellIndex {
    LatLng::new(lat, lon)
        .expect("lat/lon")
        .to_cell(Resolution::Nine)
}

fn near(cells: &Value, c: h3o::CellIndex) -> bool {
    cells.as_array().expect("cells").iter().any(|h| {
        let h: h3o::CellIndex = h.as_str().expect("h3").parse().expect("cell");
        h.grid_distance(c).is_ok_and(|d| d <= 1)
    })
}

#[tokio::test]
async fn since_finds_the_planted_emerging_hot_spot() {
    let w = world().await;
    let m = manifest();
    let uri = format!("/datasets/{DS}/picture?datetime=2025-07-01/2025-12-31&since=2025-07-01");
    let v = w.call(&w.private, get(&uri)).await.expect(200).json();
    let c = &v["changes"];
    assert_eq!(c["since"], "2025-07-01T00:00:00Z");
    let hot = &c["hot_spots"];
    // the finest resolution the picture uses: 9 below the open tier
    assert_eq!(hot["resolution"], 9, "{hot}");
    let em = &m["planted"]["emerging_hot_spot"];
    let em_cell = cell(em["lon"].as_f64().unwrap(), em["lat"].as_f64().unwrap());
    assert!(
        near(&hot["new"], em_cell),
        "EM1 ({em_cell}) is a new hot spot: {hot}"
    );
    assert!(!near(&hot["ended"], em_cell));
    // the sets add up, and "hot now" is what /hotspots says for the same window and grid
    let len = |k: &str| hot[k].as_array().unwrap().len() as u64;
    let n = |k: &str| hot[k].as_u64().unwrap();
    assert_eq!(n("hot_now"), n("persisting") + len("new"));
    assert_eq!(n("hot_then"), n("persisting") + len("ended"));
    let h = w
        .call(
            &w.private,
            get(format!(
                "/datasets/{DS}/hotspots?datetime=2025-07-01/2025-12-31&resolution=9&k=1&fdr=true"
            )),
        )
        .await
        .expect(200)
        .json();
    let hot_cells = h["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["properties"]["gi_bin"].as_i64().unwrap() >= 2)
        .count() as u64;
    assert_eq!(n("hot_now"), hot_cells);
    // subjects: counts, and at the private tier the pseudonyms; reports since the date
    let s = &c["multi_organisation_subjects"];
    let (then, now) = (s["then"].as_u64().unwrap(), s["now"].as_u64().unwrap());
    assert!(now >= then, "{s}");
    assert_eq!(
        s["new_pseudonyms"].as_array().unwrap().len() as u64,
        s["new"].as_u64().unwrap()
    );
    assert!(c["reports_since"].as_u64().unwrap() > 0);

    // the open tier: no pseudonyms, small counts suppressed, instant snapped to a month
    let v = w
        .call(
            &w.open,
            get(format!("/datasets/{DS}/picture?since=2025-07-15")),
        )
        .await
        .expect(200)
        .json();
    let c = &v["changes"];
    assert_eq!(c["since"], "2025-07-01T00:00:00Z");
    assert!(
        c["multi_organisation_subjects"]
            .get("new_pseudonyms")
            .is_none()
    );
    for k in ["then", "now", "new"] {
        let n = &c["multi_organisation_subjects"][k];
        assert!(
            n.is_null() || n.as_u64().unwrap() == 0 || n.as_u64().unwrap() >= 10,
            "{k}: {n}"
        );
    }
    // bad input is a 400
    w.call(
        &w.private,
        get(format!("/datasets/{DS}/picture?since=july")),
    )
    .await
    .problem(400, "bad_datetime");
}
