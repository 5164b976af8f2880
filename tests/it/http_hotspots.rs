//! Issue 3: `/hotspots` counts its cells through the snapshot's cell columns and writes its
//! features straight into the body. Here the route's answer is compared, cell by cell and
//! bit for bit, with `hotspot::run` on the plain slice of the selected incidents' stored cells
//! (h3o parents, hash aggregation) and the `serde_json` values of its result, for unfiltered,
//! filtered, boxed, optimized and Local Moran requests.

use crate::privacy_attacks::{DS, world};
use crate::support::*;
use h3o::CellIndex;
use hotspots::analysis::hotspot::{self, HotspotParams};
use hotspots::index::{Filter, TimeRange};
use hotspots::model::DatasetId;
use serde_json::Value;
use std::collections::BTreeMap;

/// `h3 -> properties` of an answer's features.
fn by_cell(v: &Value) -> BTreeMap<String, Value> {
    v["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| {
            assert_eq!(f["id"], f["properties"]["h3"]);
            assert_eq!(f["geometry"]["type"], "Polygon");
            (
                f["properties"]["h3"].as_str().expect("h3").to_owned(),
                f["properties"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_route_equals_the_analysis_of_the_selected_cells() {
    let w = world().await;
    let snap = w
        .app
        .state
        .app
        .catalog
        .get(&DatasetId::new(DS).expect("id"))
        .expect("dataset");
    let inc = &snap.incidents;
    let area = snap.study_area.as_ref().map(|a| &a.wgs84);
    let t = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("time")
            .timestamp()
    };
    let half_year = Filter {
        time: Some(TimeRange {
            start: Some(t("2025-01-01T00:00:00Z")),
            end: Some(t("2025-06-30T23:59:59Z")),
        }),
        ..Filter::default()
    };
    let category = inc.categories[0].clone();
    let one_category = Filter {
        categories: Some(vec![category.clone()]),
        ..Filter::default()
    };
    let p = |res: Option<u8>, k: Option<u32>| HotspotParams {
        resolution: res,
        k,
        ..HotspotParams::default()
    };
    let moran = HotspotParams {
        method: hotspot::Method::LocalMoran,
        permutations: Some(99),
        seed: 7,
        fdr: true,
        ..p(Some(9), Some(2))
    };
    let cases: Vec<(String, Filter, HotspotParams)> = vec![
        (
            "resolution=9&k=1".into(),
            Filter::default(),
            p(Some(9), Some(1)),
        ),
        (
            "resolution=10&k=1".into(),
            Filter::default(),
            p(Some(10), Some(1)),
        ),
        (
            "resolution=9&k=1&datetime=2025-01-01/2025-06-30".into(),
            half_year.clone(),
            p(Some(9), Some(1)),
        ),
        (
            format!("resolution=8&k=2&category={category}"),
            one_category,
            p(Some(8), Some(2)),
        ),
        ("".into(), Filter::default(), p(None, None)),
        (
            "datetime=2025-01-01/2025-06-30".into(),
            half_year,
            p(None, None),
        ),
        (
            "resolution=9&k=2&method=local_moran&permutations=99&seed=7&fdr=true".into(),
            Filter::default(),
            moran,
        ),
    ];
    for (query, filter, params) in cases {
        let uri = format!("/datasets/{DS}/hotspots?{query}");
        let v = w.call(&w.private, get(&uri)).await.expect(200).json();
        let cells: Vec<CellIndex> = inc
            .select(&filter)
            .iter()
            .map(|&r| CellIndex::try_from(inc.cell[r as usize]).expect("stored cell"))
            .collect();
        let want = hotspot::run(&cells, area, &params).expect("runs");
        // the summary: the same cell set, counts and choice of scale
        let s = &v["summary"];
        assert_eq!(s["n_cells"], want.summary.n_cells, "{uri}");
        assert_eq!(s["resolution"], want.summary.resolution, "{uri}");
        assert_eq!(s["k"], want.summary.k, "{uri}");
        assert_eq!(s["incidents_total"], want.summary.incidents_total, "{uri}");
        assert_eq!(s["incidents_used"], want.summary.incidents_used, "{uri}");
        assert_eq!(s["n_hot"], want.summary.n_hot, "{uri}");
        let got = by_cell(&v);
        assert_eq!(got.len(), want.cells.len(), "{uri}");
        for c in &want.cells {
            let g = &got[&c.h3];
            // the private tier sees every count and figure: the serialised result, exactly
            let Value::Object(mut props) = serde_json::to_value(c).expect("json") else {
                panic!("object");
            };
            props.insert("count_suppressed".into(), Value::Bool(false));
            // through text, as the route's figures came (serde_json's parser may land a last
            // bit away from the written value; the same text lands on the same value)
            let text = serde_json::to_string(&props).expect("json");
            let props: Value = serde_json::from_str(&text).expect("parse");
            assert_eq!(g, &props, "{uri} {}", c.h3);
        }
    }
    // a box selects whole cells by their centre from the same analysis
    let all = by_cell(
        &w.call(
            &w.private,
            get(format!("/datasets/{DS}/hotspots?resolution=9&k=1")),
        )
        .await
        .expect(200)
        .json(),
    );
    let bbox = [4.80, 52.43, 4.83, 52.45];
    let boxed = by_cell(
        &w.call(
            &w.private,
            get(format!(
                "/datasets/{DS}/hotspots?resolution=9&k=1&bbox={},{},{},{}",
                bbox[0], bbox[1], bbox[2], bbox[3]
            )),
        )
        .await
        .expect(200)
        .json(),
    );
    let inside: BTreeMap<String, Value> = all
        .into_iter()
        .filter(|(h, _)| {
            let c = h3o::LatLng::from(h.parse::<CellIndex>().expect("cell"));
            c.lng() >= bbox[0] && c.lng() <= bbox[2] && c.lat() >= bbox[1] && c.lat() <= bbox[3]
        })
        .collect();
    assert!(!inside.is_empty());
    assert_eq!(boxed, inside);
}
