//! `GET /datasets/{id}/clusters` (DBSCAN / HDBSCAN cluster polygons) and
//! `GET /datasets/{id}/density` (kernel density as H3 cells or a square grid).
//!
//! Tier rules: cluster outlines are drawn around points, so they are for the closed tier and
//! above, and clusters smaller than the tier's threshold are left out; the open tier gets
//! density only on H3 cells no finer than its resolution.

use super::AppState;
use super::analysis::{cache_key, cell_geometry, disclosure_json, in_box, own_params, scope};
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Query};
use super::features::{multipolygon, rfc3339, round, year_month};
use super::render::{FeatureWriter, cached_rendered, geojson_response};
use crate::analysis::cluster::{self, ClusterParams, ClusterPoint};
use crate::analysis::density::{self, DensityOutput, DensityParams};
use crate::analysis::h3grid;
use crate::crs::{Crs, Transformer};
use crate::index::DatasetSnapshot;
use crate::model::Tier;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

/// Largest number of features a density answer may hold.
const MAX_FEATURES: usize = 250_000;

fn metric(snap: &DatasetSnapshot) -> ApiResult<Crs> {
    snap.metric_crs.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_data",
            "the dataset has no data yet",
        )
    })
}

fn cluster_error(e: cluster::ClusterError) -> ApiError {
    let status = if e.code() == "too_few_points" {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::BAD_REQUEST
    };
    ApiError::new(status, e.code(), e.to_string())
}

fn density_error(e: density::DensityError) -> ApiError {
    let status = match e.code() {
        "too_few_points"
        | "too_many_cells"
        | "too_expensive"
        | "too_many_points_for_cv"
        | "degenerate_bandwidth" => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.code(), e.to_string())
}

fn named_counts(
    counts: &std::collections::BTreeMap<u16, usize>,
    names: &[String],
    min: u32,
) -> Map<String, Value> {
    counts
        .iter()
        .map(|(&c, &n)| {
            let v = if n > 0 && (n as u64) < u64::from(min) {
                Value::Null
            } else {
                json!(n)
            };
            (names.get(c as usize).cloned().unwrap_or_default(), v)
        })
        .collect()
}

/// The union of the resolution-10 H3 cells of the given fine cells, in lon/lat.
fn cell_outline(fine: impl Iterator<Item = u64>) -> Option<geo::MultiPolygon<f64>> {
    let mut cells: Vec<h3o::CellIndex> = fine
        .filter_map(|c| {
            h3o::CellIndex::try_from(c)
                .ok()?
                .parent(h3o::Resolution::Ten)
        })
        .collect();
    cells.sort_unstable();
    cells.dedup();
    h3o::geom::SolventBuilder::new()
        .build()
        .dissolve(cells)
        .ok()
}

pub async fn clusters(
    State(st): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Query,
) -> ApiResult<Response> {
    let snap = super::analysis::snapshot(&st, &who, &id)?;
    if who.tier == Tier::Open {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "tier_forbidden",
            "cluster outlines are drawn around incidents: closed tier and above (the open tier has /hotspots and /density)",
        ));
    }
    let params: ClusterParams = own_params(&q)?;
    params.validate().map_err(cluster_error)?;
    let sc = scope(&q, &snap, &who, None)?;
    let crs = metric(&snap)?;
    let key = cache_key("clusters", &snap, &who, &q);
    let v = cached_rendered(&st, key.clone(), move || {
        let inc = &snap.incidents;
        let rows = inc.select(&sc.filter);
        sc.check_size(rows.len())?;
        let pts: Vec<ClusterPoint> = rows
            .iter()
            .map(|&r| {
                let r = r as usize;
                ClusterPoint { x: inc.x[r], y: inc.y[r], category: inc.cat[r], source: inc.src[r], occurred_at: inc.t[r], cell: inc.cell[r] }
            })
            .collect();
        let result = cluster::cluster_points(&pts, &params).map_err(cluster_error)?;
        let to_wgs = Transformer::new(crs, Crs::WGS84)?;
        let min = sc.rules.min_count;
        let mut out = FeatureWriter::new();
        let mut left_out = 0;
        for c in &result.clusters {
            if (c.count as u64) < u64::from(min) {
                left_out += 1;
                continue;
            }
            let w = if who.tier == Tier::Private {
                let mp = geo::MultiPolygon(vec![c.polygon.clone()]);
                let Some(w) = to_wgs.multipolygon(&mp) else { continue };
                w
            } else {
                // below private, an outline drawn through reports would locate them: the
                // outline is the union of the fixed H3 cells (resolution 10) they fall in
                let members = result.labels.iter().zip(&rows).filter(|(l, _)| **l == Some(c.cluster_id)).map(|(_, r)| inc.cell[*r as usize]);
                match cell_outline(members) {
                    Some(w) => w,
                    None => continue,
                }
            };
            let (first, last) = if who.tier == Tier::Private {
                (rfc3339(c.first_occurred_at), rfc3339(c.last_occurred_at))
            } else {
                (year_month(c.first_occurred_at), year_month(c.last_occurred_at))
            };
            if sc.out_box.is_some_and(|b| {
                use geo::Centroid;
                w.centroid().is_none_or(|p| p.x() < b[0] || p.x() > b[2] || p.y() < b[1] || p.y() > b[3])
            }) {
                continue;
            }
            out.push(&json!({"type": "Feature", "id": c.cluster_id, "geometry": multipolygon(&w, Crs::WGS84),
                "properties": {
                    "cluster_id": c.cluster_id, "count": c.count, "distinct_locations": c.distinct_locations,
                    "categories": named_counts(&c.category_counts, &inc.categories, min),
                    "sources": named_counts(&c.source_counts, &inc.sources, min),
                    "first_occurred_at": first, "last_occurred_at": last,
                    "stability": c.stability, "persistence": c.persistence,
                    "polygon_kind": if who.tier == Tier::Private { json!(c.polygon_kind) } else { json!("h3_cells_res10") },
                    "count_suppressed": false}}), false)?;
        }
        let summary = json!({"method": result.method, "params": format!("{params:?}"), "n_points": result.n_points,
            "n_clusters": result.n_clusters, "noise_count": result.noise_count,
            "clusters_below_threshold_left_out": left_out, "n_features": out.len(),
            "distances": format!("metres in {crs}"), "disclosure": disclosure_json(&sc, &who)});
        out.finish(&summary)
    })
    .await?;
    geojson_response(v, &key, &headers)
}

