//! Proximity of incidents to facilities (issue 4): are reports concentrated near care
//! centres, and how strongly — against an explicit null model.
//!
//! [`analyze`] computes, for incidents and facilities in metres (dataset metric CRS):
//! 1. the nearest facility of every incident and distance (ArcGIS `NEAR_FID`/`NEAR_DIST`,
//!    spatstat `nncross`), and a histogram of the distances of the analysed units (inside
//!    the window, after deduplication) with the null expectation per bin;
//! 2. per facility: incidents within `radius_m` and in annular rings, expected count under the
//!    null (CSR: exact disc ∩ window area share; baseline: weight share), ratio, Poisson
//!    upper-tail p-value, BH-FDR flag ([`facility`]);
//! 3. global tests: share within `radius_m` of any facility vs the null (Monte Carlo pseudo p,
//!    seeded) and a KS test of distance-to-nearest-facility (spatstat `cdf.test`)
//!    ([`global`]);
//! 4. ρ(d), intensity vs distance to the nearest facility with a 95 % band (spatstat
//!    `rhohat(X, distfun(F), method = "ratio")`) ([`rhohat`]) and L_cross(r) with border
//!    correction and a pointwise simulation envelope (spatstat `Lcross` + `envelope`)
//!    ([`lcross`]);
//! 5. the null model: CSR in the study area (or the incidents' convex hull), represented by
//!    the pixel centres of the window; or baseline points weighted by weight;
//! 6. repeats: every global result is also computed on distinct fine H3 cells and distinct
//!    subjects, with the inflation factor z_naive / z_dedup.
//!
//! [`global_summary`] computes the global result of 3. alone (for the dedup variant), bit for
//! bit as [`analyze`] does, sharing its preparation and skipping the rest.
//!
//! Incidents outside the window are left out of the tests (counted in the summary) but do get
//! a nearest facility. Facilities may lie outside the window (distances still count); L_cross
//! uses only those inside. Reference checks: `tests/it/ref_proximity.rs` against R spatstat
//! 3.0 and scipy/shapely/brute force (fixtures/reference/proximity).

#[path = "proximity_facility.rs"]
pub mod facility;
#[path = "proximity_global.rs"]
pub mod global;
#[path = "proximity_ks.rs"]
pub mod ks;
#[path = "proximity_lcross.rs"]
pub mod lcross;
#[path = "proximity_math.rs"]
pub mod math;
#[path = "proximity_null.rs"]
pub mod null;
#[path = "proximity_params.rs"]
pub mod params;
#[path = "proximity_report.rs"]
pub mod report;
#[path = "proximity_rhohat.rs"]
pub mod rhohat;
#[path = "proximity_units.rs"]
pub mod units;
#[path = "proximity_window.rs"]
pub mod window;

pub use facility::{FacilityStats, NearestFacility, RingStat};
pub use global::{DistanceHistogram, GlobalResult, HistogramBin};
pub use ks::KsTest;
pub use lcross::{LCrossCurve, LCrossPoint};
pub use params::{Dedup, NullModel, ProximityError, ProximityParams};
pub use report::{
    GlobalSummary, ProximityOptions, ProximityReport, ProximitySummary, ReferenceInfo,
    RepeatsSummary,
};
pub use rhohat::{RhoCurve, RhoPoint};
pub use units::{Units, analysis_units};
pub use window::Window;

use facility::{FacilityIndex, count_near};
use geo::{ConvexHull, MultiPoint, MultiPolygon, Point};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use units::VariantDistances;

/// An incident (report) in metres; `cell` is its fine H3 cell (dedup key), `subject` the
/// pseudonymised person/address it concerns, when known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProxIncident {
    /// x (m).
    pub x: f64,
    /// y (m).
    pub y: f64,
    /// Fine H3 cell index (u64) for deduplication.
    pub cell: u64,
    /// Subject id, when present.
    pub subject: Option<u32>,
}

/// A facility (e.g. a care centre) in metres.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxFacility {
    /// Facility id (returned as is).
    pub id: String,
    /// Facility kind (filtering happens upstream).
    pub kind: String,
    /// x (m).
    pub x: f64,
    /// y (m).
    pub y: f64,
}

