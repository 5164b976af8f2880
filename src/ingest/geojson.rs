//! GeoJSON input (RFC 7946): a FeatureCollection or a single Feature -> [`ParsedBatch`].
//!
//! The `features` array is streamed: each feature is decoded into a `serde_json::Value`,
//! checked and turned into a [`RawRecord`] (or a [`Rejected`] with its 1-based feature number)
//! before the next one is read, so memory follows the records, not the whole document tree.
//!
//! Checks learnt from parser bugs elsewhere (see the shared anchors, §3.1):
//! - geometry types Point, Polygon, MultiPolygon only (everything else is a row rejection, so a
//!   nested GeometryCollection is never walked);
//! - position arity 2 or 3 (the third ordinate is dropped) and `[]` rejected before any
//!   conversion (georust/geojson #224), finite numbers only (geodatafusion #99);
//! - rings closed with at least 4 positions;
//! - nesting is capped by serde_json's recursion limit (128), reported as `nesting_too_deep`
//!   instead of a stack overflow (georust/wkt #152, GEOS #1487);
//! - no pre-allocation from counts found in the input (georust/wkb #93).
//!
//! Coordinates are kept as given (RFC 7946 says lon/lat, but a `crs` parameter may say
//! otherwise; `validate` transforms). Winding order is not checked (RFC 7946 §3.1.6: parsers
//! SHOULD NOT reject the other winding).

use std::collections::HashSet;
use std::fmt;

use geo::{Coord, LineString, MultiPolygon, Polygon};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The file-level error of this parser (shared with the other parsers).
pub use super::raw::ParseError;

use super::raw::{
    CellArena, Detected, GeometrySource, InputFormat, ParsedBatch, Props, RawGeometry, RawRecord,
    Rejected, clip, ring_problem, utf8_body,
};

/// Parses a GeoJSON FeatureCollection (or a single Feature).
///
/// ```
/// use hotspots::ingest::geojson::parse_geojson;
/// use hotspots::ingest::raw::RawGeometry;
///
/// let body = r#"{"type": "FeatureCollection", "features": [
///   {"type": "Feature", "id": 7, "geometry": {"type": "Point", "coordinates": [4.83, 52.44, 1.5]},
///    "properties": {"category": "geluid", "priority": 2}},
///   {"type": "Feature", "geometry": {"type": "Point", "coordinates": []}, "properties": {}}]}"#;
/// let batch = parse_geojson(body.as_bytes()).unwrap();
/// let rec = &batch.records[0];
/// assert_eq!(rec.geometry, RawGeometry::Point { x: 4.83, y: 52.44 });
/// assert_eq!(batch.text(rec, "priority").as_deref(), Some("2"));
/// assert_eq!(batch.text(rec, "id").as_deref(), Some("7"));
/// assert_eq!((batch.rejected[0].row, batch.rejected[0].reason.as_str()), (2, "empty coordinates"));
/// ```
pub fn parse_geojson(bytes: &[u8]) -> Result<ParsedBatch, ParseError> {
    let (text, bom) = utf8_body(bytes)?;
    let mut sink = Sink::default();
    let mut de = serde_json::Deserializer::from_str(text);
    let top = TopSeed { sink: &mut sink }
        .deserialize(&mut de)
        .map_err(|e| json_error(&e, text))?;
    de.end().map_err(|e| json_error(&e, text))?;
    match top.kind.as_deref() {
        Some("FeatureCollection") if top.had_features => {}
        Some("FeatureCollection") => return Err(not_fc("the FeatureCollection has no features")),
        Some("Feature") if !top.had_features => {
            let mut feature = top.single;
            feature.insert("type".to_owned(), Value::String("Feature".to_owned()));
            sink.feature(Value::Object(feature));
        }
        Some(other) => return Err(not_fc(&format!("found type '{}'", clip(other)))),
        None => return Err(not_fc("the top-level object has no \"type\" member")),
    }
    Ok(ParsedBatch {
        columns: sink.columns,
        records: sink.records,
        rejected: sink.rejected,
        detected: Detected {
            format: InputFormat::Geojson,
            delimiter: None,
            decimal: None,
            bom,
            geometry: GeometrySource::Geojson,
            srid: top.crs,
        },
        geometry_columns: Vec::new(),
        cells: CellArena::default(),
    })
}

fn not_fc(message: &str) -> ParseError {
    ParseError::NotFeatureCollection {
        message: message.to_owned(),
    }
}

