//! GeoJSON (RFC 7946) and CSV rendering of layer features.
//! Coordinates: CRS84 lon/lat with 7 decimals (~1 cm), metric CRSs with 3 decimals (1 mm).

use crate::crs::Crs;
use crate::index::DatasetSnapshot;
use crate::model::Layer;
use serde_json::{Map, Value, json};

pub fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

fn pos(crs: Crs, lon: f64, lat: f64, x: f64, y: f64) -> Value {
    if crs == Crs::WGS84 {
        json!([round(lon, 7), round(lat, 7)])
    } else {
        json!([round(x, 3), round(y, 3)])
    }
}

/// RFC 3339 UTC of unix seconds.
pub fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// `YYYY-MM` (UTC) of unix seconds: a time shown as a whole month.
pub fn year_month(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m").to_string())
        .unwrap_or_default()
}

/// A multipolygon as GeoJSON, exterior rings counter-clockwise and holes clockwise (RFC 7946
/// §3.1.6), coordinates rounded for the CRS.
pub fn multipolygon(mp: &geo::MultiPolygon<f64>, crs: Crs) -> Value {
    use geo::orient::{Direction, Orient};
    let d = if crs == Crs::WGS84 { 7 } else { 3 };
    let ring = |r: &geo::LineString<f64>| {
        Value::Array(
            r.0.iter()
                .map(|c| json!([round(c.x, d), round(c.y, d)]))
                .collect(),
        )
    };
    let polys: Vec<Value> = mp
        .orient(Direction::Default)
        .0
        .iter()
        .map(|p| {
            Value::Array(
                std::iter::once(p.exterior())
                    .chain(p.interiors())
                    .map(ring)
                    .collect(),
            )
        })
        .collect();
    json!({"type": "MultiPolygon", "coordinates": polys})
}

/// A point Feature, its parts moved in (`json!` would deep-copy the properties: a third of
/// the time of a 1,000-feature items page).
fn point_feature(id: Value, coordinates: Value, properties: Map<String, Value>) -> Value {
    let mut geometry = Map::new();
    geometry.insert("type".into(), Value::from("Point"));
    geometry.insert("coordinates".into(), coordinates);
    let mut f = Map::new();
    f.insert("type".into(), Value::from("Feature"));
    f.insert("id".into(), id);
    f.insert("geometry".into(), Value::Object(geometry));
    f.insert("properties".into(), Value::Object(properties));
    Value::Object(f)
}

/// One feature of a point layer (or the study area, `row` 0), with free properties of
/// incidents from `details` (external id, props JSON).
pub fn feature(
    snap: &DatasetSnapshot,
    layer: Layer,
    row: usize,
    crs: Crs,
    details: Option<&(String, String)>,
) -> Value {
    match layer {
        Layer::Incidents => {
            let inc = &snap.incidents;
            let mut p = Map::new();
            if let Some((_, props)) = details
                && let Ok(Value::Object(m)) = serde_json::from_str::<Value>(props)
            {
                p.extend(m);
            }
            if let Some((ext, _)) = details {
                p.insert("external_id".into(), json!(ext));
            }
            p.insert("occurred_at".into(), json!(rfc3339(inc.t[row])));
            p.insert(
                "category".into(),
                json!(inc.categories[inc.cat[row] as usize]),
            );
            p.insert("source".into(), json!(inc.sources[inc.src[row] as usize]));
            let s = inc.subject[row];
            p.insert(
                "subject".into(),
                if s == 0 {
                    Value::Null
                } else {
                    json!(inc.subjects[s as usize - 1])
                },
            );
            point_feature(
                json!(inc.fid[row]),
                pos(crs, inc.lon[row], inc.lat[row], inc.x[row], inc.y[row]),
                p,
            )
        }
        Layer::Facilities => {
            let (fid, f) = &snap.facilities[row];
            let mut p = match serde_json::from_str::<Value>(&f.props) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            };
            p.insert("id".into(), json!(f.id));
            p.insert("name".into(), json!(f.name));
            p.insert("kind".into(), json!(f.kind));
            p.insert("confidential".into(), json!(f.confidential));
            point_feature(json!(fid), pos(crs, f.lon, f.lat, f.x, f.y), p)
        }
        Layer::Baseline => {
            let (fid, b) = &snap.baseline[row];
            json!({"type": "Feature", "id": fid,
                   "geometry": {"type": "Point", "coordinates": pos(crs, b.lon, b.lat, b.x, b.y)},
                   "properties": {"id": b.id, "weight": b.weight}})
        }
        Layer::StudyArea => {
            let a = snap.study_area.as_ref();
            let geom = a.map(|a| {
                multipolygon(
                    if crs == Crs::WGS84 {
                        &a.wgs84
                    } else {
                        &a.metric
                    },
                    crs,
                )
            });
            json!({"type": "Feature", "id": 1, "geometry": geom,
                   "properties": {"name": a.map(|a| a.name.clone())}})
        }
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// RFC 4180 CSV (comma, dot decimals) of features rendered by [`feature`]: `fid`, the
/// coordinates, then the properties in order of first appearance.
pub fn to_csv(features: &[Value], crs: Crs) -> String {
    let mut cols: Vec<String> = Vec::new();
    for f in features {
        if let Some(p) = f["properties"].as_object() {
            for k in p.keys() {
                if !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
    }
    let (cx, cy) = if crs == Crs::WGS84 {
        ("lon", "lat")
    } else {
        ("x", "y")
    };
    let mut out = format!("fid,{cx},{cy}");
    for c in &cols {
        out.push(',');
        out.push_str(&csv_field(c));
    }
    out.push_str("\r\n");
    for f in features {
        let c = &f["geometry"]["coordinates"];
        out.push_str(&format!("{},{},{}", f["id"], c[0], c[1]));
        for col in &cols {
            out.push(',');
            match &f["properties"][col] {
                Value::Null => {}
                Value::String(s) => out.push_str(&csv_field(s)),
                v => out.push_str(&csv_field(&v.to_string())),
            }
        }
        out.push_str("\r\n");
    }
    out
}
