"""Python peer of the hot-spot benchmark (issue 3; benches/analysis/hotspots.rs).

Does what `GET /datasets/bench/hotspots?resolution=R&k=1[&permutations=999&seed=S]
[&datetime=...]` does, on the same incidents (`peer_incidents.csv`, the rows the service
ingested), the way a PySAL user would, and times each stage with time.perf_counter:

  filter     pandas boolean mask on `t` (epoch s) for the one-year case, else nothing;
  h3_res12   h3 4.x `latlng_to_cell(lat, lng, 12)` for every incident (list comprehension
             over the integer API `h3.api.basic_int`; h3-py 4 has no vectorised
             latlng_to_cell and h3ronpy is not installed);
  h3_parent  `cell_to_parent(c, R)` into a NumPy uint64 array (np.fromiter; a list of
             Python ints would make the groupby 0.3 s slower): the service stores each incident's res-12 cell at
             ingest and aggregates to its H3 parent. Calling latlng_to_cell at R directly
             puts ~6 % of the incidents in a neighbouring cell (H3 children are not nested
             exactly), so only this two-step form gives the same counts; the direct call is
             timed too (`direct_latlng_to_cell_s`, not in the total);
  groupby    `pd.Series(cells).value_counts()` (counts per cell, hash-based);
  cell_set   the service's rule (summary.cell_set_rule): all cells within k=1 rings of a
             non-empty cell (h3 `grid_disk`), zero counts included, sorted by index as the
             service; neighbour dict {i: cells of grid_disk(c, 1) in the set, self excluded};
  weights    libpysal `W(neighbours)` (binary contiguity) and the count vector y;
  esda       `esda.G_Local(y, w, transform='B', star=True, permutations=P, seed=S, n_jobs=1)`
             (Gi*, binary weights, self included: the service's `gi_z` is esda's `Zs`),
             `gi_p = 2 * p_norm` and the ArcGIS bins (-3..3 at 90/95/99 %) by NumPy.
             n_jobs=1: without numba, esda's parallel path (joblib) was 2.5x slower here;
  p_two_sided (P > 0 only) esda `calculate_significance(Gs, rGs, 'two-sided')`: the service's
             `gi_p_sim` is esda's percentile-based two-sided pseudo p (its default
             alternative); `G_Local.p_sim` is the folded one;
  geojson    a FeatureCollection of the cells: polygon from h3 `cell_to_boundary` (lng/lat
             rounded to 7 decimals, ring closed, as the service), properties h3, count, gi_z,
             gi_p, gi_bin, n_neighbors, [gi_p_sim], count_suppressed; `json.dumps` to bytes.

Not timed: interpreter start, imports, the CSV read (pandas, `usecols=t,lon,lat`), a warm-up
G_Local on 40 cells (numba JIT compilation when numba is installed), and the checks.
The service also computes a global Moran's I for its summary; the peer does not.

Checks against the service (its cells written by the Rust child to
`<dir>/hotspots_service_<case>.csv`): the same cell set, equal counts, max |gi_z - Zs| and
max |gi_p - 2 p_norm| over all cells, and for permutations the agreement of
`gi_p_sim < 0.05` with esda's two-sided pseudo p (different random draws: only agreement in
distribution is expected).

Usage: python3 hotspots.py DIR N SEED  -> last stdout line: JSON with versions, per-case
stage seconds, totals, checks and peak RSS (ru_maxrss).
"""

import json
import os
import resource
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import esda  # noqa: E402
import h3  # noqa: E402
import h3.api.basic_int as h3i  # noqa: E402
import libpysal  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy  # noqa: E402
from esda.significance import calculate_significance  # noqa: E402

try:
    import numba

    NUMBA = numba.__version__
except ImportError:
    NUMBA = None

T = time.perf_counter
# the one-year filter of the `year` case: 2025-01-01T00:00:00Z .. 2025-12-31T23:59:59Z
YEAR = (1_735_689_600, 1_767_225_599)
# name, resolution, permutations, one-year filter (as CASES in hotspots.rs)
CASES = [
    ("r9_p0", 9, 0, False),
    ("r10_p0", 10, 0, False),
    ("r9_p999", 9, 999, False),
    ("r10_p999", 10, 999, False),
    ("r9_p0_year", 9, 0, True),
]


