//! OGC API - Features over HTTP (in-process router): landing page, conformance, the API
//! document, collections, items with every filter, paging, CRS output, CSV export, single
//! features, and the 400/404 problem answers. Expectations come from the fixture files
//! themselves (brute force over `incidents_rd.csv` / `incidents_wgs84.csv`) and the manifest.

use crate::support::*;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};

const DS: &str = "zd";
const INC: &str = "zd.incidents";

/// One fixture incident: RD x/y from the `;`-CSV, lon/lat from the WGS84 CSV.
struct Row {
    t: String,
    cat: String,
    src: String,
    x: f64,
    y: f64,
    lon: f64,
    lat: f64,
}

fn dutch(s: &str) -> f64 {
    s.replace(',', ".").parse().expect("number")
}

fn fixture_rows() -> HashMap<String, Row> {
    let wgs: HashMap<String, (f64, f64)> = read_table("zaandam/incidents_wgs84.csv", b',')
        .into_iter()
        .map(|r| {
            (
                r["external_id"].clone(),
                (
                    r["lon"].parse().expect("lon"),
                    r["lat"].parse().expect("lat"),
                ),
            )
        })
        .collect();
    read_table("zaandam/incidents_rd.csv", b';')
        .into_iter()
        .map(|r| {
            let (lon, lat) = wgs[&r["external_id"]];
            let row = Row {
                t: r["occurred_at"].clone(),
                cat: r["category"].clone(),
                src: r["source"].clone(),
                x: dutch(&r["x"]),
                y: dutch(&r["y"]),
                lon,
                lat,
            };
            (r["external_id"].clone(), row)
        })
        .collect()
}

fn ext_ids(features: &[Value]) -> HashSet<String> {
    features
        .iter()
        .map(|f| {
            f["properties"]["external_id"]
                .as_str()
                .expect("external_id")
                .to_owned()
        })
        .collect()
}

async fn zaandam() -> TestApp {
    let app = TestApp::new();
    app.load_zaandam(DS).await;
    app.load_zaandam_layers(DS).await;
    app
}

#[tokio::test]
async fn landing_conformance_api_documents() {
    let app = TestApp::new();
    let v = app.call(get("/")).await.expect(200).json();
    let links = v["links"].as_array().expect("links");
    for rel in ["self", "service-desc", "conformance", "data"] {
        let l = links
            .iter()
            .find(|l| l["rel"] == rel)
            .unwrap_or_else(|| panic!("landing page lacks rel={rel}: {v}"));
        // every link resolves
        let path = strip_base(l["href"].as_str().expect("href"));
        app.call(get(&path)).await.expect(200);
    }
    let c = app.call(get("/conformance")).await.expect(200).json();
    let classes: Vec<&str> = c["conformsTo"]
        .as_array()
        .expect("conformsTo")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for want in [
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
        "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    ] {
        assert!(classes.contains(&want), "missing conformance class {want}");
    }
    let api = app.call(get("/api")).await.expect(200);
    assert!(
        api.header("content-type")
            .is_some_and(|c| c.starts_with("application/vnd.oai.openapi+json")),
        "{:?}",
        api.header("content-type")
    );
    let spec = api.json();
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|s| s.starts_with("3.")),
        "/api is an OpenAPI 3 document: {}",
        &api.text()[..api.text().len().min(300)]
    );
    assert!(spec["paths"].is_object(), "/api has paths");
    let yaml = app.call(get("/openapi.yaml")).await.expect(200);
    let from_yaml: Value = serde_yaml::from_slice(&yaml.body).expect("openapi.yaml parses");
    assert_eq!(
        from_yaml, spec,
        "/api and /openapi.yaml are the same document"
    );
    // (that every route of the spec is routed and answers as documented is checked in
    // tests/it/openapi.rs)
}

