"""Peer of the `emerging` benchmark (issue 8): Emerging Hot Spot Analysis in numpy.

There is no standard Python implementation of ArcGIS Pro's Emerging Hot Spot Analysis, so
this script writes the same computation as the service (src/analysis/emerging.rs and its
submodules; ../shared/anchors-statistics.md) with numpy / scipy / h3, on the same data
(`peer_incidents.csv`, the rows the service ingested) and the same parameters as the
benchmarked request `GET /datasets/bench/emerging?resolution=9&bin=month&k=1&time_k=1`
(uniform kernels, FDR on, min_bins 10):

1. read: `t`, `lon`, `lat` of every incident (pandas C reader);
2. h3: the H3 cell at resolution 12 per point (`h3.latlng_to_cell`, as the service's ingest
   does), then its resolution-9 parent (`h3.cell_to_parent`, once per distinct fine cell), as
   the service's cube does (the res-9 parent of the res-12 cell is not always the res-9 cell
   of the point; the JSON reports the share of points where they differ on a sample);
3. cube: month bins (UTC) from the first to the last incident (window `[min t, max t + 1)`);
   the cell set is every cell within k = 1 rings of an occupied cell (`h3.grid_disk`),
   sorted by H3 index; counts of (cell, month), zero counts included;
4. weights: binary spatial weights, each cell's k-ring disk (self included) restricted to
   the cell set, as a scipy.sparse CSR matrix;
5. gi: space-time Gi* per (cell, month): neighbours = the spatial neighbours in the month
   itself and the time_k = 1 previous month, binary weights, global window = the entire
   cube (X-bar and S over all cells x months); two-sided normal p (scipy.stats.norm.sf);
   bins -3..3 with Benjamini-Hochberg FDR at 0.10 / 0.05 / 0.01 over the whole cube (Esri
   `fdrTransform`);
6. mk: Mann-Kendall (S, Var(S) with the tie correction, Z with continuity correction,
   two-sided p) and Sen's slope of every cell's Gi* z series and of its count series,
   VECTORISED in numpy over all cells at once (what `pymannkendall.original_test` computes;
   this script checks that on every cell, see `mk_pymannkendall_*`);
7. classify: the 17 categories with the service's rules (classify.rs: final-step rule,
   90 % rule over all bins, |bin| >= 2 significant, trend p < 0.05), vectorised.

Timed with time.perf_counter inside the script (imports and interpreter start excluded);
the total is the sum of stages 1-7. Separately timed, not in the total:
`mk_pymannkendall_s`, `pymannkendall.original_test` looped over every cell's z series (the
per-cell library route), and used to check the vectorised MK.

Agreement: when the service's per-cell results were dumped by the Rust side
(`<dir>/emerging_service_cells.csv`), they are compared cell by cell (cell set, counts,
Gi* z and bins of every (cell, month), trend z / p, count-trend z, category).

Packages: numpy, scipy, pandas, h3 (4.x), pymannkendall; versions are printed in the JSON.
Usage: python3 emerging.py DIR  (reads DIR/peer_incidents.csv; prints one JSON line last).
"""

import csv
import json
import os
import resource
import sys
import time

import h3
import numpy as np
import pandas as pd
import pymannkendall
import scipy
import scipy.sparse as sp
from h3.api import basic_int as h3i
from scipy.stats import norm

RES, FINE_RES, K, TIME_K = 9, 12, 1, 1
MIN_BINS = 10

CATEGORIES = [
    "new", "consecutive", "intensifying", "persistent", "diminishing", "sporadic",
    "oscillating", "historical",
]


def two_sided_p(z):
    return np.minimum(2.0 * norm.sf(np.abs(z)), 1.0)


def bh_cutoff(p, alpha):
    s = np.sort(p.ravel())
    ok = np.nonzero(s <= np.arange(1, s.size + 1) * alpha / s.size)[0]
    return s[ok[-1]] if ok.size else None