/// Maps a serde_json error to a typed [`ParseError`].
fn json_error(e: &serde_json::Error, text: &str) -> ParseError {
    let (line, column) = (e.line(), e.column());
    let full = e.to_string();
    let message = match full.rfind(" at line ") {
        Some(i) => full[..i].to_owned(),
        None => full,
    };
    if message.starts_with("recursion limit exceeded") {
        return ParseError::NestingTooDeep { line, column };
    }
    match e.classify() {
        serde_json::error::Category::Data => ParseError::NotFeatureCollection { message },
        _ => {
            let hint = if near_non_finite(text, line, column) {
                " (NaN and Infinity are not JSON numbers: coordinates must be finite)"
            } else {
                ""
            };
            ParseError::InvalidJson {
                line,
                column,
                message: format!("{message}{hint}"),
            }
        }
    }
}

/// Whether a `NaN` / `Infinity` token is near the error position.
fn near_non_finite(text: &str, line: usize, column: usize) -> bool {
    let Some(l) = text.split('\n').nth(line.saturating_sub(1)) else {
        return false;
    };
    let b = l.as_bytes();
    let lo = column.saturating_sub(12).min(b.len());
    let hi = (column + 12).min(b.len());
    let window = &b[lo..hi];
    [&b"NaN"[..], b"Infinity", b"nan", b"inf"]
        .iter()
        .any(|t| window.windows(t.len()).any(|w| w == *t))
}

/// Accumulates records while the features are streamed.
#[derive(Default)]
struct Sink {
    columns: Vec<String>,
    seen: HashSet<String>,
    records: Vec<RawRecord>,
    rejected: Vec<Rejected>,
    count: usize,
}

impl Sink {
    fn feature(&mut self, value: Value) {
        self.count += 1;
        let row = self.count;
        match feature_record(value) {
            Ok((geometry, props)) => {
                for key in props.keys() {
                    if !self.seen.contains(key) {
                        self.seen.insert(key.clone());
                        self.columns.push(key.clone());
                    }
                }
                self.records.push(RawRecord {
                    row,
                    geometry,
                    props: Props::json(props),
                });
            }
            Err(reason) => self.rejected.push(Rejected { row, reason }),
        }
    }
}

/// What the top-level object held besides the streamed features.
#[derive(Default)]
struct Top {
    kind: Option<String>,
    had_features: bool,
    /// EPSG code of a legacy (GeoJSON 2008) `crs` member.
    crs: Option<u32>,
    /// `geometry`, `properties` and `id` of a single Feature.
    single: Map<String, Value>,
}

struct TopSeed<'s> {
    sink: &'s mut Sink,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_> {
    type Value = Top;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Top, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_> {
    type Value = Top;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a GeoJSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let mut top = Top::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "type" => top.kind = Some(map.next_value::<String>()?),
                "features" if top.had_features => {
                    return Err(de::Error::custom("duplicate \"features\" member"));
                }
                "features" => {
                    map.next_value_seed(FeaturesSeed {
                        sink: &mut *self.sink,
                    })?;
                    top.had_features = true;
                }
                "crs" => top.crs = legacy_crs_srid(&map.next_value::<Value>()?),
                "geometry" | "properties" | "id" => {
                    top.single.insert(key, map.next_value::<Value>()?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(top)
    }
}

struct FeaturesSeed<'s> {
    sink: &'s mut Sink,
}

impl<'de> DeserializeSeed<'de> for FeaturesSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for FeaturesSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of features")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(value) = seq.next_element::<Value>()? {
            self.sink.feature(value);
        }
        Ok(())
    }
}

/// The EPSG code named by a legacy `crs` member (GeoJSON 2008 §3.1, removed by RFC 7946 but
/// still written by QGIS/GDAL for non-WGS84 exports): `{"type": "name", "properties":
/// {"name": "urn:ogc:def:crs:EPSG::28992"}}` (also `EPSG:28992`); OGC `CRS84` gives 4326.
fn legacy_crs_srid(crs: &Value) -> Option<u32> {
    let name = crs.get("properties")?.get("name")?.as_str()?.trim();
    if name.ends_with("CRS84") {
        return Some(4326);
    }
    if !name.to_ascii_uppercase().contains("EPSG") {
        return None;
    }
    name.rsplit(':').next()?.trim().parse().ok()
}

/// Checks one feature; returns its geometry and properties (with `id` added when absent).
fn feature_record(value: Value) -> Result<(RawGeometry, Map<String, Value>), String> {
    let Value::Object(mut obj) = value else {
        return Err("feature is not a JSON object".to_owned());
    };
    match obj.get("type") {
        Some(Value::String(t)) if t == "Feature" => {}
        Some(Value::String(t)) => return Err(format!("type is '{}', expected 'Feature'", clip(t))),
        _ => return Err("feature has no \"type\": \"Feature\" member".to_owned()),
    }
    let geometry = match obj.get("geometry") {
        None | Some(Value::Null) => return Err("missing geometry".to_owned()),
        Some(g) => geometry(g)?,
    };
    let mut props = match obj.remove("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err("properties is not a JSON object".to_owned()),
    };
    match obj.remove("id") {
        None | Some(Value::Null) => {}
        Some(id @ (Value::String(_) | Value::Number(_))) => {
            props.entry("id").or_insert(id);
        }
        Some(_) => return Err("feature id must be a string or a number".to_owned()),
    }
    Ok((geometry, props))
}