def bins(z, p):
    level = np.where(p < 0.01, 3, np.where(p < 0.05, 2, np.where(p < 0.10, 1, 0)))
    return (np.sign(z) * level).astype(int)


def run_case(df, res, perms, year, seed):
    st = {}
    t = T()
    sub = df[(df["t"] >= YEAR[0]) & (df["t"] <= YEAR[1])] if year else df
    st["filter"] = T() - t

    t = T()
    lat = sub["lat"].tolist()
    lng = sub["lon"].tolist()
    fine = [h3i.latlng_to_cell(a, b, 12) for a, b in zip(lat, lng)]
    st["h3_res12"] = T() - t

    t = T()
    cells_of = np.fromiter(
        (h3i.cell_to_parent(c, res) for c in fine), dtype=np.uint64, count=len(fine)
    )
    st["h3_parent"] = T() - t

    t = T()
    counts = pd.Series(cells_of).value_counts()
    st["groupby"] = T() - t

    t = T()
    hull = set()
    for c in counts.index.tolist():
        hull.update(h3i.grid_disk(c, 1))
    cells = sorted(hull)
    pos = {c: i for i, c in enumerate(cells)}
    nbs = {
        i: [pos[nb] for nb in h3i.grid_disk(c, 1) if nb != c and nb in pos]
        for i, c in enumerate(cells)
    }
    st["cell_set"] = T() - t

    t = T()
    w = libpysal.weights.W(nbs, silence_warnings=True)
    y = counts.reindex(np.array(cells, dtype=np.uint64), fill_value=0).to_numpy(dtype=float)
    st["weights"] = T() - t

    t = T()
    g = esda.G_Local(
        y, w, transform="B", star=True, permutations=perms, seed=seed, n_jobs=1
    )
    gi_p = 2.0 * g.p_norm
    gi_bin = bins(g.Zs, gi_p)
    st["esda"] = T() - t

    p_sim = None
    if perms:
        t = T()
        p_sim = np.asarray(
            calculate_significance(g.Gs, g.rGs, alternative="two-sided")
        ).ravel()
        st["p_two_sided"] = T() - t

    t = T()
    features = []
    zs = g.Zs.tolist()
    ps = gi_p.tolist()
    bs = gi_bin.tolist()
    ys = y.astype(int).tolist()
    sims = p_sim.tolist() if p_sim is not None else None
    for i, c in enumerate(cells):
        ring = [[round(b, 7), round(a, 7)] for a, b in h3i.cell_to_boundary(c)]
        ring.append(ring[0])
        hx = h3i.int_to_str(c)
        props = {
            "h3": hx,
            "count": ys[i],
            "gi_z": zs[i],
            "gi_p": ps[i],
            "gi_bin": bs[i],
            "n_neighbors": len(nbs[i]),
        }
        if sims is not None:
            props["gi_p_sim"] = sims[i]
        props["count_suppressed"] = False
        features.append(
            {
                "type": "Feature",
                "id": hx,
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": props,
            }
        )
    body = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    st["geojson"] = T() - t

    out = {
        "stages_s": st,
        "total_s": sum(st.values()),
        "total_without_p_two_sided_s": sum(
            v for k, v in st.items() if k != "p_two_sided"
        ),
        "n_incidents": len(sub),
        "n_cells": len(cells),
        "n_nonempty_cells": int((y > 0).sum()),
        "body_bytes": len(body),
    }
    return out, cells, ys, zs, ps, sims


