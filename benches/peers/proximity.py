"""Peer of the proximity benchmark (issue 4): the same three jobs as the service, in Python.

Usage: python3 proximity.py SIZE_DIR N [SIMULATIONS=99]

Reads SIZE_DIR/peer_incidents.csv and SIZE_DIR/peer_facilities.csv (x, y in RD New metres,
EPSG:28992, the dataset's metric CRS) and times, with time.perf_counter, excluding interpreter
start, imports and CSV reading:

(a) nearest facility of every incident: scipy.spatial.cKDTree(facilities).query(incidents),
    single-threaded (scipy's default) and with workers=-1 (service: FacilityIndex +
    nearest_many, ArcGIS NEAR_FID / NEAR_DIST, which splits 1M points over the cores);
(b) per-facility counts within the ring radii 100, 250, 500 m (250 m is also radius_m):
    cKDTree(incidents).query_ball_point(facilities, r, return_length=True) per radius,
    annular rings by differences (service: count_near, ring k = r_{k-1} < d <= r_k), timed
    with and without building the incident tree (also the build with balanced_tree=False,
    compact_nodes=False, scipy's faster build options); and shapely STRtree.query(predicate=
    'dwithin') (points, tree and queries included), once;
(c) the global test: S = #incidents within 250 m of any facility, against SIMULATIONS
    patterns of n points under CSR in the convex hull of the incidents (the service's window
    when there is no study area), each counted with cKDTree(facilities).query(...,
    distance_upper_bound); pseudo p = (M + 1)/(R + 1). Patterns are drawn by vectorised
    rejection sampling (numpy uniform in the bounding box, shapely.contains_xy in the hull).
    pointpats.random.poisson (pointpats' own CSR generator, a per-point Python loop) is timed
    for 1 (n >= 500k) or 3 patterns. Per-simulation times are extrapolated to 999 and
    labelled as such. The service draws S directly from Binomial(n, p0) (equal in law), so
    its cost per simulation does not grow with n; the peer simulates the points.

Agreement: the bench child writes SIZE_DIR/proximity_check.bin (per incident, in the
service's row order: fid, x, y, near_index, near_dist_m as little-endian f64, the service's
coordinates after the WGS84 round trip of ingest) and proximity_check.json (facilities with
the service's x, y and the route's ring counts, the route's global result). The peer reruns
(a) and (b) with cKDTree on those coordinates (distances must match to rounding, ring
counts exactly) and compares its own CSV-coordinate results too (they differ by the
1e-7 degree rounding of the ingest CSV, about 1 cm).

Packages: numpy, pandas, scipy, shapely, pointpats (versions printed in the JSON). The last
stdout line is the JSON result; peak memory is ru_maxrss.
"""

import json
import resource
import sys
import time

import numpy as np
import pandas as pd
import pointpats
import pointpats.random
import scipy
import shapely
from scipy.spatial import ConvexHull, cKDTree

RADIUS = 250.0
RINGS = (100.0, 250.0, 500.0)
SEED = 7


def med_ms(secs):
    return {"n": len(secs), "median_ms": float(np.median(secs)) * 1e3,
            "max_ms": float(np.max(secs)) * 1e3}


def timed(f, reps):
    out, secs = None, []
    for _ in range(reps):
        t = time.perf_counter()
        out = f()
        secs.append(time.perf_counter() - t)
    return secs, out


def ring_counts(tree, fac):
    cum = [tree.query_ball_point(fac, r, return_length=True) for r in RINGS]
    rings = np.column_stack([cum[0], cum[1] - cum[0], cum[2] - cum[1]])
    return rings, cum[1]


def csr_in_hull(rng, poly, bounds, n):
    """n uniform points in poly by vectorised rejection sampling from its bounding box."""
    parts, got = [], 0
    share = poly.area / ((bounds[2] - bounds[0]) * (bounds[3] - bounds[1]))
    while got < n:
        m = int((n - got) / share * 1.02) + 64
        x = rng.uniform(bounds[0], bounds[2], m)
        y = rng.uniform(bounds[1], bounds[3], m)
        k = shapely.contains_xy(poly, x, y)
        parts.append(np.column_stack([x[k], y[k]]))
        got += int(k.sum())
    return np.concatenate(parts)[:n]


