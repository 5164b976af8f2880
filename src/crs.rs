//! Coordinate reference systems: parsing the names users send, choosing a dataset's metric CRS,
//! and transforming coordinates with PROJ.
//!
//! `proj::Proj` is neither `Send` nor `Sync`. A [`Transformer`] is therefore created where it is
//! used (per request, per ingest batch, per thread) and never stored in shared state.

use std::fmt;

/// CRS errors.
#[derive(Debug, thiserror::Error)]
pub enum CrsError {
    /// The CRS name is not one we understand (EPSG code, OGC URI or CRS84).
    #[error(
        "unknown CRS {0:?}: use EPSG:<code>, http://www.opengis.net/def/crs/EPSG/0/<code> or CRS84"
    )]
    Unknown(String),
    /// PROJ does not know this EPSG code or cannot build a transformation.
    #[error("PROJ cannot use {0}: {1}")]
    Proj(String, String),
}

/// A CRS as an EPSG code; `CRS84` (lon/lat WGS84) is represented by 4326 with lon/lat axis
/// order, which is also how we read `EPSG:4326` input (x = longitude, y = latitude, as GeoJSON
/// and GDAL's CSV driver do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Crs(pub u32);

impl Crs {
    pub const WGS84: Crs = Crs(4326);
    pub const RD_NEW: Crs = Crs(28992);

    /// Parses `EPSG:28992`, `epsg:28992`, `28992`, `CRS84`, `OGC:CRS84`,
    /// `http://www.opengis.net/def/crs/EPSG/0/28992`, `http://www.opengis.net/def/crs/OGC/1.3/CRS84`
    /// and `urn:ogc:def:crs:EPSG::28992`.
    ///
    /// ```
    /// use hotspots::crs::Crs;
    /// assert_eq!(Crs::parse("http://www.opengis.net/def/crs/EPSG/0/28992").unwrap(), Crs::RD_NEW);
    /// assert_eq!(Crs::parse("CRS84").unwrap(), Crs::WGS84);
    /// assert!(Crs::parse("EPSG:abc").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Crs, CrsError> {
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        if lower.ends_with("crs84") {
            return Ok(Crs::WGS84);
        }
        let code = lower
            .strip_prefix("epsg:")
            .or_else(|| lower.strip_prefix("http://www.opengis.net/def/crs/epsg/0/"))
            .or_else(|| lower.strip_prefix("https://www.opengis.net/def/crs/epsg/0/"))
            .or_else(|| lower.strip_prefix("urn:ogc:def:crs:epsg::"))
            .or_else(|| lower.strip_prefix("urn:ogc:def:crs:epsg:"))
            .unwrap_or(&lower);
        match code.parse::<u32>() {
            Ok(c) if (1024..=32767).contains(&c) => Ok(Crs(c)),
            _ => Err(CrsError::Unknown(s.to_owned())),
        }
    }

    pub fn epsg(self) -> String {
        format!("EPSG:{}", self.0)
    }

    /// The OGC URI, as used in `Content-Crs` and collection `crs` lists.
    pub fn uri(self) -> String {
        if self == Crs::WGS84 {
            "http://www.opengis.net/def/crs/OGC/1.3/CRS84".to_owned()
        } else {
            format!("http://www.opengis.net/def/crs/EPSG/0/{}", self.0)
        }
    }

    /// Area of use in degrees `(west, south, east, north)`, from PROJ's database.
    pub fn area_of_use(self) -> Result<(f64, f64, f64, f64), CrsError> {
        type Areas = std::sync::Mutex<std::collections::HashMap<u32, (f64, f64, f64, f64)>>;
        static AREAS: std::sync::LazyLock<Areas> = std::sync::LazyLock::new(Default::default);
        if self == Crs::WGS84 {
            return Ok((-180.0, -90.0, 180.0, 90.0));
        }
        if let Some(a) = AREAS.lock().unwrap_or_else(|p| p.into_inner()).get(&self.0) {
            return Ok(*a);
        }
        let p = proj::Proj::new(&self.epsg())
            .map_err(|e| CrsError::Proj(self.epsg(), e.to_string()))?;
        let area = match p.area_of_use() {
            Ok((Some(a), _)) => (a.west, a.south, a.east, a.north),
            _ => return Err(CrsError::Proj(self.epsg(), "no area of use".into())),
        };
        AREAS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(self.0, area);
        Ok(area)
    }

    /// The metric CRS for data centred at `(lon, lat)`: RD New inside the Netherlands,
    /// else the WGS84 UTM zone of the centre.
    pub fn metric_for(lon: f64, lat: f64) -> Crs {
        if (3.2..=7.3).contains(&lon) && (50.7..=53.7).contains(&lat) {
            return Crs::RD_NEW;
        }
        let zone = (((lon + 180.0) / 6.0).floor() as i64).clamp(0, 59) as u32 + 1;
        Crs(if lat >= 0.0 {
            32600 + zone
        } else {
            32700 + zone
        })
    }
}

