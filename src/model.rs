//! Validated domain types shared by every module. Constructors reject bad input, so a value
//! of these types is always valid.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a domain value was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    /// A dataset id must be 1-63 characters of `a-z`, `0-9`, `-`, `_`, starting with a letter or digit.
    #[error(
        "invalid dataset id {0:?}: use 1-63 characters a-z, 0-9, '-' or '_', starting with a letter or digit"
    )]
    DatasetId(String),
    /// Unknown layer name.
    #[error("unknown layer {0:?}: expected incidents, facilities, baseline or study_area")]
    Layer(String),
    /// Unknown tier name.
    #[error("unknown tier {0:?}: expected open, closed or private")]
    Tier(String),
    /// An organisation name must be 1-63 characters of `a-z`, `0-9`, `-`, `_`.
    #[error("invalid organisation {0:?}: use 1-63 characters a-z, 0-9, '-' or '_'")]
    Organisation(String),
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A dataset id: one data-lab topic such as `overlast-zaandam`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DatasetId(String);

impl DatasetId {
    /// Validates a dataset id.
    ///
    /// ```
    /// assert!(hotspots::model::DatasetId::new("overlast-zaandam").is_ok());
    /// assert!(hotspots::model::DatasetId::new("Bad Id").is_err());
    /// ```
    pub fn new(s: &str) -> Result<Self, ModelError> {
        if is_slug(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ModelError::DatasetId(s.to_owned()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DatasetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An organisation taking part in a data lab (`politie`, `ggd`, ...). Also the `source` of incidents.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Organisation(String);

impl Organisation {
    pub fn new(s: &str) -> Result<Self, ModelError> {
        if is_slug(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ModelError::Organisation(s.to_owned()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The layers of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// Nuisance reports (points).
    Incidents,
    /// Care centres and other facilities (points).
    Facilities,
    /// Address or population points with a weight, for null models.
    Baseline,
    /// The study area (polygon or multipolygon).
    StudyArea,
}

impl Layer {
    pub const ALL: [Layer; 4] = [
        Layer::Incidents,
        Layer::Facilities,
        Layer::Baseline,
        Layer::StudyArea,
    ];

    pub fn parse(s: &str) -> Result<Self, ModelError> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| ModelError::Layer(s.to_owned()))
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Incidents => "incidents",
            Layer::Facilities => "facilities",
            Layer::Baseline => "baseline",
            Layer::StudyArea => "study_area",
        }
    }
    /// Point layers reveal locations and are restricted (see `privacy`).
    pub fn is_points(self) -> bool {
        !matches!(self, Layer::StudyArea)
    }
}

/// Disclosure tier of a caller: what it may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Anyone: aggregated, suppressed.
    Open,
    /// Internal and external parties on request.
    Closed,
    /// Behind lock and key: records.
    Private,
}

impl Tier {
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        match s {
            "open" => Ok(Tier::Open),
            "closed" => Ok(Tier::Closed),
            "private" => Ok(Tier::Private),
            _ => Err(ModelError::Tier(s.to_owned())),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Open => "open",
            Tier::Closed => "closed",
            Tier::Private => "private",
        }
    }
}

/// A validated incident, ready to store: coordinates in WGS84 and in the dataset's metric CRS.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub source: String,
    pub external_id: String,
    /// Unix seconds, UTC.
    pub occurred_at: i64,
    pub category: String,
    /// Pseudonym (HMAC-SHA-256, hex) of the person identifier; never the raw value.
    pub subject: Option<String>,
    pub lon: f64,
    pub lat: f64,
    pub x: f64,
    pub y: f64,
    /// H3 cell at [`FINE_RES`].
    pub cell: u64,
    /// Free properties as a JSON object text.
    pub props: String,
}

/// A validated facility (care centre, shelter, ...).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Facility {
    pub id: String,
    pub name: String,
    pub kind: String,
    /// Confidential facilities (shelters) are never shown below the private tier.
    pub confidential: bool,
    pub lon: f64,
    pub lat: f64,
    pub x: f64,
    pub y: f64,
    pub props: String,
}

/// A baseline point (address or population point) with a weight.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselinePoint {
    pub id: String,
    pub weight: f64,
    pub lon: f64,
    pub lat: f64,
    pub x: f64,
    pub y: f64,
}

/// The study area in WGS84 and in the metric CRS.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyArea {
    pub name: String,
    pub wgs84: geo::MultiPolygon<f64>,
    pub metric: geo::MultiPolygon<f64>,
}

/// The H3 resolution at which every incident's cell is stored; coarser cells are parents.
pub const FINE_RES: u8 = 12;

/// Dataset metadata.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetMeta {
    pub id: DatasetId,
    pub title: String,
    /// `EPSG:<code>` of the metric CRS, fixed at creation or at the first ingest.
    pub metric_crs: Option<String>,
    pub created_at: String,
    /// Organisations that are members of this data lab; only their keys see the dataset.
    pub members: Vec<String>,
    /// Published as open data: anonymous callers see its open-tier outputs.
    pub open: bool,
    /// Disclosure settings.
    pub settings: DatasetSettings,
}

/// Per-dataset disclosure settings (see `privacy::disclosure`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetSettings {
    /// Smallest count shown at the open tier.
    pub k_open: u32,
    /// Smallest count shown at the closed tier.
    pub k_closed: u32,
    /// Categories shown below the private tier only at `sensitive_max_resolution` or coarser.
    pub sensitive_categories: Vec<String>,
    /// Finest H3 resolution of outputs restricted to sensitive categories (open and closed tiers).
    pub sensitive_max_resolution: u8,
    /// Calibrated, deterministic noise on open-tier counts (the cell key method,
    /// `privacy::cellkey`).
    pub noise: bool,
}

impl Default for DatasetSettings {
    fn default() -> Self {
        DatasetSettings {
            k_open: 10,
            k_closed: 5,
            sensitive_categories: vec!["verward_persoon".into()],
            sensitive_max_resolution: 7,
            noise: false,
        }
    }
}
