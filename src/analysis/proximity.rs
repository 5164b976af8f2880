//! Proximity of incidents to facilities (issue 4): are reports concentrated near care
//! centres, and how strongly — against an explicit null model.
//!
//! [`analyze`] computes, for incidents and facilities in metres (dataset metric CRS):
//! 1. the nearest facility of every incident and distance (ArcGIS `NEAR_FID`/`NEAR_DIST`,
//!    spatstat `nncross`), and a histogram of those distances with the null expectation;
//! 2. per facility: incidents within `radius_m` and in annular rings, expected count under the
//!    null (CSR: exact disc ∩ window area share; baseline: weight share), ratio, Poisson
//!    upper-tail p-value, BH-FDR flag ([`proximity_facility`](facility));
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
#[path = "proximity_params.rs"]
pub mod params;
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
pub use rhohat::{RhoCurve, RhoPoint};
pub use units::{Units, analysis_units};
pub use window::Window;

use facility::{Counts, FacilityIndex, count_near};
use geo::{ConvexHull, MultiPoint, MultiPolygon, Point};
use global::Reference;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

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

/// Knobs that are not query parameters (tests use them to align with spatstat).
#[derive(Debug, Clone, PartialEq)]
pub struct ProximityOptions {
    /// CSR pixel grid `(nx, ny)` over the window's bounding box; `None`: pixel side
    /// max(min(radius_m, first ring)/10, √(bbox area / 262144)).
    pub grid: Option<(usize, usize)>,
    /// Number of d values of the ρ(d) curve. Default 256.
    pub rho_points: usize,
    /// r values (m, starting at 0, increasing) of L_cross; `None`: 51 values from 0 to
    /// min(max(radius_m, last ring), shorter bbox side / 4) (spatstat's rmax rule).
    pub r_m: Option<Vec<f64>>,
}

impl Default for ProximityOptions {
    fn default() -> Self {
        Self {
            grid: None,
            rho_points: 256,
            r_m: None,
        }
    }
}

/// Where the null's reference points come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReferenceInfo {
    /// `"pixel_grid"` (CSR) or `"baseline_points"`.
    pub kind: &'static str,
    /// Reference points inside the window.
    pub points: usize,
    /// Pixel size `[dx, dy]` (m) of the CSR grid.
    pub pixel_m: Option<[f64; 2]>,
    /// Baseline points dropped because they lie outside the window or weigh 0.
    pub baseline_dropped: usize,
}

/// Naive versus deduplicated global results (issue 4 §6).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepeatsSummary {
    /// Every incident counts.
    pub naive: GlobalResult,
    /// One unit per distinct fine cell (`None` when fewer than 10 cells).
    pub cell: Option<GlobalResult>,
    /// One unit per distinct subject (`None` when no subjects or fewer than 10).
    pub subject: Option<GlobalResult>,
    /// z_naive / z_cell: how much repeats at the same place inflate the naive z-score
    /// (`None` unless both z are positive).
    pub inflation_cell: Option<f64>,
    /// z_naive / z_subject.
    pub inflation_subject: Option<f64>,
}

/// The summary member of the FeatureCollection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProximitySummary {
    /// Null model used.
    pub null: NullModel,
    /// Deduplication used for the per-facility results, `global`, ρ(d) and L_cross.
    pub dedup: Dedup,
    /// `"study_area"` or `"convex_hull"` (of the incidents).
    pub window: &'static str,
    /// Window area (km²).
    pub window_area_km2: f64,
    /// Incidents given.
    pub incidents_input: usize,
    /// Incidents outside the window (left out of the tests).
    pub incidents_outside_window: usize,
    /// Units analysed after deduplication.
    pub n_units: usize,
    /// Facilities given.
    pub n_facilities: usize,
    /// radius_m used.
    pub radius_m: f64,
    /// rings_m used.
    pub rings_m: Vec<f64>,
    /// Seed used.
    pub seed: u64,
    /// Reference points of the null.
    pub reference: ReferenceInfo,
    /// Method of the per-facility p-values: `"poisson_upper_tail"`.
    pub facility_p_method: &'static str,
    /// Global result for the chosen dedup.
    pub global: GlobalResult,
    /// Naive vs deduplicated.
    pub repeats: RepeatsSummary,
}