def fdr_bins(z, p):
    """Esri fdrTransform / the service's stats::fdr_bins: BH at 10, 5, 1 %."""
    level = np.zeros(p.shape, dtype=np.int8)
    for alpha, lv in ((0.10, 1), (0.05, 2), (0.01, 3)):
        c = bh_cutoff(p, alpha)
        if c is not None:
            level[p <= c] = lv
    return (np.sign(z).astype(np.int8) * level).astype(np.int8)


def mann_kendall_rows(x):
    """Mann-Kendall + Sen's slope of each row of x (cells x bins), as pymannkendall."""
    m, n = x.shape
    i, j = np.triu_indices(n, 1)
    diff = x[:, j] - x[:, i]
    s = np.sign(diff).sum(axis=1)
    # tie groups per row: sum of t(t-1)(2t+5) over runs of equal sorted values
    srt = np.sort(x, axis=1)
    new_group = np.ones((m, n), dtype=bool)
    new_group[:, 1:] = srt[:, 1:] != srt[:, :-1]
    gid = np.cumsum(new_group, axis=1) - 1 + (np.arange(m) * n)[:, None]
    t = np.bincount(gid.ravel(), minlength=m * n).astype(np.float64).reshape(m, n)
    ties = (t * (t - 1) * (2 * t + 5)).sum(axis=1)
    var_s = (n * (n - 1) * (2 * n + 5) - ties) / 18.0
    sd = np.sqrt(np.where(var_s > 0, var_s, 1.0))
    z = np.where(s > 0, (s - 1) / sd, np.where(s < 0, (s + 1) / sd, 0.0))
    z = np.where(var_s > 0, z, 0.0)
    p = two_sided_p(z)
    slope = np.median(diff / (j - i), axis=1)
    intercept = np.median(x, axis=1) - (n - 1) / 2.0 * slope
    return {"s": s, "var_s": var_s, "z": z, "p": p, "slope": slope, "intercept": intercept}


def classify_rows(bins, trend_z, trend_p):
    """The service's classify.rs, vectorised: returns one label per row."""
    m, n = bins.shape
    hot, cold = bins >= 2, bins <= -2
    last = bins[:, -1]
    sign = np.where(trend_p < 0.05, np.sign(trend_z), 0.0)

    def trailing(sig):
        # length of the run of True ending at the final bin
        rev_false = ~sig[:, ::-1]
        first_false = np.argmax(rev_false, axis=1)
        return np.where(rev_false.any(axis=1), first_false, n)

    def pattern(same, other, tsign):
        total = same.sum(axis=1)
        ninety = 10 * total >= 9 * n
        run = trailing(same)
        out = np.full(m, "sporadic", dtype=object)
        out[other.any(axis=1)] = "oscillating"
        out[run == total] = "consecutive"
        out[total == 1] = "new"
        out[ninety & (tsign == 0)] = "persistent"
        out[ninety & (tsign > 0)] = "intensifying"
        out[ninety & (tsign < 0)] = "diminishing"
        return out, ninety

    hot_pat, hot90 = pattern(hot, cold, sign)
    cold_pat, cold90 = pattern(cold, hot, -sign)
    label = np.full(m, "no_pattern", dtype=object)
    label[cold90 & ~hot90] = "historical_cold_spot"
    label[hot90] = "historical_hot_spot"
    is_hot, is_cold = last >= 2, last <= -2
    label[is_hot] = [p + "_hot_spot" for p in hot_pat[is_hot]]
    label[is_cold] = [p + "_cold_spot" for p in cold_pat[is_cold]]
    return label