/// The ChaCha8 generator of one randomised part: `seed` from the parameters, `stream` per
/// part (1–3 global tests naive/cell/subject, 10 L_cross envelope).
pub(crate) fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// Runs the analysis with default [`ProximityOptions`].
///
/// ```
/// use hotspots::analysis::proximity::{analyze, ProxFacility, ProxIncident, ProximityParams};
/// let incidents: Vec<ProxIncident> = (0..40)
///     .map(|i| ProxIncident {
///         x: (i % 8) as f64 * 250.0,
///         y: (i / 8) as f64 * 400.0,
///         cell: i,
///         subject: None,
///     })
///     .collect();
/// let care = ProxFacility { id: "c1".into(), kind: "care".into(), x: 900.0, y: 800.0 };
/// let params = ProximityParams { simulations: 19, ..ProximityParams::default() };
/// // No study area and no baseline: CSR in the convex hull of the incidents.
/// let report = analyze(&incidents, &[care], None, None, &params).unwrap();
/// assert_eq!(report.nearest.len(), 40);
/// assert_eq!(report.summary.window, "convex_hull");
/// assert!(report.summary.global.p_mc.unwrap() > 0.0);
/// ```
pub fn analyze(
    incidents: &[ProxIncident],
    facilities: &[ProxFacility],
    window: Option<&MultiPolygon<f64>>,
    baseline: Option<&[(f64, f64, f64)]>,
    params: &ProximityParams,
) -> Result<ProximityReport, ProximityError> {
    analyze_with(
        incidents,
        facilities,
        window,
        baseline,
        params,
        &ProximityOptions::default(),
    )
}

fn check_inputs(
    incidents: &[ProxIncident],
    facilities: &[ProxFacility],
    baseline: Option<&[(f64, f64, f64)]>,
) -> Result<(), ProximityError> {
    if facilities.is_empty() {
        return Err(ProximityError::NoFacilities);
    }
    if incidents.len() < params::MIN_INCIDENTS {
        return Err(ProximityError::TooFewIncidents {
            n: incidents.len(),
            min: params::MIN_INCIDENTS,
        });
    }
    if !incidents.iter().all(|i| i.x.is_finite() && i.y.is_finite()) {
        return Err(ProximityError::NonFiniteCoordinate("incidents"));
    }
    if !facilities
        .iter()
        .all(|f| f.x.is_finite() && f.y.is_finite())
    {
        return Err(ProximityError::NonFiniteCoordinate("facilities"));
    }
    if let Some(b) = baseline {
        if !b.iter().all(|p| p.0.is_finite() && p.1.is_finite()) {
            return Err(ProximityError::NonFiniteCoordinate("baseline"));
        }
        if !b.iter().all(|p| p.2.is_finite() && p.2 >= 0.0) {
            return Err(ProximityError::InvalidBaseline(
                "weights must be finite and non-negative".into(),
            ));
        }
    }
    Ok(())
}

/// The window: the study area, or the convex hull of the incidents.
fn make_window(
    incidents: &[ProxIncident],
    window: Option<&MultiPolygon<f64>>,
) -> Result<(Window, &'static str), ProximityError> {
    match window {
        Some(w) => Ok((Window::new(w)?, "study_area")),
        None => {
            let mp: MultiPoint<f64> = incidents.iter().map(|i| Point::new(i.x, i.y)).collect();
            Ok((
                Window::new(&MultiPolygon(vec![mp.convex_hull()]))?,
                "convex_hull",
            ))
        }
    }
}

/// What every result needs: the null model, the window, the facility index and the
/// incidents inside the window.
struct Setup {
    null: NullModel,
    win: Window,
    window_kind: &'static str,
    fidx: FacilityIndex,
    ipts: Vec<[f64; 2]>,
    inside: Vec<usize>,
}

/// Validates, resolves the null and builds the window and the facility index.
fn setup(
    incidents: &[ProxIncident],
    facilities: &[ProxFacility],
    window: Option<&MultiPolygon<f64>>,
    baseline: Option<&[(f64, f64, f64)]>,
    params: &ProximityParams,
) -> Result<Setup, ProximityError> {
    params.validate()?;
    check_inputs(incidents, facilities, baseline)?;
    let null = params.resolve_null(baseline.is_some())?;
    let (win, window_kind) = make_window(incidents, window)?;
    let fpts: Vec<[f64; 2]> = facilities.iter().map(|f| [f.x, f.y]).collect();
    let fidx = FacilityIndex::new(&fpts);
    let ipts: Vec<[f64; 2]> = incidents.iter().map(|i| [i.x, i.y]).collect();
    // The convex hull contains every incident by construction (also those on its edge,
    // which the point-in-polygon test may place either side of).
    let inside: Vec<usize> = (0..incidents.len())
        .filter(|&i| window_kind == "convex_hull" || win.contains(ipts[i][0], ipts[i][1]))
        .collect();
    Ok(Setup {
        null,
        win,
        window_kind,
        fidx,
        ipts,
        inside,
    })
}

