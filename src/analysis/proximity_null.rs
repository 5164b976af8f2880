//! The null model's reference points and the per-facility expectations under it.
//!
//! - CSR: the pixel centres inside the window of an nx × ny grid over its bounding box (as
//!   spatstat's mask), each weighted by the pixel area; expectations per facility use the
//!   exact disc ∩ window area instead (n · area(disc ∩ W) / area(W)).
//! - Baseline: the baseline points inside the window with positive weight, weighted by
//!   weight; expectations are n · (weight within r of the facility) / total weight.

use super::facility::{Counts, FacilityIndex, count_near};
use super::global::Reference;
use super::{NullModel, ProxFacility, ProximityError, ProximityOptions, ProximityParams};
use super::{ReferenceInfo, Window};

/// Fewest pixels along each side of the automatic CSR grid.
const MIN_GRID_SIDE: f64 = 32.0;

/// The null's reference points: CSR pixel centres or baseline points inside the window,
/// with their distance to the nearest facility.
pub fn make_reference(
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
                    ((x1 - x0) / side).ceil().max(MIN_GRID_SIDE) as usize,
                    ((y1 - y0) / side).ceil().max(MIN_GRID_SIDE) as usize,
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
pub fn expected_counts(
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