pub async fn density(
    State(st): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Query,
) -> ApiResult<Response> {
    let snap = super::analysis::snapshot(&st, &who, &id)?;
    let mut params: DensityParams = own_params(&q)?;
    if who.tier == Tier::Open && q.get("output").is_none() {
        // the open tier gets H3 cells; a request without `output` gets them rather than a 403
        params.output = DensityOutput::H3;
    }
    super::analysis::tier_default_res(&q, &snap, &who, &mut params.resolution);
    params.validate().map_err(density_error)?;
    let h3 = params.output == DensityOutput::H3;
    let sc = scope(&q, &snap, &who, h3.then_some(params.resolution))?;
    if who.tier == Tier::Open && !h3 {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "tier_forbidden",
            "the open tier gets density on H3 cells: use output=h3",
        ));
    }
    if h3 {
        sc.rules.check_resolution(params.resolution)?;
    }
    let crs = metric(&snap)?;
    let key = cache_key("density", &snap, &who, &q);
    let v = cached_rendered(&st, key.clone(), move || {
        let inc = &snap.incidents;
        let coords: Vec<[f64; 2]> = inc
            .select(&sc.filter)
            .iter()
            .map(|&r| [inc.x[r as usize], inc.y[r as usize]])
            .collect();
        sc.check_size(coords.len())?;
        let window = snap.study_area.as_ref().map(|a| &a.metric);
        let mut out = FeatureWriter::new();
        let mut summary = if h3 {
            density_h3(&snap, &coords, &params, crs, sc.out_box, &mut out)?
        } else {
            density_squares(&coords, &params, window, crs, sc.out_box, &mut out)?
        };
        summary["n_features"] = json!(out.len());
        summary["units"] = json!("incidents per km2");
        summary["disclosure"] = disclosure_json(&sc, &who);
        out.finish(&summary)
    })
    .await?;
    geojson_response(v, &key, &headers)
}

/// Density at the centres of H3 cells covering the study area (or the incidents' extent
/// widened by three bandwidths).
fn density_h3(
    snap: &DatasetSnapshot,
    coords: &[[f64; 2]],
    p: &DensityParams,
    crs: Crs,
    out_box: Option<[f64; 4]>,
    out: &mut FeatureWriter,
) -> ApiResult<Value> {
    let res = h3o::Resolution::try_from(p.resolution)
        .map_err(|_| ApiError::bad_request("invalid_resolution", "resolution must be 0..=15"))?;
    let area = match &snap.study_area {
        Some(a) => a.wgs84.clone(),
        None => extent_polygon(coords, p, crs)?,
    };
    let cells = h3grid::study_area_cells(&area, res, MAX_FEATURES)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()))?;
    let to_m = Transformer::new(Crs::WGS84, crs)?;
    let samples: Vec<[f64; 2]> = cells
        .iter()
        .map(|c| {
            let ll = h3o::LatLng::from(*c);
            to_m.point(ll.lng(), ll.lat())
                .map_or([f64::NAN, f64::NAN], |(x, y)| [x, y])
        })
        .collect();
    let d = density::density_at_points(
        coords,
        &samples,
        p,
        snap.study_area.as_ref().map(|a| &a.metric),
    )
    .map_err(density_error)?;
    let mut mass = 0.0;
    for (c, v) in cells.iter().zip(&d.values_km2) {
        let Some(v) = v else { continue };
        mass += v * c.area_km2();
        if in_box(*c, out_box) {
            out.push(
                &json!({"type": "Feature", "id": c.to_string(), "geometry": cell_geometry(*c),
                "properties": {"h3": c.to_string(), "density_km2": round(*v, 6)}}),
                false,
            )?;
        }
    }
    let summary = json!({"output": "h3", "resolution": p.resolution, "kernel": d.kernel, "bandwidth_m": d.bandwidth_m,
        "bandwidth_source": d.bandwidth_source, "edge_corrected": d.edge_corrected, "exact": d.exact,
        "n_points": d.n_points, "total_mass": mass,
        "total_mass_note": "sum of density x cell area over the cells; equals n_points up to edge effects and discretisation"});
    Ok(summary)
}