/// Everything the proximity endpoint returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProximityReport {
    /// Global results and metadata.
    pub summary: ProximitySummary,
    /// Per-facility statistics, in input order.
    pub facilities: Vec<FacilityStats>,
    /// Nearest facility of every input incident, in input order (private tier only).
    pub nearest: Vec<NearestFacility>,
    /// Histogram of distance to the nearest facility (analysed units).
    pub histogram: DistanceHistogram,
    /// ρ(d) with 95 % band.
    pub rho: RhoCurve,
    /// L_cross(r) with envelope.
    pub l_cross: LCrossCurve,
}

fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// Runs the analysis with default [`ProximityOptions`].
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

/// The null's reference points: CSR pixel centres or baseline points inside the window.
fn make_reference(
    win: &Window,
    null: NullModel,
    baseline: Option<&[(f64, f64, f64)]>,
    params: &ProximityParams,
    opts: &ProximityOptions,
    fidx: &FacilityIndex,
) -> Result<(Reference, ReferenceInfo), ProximityError> {
    let (points, weights, info) = match (null, baseline) {
        (NullModel::Baseline, Some(b)) => {
            let kept: Vec<&(f64, f64, f64)> = b
                .iter()
                .filter(|p| p.2 > 0.0 && win.contains(p.0, p.1))
                .collect();
            if kept.is_empty() {
                return Err(ProximityError::InvalidBaseline(
                    "no baseline point with positive weight inside the study area".into(),
                ));
            }
            let info = ReferenceInfo {
                kind: "baseline_points",
                points: kept.len(),
                pixel_m: None,
                baseline_dropped: b.len() - kept.len(),
            };
            (
                kept.iter().map(|p| [p.0, p.1]).collect(),
                kept.iter().map(|p| p.2).collect(),
                info,
            )
        }
        (NullModel::Baseline, None) => return Err(ProximityError::BaselineMissing),
        (NullModel::Csr, _) => {
            let [x0, y0, x1, y1] = win.bbox();
            let (nx, ny) = opts.grid.unwrap_or_else(|| {
                let side = (params.radius_m.min(params.rings_m[0]) / 10.0)
                    .max(((x1 - x0) * (y1 - y0) / 262_144.0).sqrt());
                (
                    ((x1 - x0) / side).ceil().max(1.0) as usize,
                    ((y1 - y0) / side).ceil().max(1.0) as usize,
                )
            });
            let (pts, pixel_area) = win.pixel_centres(nx, ny);
            if pts.is_empty() {
                return Err(ProximityError::ZeroAreaWindow);
            }
            let info = ReferenceInfo {
                kind: "pixel_grid",
                points: pts.len(),
                pixel_m: Some([(x1 - x0) / nx as f64, (y1 - y0) / ny as f64]),
                baseline_dropped: 0,
            };
            let w = vec![pixel_area; pts.len()];
            (pts, w, info)
        }
    };
    let dist = fidx
        .nearest_many(&points)
        .into_iter()
        .map(|x| x.1)
        .collect();
    Ok((Reference::new(points, weights, dist), info))
}