def within(tree, pts):
    d, _ = tree.query(pts, distance_upper_bound=RADIUS * (1 + 1e-9))
    return int(np.count_nonzero(d <= RADIUS))


def agreement(size_dir, inc_csv, fac_ids_csv, fac_csv, near_csv_d, rings_csv):
    try:
        meta = json.load(open(f"{size_dir}/proximity_check.json"))
        raw = np.fromfile(f"{size_dir}/proximity_check.bin", dtype="<f8").reshape(-1, 5)
    except OSError as e:
        return {"error": str(e)}
    out = {}
    xy = raw[:, 1:3]
    fac = np.array([[f["x"], f["y"]] for f in meta["facilities"]])
    d, i = cKDTree(fac).query(xy)
    svc_i = raw[:, 3].astype(np.int64)
    svc_d = raw[:, 4]
    out["svc_nearest_max_abs_m"] = float(np.max(np.abs(d - svc_d)))
    mism = i != svc_i
    # a mismatch is a tie when the service's facility is as near as the peer's
    d_svc_fac = np.hypot(*(xy[mism] - fac[svc_i[mism]]).T)
    ties = int(np.count_nonzero(np.abs(d_svc_fac - d[mism]) <= 1e-9))
    out["svc_near_index_mismatch"] = int(mism.sum()) - ties
    out["svc_near_index_ties"] = ties
    rings, w250 = ring_counts(cKDTree(xy), fac)
    route = np.array([f["rings"] for f in meta["facilities"]], dtype=np.int64)
    route_count = np.array([f["count"] for f in meta["facilities"]], dtype=np.int64)
    out["svc_ring_mismatch"] = int(np.count_nonzero(route != rings)) + int(
        np.count_nonzero(route_count != w250))
    out["svc_ring_values"] = int(route.size + route_count.size)
    out["svc_within_radius"] = int(np.count_nonzero(d <= RADIUS))
    out["svc_within_radius_route"] = meta["global_999"].get("within_radius")
    # the peer's own CSV coordinates, rows mapped by fid order (ingest order)
    fid = raw[:, 0].astype(np.int64)
    row = fid - fid.min()
    if len(row) == len(inc_csv) and row.max() < len(inc_csv):
        out["csv_vs_svc_coord_max_abs_m"] = float(np.max(np.abs(inc_csv[row] - xy)))
        out["csv_nearest_max_abs_m"] = float(np.max(np.abs(near_csv_d[row] - svc_d)))
    ids = [f["id"] for f in meta["facilities"]]
    order = [fac_ids_csv.index(k) for k in ids]
    out["csv_fac_vs_svc_max_abs_m"] = float(np.max(np.abs(fac_csv[order] - fac)))
    out["csv_ring_abs_diff"] = int(np.abs(rings_csv[order] - route).sum())
    out["csv_ring_values_differing"] = int(np.count_nonzero(rings_csv[order] != route))
    return out, meta


