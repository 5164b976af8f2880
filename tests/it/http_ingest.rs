//! Datasets and ingest over HTTP (in-process router): create/list/describe/delete, the three
//! Zaandam formats, idempotent re-sends, every hostile fixture against `expected.json`,
//! strict batches, 413/415, pseudonymisation, and CRS agreement with PROJ's `cs2cs`.

use crate::support::*;
use hotspots::api::Settings;
use serde_json::{Value, json};
use std::collections::HashMap;

#[tokio::test]
async fn dataset_lifecycle() {
    let app = TestApp::new();
    let r = app
        .call(post_json("/datasets", &json!({"id": "ds-1", "title": "One"})).admin())
        .await
        .expect(201);
    assert!(
        r.header("location")
            .is_some_and(|l| l.ends_with("/datasets/ds-1")),
        "{:?}",
        r.header("location")
    );
    let v = r.json();
    assert_eq!(v["id"], json!("ds-1"));
    assert_eq!(v["title"], json!("One"));
    app.call(post_json("/datasets", &json!({"id": "ds-1"})).admin())
        .await
        .problem(409, "dataset_exists");
    app.create_dataset("ds-2", Some("EPSG:28992")).await;
    let list = app.call(get("/datasets").admin()).await.expect(200).json();
    let ids: Vec<&str> = list["datasets"]
        .as_array()
        .expect("datasets")
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(ids, ["ds-1", "ds-2"]);
    let d = app.call(get("/datasets/ds-2")).await.expect(200).json();
    assert_eq!(d["metric_crs"], json!("EPSG:28992"));
    assert_eq!(d["layers"]["incidents"]["count"], json!(0));
    // bad ids and bad bodies
    app.call(post_json("/datasets", &json!({"id": "Bad Id"})).admin())
        .await
        .problem(400, "invalid");
    app.call(post_json("/datasets", &json!({"id": "x", "metric_crs": "EPSG:4326"})).admin())
        .await
        .problem(400, "invalid");
    app.call(post_json("/datasets", &json!({"id": "x", "colour": "red"})).admin())
        .await
        .problem(400, "bad_json");
    app.call(post("/datasets", "text/plain", "{\"id\":\"x\"}").admin())
        .await
        .problem(415, "unsupported_media_type");
    app.call(get("/datasets/Bad%20Id"))
        .await
        .problem(404, "not_found");
    app.call(get("/datasets/nope"))
        .await
        .problem(404, "not_found");
    // a dataset deleted with its data and created again starts empty
    app.ingest(
        "ds-2",
        "incidents",
        "text/csv",
        "",
        generated_incidents("D", 7, "ggd"),
    )
    .await
    .expect(200);
    app.call(delete("/datasets/ds-2").admin()).await.expect(204);
    app.create_dataset("ds-2", None).await;
    assert_eq!(app.matched("ds-2.incidents", "").await, 0);
    let d = app.call(get("/datasets/ds-2")).await.expect(200).json();
    assert_eq!(d["metric_crs"], json!(null), "{d}");
    // delete: 204, then gone everywhere
    app.call(delete("/datasets/ds-1").admin()).await.expect(204);
    app.call(get("/datasets/ds-1"))
        .await
        .problem(404, "not_found");
    app.call(get("/collections/ds-1.incidents"))
        .await
        .problem(404, "not_found");
    app.call(delete("/datasets/ds-1").admin())
        .await
        .problem(404, "not_found");
    app.call(post("/datasets/ds-1/incidents", "text/csv", "a,b\n").admin())
        .await
        .problem(404, "not_found");
    app.call(post("/datasets/ds-2/nolayer", "text/csv", "a,b\n").admin())
        .await
        .problem(404, "not_found");
}

/// Incident counts per source and category from `GET /datasets/{id}`.
async fn describe_counts(app: &TestApp, ds: &str) -> Value {
    let d = app
        .call(get(format!("/datasets/{ds}")))
        .await
        .expect(200)
        .json();
    json!({"n": d["layers"]["incidents"]["count"], "sources": d["sources"], "categories": d["categories"]})
}