/// Errors unless `n` units (after the window filter and deduplication) are enough.
fn check_units(n: usize) -> Result<(), ProximityError> {
    if n < params::MIN_INCIDENTS {
        let min = params::MIN_INCIDENTS;
        return Err(ProximityError::TooFewIncidents { n, min });
    }
    Ok(())
}

/// The null's reference points for the set-up.
fn reference(
    s: &Setup,
    baseline: Option<&[(f64, f64, f64)]>,
    params: &ProximityParams,
    opts: &ProximityOptions,
) -> Result<(global::Reference, ReferenceInfo), ProximityError> {
    null::make_reference(&s.win, s.null, baseline, params, opts, &s.fidx)
}

/// Distance to the nearest facility of each point.
fn distances(fidx: &FacilityIndex, pts: &[[f64; 2]]) -> Vec<f64> {
    fidx.nearest_many(pts).into_iter().map(|x| x.1).collect()
}

/// Everything derived from the inputs before the statistics.
struct Prepared {
    null: NullModel,
    win: Window,
    window_kind: &'static str,
    fidx: FacilityIndex,
    nearest: Vec<NearestFacility>,
    n_inside: usize,
    units: Units,
    dist: VariantDistances,
    reference: global::Reference,
    ref_info: ReferenceInfo,
}

/// Validates, builds the window, nearest facilities, units of analysis and the null.
fn prepare(
    incidents: &[ProxIncident],
    facilities: &[ProxFacility],
    window: Option<&MultiPolygon<f64>>,
    baseline: Option<&[(f64, f64, f64)]>,
    params: &ProximityParams,
    opts: &ProximityOptions,
) -> Result<Prepared, ProximityError> {
    let s = setup(incidents, facilities, window, baseline, params)?;
    let nearest: Vec<NearestFacility> = s
        .fidx
        .nearest_many(&s.ipts)
        .into_iter()
        .map(|(f, d)| NearestFacility {
            facility_index: f,
            distance_m: d,
        })
        .collect();
    let units = analysis_units(incidents, &s.inside, params.dedup)?;
    check_units(units.chosen(params.dedup).len())?;
    let (reference, ref_info) = reference(&s, baseline, params, opts)?;
    let dist = VariantDistances {
        naive: s.inside.iter().map(|&i| nearest[i].distance_m).collect(),
        cell: distances(&s.fidx, &units.cell),
        subject: units.subject.as_deref().map(|u| distances(&s.fidx, u)),
    };
    Ok(Prepared {
        null: s.null,
        win: s.win,
        window_kind: s.window_kind,
        fidx: s.fidx,
        nearest,
        n_inside: s.inside.len(),
        units,
        dist,
        reference,
        ref_info,
    })
}

/// The global test of [`analyze_with`] alone (`summary.global` and the members describing
/// it), bit for bit: the same validation, window, null reference, units of the `dedup`
/// variant and RNG stream, without the per-facility statistics, the other variants, the
/// histogram, ρ(d) and L_cross. With `dedup = none` the units are not even built.
///
/// ```
/// use hotspots::analysis::proximity::{
///     ProxFacility, ProxIncident, ProximityOptions, ProximityParams, analyze, global_summary,
/// };
/// let incidents: Vec<ProxIncident> = (0..40)
///     .map(|i| ProxIncident {
///         x: (i % 8) as f64 * 250.0,
///         y: (i / 8) as f64 * 400.0,
///         cell: i,
///         subject: None,
///     })
///     .collect();
/// let care = [ProxFacility { id: "c1".into(), kind: "care".into(), x: 900.0, y: 800.0 }];
/// let params = ProximityParams { simulations: 19, ..ProximityParams::default() };
/// let opts = ProximityOptions::default();
/// let g = global_summary(&incidents, &care, None, None, &params, &opts).unwrap();
/// let full = analyze(&incidents, &care, None, None, &params).unwrap();
/// assert_eq!(g.global, full.summary.global);
/// ```
pub fn global_summary(
    incidents: &[ProxIncident],
    facilities: &[ProxFacility],
    window: Option<&MultiPolygon<f64>>,
    baseline: Option<&[(f64, f64, f64)]>,
    params: &ProximityParams,
    opts: &ProximityOptions,
) -> Result<GlobalSummary, ProximityError> {
    let s = setup(incidents, facilities, window, baseline, params)?;
    let (dist, reference, ref_info) = match params.dedup {
        Dedup::None => {
            check_units(s.inside.len())?;
            let (reference, ref_info) = reference(&s, baseline, params, opts)?;
            let dist = if s.inside.len() == s.ipts.len() {
                distances(&s.fidx, &s.ipts)
            } else {
                let pts: Vec<[f64; 2]> = s.inside.iter().map(|&i| s.ipts[i]).collect();
                distances(&s.fidx, &pts)
            };
            (dist, reference, ref_info)
        }
        dedup => {
            let units = analysis_units(incidents, &s.inside, dedup)?;
            check_units(units.chosen(dedup).len())?;
            let (reference, ref_info) = reference(&s, baseline, params, opts)?;
            (distances(&s.fidx, units.chosen(dedup)), reference, ref_info)
        }
    };
    let global = units::variant_test(params.dedup, &dist, params, &reference);
    Ok(GlobalSummary {
        null: s.null,
        dedup: params.dedup,
        window: s.window_kind,
        incidents_input: incidents.len(),
        incidents_outside_window: incidents.len() - s.inside.len(),
        reference: ref_info,
        global,
    })
}

