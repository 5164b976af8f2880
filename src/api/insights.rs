//! The data lab's own questions: `GET /datasets/{id}/concentration?by=place|subject` and
//! `GET /datasets/{id}/coverage`, under the tier rules (no pseudonyms below private, small
//! counts suppressed).

use super::AppState;
use super::analysis::{
    SnapshotCells, cache_key, cached, disclosure_json, own_params, scope, snapshot,
};
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Query};
use super::protect::Guard;
use crate::analysis::concentration::{self as conc, ConcentrationBy, ConcentrationParams};
use crate::analysis::coverage::{self as cov, CovIncident, CoverageParams};
use crate::analysis::{h3grid, hotspot};
use crate::model::Tier;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

fn err(status_422: bool, code: &'static str, msg: String) -> ApiError {
    let status = if status_422 {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::BAD_REQUEST
    };
    ApiError::new(status, code, msg)
}

fn conc_error(e: conc::ConcentrationError) -> ApiError {
    err(e.code() == "no_incidents", e.code(), e.to_string())
}

fn cov_error(e: cov::CoverageError) -> ApiError {
    err(e.code() == "no_incidents", e.code(), e.to_string())
}

/// Hides the small counts of one column of rows whose total is published, with secondary
/// suppression (`privacy::disclosure::hidden_counts`).
fn hide_column(rows: &mut [Value], key: &str, rules: &crate::privacy::disclosure::CellRules) {
    let n: Vec<u64> = rows.iter().map(|r| r[key].as_u64().unwrap_or(0)).collect();
    for (r, h) in rows
        .iter_mut()
        .zip(crate::privacy::disclosure::hidden_counts(&n, rules))
    {
        if h {
            r[key] = Value::Null;
        }
    }
}

/// Hides a count below the tier's threshold (`null`).
fn shown(n: u64, min: u32) -> Value {
    if n > 0 && n < u64::from(min) {
        Value::Null
    } else {
        json!(n)
    }
}

pub async fn concentration(
    State(st): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Query,
) -> ApiResult<Response> {
    let snap = snapshot(&st, &who, &id)?;
    let mut params: ConcentrationParams = own_params(&q)?;
    super::analysis::tier_default_res(&q, &snap, &who, &mut params.resolution);
    params.validate().map_err(conc_error)?;
    let by_place = params.by == ConcentrationBy::Place;
    let sc = scope(&q, &snap, &who, by_place.then_some(params.resolution))?;
    if by_place {
        sc.rules.check_resolution(params.resolution)?;
    }
    let key = cache_key("concentration", &snap, &who, &q);
    let v = cached(&st, key.clone(), move || {
        let rows = snap.incidents.select(&sc.filter);
        sc.check_size(rows.len())?;
        let inc = &snap.incidents;
        let min = sc.rules.min_count;
        let mut body = if by_place {
            let cells: Vec<u64> = rows.iter().map(|&r| inc.cell[r as usize]).collect();
            let counts = conc::place_counts(&cells, params.resolution).map_err(conc_error)?;
            let total = match (&snap.study_area, h3o::Resolution::try_from(params.resolution)) {
                (Some(a), Ok(res)) => h3grid::study_area_cells(&a.wgs84, res, 2_000_000).ok().map(|c| c.len() as u64),
                _ => None,
            };
            let n: Vec<u64> = counts.iter().map(|c| c.1).collect();
            let total = total.map(|t| t.max(n.len() as u64));
            let c = conc::concentration(&n, total, &params).map_err(conc_error)?;
            // the counts shown per place go through the guard: cell-key noise at the open
            // tier when the dataset has it, and places hidden whose difference with the
            // unrestricted answer would reveal a small category or source count
            let guard = Guard::build(&snap, &sc, &rows, params.resolution, &|_| 0);
            let top: Vec<Value> = c
                .top_units
                .iter()
                .map(|u| {
                    let cell = counts[u.index].0;
                    // suppression on the exact count, then the noise on what is shown
                    let count = match shown(u.count, min) {
                        Value::Null => Value::Null,
                        _ if guard.differencing(cell, 0) => Value::Null,
                        _ => json!(guard.show(cell, 0, u.count)),
                    };
                    json!({"h3": format!("{cell:x}"), "count": count})
                })
                .collect();
            let mut v = serde_json::to_value(&c).unwrap_or_default();
            v["top_units"] = json!(top);
            v["units"] = json!(if total.is_some() { "H3 cells of the study area" } else { "H3 cells with incidents" });
            v
        } else {
            let pairs: Vec<(u32, u16)> =
                rows.iter().filter_map(|&r| inc.subject[r as usize].checked_sub(1).map(|s| (s, inc.src[r as usize]))).collect();
            let subj: Vec<u32> = pairs.iter().map(|p| p.0).collect();
            let counts = conc::subject_counts(&subj);
            let n: Vec<u64> = counts.iter().map(|c| c.1).collect();
            let c = conc::concentration(&n, None, &params).map_err(conc_error)?;
            let mut v = serde_json::to_value(&c).unwrap_or_default();
            let mut known = serde_json::to_value(conc::known_to(&pairs)).unwrap_or_default();
            if let Some(bins) = known["histogram"].as_array_mut() {
                for k in ["subjects", "incidents"] {
                    hide_column(bins, k, &sc.rules);
                }
            }
            v["known_to"] = known;
            if who.tier == Tier::Private {
                let profiles: Vec<Value> = conc::subject_profiles(&pairs)
                    .into_iter()
                    .take(params.top.unwrap_or(50))
                    .map(|p| {
                        let per: serde_json::Map<String, Value> =
                            p.per_source.iter().map(|s| (inc.sources[s.source as usize].clone(), json!(s.incidents))).collect();
                        json!({"subject": inc.subjects[p.subject as usize], "incidents": p.incidents,
                               "organisations": p.organisations, "per_source": per})
                    })
                    .collect();
                v["subjects"] = json!(profiles);
                v["top_units"] = json!(c.top_units.iter().map(|u| json!({"subject": inc.subjects[counts[u.index].0 as usize], "count": u.count})).collect::<Vec<_>>());
            } else {
                // no pseudonyms below the private tier: only how many reports the top subjects have
                v["top_units"] = json!(c.top_units.iter().map(|u| json!({"count": shown(u.count, min)})).collect::<Vec<_>>());
            }
            v
        };
        body["disclosure"] = disclosure_json(&sc, &who);
        Ok(body)
    })
    .await?;
    let _ = headers;
    Ok(super::audit::with_info(
        axum::Json((*v).clone()).into_response(),
        1,
        0,
    ))
}

