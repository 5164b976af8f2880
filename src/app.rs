//! The application core: the store, the in-memory catalog and the service secret, and the
//! operations that combine them (authenticate, manage datasets and keys, ingest). Used by the
//! HTTP API and by the `import` command alike; no HTTP or async here.

use crate::crs::Crs;
use crate::index::Catalog;
use crate::ingest::{self, Format, IngestError, Rejected, csv::CsvOptions, validate};
use crate::model::{DatasetId, DatasetMeta, DatasetSettings, Layer, Organisation, Tier};
use crate::privacy::{self, Principal, PrivacyError, pseudonym};
use crate::store::{Batch, KeyRecord, Store, StoreError, WriteStats};
use std::path::Path;

/// Errors of application operations.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Privacy(#[from] PrivacyError),
    /// The presented API key is unknown or revoked.
    #[error("invalid or revoked API key")]
    BadKey,
    /// No such dataset (or the caller may not know it exists).
    #[error("dataset {0} not found")]
    DatasetNotFound(String),
    /// Bad input that is not row-level (dataset id, tier, organisation, CRS).
    #[error("{0}")]
    Invalid(String),
    /// Rows were rejected and the request asked for all-or-nothing (`strict=true`).
    #[error("rows were rejected")]
    Rejected(Vec<Rejected>),
    /// The data directory's secret could not be read or created.
    #[error("secret file {0}: {1}")]
    Secret(String, std::io::Error),
}

/// The answer to an ingest.
#[derive(Debug, serde::Serialize)]
pub struct IngestOutcome {
    pub accepted: usize,
    pub rejected: Vec<Rejected>,
    pub inserted: u64,
    pub updated: u64,
    pub metric_crs: String,
    pub detected: ingest::raw::Detected,
}

/// What a new dataset is made of.
#[derive(Debug, Clone, Default)]
pub struct NewDataset<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub metric_crs: Option<&'a str>,
    pub members: Vec<String>,
    pub open: bool,
    pub settings: DatasetSettings,
}

fn check_metric_crs(s: &str) -> Result<String, AppError> {
    let c = Crs::parse(s).map_err(|e| AppError::Invalid(e.to_string()))?;
    c.area_of_use()
        .map_err(|e| AppError::Invalid(e.to_string()))?;
    if c == Crs::WGS84 {
        return Err(AppError::Invalid(
            "metric_crs must be a projected CRS in metres, not WGS84".into(),
        ));
    }
    Ok(c.epsg())
}

fn check_settings(s: &DatasetSettings) -> Result<(), AppError> {
    if s.k_open < s.k_closed || s.k_closed < 1 || s.k_open > 1000 {
        return Err(AppError::Invalid(
            "settings: need 1 <= k_closed <= k_open <= 1000".into(),
        ));
    }
    if s.sensitive_max_resolution > 15 {
        return Err(AppError::Invalid(
            "settings: sensitive_max_resolution must be 0..=15".into(),
        ));
    }
    Ok(())
}

/// What an ingest request carries.
pub struct IngestRequest<'a> {
    pub layer: Layer,
    pub format: Format,
    pub body: &'a [u8],
    pub crs: Crs,
    pub csv: CsvOptions,
    /// All or nothing: when any row is rejected, write nothing.
    pub strict: bool,
}