def main():
    size_dir, n = sys.argv[1], int(sys.argv[2])
    sims = int(sys.argv[3]) if len(sys.argv) > 3 else 99
    big = n >= 500_000
    t = time.perf_counter()
    inc = pd.read_csv(f"{size_dir}/peer_incidents.csv", usecols=["x", "y"]).to_numpy()
    facdf = pd.read_csv(f"{size_dir}/peer_facilities.csv")
    fac = facdf[["x", "y"]].to_numpy()
    read_s = time.perf_counter() - t
    res = {"n": len(inc), "facilities": len(fac), "read_csv_s": read_s,
           "versions": {"python": sys.version.split()[0], "numpy": np.__version__,
                        "scipy": scipy.__version__, "shapely": shapely.__version__,
                        "pandas": pd.__version__, "pointpats": pointpats.__version__}}

    # (a) nearest facility of every incident (scipy's default single thread, and all cores
    # with workers=-1, as the service splits this over the cores)
    secs, (near_d, _near_i) = timed(lambda: cKDTree(fac).query(inc), 5)
    res["nearest"] = med_ms(secs)
    secs, _ = timed(lambda: cKDTree(fac).query(inc, workers=-1), 5)
    res["nearest_workers_all"] = med_ms(secs)

    # (b) counts within the ring radii per facility
    secs, tree = timed(lambda: cKDTree(inc), 3)
    res["rings_tree_build"] = med_ms(secs)
    secs, (rings_csv, _) = timed(lambda: ring_counts(tree, fac), 5)
    res["rings_query"] = med_ms(secs)
    secs, _ = timed(lambda: cKDTree(inc, balanced_tree=False, compact_nodes=False), 3)
    res["rings_tree_build_fast"] = med_ms(secs)
    secs, _ = timed(lambda: ring_counts(cKDTree(inc), fac), 3)
    res["rings_total"] = med_ms(secs)
    t = time.perf_counter()
    pts = shapely.points(inc)
    st = shapely.STRtree(pts)
    fpts = shapely.points(fac)
    sh = [np.bincount(st.query(fpts, predicate="dwithin", distance=r)[0], minlength=len(fac))
          for r in RINGS]
    res["shapely_rings_ms"] = (time.perf_counter() - t) * 1e3
    sh_rings = np.column_stack([sh[0], sh[1] - sh[0], sh[2] - sh[1]])
    res["shapely_vs_ckdtree_ring_mismatch"] = int(np.count_nonzero(sh_rings != rings_csv))
    del pts, st, tree

    # (c) global test: share within RADIUS of any facility vs CSR in the convex hull
    t = time.perf_counter()
    hull = ConvexHull(inc)
    poly = shapely.Polygon(inc[hull.vertices])
    shapely.prepare(poly)
    bounds = poly.bounds
    ftree = cKDTree(fac)
    s_obs = within(ftree, inc)
    setup_s = time.perf_counter() - t
    rng = np.random.default_rng(SEED)
    sim_s = []
    t = time.perf_counter()
    for _ in range(sims):
        sim_s.append(within(ftree, csr_in_hull(rng, poly, bounds, len(inc))))
    loop_s = time.perf_counter() - t
    sim_s = np.array(sim_s)
    m = int(np.count_nonzero(sim_s >= s_obs))
    res["global"] = {"within_radius": s_obs, "share_within": s_obs / len(inc),
                     "sim_mean_share": float(sim_s.mean()) / len(inc),
                     "sim_sd_share": float(sim_s.std(ddof=1)) / len(inc) if sims > 1 else None,
                     "p_mc": (m + 1) / (sims + 1), "simulations": sims,
                     "hull_area_km2": poly.area / 1e6, "setup_ms": setup_s * 1e3}
    res["sims_measured_ms"] = loop_s * 1e3
    res["sim_per_ms"] = loop_s / sims * 1e3
    res["sims_999_extrapolated_ms"] = setup_s * 1e3 + loop_s / sims * 999 * 1e3
    pp = 1 if big else 3
    t = time.perf_counter()
    for k in range(pp):
        sim = pointpats.random.poisson(poly, size=len(inc), rng=SEED + k)
        within(ftree, sim)
    pp_s = (time.perf_counter() - t) / pp
    res["pointpats_sims"] = pp
    res["pointpats_per_sim_ms"] = pp_s * 1e3
    res["pointpats_999_extrapolated_ms"] = setup_s * 1e3 + pp_s * 999 * 1e3

    ag = agreement(size_dir, inc, list(facdf["id"]), fac, near_d, rings_csv)
    if isinstance(ag, tuple):
        ag, meta = ag
        res["service_window_area_km2"] = meta.get("window_area_km2")
    res["agree"] = ag
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
