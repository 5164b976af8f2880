//! Ingest: request bodies (CSV or GeoJSON) -> validated, transformed records of one layer,
//! with a reason for every rejected row. Parsing lives in `csv`, `geojson` and `wkt`; field
//! semantics and the CRS transform in `validate`.

pub mod csv;
pub mod geojson;
pub mod raw;
pub mod validate;
pub mod wkt;

pub use raw::{ParsedBatch, Rejected};
pub use validate::{Prepared, prepare};

/// The body's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    GeoJson,
}

impl Format {
    /// From a `Content-Type` header value (parameters ignored).
    pub fn from_content_type(ct: &str) -> Option<Format> {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "text/csv" | "application/csv" | "text/plain" | "text/tab-separated-values" => {
                Some(Format::Csv)
            }
            "application/geo+json" | "application/json" | "application/vnd.geo+json" => {
                Some(Format::GeoJson)
            }
            _ => None,
        }
    }

    /// From a file name's extension (for `hotspots import`).
    pub fn from_path(p: &std::path::Path) -> Option<Format> {
        match p.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" | "tsv" | "txt" => Some(Format::Csv),
            "geojson" | "json" => Some(Format::GeoJson),
            _ => None,
        }
    }
}

/// Ingest errors that refuse the whole batch (row problems are [`Rejected`] rows instead).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The body could not be parsed at all.
    #[error("{0}")]
    Parse(#[from] ParseFailure),
    /// The `crs` parameter is unknown to PROJ.
    #[error(transparent)]
    Crs(#[from] crate::crs::CrsError),
    /// A study area needs at least one polygon.
    #[error("the study_area layer needs at least one Polygon or MultiPolygon")]
    NoArea,
}

/// A file-level parse error of either parser, with its stable code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ParseFailure {
    pub code: &'static str,
    pub message: String,
}

impl From<csv::ParseError> for ParseFailure {
    fn from(e: csv::ParseError) -> Self {
        ParseFailure {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

/// Parses a body of the given format.
pub fn parse(
    format: Format,
    body: &[u8],
    opts: &csv::CsvOptions,
) -> Result<ParsedBatch, ParseFailure> {
    match format {
        Format::Csv => Ok(csv::parse_csv(body, opts)?),
        Format::GeoJson => geojson::parse_geojson(body).map_err(|e| ParseFailure {
            code: e.code(),
            message: e.to_string(),
        }),
    }
}