fn geometry(g: &Value) -> Result<RawGeometry, String> {
    let Value::Object(g) = g else {
        return Err("geometry is not a JSON object".to_owned());
    };
    let kind = match g.get("type") {
        Some(Value::String(k)) => k.as_str(),
        _ => return Err("geometry has no \"type\" member".to_owned()),
    };
    if !matches!(kind, "Point" | "Polygon" | "MultiPolygon") {
        return Err(format!("unsupported geometry type {}", clip(kind)));
    }
    let coords = match g.get("coordinates") {
        None | Some(Value::Null) => return Err("missing coordinates".to_owned()),
        Some(c) => c,
    };
    match kind {
        "Point" => {
            let c = position(coords)?;
            Ok(RawGeometry::Point { x: c.x, y: c.y })
        }
        "Polygon" => Ok(RawGeometry::Area(MultiPolygon(vec![polygon(coords)?]))),
        _ => {
            let members = non_empty_array(coords)?;
            let mut polygons = Vec::new();
            for (i, p) in members.iter().enumerate() {
                polygons.push(polygon(p).map_err(|e| format!("polygon {}: {e}", i + 1))?);
            }
            Ok(RawGeometry::Area(MultiPolygon(polygons)))
        }
    }
}

fn non_empty_array(v: &Value) -> Result<&Vec<Value>, String> {
    match v {
        Value::Array(a) if a.is_empty() => Err("empty coordinates".to_owned()),
        Value::Array(a) => Ok(a),
        _ => Err("coordinates are not an array".to_owned()),
    }
}

fn polygon(v: &Value) -> Result<Polygon<f64>, String> {
    let rings = non_empty_array(v)?;
    let mut out = Vec::new();
    for (i, r) in rings.iter().enumerate() {
        let positions = non_empty_array(r).map_err(|e| format!("ring {}: {e}", i + 1))?;
        let mut coords = Vec::new();
        for p in positions {
            coords.push(position(p).map_err(|e| format!("ring {}: {e}", i + 1))?);
        }
        if let Some(problem) = ring_problem(&coords) {
            return Err(format!("ring {}: {problem}", i + 1));
        }
        out.push(LineString(coords));
    }
    let exterior = out.remove(0);
    Ok(Polygon::new(exterior, out))
}

fn position(v: &Value) -> Result<Coord<f64>, String> {
    let numbers = non_empty_array(v)?;
    if !(2..=3).contains(&numbers.len()) {
        return Err(format!(
            "position with {} numbers (expected 2 or 3)",
            numbers.len()
        ));
    }
    let mut xy = [0.0; 2];
    for (slot, n) in xy.iter_mut().zip(numbers) {
        let value = n
            .as_f64()
            .ok_or_else(|| format!("coordinate {} is not a number", clip(&n.to_string())))?;
        if !value.is_finite() {
            return Err(format!("non-finite coordinate {value}"));
        }
        *slot = value;
    }
    if let Some(z) = numbers.get(2)
        && !z.is_number()
    {
        return Err(format!(
            "coordinate {} is not a number",
            clip(&z.to_string())
        ));
    }
    Ok(Coord { x: xy[0], y: xy[1] })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reason(g: Value) -> String {
        let f = json!({"type": "Feature", "geometry": g, "properties": {}});
        feature_record(f).expect_err("must be rejected")
    }

    #[test]
    fn geometry_rejections() {
        assert_eq!(
            reason(json!({"type": "Point", "coordinates": []})),
            "empty coordinates"
        );
        assert!(
            reason(json!({"type": "Point", "coordinates": [1]})).starts_with("position with 1")
        );
        assert!(
            reason(json!({"type": "Point", "coordinates": [1, 2, 3, 4]})).contains("4 numbers")
        );
        assert!(reason(json!({"type": "Point", "coordinates": ["a", 2]})).contains("not a number"));
        assert_eq!(
            reason(json!({"type": "LineString", "coordinates": [[0, 0], [1, 1]]})),
            "unsupported geometry type LineString"
        );
        let open = json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]});
        assert!(reason(open).contains("not closed"));
        let short = json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]});
        assert!(reason(short).contains("3 positions"));
        assert_eq!(
            reason(json!({"type": "MultiPolygon", "coordinates": []})),
            "empty coordinates"
        );
        assert_eq!(reason(json!({"type": "Point"})), "missing coordinates");
    }
}
