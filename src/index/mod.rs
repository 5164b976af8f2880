//! The in-memory index: one immutable [`DatasetSnapshot`] per dataset, held in a [`Catalog`]
//! behind an `ArcSwap`. Readers clone an `Arc` and never wait; ingest builds a new snapshot of
//! the dataset it changed and swaps it in.
//!
//! Incidents are stored column-wise with dictionary-encoded categories, sources and subjects,
//! and indexed by a packed Hilbert R-tree of their metric coordinates ([`PointIndex`]); per
//! incident 64 bytes of columns and about 6 of index. The H3 analyses add, on first use of
//! a resolution, that resolution's cell column (2 bytes per incident while the cells fit in
//! 16 bits, else 4; see [`cells`]).

mod cells;
mod filter;
mod points;

pub use cells::{CellColumn, CellColumns, CellCounts};
pub use filter::{Filter, TimeRange, month_end, month_start};
pub use points::PointIndex;

use crate::crs::Crs;
use crate::model::{BaselinePoint, DatasetId, DatasetMeta, Facility, StudyArea};
use crate::store::{Store, StoreError};
use arc_swap::ArcSwap;
use rstar::RTree;
use rstar::primitives::GeomWithData;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A point in metres with the index of its row.
pub type IndexedPoint = GeomWithData<[f64; 2], u32>;

/// Incidents of a dataset, column-wise, in fid order.
#[derive(Default)]
pub struct Incidents {
    pub fid: Vec<i64>,
    pub lon: Vec<f64>,
    pub lat: Vec<f64>,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    /// occurred_at, unix seconds UTC.
    pub t: Vec<i64>,
    pub cat: Vec<u16>,
    pub src: Vec<u16>,
    /// Index into `subjects` + 1; 0 = no subject.
    pub subject: Vec<u32>,
    /// H3 cell at `model::FINE_RES`.
    pub cell: Vec<u64>,
    /// Cell-key record key per row (`privacy::cellkey`); empty unless the dataset's `noise`
    /// setting is on.
    pub rkey: Vec<u8>,
    pub categories: Vec<String>,
    pub sources: Vec<String>,
    pub subjects: Vec<String>,
    /// The metric points `(x, y)`, indexed for box queries.
    pub points: PointIndex,
    /// `cell` at coarser resolutions, built on first use (`cells_at`).
    pub columns: CellColumns,
}

impl Incidents {
    pub fn len(&self) -> usize {
        self.fid.len()
    }
    pub fn is_empty(&self) -> bool {
        self.fid.is_empty()
    }
    /// Row of a fid (fids are sorted).
    pub fn row_of(&self, fid: i64) -> Option<usize> {
        self.fid.binary_search(&fid).ok()
    }
    pub fn category_code(&self, name: &str) -> Option<u16> {
        self.categories
            .iter()
            .position(|c| c == name)
            .map(|i| i as u16)
    }
    pub fn source_code(&self, name: &str) -> Option<u16> {
        self.sources
            .iter()
            .position(|c| c == name)
            .map(|i| i as u16)
    }
    /// Bytes held by the columns (with the cell columns built so far) and the point index.
    pub fn heap_bytes(&self) -> usize {
        let n = self.fid.capacity();
        n * (8 * 6)
            + self.cat.capacity() * 2
            + self.src.capacity() * 2
            + self.subject.capacity() * 4
            + self.cell.capacity() * 8
            + self.rkey.capacity()
            + self.columns.heap_bytes()
            + self.points.heap_bytes()
            + self
                .subjects
                .iter()
                .map(|s| s.capacity() + 24)
                .sum::<usize>()
    }
}

/// Everything about one dataset that queries need, immutable.
pub struct DatasetSnapshot {
    pub meta: DatasetMeta,
    /// Generation of the catalog when this snapshot was built (for ETags and caches).
    pub version: u64,
    pub metric_crs: Option<Crs>,
    pub incidents: Incidents,
    pub facilities: Vec<(i64, Facility)>,
    pub facility_tree: RTree<IndexedPoint>,
    pub baseline: Vec<(i64, BaselinePoint)>,
    pub study_area: Option<StudyArea>,
    /// Incidents per category code and per source code, counted on first use.
    code_counts: std::sync::OnceLock<(Vec<u64>, Vec<u64>)>,
}

fn code(dict: &mut HashMap<String, u32>, names: &mut Vec<String>, s: &str) -> u32 {
    if let Some(&c) = dict.get(s) {
        return c;
    }
    let c = names.len() as u32;
    names.push(s.to_owned());
    dict.insert(s.to_owned(), c);
    c
}