/// Expected counts per facility under the null for `n` units.
fn expected_counts(
    null: NullModel,
    n: usize,
    win: &Window,
    reference: &Reference,
    facilities: &[ProxFacility],
    fidx: &FacilityIndex,
    params: &ProximityParams,
) -> Counts {
    let nf = n as f64;
    match null {
        NullModel::Csr => {
            let share = |f: &ProxFacility, r: f64| win.disc_area(f.x, f.y, r) / win.area_m2();
            Counts {
                within: facilities
                    .iter()
                    .map(|f| nf * share(f, params.radius_m))
                    .collect(),
                rings: facilities
                    .iter()
                    .map(|f| {
                        let cum: Vec<f64> = params.rings_m.iter().map(|&r| share(f, r)).collect();
                        (0..cum.len())
                            .map(|k| nf * (cum[k] - if k > 0 { cum[k - 1] } else { 0.0 }).max(0.0))
                            .collect()
                    })
                    .collect(),
            }
        }
        NullModel::Baseline => {
            let mut c = count_near(
                fidx,
                facilities.len(),
                &reference.points,
                Some(&reference.weights),
                params.radius_m,
                &params.rings_m,
            );
            let scale = nf / reference.total_weight;
            c.within.iter_mut().for_each(|v| *v *= scale);
            c.rings.iter_mut().flatten().for_each(|v| *v *= scale);
            c
        }
    }
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
    params.validate()?;
    check_inputs(incidents, facilities, baseline)?;
    let null = params.resolve_null(baseline.is_some())?;
    let (win, window_kind) = make_window(incidents, window)?;
    let fpts: Vec<[f64; 2]> = facilities.iter().map(|f| [f.x, f.y]).collect();
    let fidx = FacilityIndex::new(&fpts);
    let ipts: Vec<[f64; 2]> = incidents.iter().map(|i| [i.x, i.y]).collect();
    let nearest: Vec<NearestFacility> = fidx
        .nearest_many(&ipts)
        .into_iter()
        .map(|(f, d)| NearestFacility {
            facility_index: f,
            distance_m: d,
        })
        .collect();
    let inside: Vec<usize> = (0..incidents.len())
        .filter(|&i| win.contains(incidents[i].x, incidents[i].y))
        .collect();
    let units = analysis_units(incidents, &inside, params.dedup)?;
    let chosen = units.chosen(params.dedup);
    if chosen.len() < params::MIN_INCIDENTS {
        return Err(ProximityError::TooFewIncidents {
            n: chosen.len(),
            min: params::MIN_INCIDENTS,
        });
    }
    let (reference, ref_info) = make_reference(&win, null, baseline, params, opts, &fidx)?;
    let dist_of = |pts: &[[f64; 2]]| -> Vec<f64> {
        fidx.nearest_many(pts).into_iter().map(|x| x.1).collect()
    };
    let dist = VariantDistances {
        naive: inside.iter().map(|&i| nearest[i].distance_m).collect(),
        cell: dist_of(&units.cell),
        subject: units.subject.as_deref().map(dist_of),
    };
    let chosen_dist = dist.chosen(params.dedup);

    let observed = count_near(
        &fidx,
        facilities.len(),
        chosen,
        None,
        params.radius_m,
        &params.rings_m,
    );
    let expected = expected_counts(
        null,
        chosen.len(),
        &win,
        &reference,
        facilities,
        &fidx,
        params,
    );
    let facility_stats =
        facility::facility_stats(facilities, &observed, &expected, &params.rings_m);

    let repeats = repeats_summary(&dist, params, &reference);
    let global = match params.dedup {
        Dedup::None => Some(repeats.naive.clone()),
        Dedup::Cell => repeats.cell.clone(),
        Dedup::Subject => repeats.subject.clone(),
    }
    .ok_or(ProximityError::TooFewIncidents {
        n: chosen.len(),
        min: params::MIN_INCIDENTS,
    })?;

    let reach = params
        .radius_m
        .max(*params.rings_m.last().unwrap_or(&params.radius_m));
    let histogram = global::histogram(chosen_dist, &reference, params.radius_m, reach);
    let per_km2 = null == NullModel::Csr;
    let denom = if per_km2 {
        win.area_m2()
    } else {
        reference.total_weight
    };
    let rho = rhohat::rhohat(
        chosen_dist,
        &reference.dist_m,
        &reference.weights,
        denom,
        per_km2,
        opts.rho_points.max(2),
    );
    let l_cross = l_cross_curve(&win, facilities, chosen, &reference, params, opts, reach);

    Ok(ProximityReport {
        summary: ProximitySummary {
            null,
            dedup: params.dedup,
            window: window_kind,
            window_area_km2: win.area_m2() / 1e6,
            incidents_input: incidents.len(),
            incidents_outside_window: incidents.len() - inside.len(),
            n_units: chosen.len(),
            n_facilities: facilities.len(),
            radius_m: params.radius_m,
            rings_m: params.rings_m.clone(),
            seed: params.seed,
            reference: ref_info,
            facility_p_method: "poisson_upper_tail",
            global,
            repeats,
        },
        facilities: facility_stats,
        nearest,
        histogram,
        rho,
        l_cross,
    })
}