pub struct App {
    pub store: Store,
    pub catalog: Catalog,
    secret: Vec<u8>,
    admin_key: Option<String>,
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Reads `<dir>/secret.key` (64 hex characters), creating it with 256 random bits when absent.
/// It keys the pseudonyms of person identifiers: back it up with the database.
fn load_secret(dir: &Path) -> Result<Vec<u8>, AppError> {
    let path = dir.join("secret.key");
    let err = |e| AppError::Secret(path.display().to_string(), e);
    match std::fs::read_to_string(&path) {
        Ok(s) => hex::decode(s.trim()).map_err(|e| {
            err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                e.to_string(),
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let bytes: [u8; 32] = rand::random();
            write_private(&path, &hex::encode(bytes)).map_err(err)?;
            Ok(bytes.to_vec())
        }
        Err(e) => Err(err(e)),
    }
}

/// Writes a file readable only by its owner.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

impl App {
    /// Opens the store under `data_dir` and loads every dataset into memory.
    pub fn open(data_dir: &Path, admin_key: Option<String>) -> Result<App, AppError> {
        let store = Store::open(data_dir)?;
        let catalog = Catalog::load(&store)?;
        let secret = load_secret(data_dir)?;
        Ok(App {
            store,
            catalog,
            secret,
            admin_key: admin_key.filter(|k| !k.is_empty()),
        })
    }

    /// The principal of a bearer key; no key means anonymous (open tier).
    pub fn authenticate(&self, key: Option<&str>) -> Result<Principal, AppError> {
        let Some(key) = key else {
            return Ok(Principal::anonymous());
        };
        if self
            .admin_key
            .as_deref()
            .is_some_and(|a| privacy::constant_time_eq(a, key))
        {
            return Ok(Principal::admin());
        }
        let rec = self
            .store
            .find_key(&privacy::key_hash(key))?
            .ok_or(AppError::BadKey)?;
        Ok(Principal {
            tier: Tier::parse(&rec.tier).map_err(|e| AppError::Invalid(e.to_string()))?,
            organisation: Some(rec.organisation),
            admin: false,
            privacy_officer: rec.role == "privacy_officer",
            key_id: Some(rec.id),
        })
    }

    /// Creates a key; the key itself is returned once and only its hash is stored.
    pub fn create_key(
        &self,
        organisation: &str,
        tier: Tier,
        label: &str,
        privacy_officer: bool,
    ) -> Result<(String, KeyRecord), AppError> {
        let org = crate::model::Organisation::new(organisation)
            .map_err(|e| AppError::Invalid(e.to_string()))?;
        let key = privacy::generate_key();
        let rec = KeyRecord {
            id: privacy::key_id(&key),
            hash: privacy::key_hash(&key),
            organisation: org.as_str().to_owned(),
            tier: tier.as_str().to_owned(),
            label: label.to_owned(),
            role: if privacy_officer {
                "privacy_officer"
            } else {
                "analyst"
            }
            .to_owned(),
            created_at: now_rfc3339(),
            revoked_at: None,
        };
        self.store.insert_key(&rec)?;
        Ok((key, rec))
    }

    /// Rotates the active key `id`: a new key with the same organisation, tier, role and
    /// label replaces it at once (the old one is revoked in the same transaction). `None` when
    /// no active key has that id.
    pub fn rotate_key(&self, id: &str) -> Result<Option<(String, KeyRecord)>, AppError> {
        let Some(old) = self
            .store
            .list_keys()?
            .into_iter()
            .find(|k| k.id == id && k.revoked_at.is_none())
        else {
            return Ok(None);
        };
        let key = privacy::generate_key();
        let rec = KeyRecord {
            id: privacy::key_id(&key),
            hash: privacy::key_hash(&key),
            created_at: now_rfc3339(),
            revoked_at: None,
            ..old
        };
        Ok(self.store.rotate_key(id, &rec)?.then_some((key, rec)))
    }

    pub fn revoke_key(&self, id: &str) -> Result<bool, AppError> {
        Ok(self.store.revoke_key(id, &now_rfc3339())?)
    }

    /// Creates a dataset. `members` are the organisations whose keys may see it; `open`
    /// publishes its open-tier outputs to anonymous callers.
    pub fn create_dataset(&self, new: NewDataset<'_>) -> Result<DatasetMeta, AppError> {
        let id = DatasetId::new(new.id).map_err(|e| AppError::Invalid(e.to_string()))?;
        let metric_crs = new.metric_crs.map(check_metric_crs).transpose()?;
        let members = new
            .members
            .iter()
            .map(|m| {
                Organisation::new(m)
                    .map(|o| o.as_str().to_owned())
                    .map_err(|e| AppError::Invalid(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let meta = DatasetMeta {
            title: if new.title.trim().is_empty() {
                id.to_string()
            } else {
                new.title.trim().to_owned()
            },
            id,
            metric_crs,
            created_at: now_rfc3339(),
            members,
            open: new.open,
            settings: new.settings,
        };
        check_settings(&meta.settings)?;
        self.store.create_dataset(&meta)?;
        self.catalog.refresh(&self.store, &meta.id)?;
        Ok(meta)
    }

    /// Changes title, publication and disclosure settings.
    pub fn update_dataset(
        &self,
        id: &DatasetId,
        title: Option<&str>,
        open: Option<bool>,
        settings: Option<DatasetSettings>,
    ) -> Result<DatasetMeta, AppError> {
        let meta = self
            .store
            .get_dataset(id)?
            .ok_or_else(|| AppError::DatasetNotFound(id.to_string()))?;
        let settings = settings.unwrap_or(meta.settings);
        check_settings(&settings)?;
        self.store.update_dataset(
            id,
            title.unwrap_or(&meta.title),
            open.unwrap_or(meta.open),
            &settings,
        )?;
        self.catalog.refresh(&self.store, id)?;
        self.store
            .get_dataset(id)?
            .ok_or_else(|| AppError::DatasetNotFound(id.to_string()))
    }

    /// Adds or removes a member organisation of a dataset; returns whether anything changed.
    pub fn set_member(
        &self,
        id: &DatasetId,
        organisation: &str,
        member: bool,
    ) -> Result<bool, AppError> {
        let org = Organisation::new(organisation).map_err(|e| AppError::Invalid(e.to_string()))?;
        if self.store.get_dataset(id)?.is_none() {
            return Err(AppError::DatasetNotFound(id.to_string()));
        }
        let changed = self.store.set_member(id, org.as_str(), member)?;
        self.catalog.refresh(&self.store, id)?;
        Ok(changed)
    }

    pub fn delete_dataset(&self, id: &DatasetId) -> Result<bool, AppError> {
        let existed = self.store.delete_dataset(id)?;
        self.catalog.refresh(&self.store, id)?;
        Ok(existed)
    }

    /// Parses, validates and writes one batch atomically, then swaps in a new snapshot.
    pub fn ingest(
        &self,
        who: &Principal,
        ds: &DatasetId,
        req: IngestRequest<'_>,
        progress: impl FnMut(u64),
    ) -> Result<IngestOutcome, AppError> {
        who.may_write(req.layer)?;
        let meta = self
            .store
            .get_dataset(ds)?
            .ok_or_else(|| AppError::DatasetNotFound(ds.to_string()))?;
        let parsed = ingest::parse(req.format, req.body, &req.csv).map_err(IngestError::from)?;
        let ctx = validate::Context {
            dataset: &meta,
            layer: req.layer,
            input_crs: req.crs,
            caller_org: if who.admin {
                None
            } else {
                who.organisation.as_deref()
            },
            subject_key: pseudonym::dataset_key(&self.secret, ds),
        };
        let prepared = validate::prepare(parsed, &ctx)?;
        if req.strict && !prepared.rejected.is_empty() {
            return Err(AppError::Rejected(prepared.rejected));
        }
        let fix = prepared.fix_metric_crs.then(|| prepared.metric_crs.epsg());
        let stats = self.write(ds, fix.as_deref(), &prepared.records, progress)?;
        if !prepared.records.is_empty() || fix.is_some() {
            self.catalog.refresh(&self.store, ds)?;
        }
        Ok(IngestOutcome {
            accepted: prepared.records.len(),
            rejected: prepared.rejected,
            inserted: stats.inserted,
            updated: stats.updated,
            metric_crs: prepared.metric_crs.epsg(),
            detected: prepared.detected,
        })
    }

    fn write(
        &self,
        ds: &DatasetId,
        fix: Option<&str>,
        records: &validate::Records,
        progress: impl FnMut(u64),
    ) -> Result<WriteStats, AppError> {
        use validate::Records as R;
        let batch = match records {
            R::Incidents(v) => Batch::Incidents(v),
            R::Facilities(v) => Batch::Facilities(v),
            R::Baseline(v) => Batch::Baseline(v),
            R::StudyArea(a) => Batch::StudyArea(a),
        };
        if records.is_empty() && fix.is_none() {
            return Ok(WriteStats::default());
        }
        Ok(self.store.write_batch(ds, fix, batch, progress)?)
    }
}
