//! Parsing layer of ingest: CSV (sniffing, rejections), GeoJSON (hostile inputs), WKT columns,
//! and a seeded never-panics check over random bytes and mutations of valid files.

#![allow(clippy::unwrap_used)]

use hotspots::ingest::csv::{CsvOptions, parse_csv};
use hotspots::ingest::geojson::parse_geojson;
use hotspots::ingest::raw::{GeometrySource, ParseError, ParsedBatch, RawGeometry, Rejected};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

fn csv(text: &str) -> ParsedBatch {
    parse_csv(text.as_bytes(), &CsvOptions::default()).expect("parses")
}

fn csv_err(bytes: &[u8]) -> ParseError {
    parse_csv(bytes, &CsvOptions::default()).expect_err("must fail")
}

fn points(batch: &ParsedBatch) -> Vec<(usize, f64, f64)> {
    batch
        .records
        .iter()
        .map(|r| match r.geometry {
            RawGeometry::Point { x, y } => (r.row, x, y),
            RawGeometry::Area(_) => panic!("row {} is an area", r.row),
        })
        .collect()
}

fn rejected(batch: &ParsedBatch) -> Vec<(usize, &str)> {
    batch
        .rejected
        .iter()
        .map(|r| (r.row, r.reason.as_str()))
        .collect()
}

#[test]
fn dutch_excel_export_needs_no_parameters() {
    let body = "\u{feff}external_id;occurred_at;category;source;subject;priority;x;y\r\n\
                A1;2024-03-01 21:15;geluidsoverlast;politie;;2;117234,125;480010,5\r\n\
                A2;2024-03-02 01:05;jongeren;gemeente;\"Vos; J.\";1;117300;480100,25\r\n";
    let b = csv(body);
    assert_eq!(b.detected.delimiter, Some(';'));
    assert_eq!(b.detected.decimal, Some(','));
    assert!(b.detected.bom);
    assert_eq!(
        b.detected.geometry,
        GeometrySource::Xy {
            x: "x".into(),
            y: "y".into()
        }
    );
    assert_eq!(b.columns.len(), 8);
    assert_eq!(b.columns[0], "external_id");
    assert_eq!(
        points(&b),
        vec![(1, 117234.125, 480010.5), (2, 117300.0, 480100.25)]
    );
    assert!(b.rejected.is_empty());
    let (r1, r2) = (&b.records[0], &b.records[1]);
    assert_eq!(b.text(r1, "category").as_deref(), Some("geluidsoverlast"));
    assert_eq!(b.text(r1, "CATEGORY").as_deref(), Some("geluidsoverlast"));
    assert_eq!(b.text(r1, "subject"), None);
    assert_eq!(b.text(r2, "subject").as_deref(), Some("Vos; J."));
    assert_eq!(b.text(r2, "nope"), None);
    let free = b.free_props(r2, &["external_id", "occurred_at", "category", "source"]);
    assert_eq!(
        serde_json::Value::Object(free),
        json!({"subject": "Vos; J.", "priority": "1"})
    );
}

#[test]
fn comma_dot_with_quoted_fields_and_swapped_lat_lon() {
    let body = "id,lat,lon,note\n\
                1,52.4381,4.8262,\"Dam, Zaandam\"\n\
                2, 52.44 ,4.83,\"said \"\"stop\"\", twice\nthen left\"\n";
    let b = csv(body);
    assert_eq!(b.detected.delimiter, Some(','));
    assert_eq!(b.detected.decimal, Some('.'));
    assert!(!b.detected.bom);
    let expected = GeometrySource::LonLat {
        lon: "lon".into(),
        lat: "lat".into(),
    };
    assert_eq!(b.detected.geometry, expected);
    assert_eq!(points(&b), vec![(1, 4.8262, 52.4381), (2, 4.83, 52.44)]);
    assert_eq!(
        b.text(&b.records[0], "note").as_deref(),
        Some("Dam, Zaandam")
    );
    let note = b.text(&b.records[1], "note").expect("note");
    assert_eq!(note, "said \"stop\", twice\nthen left");
}