#[tokio::test]
async fn collections_and_collection() {
    let app = zaandam().await;
    let v = app.call(get("/collections")).await.expect(200).json();
    let ids: Vec<&str> = v["collections"]
        .as_array()
        .expect("collections")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    for l in ["incidents", "facilities", "baseline", "study_area"] {
        assert!(ids.contains(&format!("{DS}.{l}").as_str()), "{ids:?}");
    }
    // exact extents at the private tier (lower tiers get a widened box and whole months)
    let c = app
        .call(get(format!("/collections/{INC}")).admin())
        .await
        .expect(200)
        .json();
    assert_eq!(c["id"], json!(INC));
    assert_eq!(c["numberOfFeatures"], json!(5000));
    let crs: Vec<&str> = c["crs"]
        .as_array()
        .expect("crs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(crs.contains(&CRS84_URI) && crs.contains(&RD_URI), "{crs:?}");
    // the extent covers the fixture's time span and Zaandam
    let t = &c["extent"]["temporal"]["interval"][0];
    assert_eq!(t[0], json!("2023-01-01T00:27:00Z"));
    let bbox = &c["extent"]["spatial"]["bbox"][0];
    assert!(
        bbox[0].as_f64().expect("w") > 4.78 && bbox[2].as_f64().expect("e") < 4.87,
        "{bbox}"
    );
    assert!(
        c["links"]
            .as_array()
            .expect("links")
            .iter()
            .any(|l| l["rel"] == "items"),
        "{c}"
    );
    let f = app
        .call(get("/collections/zd.facilities"))
        .await
        .expect(200)
        .json();
    assert_eq!(f["numberOfFeatures"], json!(36));
}

#[tokio::test]
async fn items_filters_agree_with_brute_force() {
    let app = zaandam().await;
    let rows = fixture_rows();
    // bbox in CRS84 around HS1 (station)
    let b = [4.8230, 52.4355, 4.8350, 52.4435];
    let want: HashSet<String> = rows
        .iter()
        .filter(|(_, r)| r.lon >= b[0] && r.lon <= b[2] && r.lat >= b[1] && r.lat <= b[3])
        .map(|(k, _)| k.clone())
        .collect();
    for r in rows.values() {
        // keep the check robust: no fixture point within ~1 mm of an edge
        assert!(
            b.iter()
                .all(|e| (r.lon - e).abs() > 2e-8 && (r.lat - e).abs() > 2e-8),
            "fixture point on the bbox edge"
        );
    }
    assert!(want.len() > 100, "bbox should hold HS1: {}", want.len());
    let got = app
        .all_items(INC, &format!("&bbox={},{},{},{}", b[0], b[1], b[2], b[3]))
        .await;
    assert_eq!(ext_ids(&got), want, "bbox (CRS84)");
    // bbox in RD New with bbox-crs
    let rb = [116_700.0, 494_500.0, 117_400.0, 495_100.0];
    let want_rd: HashSet<String> = rows
        .iter()
        .filter(|(_, r)| r.x >= rb[0] && r.x <= rb[2] && r.y >= rb[1] && r.y <= rb[3])
        .map(|(k, _)| k.clone())
        .collect();
    let got = app
        .all_items(
            INC,
            &format!(
                "&bbox={},{},{},{}&bbox-crs={}",
                rb[0],
                rb[1],
                rb[2],
                rb[3],
                urlenc(RD_URI)
            ),
        )
        .await;
    assert!(want_rd.len() > 100);
    assert_eq!(ext_ids(&got), want_rd, "bbox with bbox-crs=RD New");
    // category, source and their combination with a time interval
    let count = |f: &dyn Fn(&Row) -> bool| rows.values().filter(|r| f(r)).count() as u64;
    let m = manifest();
    assert_eq!(
        app.matched(INC, "category=geluidsoverlast").await,
        m["counts"]["incidents_by_category"]["geluidsoverlast"]
            .as_u64()
            .expect("n")
    );
    assert_eq!(
        app.matched(INC, "source=ggd").await,
        m["counts"]["incidents_by_source"]["ggd"]
            .as_u64()
            .expect("n")
    );
    assert_eq!(
        app.matched(
            INC,
            "category=jeugdoverlast,drugsoverlast&source=politie&datetime=2024-01-01/2024-12-31"
        )
        .await,
        count(&|r| (r.cat == "jeugdoverlast" || r.cat == "drugsoverlast")
            && r.src == "politie"
            && r.t.starts_with("2024"))
    );
    assert_eq!(app.matched(INC, "category=no-such-category").await, 0);
}

#[tokio::test]
async fn items_datetime_instant_interval_open_ends() {
    let app = TestApp::new();
    app.load_zaandam(DS).await;
    let m = manifest();
    let year = |y: &str| m["counts"]["incidents_by_year"][y].as_u64().expect("year");
    let rows = fixture_rows();
    let at = |t: &str| rows.values().filter(|r| r.t == t).count() as u64;
    assert!(at("2023-01-01T00:27:00Z") >= 1);
    assert_eq!(
        app.matched(INC, "datetime=2023-01-01T00:27:00Z").await,
        at("2023-01-01T00:27:00Z"),
        "instant"
    );
    assert_eq!(
        app.matched(INC, "datetime=2024-01-01T00:00:00Z/2024-12-31T23:59:59Z")
            .await,
        year("2024"),
        "closed interval"
    );
    assert_eq!(
        app.matched(INC, "datetime=2024-01-01/2024-12-31").await,
        year("2024"),
        "dates"
    );
    assert_eq!(
        app.matched(INC, "datetime=../2023-12-31T23:59:59Z").await,
        year("2023"),
        "open start"
    );
    assert_eq!(
        app.matched(INC, "datetime=2025-01-01T00:00:00Z/..").await,
        year("2025"),
        "open end"
    );
    assert_eq!(
        app.matched(INC, "datetime=2025-01-01T01:00:00%2B01:00/")
            .await,
        year("2025"),
        "empty open end, offset time"
    );
}

fn urlenc(s: &str) -> String {
    s.replace(':', "%3A").replace('/', "%2F")
}

#[tokio::test]
async fn items_limit_clamp_and_paging() {
    let app = TestApp::new();
    app.create_dataset("big", Some("EPSG:28992")).await;
    let body = generated_incidents("G", 12_000, "gemeente");
    app.ingest("big", "incidents", "text/csv", "", body)
        .await
        .expect(200);
    let v = app
        .call(get("/collections/big.incidents/items?limit=999999").admin())
        .await
        .expect(200)
        .json();
    assert_eq!(v["numberMatched"], json!(12_000));
    assert_eq!(
        v["numberReturned"],
        json!(10_000),
        "limit is clamped to 10,000"
    );
    assert_eq!(v["features"].as_array().expect("f").len(), 10_000);
    let next = next_link(&v).expect("a next link after a clamped page");
    let v2 = app.call(get(&next).admin()).await.expect(200).json();
    assert_eq!(v2["numberReturned"], json!(2_000));
    assert!(next_link(&v2).is_none(), "no next link on the last page");

    app.call(get("/collections/big.incidents/items?limit=0").admin())
        .await
        .problem(400, "bad_parameter");
    app.call(get("/collections/big.incidents/items?limit=-3").admin())
        .await
        .problem(400, "bad_parameter");
    app.call(get("/collections/big.incidents/items?offset=x").admin())
        .await
        .problem(400, "bad_parameter");

    // walk every page of 700 over the 5,000 Zaandam incidents: each exactly once
    app.load_zaandam(DS).await;
    let mut url = format!("/collections/{INC}/items?limit=700&category=geluidsoverlast,burenruzie");
    let expected = app
        .matched(INC, "category=geluidsoverlast,burenruzie")
        .await;
    let (mut seen, mut pages, mut offset) = (HashSet::new(), 0, 0u64);
    loop {
        let p = app.call(get(&url).admin()).await.expect(200).json();
        assert_eq!(p["numberMatched"], json!(expected));
        let feats = p["features"].as_array().expect("features");
        assert_eq!(p["numberReturned"], json!(feats.len()));
        assert_eq!(feats.len() as u64, 700.min(expected - offset));
        for f in feats {
            assert!(
                seen.insert(f["id"].as_i64().expect("fid")),
                "feature seen twice"
            );
            assert!(
                ["geluidsoverlast", "burenruzie"]
                    .contains(&f["properties"]["category"].as_str().expect("cat"))
            );
        }
        offset += feats.len() as u64;
        pages += 1;
        match next_link(&p) {
            Some(n) => {
                assert!(n.contains("category="), "next keeps the filters: {n}");
                url = n;
            }
            None => break,
        }
    }
    assert_eq!(seen.len() as u64, expected);
    assert_eq!(pages, expected.div_ceil(700));
    // offset past the end: empty page, no next
    let p = app
        .call(get(format!("/collections/{INC}/items?offset=6000")).admin())
        .await
        .expect(200)
        .json();
    assert_eq!(p["numberReturned"], json!(0));
    assert_eq!(p["numberMatched"], json!(5000));
    assert!(next_link(&p).is_none());
}

#[tokio::test]
async fn items_crs_output_csv_and_single_feature() {
    let app = TestApp::new();
    app.load_zaandam(DS).await;
    let rows = fixture_rows();
    // default output: CRS84 with a Content-Crs header
    let r = app
        .call(get(format!("/collections/{INC}/items?limit=50")).admin())
        .await
        .expect(200);
    assert_eq!(
        r.header("content-crs"),
        Some(format!("<{CRS84_URI}>").as_str())
    );
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/geo+json"))
    );
    let v = r.json();
    for f in v["features"].as_array().expect("f") {
        let row = &rows[f["properties"]["external_id"].as_str().expect("ext")];
        let c = &f["geometry"]["coordinates"];
        let d = lonlat_distance_m(
            (c[0].as_f64().expect("lon"), c[1].as_f64().expect("lat")),
            (row.lon, row.lat),
        );
        assert!(
            d < 0.01,
            "lon/lat from RD agree with the WGS84 fixture: {d} m"
        );
    }
    // RD New output
    let r = app
        .call(
            get(format!(
                "/collections/{INC}/items?limit=50&crs={}",
                urlenc(RD_URI)
            ))
            .admin(),
        )
        .await
        .expect(200);
    assert_eq!(
        r.header("content-crs"),
        Some(format!("<{RD_URI}>").as_str())
    );
    let v = r.json();
    assert_eq!(v["numberReturned"], json!(50));
    for f in v["features"].as_array().expect("f") {
        let row = &rows[f["properties"]["external_id"].as_str().expect("ext")];
        let c = &f["geometry"]["coordinates"];
        assert!(
            (c[0].as_f64().expect("x") - row.x).abs() < 0.0015,
            "{c} vs {}",
            row.x
        );
        assert!(
            (c[1].as_f64().expect("y") - row.y).abs() < 0.0015,
            "{c} vs {}",
            row.y
        );
    }
    // EPSG:28992 short form is accepted too, an unknown CRS is not
    app.call(get(format!("/collections/{INC}/items?limit=1&crs=EPSG:28992")).admin())
        .await
        .expect(200);
    app.call(get(format!("/collections/{INC}/items?crs=EPSG:3857")).admin())
        .await
        .problem(400, "unsupported_crs");
    app.call(get(format!("/collections/{INC}/items?crs=EPSG:99999")).admin())
        .await
        .problem(400, "bad_crs");
    app.call(get(format!("/collections/{INC}/items?crs=nonsense")).admin())
        .await
        .problem(400, "bad_crs");

    // a single feature equals its entry in the list
    let first = &v["features"][0];
    let fid = first["id"].as_i64().expect("fid");
    let one = app
        .call(
            get(format!(
                "/collections/{INC}/items/{fid}?crs={}",
                urlenc(RD_URI)
            ))
            .admin(),
        )
        .await
        .expect(200);
    assert_eq!(
        one.header("content-crs"),
        Some(format!("<{RD_URI}>").as_str())
    );
    let one = one.json();
    assert_eq!(one["geometry"], first["geometry"]);
    assert_eq!(one["properties"], first["properties"]);
    assert_eq!(one["id"], first["id"]);
    app.call(get(format!("/collections/{INC}/items/99999999")).admin())
        .await
        .problem(404, "not_found");
    app.call(get(format!("/collections/{INC}/items/abc")).admin())
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn items_csv_is_rfc4180() {
    let app = TestApp::new();
    app.create_dataset("q", Some("EPSG:28992")).await;
    let body = "external_id,occurred_at,category,source,note,lon,lat\n\
                Q-1,2024-05-01T10:00:00Z,geluidsoverlast,gemeente,\"he said \"\"hi\"\", then left\",4.8290000,52.4395000\n\
                Q-2,2024-05-02T10:00:00Z,burenruzie,politie,\"two\nlines\",4.8440000,52.4485000\n\
                Q-3,2024-05-03T10:00:00Z,zwerfafval,ggd,plain,4.7990000,52.4445000\n";
    let out = app
        .ingest("q", "incidents", "text/csv", "", body)
        .await
        .expect(200)
        .json();
    assert_eq!(out["accepted"], json!(3), "{out}");
    let r = app
        .call(get("/collections/q.incidents/items?f=csv&limit=10").admin())
        .await
        .expect(200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/csv"))
    );
    let text = r.text();
    assert!(text.starts_with("fid,lon,lat,"), "{text}");
    // records end in CRLF (the embedded newline is inside quotes)
    assert!(text.ends_with("\r\n"));
    assert_eq!(text.matches("\r\n").count(), 4, "{text:?}");
    let mut rdr = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let h: Vec<String> = rdr
        .headers()
        .expect("h")
        .iter()
        .map(str::to_owned)
        .collect();
    let col = |n: &str| {
        h.iter()
            .position(|x| x == n)
            .unwrap_or_else(|| panic!("column {n}: {h:?}"))
    };
    let recs: Vec<csv::StringRecord> = rdr.records().map(|r| r.expect("rfc 4180 record")).collect();
    assert_eq!(recs.len(), 3);
    let by_id: HashMap<&str, &csv::StringRecord> =
        recs.iter().map(|r| (&r[col("external_id")], r)).collect();
    assert_eq!(&by_id["Q-1"][col("note")], "he said \"hi\", then left");
    assert_eq!(&by_id["Q-2"][col("note")], "two\nlines");
    assert_eq!(&by_id["Q-3"][col("category")], "zwerfafval");
    let lon: f64 = by_id["Q-1"][col("lon")].parse().expect("lon");
    assert!((lon - 4.829).abs() < 1e-9);
    // RD columns with crs
    let r = app
        .call(get("/collections/q.incidents/items?f=csv&crs=EPSG:28992").admin())
        .await
        .expect(200);
    assert!(r.text().starts_with("fid,x,y,"), "{}", r.text());
    assert_eq!(
        r.header("content-crs"),
        Some(format!("<{RD_URI}>").as_str())
    );
    app.call(get("/collections/q.incidents/items?f=xml").admin())
        .await
        .problem(400, "bad_format");
}

#[tokio::test]
async fn items_errors_are_problems() {
    let app = TestApp::new();
    app.load_zaandam(DS).await;
    let items = |q: &str| get(format!("/collections/{INC}/items?{q}")).admin();
    app.call(get("/collections/nope.incidents/items"))
        .await
        .problem(404, "not_found");
    app.call(get("/collections/zd.nolayer"))
        .await
        .problem(404, "not_found");
    app.call(get("/collections/nodot"))
        .await
        .problem(404, "not_found");
    app.call(get("/collections/nope.incidents"))
        .await
        .problem(404, "not_found");
    app.call(get("/no/such/route"))
        .await
        .problem(404, "not_found");
    app.call(items("foo=bar"))
        .await
        .problem(400, "unknown_parameter");
    app.call(items("bbox=1,2,3")).await.problem(400, "bad_bbox");
    app.call(items("bbox=a,b,c,d"))
        .await
        .problem(400, "bad_bbox");
    app.call(items("bbox=4.9,52.4,4.8,52.5"))
        .await
        .problem(400, "bad_bbox");
    app.call(items("bbox=4.8,52.5,4.9,52.4"))
        .await
        .problem(400, "bad_bbox");
    app.call(items("bbox=4.8,52.4,4.9,NaN"))
        .await
        .problem(400, "bad_bbox");
    app.call(items("bbox=117000,494000,118000,495000"))
        .await
        .problem(400, "bad_bbox");
    app.call(items("bbox=4.8,52.4,4.9,52.5&bbox-crs=EPSG:3857"))
        .await
        .problem(400, "unsupported_crs");
    app.call(items("bbox=4.8,52.4,4.9,52.5&bbox-crs=EPSG:99999"))
        .await
        .problem(400, "bad_crs");
    app.call(items("bbox-crs=EPSG:3857"))
        .await
        .problem(400, "unsupported_crs");
    app.call(items("datetime=yesterday"))
        .await
        .problem(400, "bad_datetime");
    app.call(items("datetime=2024-13-01"))
        .await
        .problem(400, "bad_datetime");
    app.call(items("datetime=../.."))
        .await
        .problem(400, "bad_datetime");
    app.call(items("datetime=2025-01-01/2024-01-01"))
        .await
        .problem(400, "bad_datetime");
    app.call(items("limit=10&limit=20"))
        .await
        .problem(400, "repeated_parameter");
    app.call(get("/collections/zd.facilities/items?datetime=2024-01-01").admin())
        .await
        .problem(400, "unsupported_parameter");
    app.call(get("/collections?foo=1"))
        .await
        .problem(400, "unknown_parameter");
    app.call(get("/conformance?foo=1"))
        .await
        .problem(400, "unknown_parameter");
    app.call(delete("/collections"))
        .await
        .problem(405, "method_not_allowed");
}

/// Odd inputs on every read route: a 2xx or a problem+json 4xx, never a 5xx or a panic.
#[tokio::test]
async fn odd_inputs_never_give_a_server_error() {
    let app = zaandam().await;
    let items = "/collections/zd.incidents/items";
    let cases = [
        format!("{items}?bbox=1e309,0,1,1"),
        format!("{items}?bbox=-180,-90,180,90"),
        format!("{items}?bbox=-180,-90,180,90&bbox-crs=EPSG:28992"),
        format!("{items}?bbox=-1e12,-1e12,1e12,1e12&bbox-crs=EPSG:28992"),
        format!("{items}?bbox=0,0,0,0"),
        format!("{items}?bbox=4.8,52.4,4.9,52.5,1"),
        format!("{items}?bbox=4.8,52.4,0,4.9,52.5,10"),
        format!("{items}?bbox=,,,"),
        format!("{items}?datetime=%2B275760-09-13T00:00:00Z"),
        format!("{items}?datetime=9999-12-31"),
        format!("{items}?datetime=0000-01-01/.."),
        format!("{items}?datetime=/"),
        format!("{items}?datetime=2024-01-01T00:00:00Z/2024-01-01T00:00:00Z/2025"),
        format!("{items}?crs=urn:ogc:def:crs:EPSG::28992"),
        format!("{items}?crs="),
        format!("{items}?category="),
        format!("{items}?category=,,,"),
        format!("{items}?source=%00"),
        format!("{items}?limit=1.5"),
        format!("{items}?offset=-1"),
        format!("{items}?%ZZ=1"),
        format!("{items}?="),
        format!("{items}?&&&"),
        format!("{items}/-1"),
        format!("{items}/99999999999999999999999"),
        "/collections/%FF.incidents/items".to_owned(),
        "/collections/.incidents".to_owned(),
        "/collections/zd.".to_owned(),
        "/collections/zd.incidents.incidents".to_owned(),
        "/datasets/%FF".to_owned(),
        "/datasets/zd/incidents".to_owned(),
    ];
    for uri in cases {
        let r = app.call(get(&uri).admin()).await;
        assert!(r.status.as_u16() < 500, "{uri}: {} {}", r.status, r.text());
        if !r.status.is_success() {
            assert_eq!(
                r.header("content-type"),
                Some("application/problem+json"),
                "{uri}: {} {}",
                r.status,
                r.text()
            );
            assert!(r.json()["code"].is_string(), "{uri}");
        }
    }
}