/// Per-facility counts, expectations, ratios and p-values for the chosen units.
fn facility_results(
    p: &Prepared,
    facilities: &[ProxFacility],
    params: &ProximityParams,
) -> Vec<FacilityStats> {
    let chosen = p.units.chosen(params.dedup);
    let (r, rings) = (params.radius_m, &params.rings_m);
    let observed = count_near(&p.fidx, facilities.len(), chosen, None, r, rings);
    let n = chosen.len();
    let expected =
        null::expected_counts(p.null, n, &p.win, &p.reference, facilities, &p.fidx, params);
    facility::facility_stats(facilities, &observed, &expected, rings)
}

/// Runs the analysis; see the module documentation.
pub fn analyze_with(
    incidents: &[ProxIncident],
    facilities: &[ProxFacility],
    window: Option<&MultiPolygon<f64>>,
    baseline: Option<&[(f64, f64, f64)]>,
    params: &ProximityParams,
    opts: &ProximityOptions,
) -> Result<ProximityReport, ProximityError> {
    let p = prepare(incidents, facilities, window, baseline, params, opts)?;
    let chosen = p.units.chosen(params.dedup);
    let chosen_dist = p.dist.chosen(params.dedup);
    let facility_stats = facility_results(&p, facilities, params);
    let repeats = units::repeats_summary(&p.dist, params, &p.reference);
    let too_few = ProximityError::TooFewIncidents {
        n: chosen.len(),
        min: params::MIN_INCIDENTS,
    };
    let global = match params.dedup {
        Dedup::None => Some(repeats.naive.clone()),
        Dedup::Cell => repeats.cell.clone(),
        Dedup::Subject => repeats.subject.clone(),
    }
    .ok_or(too_few)?;
    let reach = params.radius_m.max(*params.rings_m.last().unwrap_or(&0.0));
    let reference = &p.reference;
    let histogram = global::histogram(chosen_dist, reference, params.radius_m, reach);
    let per_km2 = p.null == NullModel::Csr;
    let denom = if per_km2 {
        p.win.area_m2()
    } else {
        reference.total_weight
    };
    let (zref, wref) = (&reference.dist_m, &reference.weights);
    let rho_points = opts.rho_points.max(2);
    let rho = rhohat::rhohat(chosen_dist, zref, wref, denom, per_km2, rho_points);
    let l_cross = lcross::l_cross_curve(&p.win, facilities, chosen, reference, params, opts, reach);
    let summary = ProximitySummary {
        null: p.null,
        dedup: params.dedup,
        window: p.window_kind,
        window_area_km2: p.win.area_m2() / 1e6,
        incidents_input: incidents.len(),
        incidents_outside_window: incidents.len() - p.n_inside,
        n_units: chosen.len(),
        n_facilities: facilities.len(),
        radius_m: params.radius_m,
        rings_m: params.rings_m.clone(),
        seed: params.seed,
        reference: p.ref_info,
        facility_p_method: "poisson_upper_tail",
        global,
        repeats,
    };
    Ok(ProximityReport {
        summary,
        facilities: facility_stats,
        nearest: p.nearest,
        histogram,
        rho,
        l_cross,
    })
}