#[test]
fn tab_pipe_and_explicit_options() {
    let b = csv("Longitude\tLatitude\tkind\n4,82\t52,43\tx\n");
    assert_eq!(b.detected.delimiter, Some('\t'));
    assert_eq!(b.detected.decimal, Some(','));
    assert_eq!(points(&b), vec![(1, 4.82, 52.43)]);
    let b = csv("easting|northing\n120000.5|480000\n");
    assert_eq!(b.detected.delimiter, Some('|'));
    assert_eq!(points(&b), vec![(1, 120000.5, 480000.0)]);
    let opts = CsvOptions {
        delimiter: Some(b';'),
        decimal: Some(','),
        x: Some("Oost".into()),
        y: Some("noord".into()),
        wkt: None,
    };
    let b = parse_csv(b"oost;noord;x\n1,5;2,5;zz\n", &opts).expect("parses");
    assert_eq!(points(&b), vec![(1, 1.5, 2.5)]);
    assert_eq!(
        b.free_props(&b.records[0], &[]),
        json!({"x": "zz"}).as_object().cloned().unwrap()
    );
    // a 5-byte first line with a multi-byte character is not a `sep=` line (no panic)
    assert_eq!(
        csv_err("abcé\n1;2\n".as_bytes()).code(),
        "no_coordinate_columns"
    );
    // Excel's `sep=` line names the delimiter and is not a row.
    let b = csv("sep=;\nid;x;y\n7;1,5;2\n");
    assert_eq!(
        (b.detected.delimiter, b.detected.decimal),
        (Some(';'), Some(','))
    );
    assert_eq!(points(&b), vec![(1, 1.5, 2.0)]);
}

#[test]
fn old_mac_line_ends_quoted_header_and_trailing_delimiter() {
    let b = csv("\"X\";\"Y\";\r1,5;2,5;\r3;4;\r");
    assert_eq!(b.columns, vec!["X", "Y", "column_3"]);
    assert_eq!(b.detected.decimal, Some(','));
    assert_eq!(points(&b), vec![(1, 1.5, 2.5), (2, 3.0, 4.0)]);
    assert!(b.free_props(&b.records[0], &[]).is_empty());
}

#[test]
fn wkt_column() {
    let body = "id;WKT;name\n\
                1;POINT (120000 480000);a\n\
                2;\"POLYGON ((0 0, 10 0, 10 10, 0 0))\";b\n\
                3;\"SRID=28992;MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))\";c\n\
                4;POINT (52,1 4,3);d\n\
                5;;e\n\
                6;LINESTRING (0 0, 1 1);f\n\
                7;\"SRID=4326;POINT (4.8 52.4)\";g\n";
    let b = csv(body);
    assert_eq!(
        b.detected.geometry,
        GeometrySource::Wkt {
            column: "WKT".into()
        }
    );
    assert_eq!(b.detected.decimal, None);
    assert_eq!(b.detected.srid, Some(28992));
    let rows: Vec<usize> = b.records.iter().map(|r| r.row).collect();
    assert_eq!(rows, vec![1, 2, 3]);
    assert_eq!(
        b.records[0].geometry,
        RawGeometry::Point {
            x: 120000.0,
            y: 480000.0
        }
    );
    let RawGeometry::Area(mp) = &b.records[2].geometry else {
        panic!("area expected")
    };
    assert_eq!(mp.0.len(), 2);
    assert_eq!(
        b.free_props(&b.records[1], &["id"]),
        json!({"name": "b"}).as_object().cloned().unwrap()
    );
    let reasons = rejected(&b);
    assert_eq!(reasons[0].0, 4);
    assert!(
        reasons[0]
            .1
            .starts_with("bad WKT (column 'WKT'): decimal comma in WKT"),
        "{}",
        reasons[0].1
    );
    assert_eq!(reasons[1], (5, "missing WKT geometry (column 'WKT')"));
    assert_eq!(reasons[2].0, 6);
    assert!(
        reasons[2]
            .1
            .contains("unsupported WKT geometry type LINESTRING")
    );
    assert_eq!(
        reasons[3],
        (7, "SRID 4326 differs from SRID 28992 of earlier rows")
    );
}