impl DatasetSnapshot {
    /// Loads a dataset from the store.
    pub fn load(
        store: &Store,
        meta: DatasetMeta,
        version: u64,
    ) -> Result<DatasetSnapshot, StoreError> {
        let mut inc = Incidents::default();
        let n = store.count_incidents(&meta.id)? as usize;
        for v in [&mut inc.lon, &mut inc.lat, &mut inc.x, &mut inc.y] {
            v.reserve_exact(n);
        }
        inc.fid.reserve_exact(n);
        inc.t.reserve_exact(n);
        inc.cat.reserve_exact(n);
        inc.src.reserve_exact(n);
        inc.subject.reserve_exact(n);
        inc.cell.reserve_exact(n);
        let (mut cats, mut srcs, mut subs) = (HashMap::new(), HashMap::new(), HashMap::new());
        store.for_each_incident(&meta.id, |r| {
            inc.fid.push(r.fid);
            inc.lon.push(r.lon);
            inc.lat.push(r.lat);
            inc.x.push(r.x);
            inc.y.push(r.y);
            inc.t.push(r.occurred_at);
            inc.cat
                .push(code(&mut cats, &mut inc.categories, r.category) as u16);
            inc.src
                .push(code(&mut srcs, &mut inc.sources, r.source) as u16);
            inc.subject.push(
                r.subject
                    .map_or(0, |s| code(&mut subs, &mut inc.subjects, s) + 1),
            );
            inc.cell.push(r.cell);
        })?;
        inc.points = PointIndex::build(&inc.x, &inc.y);
        if meta.settings.noise {
            let salt = store.cell_key_salt(&meta.id)?;
            inc.rkey = crate::privacy::cellkey::record_keys(&salt, &inc.fid);
        }
        let facilities = store.load_facilities(&meta.id)?;
        let facility_tree = RTree::bulk_load(
            facilities
                .iter()
                .enumerate()
                .map(|(i, (_, f))| GeomWithData::new([f.x, f.y], i as u32))
                .collect(),
        );
        let metric_crs = meta.metric_crs.as_deref().and_then(|s| Crs::parse(s).ok());
        Ok(DatasetSnapshot {
            baseline: store.load_baseline(&meta.id)?,
            study_area: store.load_study_area(&meta.id)?,
            meta,
            version,
            metric_crs,
            incidents: inc,
            facilities,
            facility_tree,
            code_counts: std::sync::OnceLock::new(),
        })
    }

    /// Incident counts per category and per source (for collection descriptions), counted
    /// once per snapshot.
    pub fn counts(&self) -> (BTreeMap<&str, u64>, BTreeMap<&str, u64>) {
        let inc = &self.incidents;
        let (c, s) = self.code_counts.get_or_init(|| {
            let mut c = vec![0u64; inc.categories.len()];
            let mut s = vec![0u64; inc.sources.len()];
            for i in 0..inc.len() {
                c[inc.cat[i] as usize] += 1;
                s[inc.src[i] as usize] += 1;
            }
            (c, s)
        });
        (
            inc.categories
                .iter()
                .map(String::as_str)
                .zip(c.iter().copied())
                .collect(),
            inc.sources
                .iter()
                .map(String::as_str)
                .zip(s.iter().copied())
                .collect(),
        )
    }
}

/// All dataset snapshots, swapped atomically.
pub struct Catalog {
    current: ArcSwap<HashMap<DatasetId, Arc<DatasetSnapshot>>>,
    generation: AtomicU64,
    /// Serialises snapshot rebuilds (readers never take it).
    rebuild: std::sync::Mutex<()>,
}

impl Catalog {
    /// Loads every dataset from the store.
    pub fn load(store: &Store) -> Result<Catalog, StoreError> {
        let cat = Catalog {
            current: ArcSwap::from_pointee(HashMap::new()),
            generation: AtomicU64::new(1),
            rebuild: std::sync::Mutex::new(()),
        };
        let mut map = HashMap::new();
        for meta in store.list_datasets()? {
            let id = meta.id.clone();
            map.insert(id, Arc::new(DatasetSnapshot::load(store, meta, 1)?));
        }
        cat.current.store(Arc::new(map));
        Ok(cat)
    }

    /// The snapshot of one dataset.
    pub fn get(&self, id: &DatasetId) -> Option<Arc<DatasetSnapshot>> {
        self.current.load().get(id).cloned()
    }

    /// All snapshots, sorted by id.
    pub fn all(&self) -> Vec<Arc<DatasetSnapshot>> {
        let mut v: Vec<_> = self.current.load().values().cloned().collect();
        v.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
        v
    }

    /// Rebuilds one dataset's snapshot from the store and swaps it in (or removes it when the
    /// dataset no longer exists).
    pub fn refresh(&self, store: &Store, id: &DatasetId) -> Result<(), StoreError> {
        let _guard = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        let version = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let snap = match store.get_dataset(id)? {
            Some(meta) => Some(Arc::new(DatasetSnapshot::load(store, meta, version)?)),
            None => None,
        };
        let mut map = HashMap::clone(&self.current.load());
        match snap {
            Some(s) => map.insert(id.clone(), s),
            None => map.remove(id),
        };
        self.current.store(Arc::new(map));
        Ok(())
    }
}
