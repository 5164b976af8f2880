"""Peer of the clusters/density benchmark (issue 5): the same clustering and kernel density jobs
as the service, on the same incidents, with the Python tools the issue names.

Usage: python3 clusters.py DIR N   (DIR = target/bench-analysis/nN, after the Rust child ran)

Data: DIR/peer_incidents.csv, columns x, y (RD New metres, the service's metric CRS) in file
order, which is the service's row (fid) order. The service's own coordinates (from lon/lat
through PROJ, within ~1 cm of the CSV's) and answers are read from DIR/clusters_bench/, written
by benches/analysis/clusters.rs: xy.f64, dbscan_labels.i32, dbscan_core.u8,
hdbscan_labels.i32 and kde.json (grid, sampled nodes, the service's fast and exact values).

Jobs, each in its own subprocess (`clusters.py --job NAME DIR N`) so that its peak memory is
its own: the coordinates are loaded from a .npy copy, then the high-water mark is reset
(/proc/self/clear_refs, 5) and the job's peak is ru_maxrss (RUSAGE_SELF) minus ru_maxrss just
before the call. Times are time.perf_counter around the call only (no imports, no loading).
- dbscan_pkg: `dbscan.DBSCAN(X, eps=100, min_samples=20)` (Wang, Gu & Shun 2020, exact parallel
  grid DBSCAN in C++, 2 threads here) = the service's DBSCAN(eps_m=100, min_points=20); the
  point itself counts in both. Run on the CSV x,y (timed) and again on the service's x,y
  (for the agreement check on identical input).
- dbscan_pkg_scaled (above 100k only): the same with min_samples = 20 n / 100k (200 at 1M), on
  the service's x,y, as the bench's second DBSCAN run (at 1M min 20 makes every point core).
- sklearn_dbscan: `sklearn.cluster.DBSCAN(eps=100, min_samples=20)`, in a subprocess with
  RLIMIT_AS = 12 GB and a time limit; labels must equal the service's exactly (same order). Up
  to 200k points it runs again on the service's x,y (identical input: 0 labels may differ).
- hdbscan_pkg: `hdbscan.HDBSCAN(min_cluster_size=20)` (min_samples = 20, package defaults:
  boruvka_kdtree, approx_min_span_tree=True, core_dist_n_jobs=4 loky workers whose own peak
  is reported apart) = the service's method=hdbscan&min_cluster_size=20; agreement by the
  adjusted Rand index (noise as one label). Up to 200k points it runs again with
  approx_min_span_tree=False on the service's x,y: the service's semantics (exact MST) on
  identical input, the setting of the reference tests (ARI >= 0.99).
- kde_exact_numpy: the exact Gaussian sum `sum exp(-d^2/2s^2)/(2 pi s^2) * 1e6` (per km2) at the
  sampled nodes of the service's grid (its 100 highest cells + 200 random ones); the full-grid
  time is extrapolated from the time per node (labelled as such).
- kde_fft_simple / kde_fft_linear: binned KDE on the service's grid (origin, cell, shape and
  sigma from its answer): points binned to cell centres (simple) or bilinearly (linear), then
  `scipy.signal.fftconvolve` with the Gaussian sampled at cell offsets (truncated at 5 sigma
  as the service's fast mode); error at the nodes relative to the exact peak.
Prints one JSON line: versions, per-job seconds and peak memory, and the agreement checks.
"""

import json
import os
import resource
import subprocess
import sys
import time

EPS = 100.0
MIN_SAMPLES = 20
MIN_CLUSTER_SIZE = 20
SKLEARN_AS_LIMIT = 12 << 30
SKLEARN_TIMEOUT_S = 600
TRUNC_SIGMAS = 5.0
# sklearn and hdbscan (exact MST) are run a second time on the service's coordinates up to this
# size, for label identity / ARI on identical input
SECOND_RUN_MAX_N = 200_000


