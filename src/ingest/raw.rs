//! Raw records: what the parsers ([`super::csv`], [`super::geojson`]) hand to `validate`.
//!
//! A parser turns the bytes of a request body into a [`ParsedBatch`]: the column names, one
//! [`RawRecord`] per accepted row (geometry in the *input* CRS, untouched, x/lon first) and one
//! [`Rejected`] per refused row with a 1-based row number and a precise reason. Field semantics
//! (time parsing, categories) and CRS transforms belong to `validate`, not here.
//!
//! CSV values are kept in one text arena per batch (no per-row map or string), so a 1M-row
//! point batch makes no allocation per row; GeoJSON keeps each feature's `properties` object.
//! [`ParsedBatch::text`] and [`ParsedBatch::free_props`] read both alike; for per-row loops
//! [`ParsedBatch::field`] + [`ParsedBatch::get`] and [`ParsedBatch::free_fields`] +
//! [`ParsedBatch::write_free_props`] resolve names once and write the JSON text directly.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value};

/// A geometry exactly as given in the input CRS (x/lon first, nothing transformed).
#[derive(Debug, Clone, PartialEq)]
pub enum RawGeometry {
    /// A point; `x` is easting or longitude, `y` northing or latitude.
    Point { x: f64, y: f64 },
    /// A polygon or multipolygon (a polygon becomes a multipolygon with one member); rings are
    /// closed, have at least 4 positions and only finite coordinates.
    Area(geo::MultiPolygon<f64>),
}

/// One accepted input row.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRecord {
    /// 1-based data row for CSV (the header is not counted, blank lines are skipped), 1-based
    /// feature number for GeoJSON.
    pub row: usize,
    /// The geometry in the input CRS.
    pub geometry: RawGeometry,
    /// The row's properties; read them with [`ParsedBatch::text`] / [`ParsedBatch::free_props`].
    pub props: Props,
}

/// The properties of one record (opaque: read through [`ParsedBatch`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Props(PropsRepr);

#[derive(Debug, Clone, PartialEq)]
enum PropsRepr {
    /// Index of the record's first cell in the batch's [`CellArena`].
    Csv { first_cell: u32 },
    /// A GeoJSON feature's `properties` (plus `id` when the properties had none).
    Json(Box<Map<String, Value>>),
}

impl Props {
    pub(crate) fn csv(first_cell: u32) -> Self {
        Props(PropsRepr::Csv { first_cell })
    }
    pub(crate) fn json(map: Map<String, Value>) -> Self {
        Props(PropsRepr::Json(Box::new(map)))
    }
}

/// A refused row: its 1-based number (as in [`RawRecord::row`]) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    /// 1-based data row (CSV) or feature number (GeoJSON).
    pub row: usize,
    /// A human-readable reason, e.g. `missing y coordinate (column 'y')`.
    pub reason: String,
}

/// Which input format a batch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    Csv,
    Geojson,
}

/// Where the geometry of each row came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GeometrySource {
    /// Projected x/y columns (`x`, `x_rd`, `easting`, ...).
    Xy { x: String, y: String },
    /// Geographic lon/lat columns (`lon`, `lng`, `latitude`, ...); stored as x = lon, y = lat.
    LonLat { lon: String, lat: String },
    /// A WKT column (`wkt`, `geometry`, `geom`, `the_geom`).
    Wkt { column: String },
    /// GeoJSON feature geometries.
    Geojson,
}

/// What the parser found or was told, for the ingest answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detected {
    pub format: InputFormat,
    /// CSV field delimiter (`None` for GeoJSON).
    pub delimiter: Option<char>,
    /// Decimal separator of CSV coordinate columns (`None` for GeoJSON and WKT).
    pub decimal: Option<char>,
    /// Whether a UTF-8 byte order mark was stripped.
    pub bom: bool,
    pub geometry: GeometrySource,
    /// The EPSG code the input names itself: the `SRID=n;` of EWKT values (all rows must
    /// agree) or a legacy GeoJSON `crs` member (`CRS84` gives 4326). Never applied here.
    pub srid: Option<u32>,
}

/// CSV cells of all accepted rows: one string, cell `i` is `text[ends[i-1]..ends[i]]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CellArena {
    pub(crate) text: String,
    pub(crate) ends: Vec<u32>,
}