def main():
    d = sys.argv[1]
    stages = {}
    t_all = time.perf_counter()

    t0 = time.perf_counter()
    df = pd.read_csv(os.path.join(d, "peer_incidents.csv"), usecols=["t", "lon", "lat"],
                     dtype={"t": np.int64, "lon": np.float64, "lat": np.float64})
    t_sec = df["t"].to_numpy()
    lon, lat = df["lon"].to_numpy(), df["lat"].to_numpy()
    stages["read_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    fine = np.fromiter((h3i.latlng_to_cell(a, b, FINE_RES)
                        for a, b in zip(lat.tolist(), lon.tolist())),
                       dtype=np.uint64, count=lat.size)
    ufine, inv = np.unique(fine, return_inverse=True)
    upar = np.fromiter((h3i.cell_to_parent(int(c), RES) for c in ufine), dtype=np.uint64,
                       count=ufine.size)
    cell_of = upar[inv]
    stages["h3_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    start, end = int(t_sec.min()), int(t_sec.max()) + 1
    months = t_sec.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
    first_bin = int(np.datetime64(start, "s").astype("datetime64[M]").astype(np.int64))
    last_bin = int(np.datetime64(end - 1, "s").astype("datetime64[M]").astype(np.int64))
    n_bins = last_bin - first_bin + 1
    assert n_bins >= MIN_BINS
    occupied = np.unique(cell_of)
    disk = {int(c): h3i.grid_disk(int(c), K) for c in occupied}
    cells = np.unique(np.fromiter((x for ds in disk.values() for x in ds), dtype=np.uint64))
    ci = np.searchsorted(cells, cell_of)
    counts = np.bincount(ci * n_bins + (months - first_bin),
                         minlength=cells.size * n_bins).reshape(cells.size, n_bins)
    stages["cube_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    disks = [h3i.grid_disk(c, K) for c in cells.tolist()]
    nb = np.fromiter((x for ds in disks for x in ds), dtype=np.uint64)
    rows = np.repeat(np.arange(cells.size), [len(ds) for ds in disks])
    pos = np.minimum(np.searchsorted(cells, nb), cells.size - 1)
    keep = cells[pos] == nb  # neighbours inside the cell set only
    rows, cols = rows[keep], pos[keep]
    w = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(cells.size, cells.size))
    stages["weights_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    x = counts.astype(np.float64)
    n_obs = x.size
    mean = x.mean()
    s_dev = np.sqrt(((x - mean) ** 2).mean())
    lag = w @ x
    ws = np.asarray(w.sum(axis=1)).ravel()
    ws2 = np.asarray(w.multiply(w).sum(axis=1)).ravel()
    wx = lag.copy()
    for dt in range(1, TIME_K + 1):
        wx[:, dt:] += lag[:, :-dt]
    wt = np.minimum(np.arange(n_bins), TIME_K) + 1.0
    w_sum = ws[:, None] * wt[None, :]
    w2_sum = ws2[:, None] * wt[None, :]
    denom_sq = (n_obs * w2_sum - w_sum ** 2) / (n_obs - 1.0)
    ok = denom_sq > 1e-12
    gi_z = np.where(ok, (wx - mean * w_sum) / (s_dev * np.sqrt(np.where(ok, denom_sq, 1.0))),
                    0.0)
    gi_p = two_sided_p(gi_z)
    gi_bins = fdr_bins(gi_z, gi_p)
    stages["gi_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    mk_z = mann_kendall_rows(gi_z)
    mk_c = mann_kendall_rows(x)
    stages["mk_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    labels = classify_rows(gi_bins, mk_z["z"], mk_z["p"])
    stages["classify_s"] = time.perf_counter() - t0
    total = time.perf_counter() - t_all
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    # --- not in the total: pymannkendall per cell, and checks ---
    t0 = time.perf_counter()
    pmk = [pymannkendall.original_test(row) for row in gi_z]
    mk_pmk_s = time.perf_counter() - t0
    pmk_z = np.array([r.z for r in pmk])
    pmk_p = np.array([r.p for r in pmk])
    pmk_s = np.array([r.s for r in pmk])
    pmk_slope = np.array([r.slope for r in pmk])

    # the res-9 cell of the point vs the res-9 parent of its res-12 cell, on a sample
    sample = min(20000, lat.size)
    direct = np.fromiter((h3i.latlng_to_cell(a, b, RES)
                          for a, b in zip(lat[:sample].tolist(), lon[:sample].tolist())),
                         dtype=np.uint64, count=sample)
    mismatch = float((direct != cell_of[:sample]).mean())

    agreement = compare_with_service(d, cells, counts, gi_z, gi_bins, mk_z, mk_c, labels)
    cat_counts = {k: int(v) for k, v in zip(*np.unique(labels.astype(str), return_counts=True))}
    out = {
        "measured": True,
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__,
                     "scipy": scipy.__version__, "pandas": pd.__version__,
                     "h3": h3.__version__, "pymannkendall": pymannkendall.__version__},
        "n_incidents": int(t_sec.size), "n_cells": int(cells.size), "n_bins": int(n_bins),
        "n_occupied": int(occupied.size),
        "stages": stages, "total_s": total, "peak_rss_mb": peak_mb,
        "mk_pymannkendall_s": mk_pmk_s,
        "total_with_pymannkendall_s": total - stages["mk_s"] + mk_pmk_s,
        "mk_vectorised_vs_pymannkendall": {
            "s_equal": int((pmk_s == mk_z["s"]).sum()),
            "max_abs_z_diff": float(np.abs(pmk_z - mk_z["z"]).max()),
            "max_abs_p_diff": float(np.abs(pmk_p - mk_z["p"]).max()),
            "max_abs_slope_diff": float(np.abs(pmk_slope - mk_z["slope"]).max()),
            "cells": int(cells.size)},
        "direct_res9_differs_from_parent_share": mismatch,
        "categories": cat_counts,
        "agreement": agreement,
    }
    print(json.dumps(out))


def compare_with_service(d, cells, counts, gi_z, gi_bins, mk_z, mk_c, labels):
    """Compares with the service's cells dumped by the Rust child, if present."""
    path = os.path.join(d, "emerging_service_cells.csv")
    if not os.path.exists(path):
        return None
    index = {int(c): i for i, c in enumerate(cells.tolist())}
    matched, missing = [], 0
    svc = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            i = index.get(int(row["h3"], 16))
            if i is None:
                missing += 1
                continue
            matched.append(i)
            svc.append(row)
    if not matched:
        return {"service_cells": len(svc) + missing, "matched": 0}
    idx = np.array(matched)
    f = lambda k: np.array([float(r[k]) for r in svc])
    series = lambda k, cast: np.array([[cast(v) for v in r[k].split(";")] for r in svc])
    sz, sb, sc = series("z", float), series("bins", int), series("counts", int)
    tz, tp, cz = f("trend_z"), f("trend_p"), f("count_trend_z")
    cat = np.array([r["category"] for r in svc])
    agree = labels[idx].astype(str) == cat
    confusion = {}
    for a, b in zip(cat[~agree], labels[idx][~agree]):
        key = f"{a} vs {b}"
        confusion[key] = confusion.get(key, 0) + 1
    return {
        "service_cells": len(svc) + missing, "peer_cells": int(cells.size),
        "matched": int(idx.size), "service_only": missing,
        "counts_equal_cells": int((sc == counts[idx]).all(axis=1).sum()),
        "gi_z_max_abs_diff": float(np.abs(sz - gi_z[idx]).max()),
        "gi_bins_equal_share": float((sb == gi_bins[idx]).mean()),
        "trend_z_max_abs_diff": float(np.abs(tz - mk_z["z"][idx]).max()),
        "trend_p_max_abs_diff": float(np.abs(tp - mk_z["p"][idx]).max()),
        "count_trend_z_max_abs_diff": float(np.abs(cz - mk_c["z"][idx]).max()),
        "category_matches": int(agree.sum()),
        "category_mismatches": confusion,
    }


if __name__ == "__main__":
    main()