/// Distance to the nearest facility of the units of each variant.
struct VariantDistances {
    naive: Vec<f64>,
    cell: Vec<f64>,
    subject: Option<Vec<f64>>,
}

impl VariantDistances {
    fn chosen(&self, dedup: Dedup) -> &[f64] {
        match dedup {
            Dedup::None => &self.naive,
            Dedup::Cell => &self.cell,
            Dedup::Subject => self.subject.as_deref().unwrap_or(&self.naive),
        }
    }
}

/// Global results for the naive, cell and subject variants (each its own RNG stream).
fn repeats_summary(
    dist: &VariantDistances,
    params: &ProximityParams,
    reference: &Reference,
) -> RepeatsSummary {
    let run = |variant: &'static str, d: &[f64], stream: u64| {
        let mut r = rng(params.seed, stream);
        global::global_test(
            variant,
            d,
            params.radius_m,
            reference,
            params.simulations,
            &mut r,
        )
    };
    let enough = |d: &&Vec<f64>| d.len() >= params::MIN_INCIDENTS;
    let naive = run("naive", &dist.naive, 1);
    let cell = Some(&dist.cell).filter(enough).map(|d| run("cell", d, 2));
    let subject = dist
        .subject
        .as_ref()
        .filter(enough)
        .map(|d| run("subject", d, 3));
    let inflation = |d: &Option<GlobalResult>| match (naive.z, d.as_ref().and_then(|g| g.z)) {
        (Some(a), Some(b)) if a > 0.0 && b > 0.0 => Some(a / b),
        _ => None,
    };
    RepeatsSummary {
        inflation_cell: inflation(&cell),
        inflation_subject: inflation(&subject),
        naive,
        cell,
        subject,
    }
}

/// L_cross of the chosen units against the facilities inside the window, with envelope.
fn l_cross_curve(
    win: &Window,
    facilities: &[ProxFacility],
    chosen: &[[f64; 2]],
    reference: &Reference,
    params: &ProximityParams,
    opts: &ProximityOptions,
    reach: f64,
) -> LCrossCurve {
    let [x0, y0, x1, y1] = win.bbox();
    let r = opts.r_m.clone().unwrap_or_else(|| {
        let rmax = reach.min((x1 - x0).min(y1 - y0) / 4.0);
        (0..=50).map(|k| rmax * k as f64 / 50.0).collect()
    });
    let fin: Vec<[f64; 2]> = facilities
        .iter()
        .filter(|f| win.contains(f.x, f.y))
        .map(|f| [f.x, f.y])
        .collect();
    let rmax = *r.last().unwrap_or(&0.0);
    let table = |pts: &[[f64; 2]]| {
        let border: Vec<f64> = pts
            .iter()
            .map(|p| win.boundary_distance(p[0], p[1]))
            .collect();
        if fin.is_empty() {
            return lcross::PairTable::new(pts, &border, &r, |_, _| {});
        }
        let idx = FacilityIndex::new(&fin);
        lcross::PairTable::new(pts, &border, &r, |p, out| {
            idx.for_each_within(p, rmax, |_, d| out.push(d))
        })
    };
    let observed = table(chosen);
    let sims = if fin.is_empty() {
        0
    } else {
        params.simulations
    };
    let ref_table = if sims > 0 {
        table(&reference.points)
    } else {
        lcross::PairTable::default()
    };
    lcross::l_cross(
        &r,
        win.area_m2(),
        fin.len(),
        &observed,
        &ref_table,
        &reference.weights,
        sims,
        &mut rng(params.seed, 10),
    )
}