impl CellArena {
    /// Cell `index`; "" for an index outside the arena (a record of another batch).
    fn cell(&self, index: usize) -> &str {
        let start = match index.checked_sub(1) {
            None => Some(0),
            Some(i) => self.ends.get(i).map(|&e| e as usize),
        };
        let end = self.ends.get(index).map(|&e| e as usize);
        match (start, end) {
            (Some(start), Some(end)) => self.text.get(start..end).unwrap_or(""),
            _ => "",
        }
    }
}

/// The result of parsing one request body.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedBatch {
    /// CSV header names (trimmed) or the union of GeoJSON property names in first-seen order.
    pub columns: Vec<String>,
    pub records: Vec<RawRecord>,
    pub rejected: Vec<Rejected>,
    pub detected: Detected,
    /// Indexes in `columns` of the geometry columns (left out of [`ParsedBatch::free_props`]).
    pub(crate) geometry_columns: Vec<usize>,
    pub(crate) cells: CellArena,
}

impl ParsedBatch {
    /// Index of a column: exact name first, then ASCII case-insensitive.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        let mut folded = None;
        for (i, c) in self.columns.iter().enumerate() {
            if c == name {
                return Some(i);
            }
            if folded.is_none() && c.eq_ignore_ascii_case(name) {
                folded = Some(i);
            }
        }
        folded
    }

    /// Resolves a property name once, for [`ParsedBatch::get`] in per-row loops.
    pub fn field(&self, name: &str) -> Field {
        Field {
            name: name.to_owned(),
            column: self.column_index(name),
        }
    }

    /// Like [`ParsedBatch::text`] with a name resolved by [`ParsedBatch::field`] (for CSV a
    /// single index lookup per row).
    pub fn get<'a>(&'a self, rec: &'a RawRecord, field: &Field) -> Option<Cow<'a, str>> {
        match &rec.props.0 {
            PropsRepr::Csv { first_cell } => {
                let text = self.cells.cell(*first_cell as usize + field.column?).trim();
                (!text.is_empty()).then_some(Cow::Borrowed(text))
            }
            PropsRepr::Json(map) => json_get(map, &field.name).and_then(json_text),
        }
    }

    /// The value of `name` for `rec` as trimmed text; `None` when absent, null or empty.
    /// GeoJSON numbers and booleans are rendered as text, objects and arrays as compact JSON.
    /// Names match exactly first, then ASCII case-insensitively.
    pub fn text<'a>(&'a self, rec: &'a RawRecord, name: &str) -> Option<Cow<'a, str>> {
        match &rec.props.0 {
            PropsRepr::Csv { first_cell } => {
                let index = self.column_index(name)?;
                let text = self.cells.cell(*first_cell as usize + index).trim();
                (!text.is_empty()).then_some(Cow::Borrowed(text))
            }
            PropsRepr::Json(map) => json_get(map, name).and_then(json_text),
        }
    }

    /// The properties of `rec` that are neither geometry columns nor named in `exclude`
    /// (ASCII case-insensitive), to be stored as JSON. CSV values become trimmed strings and
    /// empty ones are left out; GeoJSON values are kept as they are.
    pub fn free_props(&self, rec: &RawRecord, exclude: &[&str]) -> Map<String, Value> {
        let excluded = |k: &str| exclude.iter().any(|e| e.eq_ignore_ascii_case(k));
        let mut out = Map::new();
        match &rec.props.0 {
            PropsRepr::Csv { first_cell } => {
                for (i, name) in self.columns.iter().enumerate() {
                    if self.geometry_columns.contains(&i) || excluded(name) {
                        continue;
                    }
                    let text = self.cells.cell(*first_cell as usize + i).trim();
                    if !text.is_empty() {
                        out.insert(name.clone(), Value::String(text.to_owned()));
                    }
                }
            }
            PropsRepr::Json(map) => {
                for (k, v) in map.iter().filter(|(k, _)| !excluded(k)) {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        out
    }

    /// Resolves the exclusions of [`ParsedBatch::free_props`] once, for
    /// [`ParsedBatch::write_free_props`] in per-row loops.
    pub fn free_fields(&self, exclude: &[&str]) -> FreeFields {
        let excluded = |k: &str| exclude.iter().any(|e| e.eq_ignore_ascii_case(k));
        let keep = (self.columns.iter().enumerate())
            .map(|(i, name)| !self.geometry_columns.contains(&i) && !excluded(name))
            .collect();
        FreeFields {
            keep,
            exclude: exclude.iter().map(|e| (*e).to_owned()).collect(),
        }
    }

    /// Appends the JSON object text of [`ParsedBatch::free_props`] to `out`, without building
    /// a map (same members; for CSV in column order).
    pub fn write_free_props(&self, rec: &RawRecord, free: &FreeFields, out: &mut String) {
        out.push('{');
        let mut first = true;
        let mut member = |out: &mut String, key: &str| {
            if !std::mem::take(&mut first) {
                out.push(',');
            }
            push_json_string(out, key);
            out.push(':');
        };
        match &rec.props.0 {
            PropsRepr::Csv { first_cell } => {
                for (i, text) in self.kept_cells(*first_cell, free) {
                    member(out, &self.columns[i]);
                    push_json_string(out, text);
                }
            }
            PropsRepr::Json(map) => {
                for (k, v) in map.iter().filter(|(k, _)| !free.excludes(k)) {
                    member(out, k);
                    out.push_str(&v.to_string());
                }
            }
        }
        out.push('}');
    }

    /// The kept, non-empty CSV cells of a record with their column index.
    fn kept_cells<'a>(
        &'a self,
        first_cell: u32,
        free: &'a FreeFields,
    ) -> impl Iterator<Item = (usize, &'a str)> + 'a {
        (0..self.columns.len())
            .filter(|&i| free.keep.get(i).copied().unwrap_or(false))
            .map(move |i| (i, self.cells.cell(first_cell as usize + i).trim()))
            .filter(|(_, text)| !text.is_empty())
    }
}

/// A property name resolved once per batch (see [`ParsedBatch::field`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    name: String,
    column: Option<usize>,
}

/// The exclusions of [`ParsedBatch::free_props`] resolved once per batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeFields {
    /// CSV: whether column `i` is a free property.
    keep: Vec<bool>,
    /// GeoJSON: keys left out (ASCII case-insensitive).
    exclude: Vec<String>,
}