#[test]
fn every_row_rejection_has_its_row_number_and_reason() {
    let body = "id;x;y\n\
                ok1;1,5;2,5\n\
                r2;;2\n\
                r3;1;abc\n\
                r4;NaN;2\n\
                r5;1;-Infinity\n\
                r6;1;2;3\n\
                r7;1\n\
                ;;\n\
                r9;1.5;2\n\
                r10;1e999;2\n\
                ok11;3;4\n";
    // row 9 mixes a decimal point into a decimal-comma file: the sniffer refuses to guess
    assert_eq!(csv_err(body.as_bytes()).code(), "ambiguous_decimal");
    let opts = CsvOptions {
        decimal: Some(','),
        ..Default::default()
    };
    let b = parse_csv(body.as_bytes(), &opts).expect("parses");
    assert_eq!(points(&b), vec![(1, 1.5, 2.5), (11, 3.0, 4.0)]);
    let expected = vec![
        (2, "missing x coordinate (column 'x')"),
        (3, "non-numeric y coordinate 'abc' (column 'y')"),
        (4, "non-finite x coordinate 'NaN' (column 'x')"),
        (5, "non-finite y coordinate '-Infinity' (column 'y')"),
        (6, "expected 3 fields, found 4"),
        (7, "expected 3 fields, found 2"),
        (8, "empty row"),
        (
            9,
            "non-numeric x coordinate '1.5' (column 'x'): contains '.' but the decimal separator is ','",
        ),
        (10, "non-finite x coordinate '1e999' (column 'x')"),
    ];
    assert_eq!(rejected(&b), expected);
    let b = csv("x,y\n\"1,5\",2\n");
    assert_eq!(b.rejected, vec![Rejected {
        row: 1,
        reason: "non-numeric x coordinate '1,5' (column 'x'): contains ',' (decimal comma? pass decimal=,)".into()
    }]);
}

#[test]
fn file_level_errors_are_typed() {
    assert_eq!(csv_err(b"").code(), "empty_body");
    assert_eq!(csv_err(b"\xEF\xBB\xBF \r\n").code(), "empty_body");
    assert_eq!(
        csv_err(b"id;x;y\n1;2;\xE9\n"),
        ParseError::NotUtf8 {
            offset: 11,
            line: 2
        }
    );
    assert_eq!(
        csv_err(b"\xEF\xBB\xBFx;y\n\xFF"),
        ParseError::NotUtf8 { offset: 7, line: 2 }
    );
    let e = csv_err(b"id;naam;straat\n1;a;b\n");
    assert_eq!(e.code(), "no_coordinate_columns");
    let msg = e.to_string();
    assert!(
        msg.contains("[id, naam, straat]") && msg.contains("x_rd") && msg.contains("the_geom"),
        "{msg}"
    );
    let e = csv_err(b"id;x;y\n1;52,1;4.5\n2;1;2\n");
    assert_eq!(
        e,
        ParseError::AmbiguousDecimal {
            comma_example: "52,1".into(),
            comma_row: 1,
            point_example: "4.5".into(),
            point_row: 1
        }
    );
    assert_eq!(csv_err(b"x,a;y\n1,2;3\n").code(), "ambiguous_delimiter");
    assert_eq!(csv_err(b"x;y;X\n").code(), "duplicate_column");
    assert_eq!(
        csv_err(b"x;y;lon;lat\n").code(),
        "ambiguous_geometry_columns"
    );
    let opts = CsvOptions {
        wkt: Some("shape".into()),
        ..Default::default()
    };
    assert_eq!(
        parse_csv(b"x;y\n", &opts).unwrap_err().code(),
        "column_not_found"
    );
    // a header without rows is not an error
    let b = csv("\u{feff}x;y\r\n");
    assert!(b.records.is_empty() && b.rejected.is_empty());
    assert_eq!(b.detected.decimal, Some('.'));
}