def check(path, cells, ys, zs, ps, sims):
    """Compares with the service's cells; None when the service file is missing."""
    if not os.path.exists(path):
        return {"service_file": False}
    svc = pd.read_csv(path, dtype={"h3": str})
    mine = {h3i.int_to_str(c): i for i, c in enumerate(cells)}
    common = [(h, r) for h, r in zip(svc["h3"], range(len(svc))) if h in mine]
    idx = np.array([mine[h] for h, _ in common])
    rows = np.array([r for _, r in common])
    z = np.asarray(zs)[idx]
    out = {
        "service_file": True,
        "same_cells": len(common) == len(svc) == len(cells),
        "cells_compared": len(common),
        "service_cells": len(svc),
        "count_mismatches": int(
            (svc["count"].to_numpy()[rows] != np.asarray(ys)[idx]).sum()
        ),
        "gi_z_max_abs_diff": float(
            np.max(np.abs(svc["gi_z"].to_numpy()[rows] - z)) if len(idx) else np.nan
        ),
        "gi_p_max_abs_diff": float(
            np.max(np.abs(svc["gi_p"].to_numpy()[rows] - np.asarray(ps)[idx]))
            if len(idx)
            else np.nan
        ),
    }
    if sims is not None and "gi_p_sim" in svc and svc["gi_p_sim"].notna().all():
        a = svc["gi_p_sim"].to_numpy()[rows] < 0.05
        b = np.asarray(sims)[idx] < 0.05
        out["p_sim_sig_service"] = int(a.sum())
        out["p_sim_sig_esda"] = int(b.sum())
        out["p_sim_agree_frac"] = float((a == b).mean())
        out["p_sim_agreement"] = (
            f"{(a == b).mean() * 100:.1f} % of cells "
            f"(sig. {int(a.sum())} service / {int(b.sum())} esda)"
        )
        out["p_sim_mean_abs_diff"] = float(
            np.mean(np.abs(svc["gi_p_sim"].to_numpy()[rows] - np.asarray(sims)[idx]))
        )
    return out


def main():
    d, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    t = T()
    df = pd.read_csv(os.path.join(d, "peer_incidents.csv"), usecols=["t", "lon", "lat"])
    load_s = T() - t
    # warm-up (numba JIT when installed): 40 cells of a small ring, untimed
    t = T()
    c0 = h3i.latlng_to_cell(52.4, 4.8, 9)
    ring = sorted(h3i.grid_disk(c0, 3))
    p0 = {c: i for i, c in enumerate(ring)}
    w0 = libpysal.weights.W(
        {i: [p0[x] for x in h3i.grid_disk(c, 1) if x != c and x in p0] for i, c in enumerate(ring)},
        silence_warnings=True,
    )
    esda.G_Local(
        np.arange(len(ring), dtype=float) % 5, w0, transform="B", star=True,
        permutations=99, seed=seed, n_jobs=1,
    )
    warm_s = T() - t

    cases = {}
    only = [c for c in os.environ.get("HOTSPOTS_BENCH_HOTSPOTS_CASES", "").split(",") if c]
    direct = {}
    for name, res, perms, year in CASES:
        if only and name not in only:
            continue
        out, cells, ys, zs, ps, sims = run_case(df, res, perms, year, seed)
        out["check"] = check(
            os.path.join(d, f"hotspots_service_{name}.csv"), cells, ys, zs, ps, sims
        )
        for k in ("gi_z_max_abs_diff", "cells_compared", "same_cells", "p_sim_agreement"):
            if k in out["check"]:
                out[k] = out["check"][k]
        cases[name] = out
        print(name, json.dumps(out), file=sys.stderr)
        if res not in direct and not year:
            # what the natural one-step call would give (not part of the pipeline)
            lat, lng = df["lat"].tolist(), df["lon"].tolist()
            t = T()
            one = [h3i.latlng_to_cell(a, b, res) for a, b in zip(lat, lng)]
            s = T() - t
            two = [h3i.cell_to_parent(h3i.latlng_to_cell(a, b, 12), res) for a, b in zip(lat, lng)]
            mism = sum(a != b for a, b in zip(one, two))
            direct[res] = {"direct_latlng_to_cell_s": s, "mismatch_frac": mism / len(one)}
    mism = ", ".join(
        f"res {r}: {v['mismatch_frac'] * 100:.1f} %" for r, v in sorted(direct.items())
    )
    versions = (
        f"python {sys.version.split()[0]}, pandas {pd.__version__}, numpy {np.__version__}, "
        f"h3 {h3.__version__}, libpysal {libpysal.__version__}, esda {esda.__version__}, "
        f"scipy {scipy.__version__}, numba {NUMBA or 'not installed'}"
    )
    print(
        json.dumps(
            {
                "n": n,
                "seed": seed,
                "versions": versions,
                "numba": NUMBA,
                "csv_read_s": load_s,
                "warmup_s": warm_s,
                "direct": {str(k): v for k, v in direct.items()},
                "direct_mismatch": mism,
                "cases": cases,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            }
        )
    )


if __name__ == "__main__":
    main()