pub async fn coverage(
    State(st): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Query,
) -> ApiResult<Response> {
    let snap = snapshot(&st, &who, &id)?;
    let mut params: CoverageParams = own_params(&q)?;
    super::analysis::tier_default_res(&q, &snap, &who, &mut params.resolution);
    params.validate().map_err(cov_error)?;
    let sc = scope(&q, &snap, &who, Some(params.resolution))?;
    sc.rules.check_resolution(params.resolution)?;
    let key = cache_key("coverage", &snap, &who, &q);
    let v = cached(&st, key.clone(), move || {
        let rows = snap.incidents.select(&sc.filter);
        sc.check_size(rows.len())?;
        let inc = &snap.incidents;
        let pts: Vec<CovIncident> = rows
            .iter()
            .map(|&r| {
                let r = r as usize;
                CovIncident {
                    cell: inc.cell[r],
                    t: inc.t[r],
                    source: inc.src[r],
                    subject: inc.subject[r].checked_sub(1),
                }
            })
            .collect();
        // hot cells: Gi* (k = 1, FDR) at the coverage resolution, bins +2 and +3
        let cells = SnapshotCells {
            inc,
            rows: Some(&rows),
        };
        let hp = hotspot::HotspotParams {
            resolution: Some(params.resolution),
            k: Some(1),
            fdr: true,
            ..Default::default()
        };
        let (hot, hot_note): (Vec<u64>, Value) =
            match hotspot::run(&cells, snap.study_area.as_ref().map(|a| &a.wgs84), &hp) {
                Ok(r) => (
                    r.cells
                        .iter()
                        .filter(|c| c.gi_bin >= 2)
                        .filter_map(|c| u64::from_str_radix(&c.h3, 16).ok())
                        .collect(),
                    json!("hot cells: Gi* at this resolution, k = 1, FDR, bins +2 and +3"),
                ),
                Err(e) => (Vec::new(), json!(format!("no hot cells: {e}"))),
            };
        let c = cov::coverage(&pts, &inc.sources, &hot, &params).map_err(cov_error)?;
        let mut v = serde_json::to_value(&c).unwrap_or_default();
        let min = sc.rules.min_count;
        for m in ["overlap_place", "overlap_subjects"] {
            if let Some(rows) = v[m].as_array_mut() {
                for row in rows.iter_mut().filter_map(Value::as_array_mut) {
                    for x in row.iter_mut() {
                        if let Some(n) = x.as_u64() {
                            *x = shown(n, min);
                        }
                    }
                }
            }
        }
        if let Some(orgs) = v["per_organisation"].as_array_mut() {
            for k in ["incidents", "subjects", "multi_organisation_subjects"] {
                hide_column(orgs, k, &sc.rules);
            }
            if sc.rules.min_count > 1 {
                // shares of a published total would give hidden counts back
                for o in orgs.iter_mut().filter(|o| o["incidents"].is_null()) {
                    o["incidents_share"] = Value::Null;
                }
            }
        }
        v["hot_cells_rule"] = hot_note;
        v["disclosure"] = disclosure_json(&sc, &who);
        Ok(v)
    })
    .await?;
    let _ = headers;
    Ok(super::audit::with_info(
        axum::Json((*v).clone()).into_response(),
        1,
        0,
    ))
}
