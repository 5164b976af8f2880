//! Parameters and typed errors of the proximity analysis (issue 4).
//!
//! Field names are exactly the query-parameter names of `GET /datasets/{id}/proximity`
//! (`radius_m`, `rings_m`, `simulations`, `seed`, `null`, `dedup`), so the HTTP layer can
//! deserialize the query string (minus the common filters) straight into [`ProximityParams`]
//! with `serde_urlencoded`; `rings_m` arrives as a comma list (`rings_m=100,250,500`).

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// Largest accepted `radius_m` and ring radius (50 km): beyond that "near" means nothing.
pub const MAX_RADIUS_M: f64 = 50_000.0;
/// Largest accepted number of Monte Carlo simulations.
pub const MAX_SIMULATIONS: u32 = 9_999;
/// Fewest incidents (after the window filter and deduplication) for which the tests run.
pub const MIN_INCIDENTS: usize = 10;
/// Most distance rings accepted in `rings_m`.
pub const MAX_RINGS: usize = 20;

/// The null model incidents are compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NullModel {
    /// Complete spatial randomness: uniform over the study area (window).
    Csr,
    /// Incidents placed on baseline points (addresses, population) in proportion to weight.
    Baseline,
}

/// How repeated reports are collapsed before testing (issue 4 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Dedup {
    /// Every report counts (naive: repeats treated as independent).
    #[default]
    None,
    /// One point per distinct fine H3 cell (at the mean position of its reports).
    Cell,
    /// One point per distinct subject (at its most frequent cell); reports without a
    /// subject each stay a unit of their own.
    Subject,
}

/// Query parameters of the proximity analysis.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProximityParams {
    /// Radius (m) for "near a facility": per-facility counts and the global share. Default 250.
    pub radius_m: f64,
    /// Outer radii (m) of the annular distance rings, strictly increasing. Default 100,250,500.
    #[serde(deserialize_with = "deserialize_rings")]
    pub rings_m: Vec<f64>,
    /// Monte Carlo simulations for the global test and the L-cross envelope (0 skips them).
    /// Default 199, at most 9999.
    pub simulations: u32,
    /// Seed of every randomised result (ChaCha8). Default 0.
    pub seed: u64,
    /// Null model; default `baseline` when a baseline layer exists, else `csr`.
    pub null: Option<NullModel>,
    /// Deduplication of repeats for the main results; default `none`.
    pub dedup: Dedup,
}

impl Default for ProximityParams {
    fn default() -> Self {
        Self {
            radius_m: 250.0,
            rings_m: vec![100.0, 250.0, 500.0],
            simulations: 199,
            seed: 0,
            null: None,
            dedup: Dedup::None,
        }
    }
}

impl ProximityParams {
    /// Checks ranges: `0 < radius_m <= 50000`, rings positive, finite, strictly increasing,
    /// at most 20 and `<= 50000`, `simulations <= 9999`.
    pub fn validate(&self) -> Result<(), ProximityError> {
        if !(self.radius_m > 0.0 && self.radius_m <= MAX_RADIUS_M) {
            return Err(ProximityError::RadiusOutOfRange(self.radius_m));
        }
        if self.simulations > MAX_SIMULATIONS {
            return Err(ProximityError::TooManySimulations(self.simulations));
        }
        let r = &self.rings_m;
        if r.is_empty() || r.len() > MAX_RINGS {
            return Err(ProximityError::InvalidRings(format!(
                "between 1 and {MAX_RINGS} rings needed, got {}",
                r.len()
            )));
        }
        if !r
            .iter()
            .all(|v| v.is_finite() && *v > 0.0 && *v <= MAX_RADIUS_M)
        {
            return Err(ProximityError::InvalidRings(format!(
                "each ring must be in (0, {MAX_RADIUS_M}]: {r:?}"
            )));
        }
        if r.windows(2).any(|w| w[1] <= w[0]) {
            return Err(ProximityError::InvalidRings(format!(
                "rings must be strictly increasing: {r:?}"
            )));
        }
        Ok(())
    }

    /// The null model actually used: the requested one, else baseline when available.
    pub fn resolve_null(&self, has_baseline: bool) -> Result<NullModel, ProximityError> {
        match (self.null, has_baseline) {
            (Some(NullModel::Baseline), false) => Err(ProximityError::BaselineMissing),
            (Some(n), _) => Ok(n),
            (None, true) => Ok(NullModel::Baseline),
            (None, false) => Ok(NullModel::Csr),
        }
    }
}

/// Accepts `"100,250,500"` (query string) or a JSON array of numbers.
fn deserialize_rings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    struct RingsVisitor;
    impl<'de> Visitor<'de> for RingsVisitor {
        type Value = Vec<f64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a comma-separated list of distances in metres")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<f64>, E> {
            v.split(',')
                .map(|s| {
                    s.trim()
                        .parse::<f64>()
                        .map_err(|_| E::custom(format!("rings_m: {s:?} is not a number")))
                })
                .collect()
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f64>, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element::<f64>()? {
                out.push(v);
            }
            Ok(out)
        }
    }
    d.deserialize_any(RingsVisitor)
}

/// Errors of the proximity analysis; each maps to a 4xx with a stable [`code`](Self::code).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProximityError {
    /// No facilities were given (e.g. none of the requested `kind`).
    #[error("no facilities to measure proximity to")]
    NoFacilities,
    /// Fewer than [`MIN_INCIDENTS`] incidents remain inside the window after deduplication.
    #[error("too few incidents: {n} inside the study area (at least {min} needed)")]
    TooFewIncidents {
        /// Incidents available.
        n: usize,
        /// Minimum required.
        min: usize,
    },
    /// `radius_m` is not in (0, 50000].
    #[error("radius_m must be > 0 and <= 50000, got {0}")]
    RadiusOutOfRange(f64),
    /// `simulations` exceeds [`MAX_SIMULATIONS`].
    #[error("simulations must be <= 9999, got {0}")]
    TooManySimulations(u32),
    /// `rings_m` is empty, too long, non-positive, too large or not strictly increasing.
    #[error("invalid rings_m: {0}")]
    InvalidRings(String),
    /// The study area (or the convex hull of the incidents) has zero area.
    #[error("the study area has zero area")]
    ZeroAreaWindow,
    /// `null=baseline` was requested but the dataset has no baseline layer.
    #[error("null=baseline requested but the dataset has no baseline layer")]
    BaselineMissing,
    /// The baseline has a negative or non-finite weight, or no positive weight in the window.
    #[error("invalid baseline: {0}")]
    InvalidBaseline(String),
    /// An input coordinate is NaN or infinite.
    #[error("non-finite coordinate in {0}")]
    NonFiniteCoordinate(&'static str),
    /// `dedup=subject` was requested but no incident carries a subject.
    #[error("dedup=subject requested but no incident has a subject")]
    NoSubjects,
}

impl ProximityError {
    /// Stable snake_case code for the problem+json body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoFacilities => "no_facilities",
            Self::TooFewIncidents { .. } => "too_few_incidents",
            Self::RadiusOutOfRange(_) => "radius_out_of_range",
            Self::TooManySimulations(_) => "too_many_simulations",
            Self::InvalidRings(_) => "invalid_rings",
            Self::ZeroAreaWindow => "zero_area_window",
            Self::BaselineMissing => "baseline_missing",
            Self::InvalidBaseline(_) => "invalid_baseline",
            Self::NonFiniteCoordinate(_) => "non_finite_coordinate",
            Self::NoSubjects => "no_subjects",
        }
    }
}