#[tokio::test]
async fn zaandam_in_three_formats() {
    let app = TestApp::new();
    let m = manifest();
    let want = json!({
        "n": m["counts"]["incidents"],
        "sources": m["counts"]["incidents_by_source"],
        "categories": m["counts"]["incidents_by_category"],
    });
    // RD New ;-CSV, decimal commas, BOM, CRLF: no parameters at all except the CRS
    app.create_dataset("rd", None).await;
    let out = app
        .ingest(
            "rd",
            "incidents",
            "text/csv",
            "crs=EPSG:28992",
            read_fixture("zaandam/incidents_rd.csv"),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(out["accepted"], json!(5000), "{out}");
    assert_eq!(out["rejected"], json!([]));
    assert_eq!(out["inserted"], json!(5000));
    assert_eq!(
        out["metric_crs"],
        json!("EPSG:28992"),
        "NL data gets RD New"
    );
    assert_eq!(describe_counts(&app, "rd").await, want);
    // GeoJSON and WGS84 CSV (default crs)
    for (ds, file, ct) in [
        ("gj", "zaandam/incidents.geojson", "application/geo+json"),
        ("wgs", "zaandam/incidents_wgs84.csv", "text/csv"),
    ] {
        app.create_dataset(ds, None).await;
        let out = app
            .ingest(ds, "incidents", ct, "", read_fixture(file))
            .await
            .expect(200)
            .json();
        assert_eq!(out["accepted"], json!(5000), "{file}: {out}");
        assert_eq!(describe_counts(&app, ds).await, want, "{file}");
    }
    // the three agree on positions to within 2 mm (RD output)
    let pos = |feats: Vec<Value>| -> HashMap<String, (f64, f64)> {
        feats
            .iter()
            .map(|f| {
                let c = &f["geometry"]["coordinates"];
                (
                    f["properties"]["external_id"]
                        .as_str()
                        .expect("ext")
                        .to_owned(),
                    (c[0].as_f64().expect("x"), c[1].as_f64().expect("y")),
                )
            })
            .collect()
    };
    let q = "&crs=EPSG:28992";
    let a = pos(app.all_items("rd.incidents", q).await);
    let b = pos(app.all_items("gj.incidents", q).await);
    let c = pos(app.all_items("wgs.incidents", q).await);
    assert_eq!(a.len(), 5000);
    for (k, p) in &a {
        for other in [&b[k], &c[k]] {
            let d = ((p.0 - other.0).powi(2) + (p.1 - other.1).powi(2)).sqrt();
            assert!(d < 0.002, "{k}: {d} m apart");
        }
    }
    // a free property survives
    let f = app
        .call(get("/collections/gj.incidents/items?limit=1").admin())
        .await
        .expect(200)
        .json();
    assert!(
        f["features"][0]["properties"]["priority"].is_string(),
        "{f}"
    );
}

#[tokio::test]
async fn resending_a_batch_updates_instead_of_duplicating() {
    let app = TestApp::new();
    app.load_zaandam("zd").await;
    let again = app
        .ingest(
            "zd",
            "incidents",
            "text/csv",
            "crs=EPSG:28992",
            read_fixture("zaandam/incidents_rd.csv"),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(again["accepted"], json!(5000));
    assert_eq!(again["inserted"], json!(0));
    assert_eq!(again["updated"], json!(5000));
    assert_eq!(app.matched("zd.incidents", "").await, 5000);
    // the same incidents as GeoJSON (same source + external id): still 5,000
    let gj = app
        .ingest(
            "zd",
            "incidents",
            "application/geo+json",
            "",
            read_fixture("zaandam/incidents.geojson"),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(gj["updated"], json!(5000), "{}", gj["inserted"]);
    assert_eq!(app.matched("zd.incidents", "").await, 5000);
    // an update changes the stored row
    let body = "external_id,occurred_at,category,source,lon,lat\nGEM-000001,2024-06-01T12:00:00Z,zwerfafval,gemeente,4.8290000,52.4395000\n";
    let out = app
        .ingest("zd", "incidents", "text/csv", "", body)
        .await
        .expect(200)
        .json();
    assert_eq!(out["updated"], json!(1));
    let v = app
        .call(get("/collections/zd.incidents/items?datetime=2024-06-01T12:00:00Z&source=gemeente&category=zwerfafval").admin())
        .await
        .expect(200)
        .json();
    let hit = v["features"]
        .as_array()
        .expect("f")
        .iter()
        .find(|f| f["properties"]["external_id"] == "GEM-000001")
        .expect("updated row is served");
    assert_eq!(hit["geometry"]["coordinates"], json!([4.829, 52.4395]));
}

/// Builds the 10,000-deep GeometryCollection the README describes (the .gz is only storage).
fn deep_geometrycollection() -> Vec<u8> {
    let point = r#"{"type":"Point","coordinates":[4.829,52.4395]}"#;
    let geom = format!(
        "{}{}{}",
        "{\"type\":\"GeometryCollection\",\"geometries\":[".repeat(10_000),
        point,
        "]}".repeat(10_000)
    );
    format!(
        r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","geometry":{geom},"properties":{{"external_id":"POL-900999","occurred_at":"2025-03-05T14:22:00Z","category":"jeugdoverlast","source":"politie"}}}}]}}"#
    )
    .into_bytes()
}

#[tokio::test]
async fn hostile_fixtures_answer_as_expected() {
    hostile_fixtures(Some("EPSG:28992")).await;
}

/// The same answers when the dataset is new and its metric CRS is not fixed yet (the first
/// batch decides it): swapped axes must not turn a Dutch dataset into a UTM one.
#[tokio::test]
async fn hostile_fixtures_answer_as_expected_in_a_new_dataset() {
    hostile_fixtures(None).await;
}

async fn hostile_fixtures(metric: Option<&str>) {
    let app = TestApp::new();
    let exp: Value = serde_json::from_slice(&read_fixture("hostile/expected.json")).expect("json");
    let files = exp["files"].as_array().expect("files");
    assert!(files.len() >= 20);
    for (i, f) in files.iter().enumerate() {
        let file = f["file"].as_str().expect("file");
        let ds = format!("h{i}");
        app.create_dataset(&ds, metric).await;
        let body = if file == "deep_geometrycollection.geojson.gz" {
            deep_geometrycollection()
        } else {
            read_fixture(&format!("hostile/{file}"))
        };
        let crs = f["crs"].as_str().expect("crs");
        let r = app
            .ingest(
                &ds,
                f["layer"].as_str().expect("layer"),
                f["content_type"].as_str().expect("ct"),
                &format!("crs={crs}"),
                body,
            )
            .await;
        let status = f["status"].as_u64().expect("status") as u16;
        assert_eq!(r.status.as_u16(), status, "{file}: {}", r.text());
        if status != 200 {
            let v = r.json();
            assert_eq!(
                r.header("content-type"),
                Some("application/problem+json"),
                "{file}"
            );
            let codes: Vec<&str> = f["problem_code_any_of"]
                .as_array()
                .expect("codes")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert!(
                codes.contains(&v["code"].as_str().unwrap_or("")),
                "{file}: code {} not in {codes:?}: {v}",
                v["code"]
            );
            if file == "windows1252.csv" {
                assert!(
                    v["detail"].as_str().unwrap_or("").contains('2'),
                    "names the line: {v}"
                );
            }
            assert_eq!(
                app.matched(&format!("{ds}.incidents"), "").await,
                0,
                "{file}: nothing written"
            );
            continue;
        }
        let v = r.json();
        assert_eq!(v["accepted"], f["accepted"], "{file}: {v}");
        let got = v["rejected"].as_array().expect("rejected");
        let want = f["rejected"].as_array().expect("rejected");
        assert_eq!(got.len(), want.len(), "{file}: {v}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g["row"], w["row"], "{file}: {v}");
            let reason = g["reason"].as_str().expect("reason").to_lowercase();
            let words = w["reason_contains_any"].as_array().expect("words");
            assert!(
                words
                    .iter()
                    .any(|x| reason.contains(x.as_str().unwrap_or("\u{0}"))),
                "{file} row {}: reason {reason:?} has none of {words:?}",
                g["row"]
            );
        }
        assert_eq!(
            app.matched(&format!("{ds}.incidents"), "").await,
            f["accepted"].as_u64().expect("n"),
            "{file}: served count"
        );
    }
}

#[tokio::test]
async fn hostile_details_times_and_duplicates() {
    let app = TestApp::new();
    app.create_dataset("t", Some("EPSG:28992")).await;
    app.ingest(
        "t",
        "incidents",
        "text/csv",
        "",
        read_fixture("hostile/bad_time.csv"),
    )
    .await
    .expect(200);
    let v = app
        .call(get("/collections/t.incidents/items?source=politie").admin())
        .await
        .expect(200)
        .json();
    let row2 = v["features"]
        .as_array()
        .expect("f")
        .iter()
        .find(|f| f["properties"]["external_id"] == "POL-900142")
        .expect("row 2 stored");
    assert_eq!(
        row2["properties"]["occurred_at"],
        json!("2025-03-05T14:22:00Z")
    );

    app.create_dataset("d", Some("EPSG:28992")).await;
    app.ingest(
        "d",
        "incidents",
        "text/csv",
        "",
        read_fixture("hostile/duplicate_id.csv"),
    )
    .await
    .expect(200);
    for src in ["gemeente", "politie"] {
        let v = app
            .call(get(format!("/collections/d.incidents/items?source={src}")).admin())
            .await
            .expect(200)
            .json();
        assert!(
            v["features"]
                .as_array()
                .expect("f")
                .iter()
                .any(|f| f["properties"]["external_id"] == "X-1"),
            "X-1 of {src} stored"
        );
    }
    // the first of the duplicate pair is the one kept
    let v = app
        .call(get("/collections/d.incidents/items?datetime=2025-03-06T09:00:00Z").admin())
        .await
        .expect(200)
        .json();
    assert_eq!(v["numberMatched"], json!(0));
}

#[tokio::test]
async fn strict_batches_write_nothing() {
    let app = TestApp::new();
    app.create_dataset("s", Some("EPSG:28992")).await;
    let r = app
        .ingest(
            "s",
            "incidents",
            "text/csv",
            "strict=true",
            read_fixture("hostile/bad_time.csv"),
        )
        .await;
    let v = r.problem(422, "rows_rejected");
    assert_eq!(v["rejected"].as_array().map(Vec::len), Some(5), "{v}");
    assert_eq!(app.matched("s.incidents", "").await, 0);
    // a clean batch with strict=true is written
    let ok = generated_incidents("S", 10, "gemeente");
    app.ingest("s", "incidents", "text/csv", "strict=true", ok)
        .await
        .expect(200);
    assert_eq!(app.matched("s.incidents", "").await, 10);
    app.ingest("s", "incidents", "text/csv", "strict=perhaps", "x")
        .await
        .problem(400, "bad_parameter");
    app.ingest("s", "incidents", "text/csv", "colour=red", "x")
        .await
        .problem(400, "unknown_parameter");
    app.ingest("s", "incidents", "text/csv", "crs=EPSG:nope", "x")
        .await
        .problem(400, "bad_crs");
}

#[tokio::test]
async fn media_type_and_body_limit() {
    let app = TestApp::with_settings(Settings {
        max_body_bytes: 10_000,
        ..Settings::default()
    });
    app.create_dataset("m", Some("EPSG:28992")).await;
    for ct in ["application/xml", "image/png", ""] {
        let mut r = post("/datasets/m/incidents", ct, "a,b\n1,2\n").admin();
        if ct.is_empty() {
            r.headers.clear();
            r = r.admin();
        }
        app.call(r).await.problem(415, "unsupported_media_type");
    }
    // text/csv with parameters is fine
    app.ingest(
        "m",
        "incidents",
        "text/csv; charset=utf-8",
        "",
        generated_incidents("M", 5, "ggd"),
    )
    .await
    .expect(200);
    let big = generated_incidents("B", 400, "ggd");
    assert!(big.len() > 10_000);
    app.ingest("m", "incidents", "text/csv", "", big)
        .await
        .problem(413, "body_too_large");
    // a claimed length over the limit is refused from the header
    let r = post("/datasets/m/incidents", "text/csv", "a,b\n")
        .admin()
        .header("content-length", "1073741824");
    app.call(r).await.problem(413, "body_too_large");
    assert_eq!(app.matched("m.incidents", "").await, 5);
}

#[tokio::test]
async fn subjects_are_pseudonymised() {
    let app = TestApp::new();
    let m = manifest();
    app.load_zaandam("p1").await;
    let raw = "C-7777777";
    let body = incidents_csv(&[
        (
            "P-1".into(),
            "2024-05-01T10:00:00Z",
            "burenruzie",
            "gemeente",
            raw,
            4.829,
            52.4395,
        ),
        (
            "P-2".into(),
            "2024-05-02T10:00:00Z",
            "burenruzie",
            "politie",
            " c-7777777 ",
            4.844,
            52.4485,
        ),
        (
            "P-3".into(),
            "2024-05-02T10:00:00Z",
            "burenruzie",
            "politie",
            "C-1",
            4.844,
            52.4485,
        ),
    ]);
    app.ingest("p1", "incidents", "text/csv", "", body.clone())
        .await
        .expect(200);
    app.create_dataset("p2", Some("EPSG:28992")).await;
    app.ingest("p2", "incidents", "text/csv", "", body)
        .await
        .expect(200);
    let subjects = |v: Value| -> HashMap<String, String> {
        v["features"]
            .as_array()
            .expect("f")
            .iter()
            .filter(|f| {
                f["properties"]["external_id"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("P-"))
            })
            .map(|f| {
                (
                    f["properties"]["external_id"]
                        .as_str()
                        .expect("ext")
                        .to_owned(),
                    f["properties"]["subject"]
                        .as_str()
                        .expect("subject")
                        .to_owned(),
                )
            })
            .collect()
    };
    let q = "/items?datetime=2024-05-01/2024-05-02&category=burenruzie";
    let s1 = subjects(
        app.call(get(format!("/collections/p1.incidents{q}")).admin())
            .await
            .expect(200)
            .json(),
    );
    let s2 = subjects(
        app.call(get(format!("/collections/p2.incidents{q}")).admin())
            .await
            .expect(200)
            .json(),
    );
    assert_eq!(s1.len(), 3);
    assert_eq!(
        s1["P-1"], s1["P-2"],
        "same person from two sources: same pseudonym"
    );
    assert_ne!(s1["P-1"], s1["P-3"]);
    assert_ne!(s1["P-1"], s2["P-1"], "another dataset: another pseudonym");
    assert_eq!(s2["P-1"], s2["P-2"]);
    for s in s1.values() {
        assert!(!s.contains("7777777") && !s.contains("C-1"), "{s}");
    }
    // the raw identifiers are nowhere in the database files (main file and WAL)
    let mut needles: Vec<String> = vec![raw.into(), "7777777".into()];
    for f in m["planted"]["frequent_subjects"]
        .as_array()
        .expect("frequent")
    {
        needles.push(f["subject"].as_str().expect("subject").to_owned());
    }
    let mut haystack = Vec::new();
    for entry in std::fs::read_dir(app.dir.path()).expect("dir") {
        let p = entry.expect("entry").path();
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_owned();
        if name.starts_with("hotspots.sqlite") {
            haystack.extend(std::fs::read(&p).expect("read db"));
        }
    }
    assert!(
        haystack.len() > 100_000,
        "the database holds the 5,000 incidents"
    );
    // sanity: the search does find text that is stored (an external id)
    assert!(contains(&haystack, b"GEM-000001"));
    for n in &needles {
        assert!(
            !contains(&haystack, n.as_bytes()),
            "raw subject {n} found in the database"
        );
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn rd_to_wgs84_agrees_with_cs2cs() {
    let app = TestApp::new();
    app.create_dataset("crs", Some("EPSG:28992")).await;
    let pts = read_table("crs/rd_points_cs2cs.csv", b';');
    assert_eq!(pts.len(), 51);
    let mut body = String::from("external_id;occurred_at;category;source;x;y\n");
    for p in &pts {
        body.push_str(&format!(
            "{};2024-01-01T00:00:00Z;test;gemeente;{};{}\n",
            p["id"], p["x"], p["y"]
        ));
    }
    let out = app
        .ingest(
            "crs",
            "incidents",
            "text/csv",
            "crs=EPSG:28992&delimiter=;&decimal=.",
            body,
        )
        .await
        .expect(200)
        .json();
    assert_eq!(out["accepted"], json!(51), "{out}");
    let served: HashMap<String, (f64, f64)> = app
        .all_items("crs.incidents", "")
        .await
        .iter()
        .map(|f| {
            let c = &f["geometry"]["coordinates"];
            (
                f["properties"]["external_id"]
                    .as_str()
                    .expect("ext")
                    .to_owned(),
                (c[0].as_f64().expect("lon"), c[1].as_f64().expect("lat")),
            )
        })
        .collect();
    let mut worst = 0.0f64;
    for p in &pts {
        let want: (f64, f64) = (
            p["lon"].parse().expect("lon"),
            p["lat"].parse().expect("lat"),
        );
        let d = lonlat_distance_m(served[&p["id"]], want);
        worst = worst.max(d);
        assert!(d < 0.01, "{}: {d} m from cs2cs", p["id"]);
    }
    assert!(worst > 0.0, "distances are measured");
}

#[tokio::test]
async fn wgs84_to_rd_agrees_with_cs2cs() {
    let app = TestApp::new();
    app.create_dataset("crs", Some("EPSG:28992")).await;
    let pts = read_table("crs/wgs84_points_cs2cs.csv", b';');
    assert_eq!(pts.len(), 20);
    let mut body = String::from("external_id,occurred_at,category,source,lon,lat\n");
    for p in &pts {
        body.push_str(&format!(
            "{},2024-01-01T00:00:00Z,test,gemeente,{},{}\n",
            p["id"], p["lon"], p["lat"]
        ));
    }
    let out = app
        .ingest("crs", "incidents", "text/csv", "", body)
        .await
        .expect(200)
        .json();
    assert_eq!(out["accepted"], json!(20), "{out}");
    let feats = app
        .all_items(
            "crs.incidents",
            &format!("&crs={}", RD_URI.replace(':', "%3A")),
        )
        .await;
    let served: HashMap<String, (f64, f64)> = feats
        .iter()
        .map(|f| {
            let c = &f["geometry"]["coordinates"];
            (
                f["properties"]["external_id"]
                    .as_str()
                    .expect("ext")
                    .to_owned(),
                (c[0].as_f64().expect("x"), c[1].as_f64().expect("y")),
            )
        })
        .collect();
    for p in &pts {
        let (x, y): (f64, f64) = (p["x"].parse().expect("x"), p["y"].parse().expect("y"));
        let s = served[&p["id"]];
        let d = ((s.0 - x).powi(2) + (s.1 - y).powi(2)).sqrt();
        assert!(d < 0.01, "{}: {d} m from cs2cs", p["id"]);
    }
}

/// A batch above the two-thread threshold of validation (PROJ transforms and H3 cells in two
/// halves, duplicates found after): every stored point, cell and rejection is what one thread
/// computes, and a duplicate pair split across the halves keeps its first row.
#[tokio::test]
async fn a_large_batch_is_validated_on_two_threads_like_one() {
    use h3o::{LatLng, Resolution};
    use hotspots::crs::{Crs, Transformer};
    let app = TestApp::new();
    app.create_dataset("big", Some("EPSG:28992")).await;
    let n = 60_010;
    let mut csv = String::from("external_id;occurred_at;category;source;x;y\n");
    let mut xy = Vec::with_capacity(n);
    for i in 0..n {
        let x = 110_000.0 + (i * 7919 % 20_000) as f64 + 0.125;
        let y = 490_000.0 + (i * 104_729 % 20_000) as f64 + 0.5;
        // row 55,000 repeats the id of row 3 (rows count from 1 after the header)
        let id = if i == 54_999 { 2 } else { i };
        csv.push_str(&format!(
            "B-{id};2025-03-01T10:00:00Z;geluidsoverlast;gemeente;{};{}\n",
            format!("{x}").replace('.', ","),
            format!("{y}").replace('.', ",")
        ));
        xy.push((x, y));
    }
    let out = app
        .ingest("big", "incidents", "text/csv", "crs=EPSG:28992", csv)
        .await
        .expect(200)
        .json();
    assert_eq!(out["accepted"], json!(n - 1), "{}", out["rejected"]);
    let rej = out["rejected"].as_array().expect("rejected");
    assert_eq!(rej.len(), 1, "{rej:?}");
    assert_eq!(rej[0]["row"], json!(55_000));
    assert!(
        rej[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("duplicate id \"B-2\"") && r.contains("first at row 3")),
        "{rej:?}"
    );
    let snap = app
        .state
        .app
        .catalog
        .get(&hotspots::model::DatasetId::new("big").expect("id"))
        .expect("dataset");
    let inc = &snap.incidents;
    let to_wgs = Transformer::new(Crs::RD_NEW, Crs::WGS84).expect("transformer");
    let input: std::collections::HashSet<(u64, u64)> =
        xy.iter().map(|(x, y)| (x.to_bits(), y.to_bits())).collect();
    let mut seen = 0;
    for r in 0..inc.len() {
        let (x, y) = (inc.x[r], inc.y[r]);
        assert!(
            input.contains(&(x.to_bits(), y.to_bits())),
            "stored point from the input"
        );
        let (lon, lat) = to_wgs.point(x, y).expect("in range");
        assert!((inc.lon[r] - lon).abs() < 1e-12 && (inc.lat[r] - lat).abs() < 1e-12);
        let cell = LatLng::new(inc.lat[r], inc.lon[r])
            .expect("ll")
            .to_cell(Resolution::Twelve);
        assert_eq!(inc.cell[r], u64::from(cell));
        seen += 1;
    }
    assert_eq!(seen, n - 1);
}