def scaled_min_points(n):
    """As the bench: min_samples keeping the density threshold of 20 at 100k (200 at 1M)."""
    return max(MIN_SAMPLES * n // 100_000, MIN_SAMPLES)


def maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def bench_dir(d):
    return os.path.join(d, "clusters_bench")


def load_xy(d, which):
    import numpy as np

    if which == "service":
        raw = np.fromfile(os.path.join(bench_dir(d), "xy.f64"), dtype="<f8")
        return raw.reshape(-1, 2)
    return np.load(os.path.join(bench_dir(d), "peer_xy.npy"))


def prepare(d):
    """peer_incidents.csv -> peer_xy.npy (x, y float64, file order), once per run."""
    import numpy as np
    import pandas as pd

    t = time.perf_counter()
    df = pd.read_csv(os.path.join(d, "peer_incidents.csv"), usecols=["x", "y"])
    xy = np.ascontiguousarray(df[["x", "y"]].to_numpy(dtype=np.float64))
    np.save(os.path.join(bench_dir(d), "peer_xy.npy"), xy)
    return time.perf_counter() - t


def measured(fn):
    """(seconds, peak growth MB, value) of one call."""
    import gc

    gc.collect()
    reset_peak()
    base = maxrss_mb()
    t = time.perf_counter()
    v = fn()
    s = time.perf_counter() - t
    return s, maxrss_mb() - base, v


def job(name, d, n):
    import numpy as np

    out = {}
    if name == "dbscan_pkg":
        import dbscan

        X = load_xy(d, "csv")
        s, mem, (labels, core) = measured(lambda: dbscan.DBSCAN(X, eps=EPS, min_samples=MIN_SAMPLES))
        secs = [s]
        for _ in range(2):
            t = time.perf_counter()
            dbscan.DBSCAN(X, eps=EPS, min_samples=MIN_SAMPLES)
            secs.append(time.perf_counter() - t)
        np.save(os.path.join(bench_dir(d), "peer_dbscan_labels.npy"), labels.astype(np.int32))
        np.save(os.path.join(bench_dir(d), "peer_dbscan_core.npy"), core.astype(bool))
        Xs = load_xy(d, "service")
        ls, cs = dbscan.DBSCAN(np.ascontiguousarray(Xs), eps=EPS, min_samples=MIN_SAMPLES)
        np.save(os.path.join(bench_dir(d), "peer_dbscan_labels_svcxy.npy"), ls.astype(np.int32))
        np.save(os.path.join(bench_dir(d), "peer_dbscan_core_svcxy.npy"), cs.astype(bool))
        out = {"secs": float(np.median(secs)), "all_secs": secs, "peak_growth_mb": mem}
    elif name == "dbscan_pkg_scaled":
        import dbscan

        m = scaled_min_points(n)
        X = load_xy(d, "service")
        s, mem, (labels, core) = measured(lambda: dbscan.DBSCAN(X, eps=EPS, min_samples=m))
        secs = [s]
        for _ in range(2):
            t = time.perf_counter()
            dbscan.DBSCAN(X, eps=EPS, min_samples=m)
            secs.append(time.perf_counter() - t)
        np.save(os.path.join(bench_dir(d), "peer_dbscan_scaled_labels.npy"), labels.astype(np.int32))
        np.save(os.path.join(bench_dir(d), "peer_dbscan_scaled_core.npy"), core.astype(bool))
        out = {"secs": float(np.median(secs)), "all_secs": secs, "peak_growth_mb": mem,
               "min_samples": m}
    elif name == "sklearn_dbscan":
        resource.setrlimit(resource.RLIMIT_AS, (SKLEARN_AS_LIMIT, SKLEARN_AS_LIMIT))
        from sklearn.cluster import DBSCAN

        X = load_xy(d, "csv")
        try:
            s, mem, m = measured(lambda: DBSCAN(eps=EPS, min_samples=MIN_SAMPLES).fit(X))
        except MemoryError:
            print(json.dumps({"note": "MemoryError under a 12 GB address-space cap"}))
            return
        np.save(os.path.join(bench_dir(d), "peer_sklearn_labels.npy"), m.labels_.astype(np.int32))
        out = {"secs": s, "peak_growth_mb": mem}
        if n <= SECOND_RUN_MAX_N:
            Xs = np.ascontiguousarray(load_xy(d, "service"))
            ls = DBSCAN(eps=EPS, min_samples=MIN_SAMPLES).fit(Xs).labels_
            np.save(os.path.join(bench_dir(d), "peer_sklearn_labels_svcxy.npy"), ls.astype(np.int32))
    elif name == "hdbscan_pkg":
        import hdbscan
        from joblib.externals.loky import get_reusable_executor

        X = load_xy(d, "csv")
        s, mem, m = measured(lambda: hdbscan.HDBSCAN(min_cluster_size=MIN_CLUSTER_SIZE).fit(X))
        np.save(os.path.join(bench_dir(d), "peer_hdbscan_labels.npy"), m.labels_.astype(np.int32))
        get_reusable_executor().shutdown(wait=True)
        workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        out = {"secs": s, "peak_growth_mb": mem, "loky_worker_peak_mb": workers}
        if n <= SECOND_RUN_MAX_N:
            # the service's semantics: exact MST, on the service's own coordinates
            Xs = np.ascontiguousarray(load_xy(d, "service"))
            t = time.perf_counter()
            m = hdbscan.HDBSCAN(min_cluster_size=MIN_CLUSTER_SIZE,
                                approx_min_span_tree=False).fit(Xs)
            out["exact_mst_secs"] = time.perf_counter() - t
            np.save(os.path.join(bench_dir(d), "peer_hdbscan_labels_exact.npy"),
                    m.labels_.astype(np.int32))
    elif name == "kde_exact_numpy":
        X = load_xy(d, "csv")
        kde = json.load(open(os.path.join(bench_dir(d), "kde.json")))
        ox, oy = kde["origin"]
        cell, sig = kde["cell_m"], kde["sigma_m"]
        nodes = np.array(kde["nodes"], dtype=np.float64)
        ux = ox + (nodes[:, 0] + 0.5) * cell
        uy = oy + (nodes[:, 1] + 0.5) * cell
        x, y = X[:, 0].copy(), X[:, 1].copy()
        norm = 1e6 / (2 * np.pi * sig * sig)

        def run():
            vals = np.empty(len(ux))
            for k in range(len(ux)):
                d2 = (x - ux[k]) ** 2 + (y - uy[k]) ** 2
                vals[k] = np.exp(d2 * (-0.5 / (sig * sig))).sum() * norm
            return vals

        s, mem, vals = measured(run)
        np.save(os.path.join(bench_dir(d), "peer_kde_exact.npy"), vals)
        cells = kde["ncols"] * kde["nrows"]
        out = {"secs": s, "peak_growth_mb": mem, "nodes": len(ux),
               "full_grid_s_extrapolated": s / len(ux) * cells, "cells": cells}
    elif name in ("kde_fft_simple", "kde_fft_linear"):
        from scipy.signal import fftconvolve

        X = load_xy(d, "csv")
        kde = json.load(open(os.path.join(bench_dir(d), "kde.json")))
        ox, oy = kde["origin"]
        cell, sig = kde["cell_m"], kde["sigma_m"]
        nc, nr = kde["ncols"], kde["nrows"]
        linear = name.endswith("linear")

        def run():
            # position in cell-centre units: cell c has its centre at u = c
            u = (X[:, 0] - ox) / cell - 0.5
            v = (X[:, 1] - oy) / cell - 0.5
            if linear:
                c0, r0 = np.floor(u), np.floor(v)
                fu, fv = u - c0, v - r0
                c0, r0 = c0.astype(np.int64), r0.astype(np.int64)
                grid = np.zeros(nr * nc)
                for dc, dr, w in ((0, 0, (1 - fu) * (1 - fv)), (1, 0, fu * (1 - fv)),
                                  (0, 1, (1 - fu) * fv), (1, 1, fu * fv)):
                    c, r = c0 + dc, r0 + dr
                    ok = (c >= 0) & (c < nc) & (r >= 0) & (r < nr)
                    grid += np.bincount(r[ok] * nc + c[ok], weights=w[ok], minlength=nr * nc)
            else:
                c = np.rint(u).astype(np.int64)
                r = np.rint(v).astype(np.int64)
                ok = (c >= 0) & (c < nc) & (r >= 0) & (r < nr)
                grid = np.bincount(r[ok] * nc + c[ok], minlength=nr * nc).astype(np.float64)
            grid = grid.reshape(nr, nc)
            m = int(np.ceil(TRUNC_SIGMAS * sig / cell))
            off = np.arange(-m, m + 1) * cell
            g1 = np.exp(-0.5 * (off / sig) ** 2)
            kern = np.outer(g1, g1) * (1e6 / (2 * np.pi * sig * sig))
            return fftconvolve(grid, kern, mode="same")

        s, mem, dens = measured(run)
        secs = [s]
        for _ in range(2):
            t = time.perf_counter()
            run()
            secs.append(time.perf_counter() - t)
        nodes = np.array(kde["nodes"], dtype=np.int64)
        np.save(os.path.join(bench_dir(d), f"peer_{name}.npy"), dens[nodes[:, 1], nodes[:, 0]])
        out = {"secs": float(np.median(secs)), "all_secs": secs, "peak_growth_mb": mem}
    print(json.dumps(out))


def run_job(name, d, n, timeout=None):
    cmd = [sys.executable, os.path.abspath(__file__), "--job", name, d, str(n)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"note": f"not finished in {timeout} s (killed)"}
    sys.stderr.write(p.stderr[-2000:])
    if p.returncode != 0:
        why = "killed (out of memory?)" if p.returncode < 0 else f"exit {p.returncode}"
        if "MemoryError" in p.stderr:
            why = "MemoryError under a 12 GB address-space cap"
        return {"note": why}
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    return json.loads(lines[-1]) if lines else {"note": "no output"}


def agreement(d, n):
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    bd = bench_dir(d)
    f = lambda name: os.path.join(bd, name)
    out = {}
    svc_xy = load_xy(d, "service")
    csv_xy = load_xy(d, "csv")
    out["max_coord_diff_m"] = float(np.abs(svc_xy - csv_xy).max())
    sl = np.fromfile(f("dbscan_labels.i32"), dtype="<i4")
    sc = np.fromfile(f("dbscan_core.u8"), dtype=np.uint8).astype(bool)

    def compare_pkg(pl, pc, sl=sl, sc=sc):
        res = {"n_clusters": int(pl.max() + 1), "core_differ": int((pc != sc).sum())}
        both = sc & pc
        pairs = set(zip(sl[both].tolist(), pl[both].tolist()))
        n_svc, n_pkg = int(sl.max() + 1), int(pl.max() + 1)
        ident = len(pairs) == n_svc == n_pkg and len({a for a, _ in pairs}) == n_svc \
            and len({b for _, b in pairs}) == n_pkg
        res["core_partition_identical"] = bool(ident and res["core_differ"] == 0)
        to_svc = {b: a for a, b in pairs}
        mapped = np.array([to_svc.get(v, -2) if v >= 0 else -1 for v in pl.tolist()])
        res["labels_differ_after_matching"] = int((mapped != sl).sum())
        return res

    if os.path.exists(f("peer_dbscan_labels.npy")):
        a = compare_pkg(np.load(f("peer_dbscan_labels.npy")), np.load(f("peer_dbscan_core.npy")))
        b = compare_pkg(np.load(f("peer_dbscan_labels_svcxy.npy")),
                        np.load(f("peer_dbscan_core_svcxy.npy")))
        out["dbscan_pkg"] = a
        out["dbscan_pkg_on_service_xy"] = b
    if os.path.exists(f("peer_dbscan_scaled_labels.npy")) and os.path.exists(f("dbscan_scaled_labels.i32")):
        out["dbscan_pkg_scaled"] = compare_pkg(
            np.load(f("peer_dbscan_scaled_labels.npy")), np.load(f("peer_dbscan_scaled_core.npy")),
            np.fromfile(f("dbscan_scaled_labels.i32"), dtype="<i4"),
            np.fromfile(f("dbscan_scaled_core.u8"), dtype=np.uint8).astype(bool))
    if os.path.exists(f("peer_sklearn_labels.npy")):
        kl = np.load(f("peer_sklearn_labels.npy"))
        out["sklearn"] = {"n_clusters": int(kl.max() + 1), "labels_differ": int((kl != sl).sum())}
        if os.path.exists(f("peer_sklearn_labels_svcxy.npy")):
            ks = np.load(f("peer_sklearn_labels_svcxy.npy"))
            out["sklearn"]["labels_differ_on_service_xy"] = int((ks != sl).sum())
    else:
        out["sklearn"] = {"n_clusters": None, "labels_differ": None}
    if os.path.exists(f("peer_hdbscan_labels.npy")):
        hl = np.load(f("peer_hdbscan_labels.npy"))
        hs = np.fromfile(f("hdbscan_labels.i32"), dtype="<i4")
        out["hdbscan"] = {"n_clusters": int(hl.max() + 1), "noise": int((hl < 0).sum()),
                          "service_noise": int((hs < 0).sum()),
                          "ari": round(float(adjusted_rand_score(hs, hl)), 5)}
        if os.path.exists(f("peer_hdbscan_labels_exact.npy")):
            he = np.load(f("peer_hdbscan_labels_exact.npy"))
            out["hdbscan"]["exact_mst_on_service_xy"] = {
                "n_clusters": int(he.max() + 1), "noise": int((he < 0).sum()),
                "ari": round(float(adjusted_rand_score(hs, he)), 5)}
    return out


def kde_check(d):
    import numpy as np

    bd = bench_dir(d)
    kde = json.load(open(os.path.join(bd, "kde.json")))
    p = os.path.join(bd, "peer_kde_exact.npy")
    if not os.path.exists(p):
        return {}
    ex = np.load(p)
    peak = float(ex.max())
    rel = lambda v: float(np.abs(np.asarray(v) - ex).max() / peak)
    out = {"nodes": len(ex), "peak_km2_numpy": peak,
           "service_vs_numpy": rel(kde["fast_km2"]),
           "service_exact_vs_numpy": rel(kde["exact_km2"])}
    for name in ("kde_fft_simple", "kde_fft_linear"):
        q = os.path.join(bd, f"peer_{name}.npy")
        if os.path.exists(q):
            out[name.replace("kde_", "") + "_vs_numpy"] = rel(np.load(q))
    return out


def main(d, n):
    import importlib.metadata as md

    versions = {"python": sys.version.split()[0]}
    for pkg in ("numpy", "scipy", "scikit-learn", "hdbscan", "dbscan", "pandas"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    prep_s = prepare(d)
    jobs = {}
    order = ["dbscan_pkg"] + (["dbscan_pkg_scaled"] if scaled_min_points(n) > MIN_SAMPLES else []) + [
             "kde_fft_simple", "kde_fft_linear", "kde_exact_numpy",
             "sklearn_dbscan", "hdbscan_pkg"]
    for name in order:
        if name.startswith("dbscan_pkg") and versions["dbscan"] is None:
            jobs[name] = {"note": "dbscan package not installed (pip install dbscan)"}
            continue
        sys.stderr.write(f"peer clusters n={n}: {name}\n")
        timeout = SKLEARN_TIMEOUT_S if name == "sklearn_dbscan" else None
        jobs[name] = run_job(name, d, n, timeout)
    res = {"versions": versions, "prepare_s": prep_s, "jobs": jobs,
           "agreement": agreement(d, n), "kde_check": kde_check(d)}
    print(json.dumps(res))


if __name__ == "__main__":
    if sys.argv[1] == "--job":
        job(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main(sys.argv[1], int(sys.argv[2]))