impl FreeFields {
    fn excludes(&self, key: &str) -> bool {
        self.exclude.iter().any(|e| e.eq_ignore_ascii_case(key))
    }
}

/// Exact key first, then ASCII case-insensitive.
fn json_get<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Appends `s` as a JSON string literal (RFC 8259 §7 escaping).
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn json_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::Null => None,
        Value::String(s) => {
            let t = s.trim();
            (!t.is_empty()).then_some(Cow::Borrowed(t))
        }
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        other => Some(Cow::Owned(other.to_string())),
    }
}

/// A file-level parse failure: nothing of the body is usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// The body is empty (or only a byte order mark / whitespace).
    #[error("the request body is empty")]
    EmptyBody,
    /// The body is not UTF-8; `offset` is the first bad byte (0-based, BOM included) and
    /// `line` its 1-based line.
    #[error(
        "the body is not valid UTF-8 at line {line} (byte {offset}); save the file as UTF-8 \
         (Windows-1252/Latin-1 exports are not accepted)"
    )]
    NotUtf8 { offset: usize, line: usize },
    /// The body exceeds what one batch can address.
    #[error("the body is {bytes} bytes; at most {limit} bytes can be parsed in one batch")]
    TooLarge { bytes: usize, limit: usize },
    /// A CSV option is malformed or contradicts another.
    #[error("invalid option: {message}")]
    InvalidOption { message: String },
    /// No x/y, lon/lat or WKT columns were recognised in the CSV header.
    #[error(
        "no coordinate columns found; columns seen: [{}]; accepted names: x/y ({}), lon/lat ({}), \
         WKT ({}), or name them with the x, y or wkt parameters",
        seen.join(", "), super::csv::XY_NAMES_DOC, super::csv::LONLAT_NAMES_DOC,
        super::csv::WKT_NAMES_DOC
    )]
    NoCoordinateColumns { seen: Vec<String> },
    /// A column named in the options is not in the header.
    #[error("column '{column}' not found; columns seen: [{}]", seen.join(", "))]
    ColumnNotFound { column: String, seen: Vec<String> },
    /// More than one kind of geometry column was recognised.
    #[error("several geometry columns found ({found}); choose with the x and y or wkt parameters")]
    AmbiguousGeometryColumns { found: String },
    /// Two header names are equal (ASCII case-insensitive).
    #[error("column '{name}' appears more than once in the header")]
    DuplicateColumn { name: String },
    /// The header has more columns than accepted.
    #[error("the header has {found} columns; at most {limit} are accepted")]
    TooManyColumns { found: usize, limit: usize },
    /// Several delimiters fit the header and the first lines equally well.
    #[error(
        "cannot tell the delimiter: {candidates} fit the header and the first lines equally; \
         pass delimiter=..."
    )]
    AmbiguousDelimiter { candidates: String },
    /// Coordinate values use both a decimal comma and a decimal point.
    #[error(
        "cannot tell the decimal separator: coordinates include '{comma_example}' (row \
         {comma_row}) and '{point_example}' (row {point_row}); pass decimal=, or decimal=."
    )]
    AmbiguousDecimal {
        comma_example: String,
        comma_row: usize,
        point_example: String,
        point_row: usize,
    },
    /// The CSV reader failed (malformed structure).
    #[error("malformed CSV: {message}")]
    MalformedCsv { message: String },
    /// The body is not well-formed JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    InvalidJson {
        line: usize,
        column: usize,
        message: String,
    },
    /// JSON nesting exceeds serde_json's recursion limit (128 levels).
    #[error("JSON nesting too deep at line {line}, column {column} (more than 128 levels)")]
    NestingTooDeep { line: usize, column: usize },
    /// The JSON is valid but not a GeoJSON FeatureCollection or Feature.
    #[error("expected a GeoJSON FeatureCollection or Feature: {message}")]
    NotFeatureCollection { message: String },
}

