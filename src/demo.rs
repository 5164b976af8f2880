//! `serve --demo`: loads the committed Zaandam fixtures into dataset `overlast-zaandam`
//! (once) and makes one demo key per tier, written to `<data-dir>/demo-keys.json`.

use crate::app::{App, AppError, IngestRequest, NewDataset, write_private};
use crate::crs::Crs;
use crate::ingest::{Format, csv::CsvOptions};
use crate::model::{DatasetId, Layer, Tier};
use crate::privacy::Principal;
use std::path::Path;

pub const DEMO_DATASET: &str = "overlast-zaandam";

/// The organisations of the demo data lab (the sources of the fixtures and the open-tier demo key's).
pub const DEMO_MEMBERS: &[&str] = &[
    "gemeente",
    "politie",
    "woningcorporatie",
    "ggd",
    "zorgaanbieder",
    "demo-public",
];

/// The demo keys, one per tier.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DemoKeys {
    pub open: String,
    pub closed: String,
    pub private: String,
}

/// Errors of the demo set-up.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    App(#[from] AppError),
    /// A fixture file is missing or unreadable.
    #[error("fixture {0}: {1}")]
    Io(String, std::io::Error),
}

const FILES: &[(&str, Layer, Format, Crs)] = &[
    (
        "zaandam/study_area.geojson",
        Layer::StudyArea,
        Format::GeoJson,
        Crs::WGS84,
    ),
    (
        "zaandam/facilities.geojson",
        Layer::Facilities,
        Format::GeoJson,
        Crs::WGS84,
    ),
    (
        "zaandam/baseline.csv",
        Layer::Baseline,
        Format::Csv,
        Crs::RD_NEW,
    ),
    (
        "zaandam/incidents_rd.csv",
        Layer::Incidents,
        Format::Csv,
        Crs::RD_NEW,
    ),
];

/// Loads the demo dataset when it is not there yet; returns how many incidents it has.
pub fn load_dataset(app: &App, fixtures: &Path) -> Result<usize, DemoError> {
    let id = DatasetId::new(DEMO_DATASET).map_err(|e| AppError::Invalid(e.to_string()))?;
    if app.catalog.get(&id).is_none() {
        app.create_dataset(NewDataset {
            id: DEMO_DATASET,
            title: "Overlast Zaandam (synthetic demo)",
            metric_crs: Some("EPSG:28992"),
            members: DEMO_MEMBERS.iter().map(|m| m.to_string()).collect(),
            open: true,
            settings: Default::default(),
        })?;
        for (file, layer, format, crs) in FILES {
            let path = fixtures.join(file);
            let body =
                std::fs::read(&path).map_err(|e| DemoError::Io(path.display().to_string(), e))?;
            let req = IngestRequest {
                layer: *layer,
                format: *format,
                body: &body,
                crs: *crs,
                csv: CsvOptions::default(),
                strict: false,
            };
            let out = app.ingest(&Principal::admin(), &id, req, |_| {})?;
            tracing::info!(
                file,
                accepted = out.accepted,
                rejected = out.rejected.len(),
                "demo fixture loaded"
            );
        }
    }
    Ok(app.catalog.get(&id).map_or(0, |s| s.incidents.len()))
}

/// Reuses the keys in `<data-dir>/demo-keys.json` when they still work, else makes new ones.
pub fn keys(app: &App, data_dir: &Path) -> Result<DemoKeys, DemoError> {
    let path = data_dir.join("demo-keys.json");
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(k) = serde_json::from_str::<DemoKeys>(&text)
        && [&k.open, &k.closed, &k.private]
            .iter()
            .all(|key| app.authenticate(Some(key)).is_ok())
    {
        return Ok(k);
    }
    let make = |org: &str, tier: Tier| app.create_key(org, tier, "demo", false).map(|(k, _)| k);
    let keys = DemoKeys {
        open: make("demo-public", Tier::Open)?,
        closed: make("woningcorporatie", Tier::Closed)?,
        private: make("gemeente", Tier::Private)?,
    };
    let text = serde_json::to_string_pretty(&keys).unwrap_or_default();
    write_private(&path, &text).map_err(|e| DemoError::Io(path.display().to_string(), e))?;
    Ok(keys)
}