impl fmt::Display for Crs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EPSG:{}", self.0)
    }
}

/// A coordinate transformation between two CRSs, lon/lat axis order for geographic ones.
/// Not `Send`: create one per task or thread.
pub struct Transformer {
    proj: Option<std::rc::Rc<proj::Proj>>,
}

thread_local! {
    /// Transformers already built on this thread: creating a PROJ context and operation costs
    /// milliseconds, which a bbox query should not pay every time. `Rc`, so never shared
    /// across threads (`proj::Proj` is neither Send nor Sync).
    static CACHE: std::cell::RefCell<std::collections::HashMap<(u32, u32), std::rc::Rc<proj::Proj>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

impl Transformer {
    /// Builds a transformer; identical CRSs give the identity without calling PROJ.
    pub fn new(from: Crs, to: Crs) -> Result<Transformer, CrsError> {
        if from == to {
            return Ok(Transformer { proj: None });
        }
        if let Some(p) = CACHE.with(|c| c.borrow().get(&(from.0, to.0)).cloned()) {
            return Ok(Transformer { proj: Some(p) });
        }
        let p = std::rc::Rc::new(
            proj::Proj::new_known_crs(&from.epsg(), &to.epsg(), None)
                .map_err(|e| CrsError::Proj(format!("{from} -> {to}"), e.to_string()))?,
        );
        CACHE.with(|c| c.borrow_mut().insert((from.0, to.0), p.clone()));
        Ok(Transformer { proj: Some(p) })
    }

    /// Transforms one point; `None` when PROJ fails or the result is not finite.
    pub fn point(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let out = match &self.proj {
            None => (x, y),
            Some(p) => p.convert((x, y)).ok()?,
        };
        (out.0.is_finite() && out.1.is_finite()).then_some(out)
    }

    /// Transforms many points in place; points PROJ cannot transform become NaN.
    pub fn points(&self, pts: &mut [(f64, f64)]) {
        let Some(p) = &self.proj else { return };
        for chunk in pts.chunks_mut(4096) {
            if p.convert_array(chunk).is_err() {
                for q in chunk.iter_mut() {
                    *q = p.convert(*q).unwrap_or((f64::NAN, f64::NAN));
                }
            }
        }
    }

    /// As [`Transformer::points`] from `from` to `to`, on two threads for large inputs (each
    /// thread builds its own transformer: `proj::Proj` is not Send).
    pub fn points_in_parallel(from: Crs, to: Crs, pts: &mut [(f64, f64)]) -> Result<(), CrsError> {
        const FROM: usize = 50_000;
        if pts.len() < FROM {
            return Transformer::new(from, to).map(|t| t.points(pts));
        }
        let (a, b) = pts.split_at_mut(pts.len() / 2);
        std::thread::scope(|s| {
            let second = s.spawn(move || Transformer::new(from, to).map(|t| t.points(b)));
            let first = Transformer::new(from, to).map(|t| t.points(a));
            let second = second
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            first.and(second)
        })
    }

    /// Transforms every coordinate of a multipolygon; `None` if any point fails.
    pub fn multipolygon(&self, mp: &geo::MultiPolygon<f64>) -> Option<geo::MultiPolygon<f64>> {
        use geo::MapCoords;
        mp.try_map_coords(|c| {
            self.point(c.x, c.y)
                .map(|(x, y)| geo::coord! { x: x, y: y })
                .ok_or(())
        })
        .ok()
    }
}