fn extent_polygon(
    coords: &[[f64; 2]],
    p: &DensityParams,
    crs: Crs,
) -> ApiResult<geo::MultiPolygon<f64>> {
    let pad = 3.0 * p.bandwidth_m.unwrap_or(500.0);
    let (mut x0, mut y0, mut x1, mut y1) = (
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    );
    for c in coords {
        (x0, y0, x1, y1) = (x0.min(c[0]), y0.min(c[1]), x1.max(c[0]), y1.max(c[1]));
    }
    if !x0.is_finite() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_few_points",
            "no incidents match the filters",
        ));
    }
    let rect = geo::Rect::new(
        geo::coord! {x: x0 - pad, y: y0 - pad},
        geo::coord! {x: x1 + pad, y: y1 + pad},
    )
    .to_polygon();
    Transformer::new(crs, Crs::WGS84)?
        .multipolygon(&geo::MultiPolygon(vec![rect]))
        .ok_or_else(|| {
            ApiError::bad_request(
                "bad_extent",
                "the incidents' extent cannot be transformed to WGS84",
            )
        })
}

/// Square cells of `cell_m` metres, drawn in WGS84; cells outside the window are left out.
fn density_squares(
    coords: &[[f64; 2]],
    p: &DensityParams,
    window: Option<&geo::MultiPolygon<f64>>,
    crs: Crs,
    out_box: Option<[f64; 4]>,
    out: &mut FeatureWriter,
) -> ApiResult<Value> {
    let g = density::density_grid(coords, p, window).map_err(density_error)?;
    let to_wgs = Transformer::new(crs, Crs::WGS84)?;
    let floor = g.max_km2 * 1e-6;
    // every cell corner is a node of one (ncols+1) x (nrows+1) lattice: transform it once
    // (a quarter of the PROJ calls of five corners per cell) in batches
    let stride = g.ncols + 1;
    let mut lattice: Vec<(f64, f64)> = (0..=g.nrows)
        .flat_map(|row| {
            (0..=g.ncols).map(move |col| {
                (
                    g.origin_x + col as f64 * g.cell_m,
                    g.origin_y + row as f64 * g.cell_m,
                )
            })
        })
        .collect();
    to_wgs.points(&mut lattice);
    let node = |col: usize, row: usize| -> Option<(f64, f64)> {
        let (lon, lat) = lattice[row * stride + col];
        (lon.is_finite() && lat.is_finite()).then_some((round(lon, 7), round(lat, 7)))
    };
    let position = |(lon, lat): (f64, f64)| Value::Array(vec![lon.into(), lat.into()]);
    for row in 0..g.nrows {
        for col in 0..g.ncols {
            let Some(v) = g.values_km2[row * g.ncols + col] else {
                continue;
            };
            if v <= floor {
                continue;
            }
            let corners = [
                node(col, row),
                node(col + 1, row),
                node(col + 1, row + 1),
                node(col, row + 1),
            ];
            let Some(corners) = corners.into_iter().collect::<Option<Vec<_>>>() else {
                continue;
            };
            let (lon, lat) = corners[0];
            if out_box.is_some_and(|b| lon < b[0] || lon > b[2] || lat < b[1] || lat > b[3]) {
                continue;
            }
            if out.len() >= MAX_FEATURES {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "too_many_cells",
                    "more than 250000 non-empty cells: use a larger cell_m",
                ));
            }
            let mut ring: Vec<Value> = corners.iter().map(|&c| position(c)).collect();
            ring.push(position(corners[0]));
            let mut geometry = Map::new();
            geometry.insert("type".into(), "Polygon".into());
            geometry.insert("coordinates".into(), Value::Array(vec![Value::Array(ring)]));
            let mut props = Map::new();
            props.insert("col".into(), col.into());
            props.insert("row".into(), row.into());
            props.insert("density_km2".into(), round(v, 6).into());
            out.push(
                &super::analysis::feature(&format!("{col}_{row}"), Value::Object(geometry), props),
                false,
            )?;
        }
    }
    let summary = json!({"output": "grid", "cell_m": g.cell_m, "grid_crs": crs.epsg(), "origin": [g.origin_x, g.origin_y],
        "ncols": g.ncols, "nrows": g.nrows, "kernel": g.kernel, "bandwidth_m": g.bandwidth_m,
        "bandwidth_source": g.bandwidth_source, "edge_corrected": g.edge_corrected, "exact": g.exact,
        "n_points": g.n_points, "total_mass": g.total_mass, "max_km2": g.max_km2,
        "cells_left_out": "cells outside the study area and cells below 1e-6 of the maximum"});
    Ok(summary)
}