#[test]
fn huge_field_counts_are_refused_not_fatal() {
    let header: Vec<String> = (0..100_000).map(|i| format!("c{i}")).collect();
    let e = csv_err(format!("x;y;{}\n", header.join(";")).as_bytes());
    assert_eq!(e.code(), "too_many_columns");
    let row = ";".repeat(1_000_000);
    let b = csv(&format!("x;y\n1;2\n{row}\n3;4\n"));
    assert_eq!(points(&b), vec![(1, 1.0, 2.0), (3, 3.0, 4.0)]);
    assert_eq!(rejected(&b), vec![(2, "empty row")]);
    let b = csv(&format!("x;y\n1{row}2\n"));
    assert_eq!(rejected(&b), vec![(1, "expected 2 fields, found 1000001")]);
}

fn feature(geometry: serde_json::Value) -> serde_json::Value {
    json!({"type": "Feature", "geometry": geometry, "properties": {"n": 1}})
}

#[test]
fn geojson_features_properties_and_ids() {
    let fc = json!({"type": "FeatureCollection", "name": "x", "features": [
        {"type": "Feature", "id": "a-1", "geometry": {"type": "Point", "coordinates": [4.8, 52.4, 3.0]},
         "properties": {"category": "geluid", "priority": 2, "urgent": true, "extra": {"k": [1, 2]}}},
        {"type": "Feature", "id": 7, "geometry": {"type": "Polygon",
         "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]], [[0.2, 0.2], [0.3, 0.2], [0.3, 0.3], [0.2, 0.2]]]},
         "properties": {"id": "own", "category": "  "}},
        {"type": "Feature", "geometry": {"type": "MultiPolygon",
         "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]}, "properties": null}
    ]});
    let b = parse_geojson(fc.to_string().as_bytes()).expect("parses");
    assert_eq!(b.detected.geometry, GeometrySource::Geojson);
    assert!(b.rejected.is_empty());
    assert_eq!(
        b.records[0].geometry,
        RawGeometry::Point { x: 4.8, y: 52.4 }
    );
    let (r1, r2) = (&b.records[0], &b.records[1]);
    assert_eq!(b.text(r1, "id").as_deref(), Some("a-1"));
    assert_eq!(b.text(r1, "priority").as_deref(), Some("2"));
    assert_eq!(b.text(r1, "urgent").as_deref(), Some("true"));
    assert_eq!(b.text(r2, "id").as_deref(), Some("own"));
    assert_eq!(b.text(r2, "category"), None);
    let free = b.free_props(r1, &["id", "category"]);
    assert_eq!(
        serde_json::Value::Object(free),
        json!({"priority": 2, "urgent": true, "extra": {"k": [1, 2]}})
    );
    let RawGeometry::Area(mp) = &r2.geometry else {
        panic!("area expected")
    };
    assert_eq!(mp.0[0].interiors().len(), 1);
    for c in ["id", "category", "priority", "urgent", "extra"] {
        assert!(b.columns.iter().any(|k| k == c), "{c} in {:?}", b.columns);
    }
    // a single Feature is accepted too
    let one = feature(json!({"type": "Point", "coordinates": [1, 2]}));
    let b = parse_geojson(one.to_string().as_bytes()).expect("parses");
    assert_eq!(b.records.len(), 1);
    assert_eq!(b.text(&b.records[0], "n").as_deref(), Some("1"));
}

#[test]
fn geojson_row_rejections() {
    let fc = json!({"type": "FeatureCollection", "features": [
        feature(json!({"type": "Point", "coordinates": []})),
        feature(json!({"type": "Point", "coordinates": [1, 2]})),
        feature(json!({"type": "LineString", "coordinates": [[0, 0], [1, 1]]})),
        feature(json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]})),
        feature(json!(null)),
        {"type": "Feature", "id": [1], "geometry": {"type": "Point", "coordinates": [1, 2]}},
        "not a feature",
        feature(json!({"type": "GeometryCollection", "geometries": []})),
        feature(json!({"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]], []]})),
    ]});
    let b = parse_geojson(fc.to_string().as_bytes()).expect("parses");
    assert_eq!(b.records.iter().map(|r| r.row).collect::<Vec<_>>(), vec![2]);
    assert_eq!(
        rejected(&b),
        vec![
            (1, "empty coordinates"),
            (3, "unsupported geometry type LineString"),
            (
                4,
                "ring 1: ring is not closed (first and last positions differ)"
            ),
            (5, "missing geometry"),
            (6, "feature id must be a string or a number"),
            (7, "feature is not a JSON object"),
            (8, "unsupported geometry type GeometryCollection"),
            (9, "polygon 2: empty coordinates"),
        ]
    );
}

#[test]
fn geojson_hostile_inputs_are_errors() {
    let depth = 10_000;
    let mut deep = String::new();
    for _ in 0..depth {
        deep.push_str(r#"{"type":"GeometryCollection","geometries":["#);
    }
    for _ in 0..depth {
        deep.push_str("]}");
    }
    let body = format!(
        r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","properties":{{}},"geometry":{deep}}}]}}"#
    );
    let e = parse_geojson(body.as_bytes()).expect_err("too deep");
    assert_eq!(e.code(), "nesting_too_deep");
    assert!(matches!(e, ParseError::NestingTooDeep { line: 1, .. }));
    let nan = br#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[NaN,1]}}]}"#;
    let e = parse_geojson(nan).expect_err("NaN is not JSON");
    assert_eq!(e.code(), "invalid_json");
    assert!(
        e.to_string()
            .contains("NaN and Infinity are not JSON numbers"),
        "{e}"
    );
    let huge = br#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[1e999,1]}}]}"#;
    assert_eq!(parse_geojson(huge).unwrap_err().code(), "invalid_json");
    assert_eq!(parse_geojson(b"").unwrap_err().code(), "empty_body");
    assert_eq!(
        parse_geojson(b"\xEF\xBB\xBF  ").unwrap_err().code(),
        "empty_body"
    );
    assert_eq!(
        parse_geojson(b"{\"type\":\"Feature\xC3\x28\"}").unwrap_err(),
        ParseError::NotUtf8 {
            offset: 16,
            line: 1
        }
    );
    assert_eq!(
        parse_geojson(b"[1,2]").unwrap_err().code(),
        "not_feature_collection"
    );
    let point = br#"{"type":"Point","coordinates":[1,2]}"#;
    assert_eq!(
        parse_geojson(point).unwrap_err().code(),
        "not_feature_collection"
    );
    assert_eq!(
        parse_geojson(br#"{"type":"FeatureCollection"}"#)
            .unwrap_err()
            .code(),
        "not_feature_collection"
    );
    let dup = br#"{"type":"FeatureCollection","features":[],"features":[]}"#;
    assert_eq!(
        parse_geojson(dup).unwrap_err().code(),
        "not_feature_collection"
    );
    assert_eq!(
        parse_geojson(br#"{"type":"FeatureCollection","features":[]} x"#)
            .unwrap_err()
            .code(),
        "invalid_json"
    );
    assert_eq!(
        parse_geojson(br#"{"type":"FeatureCollection","features":[{"#)
            .unwrap_err()
            .code(),
        "invalid_json"
    );
    let b =
        parse_geojson(br#"{"features":[],"type":"FeatureCollection"}"#).expect("empty collection");
    assert!(b.records.is_empty());
    assert_eq!(b.detected.srid, None);
    let legacy = br#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::28992"}},"features":[]}"#;
    assert_eq!(
        parse_geojson(legacy).expect("legacy crs").detected.srid,
        Some(28992)
    );
    let crs84 = br#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:OGC:1.3:CRS84"}},"features":[]}"#;
    assert_eq!(
        parse_geojson(crs84).expect("crs84").detected.srid,
        Some(4326)
    );
}

/// Checks the invariants of any successful parse.
fn check_batch(b: &ParsedBatch) {
    let mut rows: Vec<usize> = b
        .records
        .iter()
        .map(|r| r.row)
        .chain(b.rejected.iter().map(|r| r.row))
        .collect();
    let n = rows.len();
    rows.sort_unstable();
    rows.dedup();
    assert_eq!(rows.len(), n, "row numbers are unique");
    assert!(
        rows.first().is_none_or(|&r| r >= 1),
        "row numbers are 1-based"
    );
    for r in &b.records {
        match &r.geometry {
            RawGeometry::Point { x, y } => assert!(x.is_finite() && y.is_finite()),
            RawGeometry::Area(mp) => {
                for p in &mp.0 {
                    for ring in std::iter::once(p.exterior()).chain(p.interiors()) {
                        assert!(ring.0.len() >= 4 && ring.0.first() == ring.0.last());
                        assert!(ring.0.iter().all(|c| c.x.is_finite() && c.y.is_finite()));
                    }
                }
            }
        }
        for c in &b.columns {
            assert_eq!(b.text(r, c), b.get(r, &b.field(c)));
        }
        let mut text = String::new();
        b.write_free_props(r, &b.free_fields(&["id"]), &mut text);
        let written: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(written, serde_json::Value::Object(b.free_props(r, &["id"])));
    }
}

fn mutate(rng: &mut ChaCha8Rng, valid: &[u8]) -> Vec<u8> {
    let mut v = valid.to_vec();
    let alphabet = b";,\t|\"\n\r.-0123456789eENaInf()[]{}:POINTYGL \xEF\xBB\xBF\xFF";
    let tokens: [&[u8]; 12] = [
        "é".as_bytes(),
        "😀".as_bytes(),
        b"sep=",
        b"sep=;\n",
        b"SRID=1;",
        b"POINT",
        b"NaN",
        b"1e999",
        b"((",
        b"))",
        b"{\"type\":",
        b"[[",
    ];
    for _ in 0..rng.random_range(1..8) {
        let i = rng.random_range(0..=v.len());
        match rng.random_range(0..5) {
            0 if i < v.len() => v[i] = alphabet[rng.random_range(0..alphabet.len())],
            1 if i < v.len() => {
                v.remove(i);
            }
            2 => v.insert(i, alphabet[rng.random_range(0..alphabet.len())]),
            3 => {
                let t = tokens[rng.random_range(0..tokens.len())];
                v.splice(i..i, t.iter().copied());
            }
            _ => {
                let j = rng.random_range(0..=v.len());
                let (a, b) = (i.min(j), i.max(j));
                let chunk = v[a..b].to_vec();
                v.splice(b..b, chunk);
            }
        }
    }
    v
}

#[test]
fn random_and_mutated_inputs_never_panic() {
    let mut rng = ChaCha8Rng::seed_from_u64(20_260_226);
    let valid_csv =
        "\u{feff}id;x;y;wkt_note\r\n1;117234,1;480000,5;\"a;b\"\r\n2;1;2;x\r\n".as_bytes();
    let valid_wkt = b"id,geom\n1,\"POLYGON ((0 0, 1 0, 1 1, 0 0))\"\n2,SRID=28992;POINT (1 2)\n";
    let valid_json = json!({"type": "FeatureCollection", "features": [
        feature(json!({"type": "Point", "coordinates": [4.8, 52.4]})),
        feature(json!({"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]})),
    ]})
    .to_string();
    let (mut ok_csv, mut ok_json) = (0, 0);
    // HOTSPOTS_FUZZ_ITERS=100000 for a longer run; the seed stays fixed
    let iters: usize = std::env::var("HOTSPOTS_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    for _ in 0..iters {
        let random: Vec<u8> = (0..rng.random_range(0..64)).map(|_| rng.random()).collect();
        for body in [
            random,
            mutate(&mut rng, valid_csv),
            mutate(&mut rng, valid_wkt),
        ] {
            if let Ok(b) = parse_csv(&body, &CsvOptions::default()) {
                check_batch(&b);
                ok_csv += 1;
            }
        }
        let body = mutate(&mut rng, valid_json.as_bytes());
        if let Ok(b) = parse_geojson(&body) {
            check_batch(&b);
            ok_json += 1;
        }
    }
    // the mutations are small enough that many inputs still parse
    assert!(
        ok_csv > iters / 3 && ok_json > iters / 30,
        "csv {ok_csv}, json {ok_json}"
    );
}

#[test]
fn resolved_fields_and_written_props_agree_with_the_simple_accessors() {
    let body = "id;x;y;Note;kind\n1;1;2;\"a \"\"q\"\" \\ b\tc\u{1} é😀\";k\n2;3;4;;\n";
    let b = csv(body);
    let (note, missing) = (b.field("note"), b.field("nope"));
    assert_eq!(
        b.get(&b.records[0], &note).as_deref(),
        Some("a \"q\" \\ b\tc\u{1} é😀")
    );
    assert_eq!(b.get(&b.records[1], &note), None);
    assert_eq!(b.get(&b.records[0], &missing), None);
    let free = b.free_fields(&["ID"]);
    let mut out = String::new();
    b.write_free_props(&b.records[0], &free, &mut out);
    assert_eq!(out, r#"{"Note":"a \"q\" \\ b\tc\u0001 é😀","kind":"k"}"#);
    let parsed: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        parsed,
        serde_json::Value::Object(b.free_props(&b.records[0], &["id"]))
    );
    out.clear();
    b.write_free_props(&b.records[1], &free, &mut out);
    assert_eq!(out, "{}");
    let gj = json!({"type": "FeatureCollection", "features": [{"type": "Feature", "id": 5,
        "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {"A": [1, {"b": null}], "s": "x\"y"}}]});
    let b = parse_geojson(gj.to_string().as_bytes()).expect("parses");
    out.clear();
    b.write_free_props(&b.records[0], &b.free_fields(&["a"]), &mut out);
    let parsed: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(parsed, json!({"id": 5, "s": "x\"y"}));
    assert_eq!(
        b.get(&b.records[0], &b.field("a")).as_deref(),
        Some(r#"[1,{"b":null}]"#)
    );
}

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// Rejections that belong to the parsing layer (the others are `validate`'s).
const PARSE_REASONS: [&str; 3] = [
    "missing_coordinate",
    "bad_position",
    "non_finite_coordinate",
];

#[test]
fn hostile_fixtures_match_the_parse_layer_expectations() {
    let expected: serde_json::Value =
        serde_json::from_slice(&fixture("hostile/expected.json")).expect("expected.json");
    let files = expected["files"].as_array().expect("files");
    let mut checked = 0;
    for f in files {
        let name = f["file"].as_str().expect("file");
        if name.ends_with(".gz") {
            continue; // built in `geojson_hostile_inputs_are_errors`
        }
        let body = fixture(&format!("hostile/{name}"));
        let parsed = if name.ends_with(".csv") {
            parse_csv(&body, &CsvOptions::default())
        } else {
            parse_geojson(&body)
        };
        if f["status"] == 400 {
            let codes: Vec<&str> = f["problem_code_any_of"]
                .as_array()
                .expect("codes")
                .iter()
                .filter_map(|c| c.as_str())
                .collect();
            let e = parsed.expect_err(name);
            assert!(
                codes.contains(&e.code()),
                "{name}: {} not in {codes:?}",
                e.code()
            );
            checked += 1;
            continue;
        }
        let b = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut later = 0;
        let mut mine = Vec::new();
        for r in f["rejected"].as_array().expect("rejected") {
            let row = r["row"].as_u64().expect("row") as usize;
            if PARSE_REASONS.contains(&r["reason"].as_str().expect("reason")) {
                mine.push((row, r["reason_contains_any"].clone()));
            } else {
                later += 1;
            }
        }
        assert_eq!(b.rejected.len(), mine.len(), "{name}: {:?}", b.rejected);
        for (got, (row, words)) in b.rejected.iter().zip(&mine) {
            assert_eq!(got.row, *row, "{name}");
            let reason = got.reason.to_lowercase();
            let words = words.as_array().expect("words");
            assert!(
                words
                    .iter()
                    .any(|w| reason.contains(w.as_str().expect("word"))),
                "{name} row {row}: {reason:?} has none of {words:?}"
            );
        }
        let accepted = f["accepted"].as_u64().expect("accepted") as usize;
        assert_eq!(b.records.len(), accepted + later, "{name}");
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} fixtures checked");
}

#[test]
fn zaandam_fixtures_parse_alike_in_every_format() {
    let manifest: serde_json::Value =
        serde_json::from_slice(&fixture("zaandam/manifest.json")).expect("manifest");
    let n = manifest["counts"]["incidents"].as_u64().expect("count") as usize;
    let rd = parse_csv(&fixture("zaandam/incidents_rd.csv"), &CsvOptions::default()).expect("rd");
    assert_eq!(
        (rd.detected.delimiter, rd.detected.decimal, rd.detected.bom),
        (Some(';'), Some(','), true)
    );
    assert_eq!(
        rd.detected.geometry,
        GeometrySource::Xy {
            x: "x".into(),
            y: "y".into()
        }
    );
    let wgs = parse_csv(
        &fixture("zaandam/incidents_wgs84.csv"),
        &CsvOptions::default(),
    )
    .expect("wgs");
    assert_eq!(
        (
            wgs.detected.delimiter,
            wgs.detected.decimal,
            wgs.detected.bom
        ),
        (Some(','), Some('.'), false)
    );
    let gj = parse_geojson(&fixture("zaandam/incidents.geojson")).expect("geojson");
    for b in [&rd, &wgs, &gj] {
        assert_eq!((b.records.len(), b.rejected.len()), (n, 0));
    }
    let fields = [
        "external_id",
        "occurred_at",
        "category",
        "source",
        "subject",
        "priority",
    ];
    for ((a, c), g) in rd.records.iter().zip(&wgs.records).zip(&gj.records) {
        let RawGeometry::Point { x, y } = a.geometry else {
            panic!("point expected")
        };
        assert!(
            (110_000.0..125_000.0).contains(&x) && (485_000.0..500_000.0).contains(&y),
            "RD {x} {y}"
        );
        for k in fields {
            assert_eq!(rd.text(a, k), gj.text(g, k), "{k} of row {}", a.row);
            assert_eq!(wgs.text(c, k), gj.text(g, k), "{k} of row {}", a.row);
        }
        assert_eq!(c.geometry, g.geometry, "row {}", c.row);
    }
    let with_subject = gj
        .records
        .iter()
        .filter(|r| gj.text(r, "subject").is_some())
        .count();
    assert_eq!(
        with_subject as u64,
        manifest["counts"]["incidents_with_subject"]
            .as_u64()
            .expect("subjects")
    );
    let base =
        parse_csv(&fixture("zaandam/baseline.csv"), &CsvOptions::default()).expect("baseline");
    let weight: u64 = base
        .records
        .iter()
        .map(|r| {
            base.text(r, "weight")
                .expect("w")
                .parse::<u64>()
                .expect("int")
        })
        .sum();
    assert_eq!(
        base.records.len() as u64,
        manifest["counts"]["baseline_points"].as_u64().expect("n")
    );
    assert_eq!(
        weight,
        manifest["counts"]["baseline_weight_sum"]
            .as_u64()
            .expect("sum")
    );
    let area = parse_geojson(&fixture("zaandam/study_area.geojson")).expect("area");
    let RawGeometry::Area(mp) = &area.records[0].geometry else {
        panic!("area expected")
    };
    assert_eq!(mp.0[0].exterior().0.len(), 20);
    let fac = parse_geojson(&fixture("zaandam/facilities.geojson")).expect("facilities");
    assert_eq!(fac.records.len(), 36);
}