impl ParseError {
    /// A stable snake_case code for problem+json bodies.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::EmptyBody => "empty_body",
            ParseError::NotUtf8 { .. } => "not_utf8",
            ParseError::TooLarge { .. } => "too_large",
            ParseError::InvalidOption { .. } => "invalid_option",
            ParseError::NoCoordinateColumns { .. } => "no_coordinate_columns",
            ParseError::ColumnNotFound { .. } => "column_not_found",
            ParseError::AmbiguousGeometryColumns { .. } => "ambiguous_geometry_columns",
            ParseError::DuplicateColumn { .. } => "duplicate_column",
            ParseError::TooManyColumns { .. } => "too_many_columns",
            ParseError::AmbiguousDelimiter { .. } => "ambiguous_delimiter",
            ParseError::AmbiguousDecimal { .. } => "ambiguous_decimal",
            ParseError::MalformedCsv { .. } => "malformed_csv",
            ParseError::InvalidJson { .. } => "invalid_json",
            ParseError::NestingTooDeep { .. } => "nesting_too_deep",
            ParseError::NotFeatureCollection { .. } => "not_feature_collection",
        }
    }
}

/// Strips a UTF-8 BOM and checks the rest is UTF-8 (offsets count the BOM).
pub(crate) fn utf8_body(bytes: &[u8]) -> Result<(&str, bool), ParseError> {
    let bom = bytes.starts_with(b"\xEF\xBB\xBF");
    let rest = if bom { &bytes[3..] } else { bytes };
    let text = std::str::from_utf8(rest).map_err(|e| {
        let offset = e.valid_up_to() + if bom { 3 } else { 0 };
        let line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
        ParseError::NotUtf8 { offset, line }
    })?;
    if text.trim().is_empty() {
        return Err(ParseError::EmptyBody);
    }
    Ok((text, bom))
}

/// Why a ring is not acceptable (fewer than 4 positions or not closed), if it is not.
pub(crate) fn ring_problem(ring: &[geo::Coord<f64>]) -> Option<String> {
    if ring.len() < 4 {
        return Some(format!(
            "ring has {} positions, at least 4 are needed",
            ring.len()
        ));
    }
    if ring.first() != ring.last() {
        return Some("ring is not closed (first and last positions differ)".to_owned());
    }
    None
}

/// Shortens a value quoted in a rejection reason.
pub(crate) fn clip(value: &str) -> String {
    const MAX: usize = 40;
    match value.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &value[..i]),
        None => value.to_owned(),
    }
}
