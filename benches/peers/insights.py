"""Python peer of the data-lab benchmark (issue 7; benches/analysis/insights.rs).

Does the aggregations of `GET /datasets/bench/concentration`, `/coverage` and `/picture` on the
same incidents (`peer_incidents.csv`, the rows the service ingested, plus the `subject` column
of `incidents.csv`, same rows in the same order) with pandas / numpy / h3 4.x / libpysal + esda
/ scipy, the way a Python analyst would, and times each stage with time.perf_counter. Not timed:
interpreter start, imports, the CSV reads, and the agreement checks.

Shared stage (reported, NOT in any route total, because the service stores every incident's
res-12 cell at ingest and its routes start from it):
  h3_res12    h3 `latlng_to_cell(lat, lng, 12)` per incident (h3.api.basic_int; h3-py 4 has
              no vectorised call). Places at resolution R are the res-12 cell's H3 parent at R,
              as the service does (`concentration::place_counts`, `coverage`); the one-step
              latlng_to_cell at R would put some incidents in a neighbouring cell.

Routes (each total = the sum of its stages; a stage used by two routes counts in both):
  conc_place[_r9|_r12]  parents at R (`cell_to_parent`, none at 12), counts per cell
              (`pd.Series.value_counts`), the measures in numpy: counts sorted descending,
              cumulative sums, Gini = S / (n N) with S = sum_j (n - 2j - 1) x_(j) (j 0-based,
              descending; exact in int64), the generalized Gini of Bernasco & Steenbeek
              (S - N(n - N)) / N^2 when N < n, the top 1/5/10/20 % shares and the 101-point
              Lorenz curve interpolated as the service does, units holding half, repeat units.
              The units are the cells with incidents (the bench dataset has no study area).
  conc_subject  counts per subject, the same measures; known-to histogram (groupby subject:
              nunique source, size), the top 50 subject profiles (incidents per source, most
              incidents first; ties by first appearance in the CSV, the service orders them
              by its subject codes).
  coverage    parents at res 10; hot cells as the service: Gi* at res 10 on the cell set of
              k = 1 rings around the non-empty cells (h3 grid_disk), libpysal W (binary),
              esda G_Local(star=True, transform='B', permutations=0): z = Zs, p = 2 p_norm,
              Benjamini-Hochberg cutoffs at 0.10 / 0.05 / 0.01, hot = bin +2/+3; per
              organisation: incidents, hot cells with a signal (set of (source, cell) pairs),
              subjects and multi-organisation subjects; the place overlap matrix (for each
              pair of sources: incidents of a with an incident of b in the same res-10 cell
              within 30 days; the diagonal needs another incident): the incidents' (cell rank,
              t) keys sorted once, numpy searchsorted of every key +- window into each
              source's sorted keys, bincount by source; the
              subject overlap matrix B^T B of the subject x source incidence matrix.
  picture     the period (last 12 whole months of data) and the previous period of the same
              length (boolean masks on t); counts by category, source, month (`to_period`)
              and res-8 area (parents, value_counts, top 25 by count then cell); trend per
              category; top hot spots: Gi* at the service's resolution (res 9) as above, top
              10 by z; share of incidents within 250 m of a facility (scipy cKDTree query).
              The service's proximity summary also runs a 99-simulation CSR null (expected
              share, p); the peer does not (see proximity.py for that cost).

Agreement (against `<dir>/insights_service.json`, the service's answers written by the Rust
child): Gini, generalized Gini, top shares, Lorenz, units for half, repeats per place (res 9,
10, 12) and per subject; the known-to histogram and the subject overlap matrix exactly; the
place overlap matrix exactly; per-organisation incidents, subjects, multi-organisation
subjects, hot cells with signal, ggd's missed hot cells; the hot cell set; the top-50 subject
profiles (the service shows pseudonyms, the peer the raw codes, and ties are ordered by the
service's subject codes: the counts in order, and the profiles above the 50th's count as sets);
the picture's breakdowns, trend, top hot spots and share within 250 m.

Usage: python3 insights.py DIR -> last stdout line: JSON with versions, stage and route
seconds, checks and peak RSS (ru_maxrss).
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
from scipy.spatial import cKDTree  # noqa: E402

T = time.perf_counter
WINDOW_DAYS = 30
LORENZ_POINTS = 101
TOP_PERCENTS = [1.0, 5.0, 10.0, 20.0]


class Stages:
    def __init__(self):
        self.s = {}

    def __call__(self, name, f):
        t = T()
        v = f()
        self.s[name] = self.s.get(name, 0.0) + T() - t
        return v

    def total(self, names):
        return sum(self.s[n] for n in names)


def measures(counts):
    """The service's concentration measures of the non-zero counts (all units have one)."""
    desc = np.sort(np.asarray(counts, dtype=np.int64))[::-1]
    n = len(desc)
    big_n = int(desc.sum())
    cum = np.concatenate([[0], np.cumsum(desc)])
    j = np.arange(n, dtype=np.int64)
    s = int(((n - 2 * j - 1) * desc).sum())
    gini = s / (n * big_n)
    gen = (s - big_n * (n - big_n)) / (big_n * big_n) if big_n < n else gini

    def at(p):
        pos = min(max(p * n, 0.0), float(n))
        k = int(np.floor(pos))
        base = float(cum[k]) if k < len(cum) else float(big_n)
        nxt = float(desc[k]) if k < n else 0.0
        return min(base + (pos - k) * nxt, float(big_n))

    if n < LORENZ_POINTS:
        lorenz = [float(cum[k]) / big_n for k in range(n + 1)]
    else:
        lorenz = [at(i / (LORENZ_POINTS - 1)) / big_n for i in range(LORENZ_POINTS)]
    rep = desc[desc >= 2]
    return {
        "n_units": n,
        "n_incidents": big_n,
        "gini": min(max(gini, 0.0), 1.0),
        "gini_generalized": min(max(gen, 0.0), 1.0),
        "top_shares": [at(p / 100.0) / big_n for p in TOP_PERCENTS],
        "lorenz": lorenz,
        "units_for_half": int(np.searchsorted(cum, (big_n + 1) // 2, side="left")),
        "repeat_units": int(len(rep)),
        "repeat_incidents": int(rep.sum()),
    }


def bh_cutoff(p, alpha):
    ps = np.sort(p[np.isfinite(p)])
    k = np.arange(1, len(ps) + 1)
    ok = ps <= k * alpha / len(ps)
    return ps[ok].max() if ok.any() else None


def gi_hot(cells_fine, res):
    """Gi* (k=1, binary, self included) of counts per cell at `res` over the k=1 hull, FDR bins.
    Returns (cells, counts, z, bins)."""
    parents = np.fromiter(
        (h3i.cell_to_parent(c, res) for c in cells_fine), np.uint64, len(cells_fine)
    )
    counts = pd.Series(parents).value_counts()
    hull = set()
    for c in (int(x) for x in counts.index):
        hull.update(h3i.grid_disk(c, 1))
    cells = sorted(hull)
    pos = {c: i for i, c in enumerate(cells)}
    nbs = {
        i: [pos[nb] for nb in h3i.grid_disk(c, 1) if nb != c and nb in pos]
        for i, c in enumerate(cells)
    }
    w = libpysal.weights.W(nbs, silence_warnings=True)
    y = counts.reindex(cells, fill_value=0).to_numpy(dtype=float)
    g = esda.G_Local(y, w, transform="B", star=True, permutations=0, n_jobs=1)
    z = np.asarray(g.Zs)
    p = 2.0 * np.asarray(g.p_norm)
    level = np.zeros(len(p), dtype=int)
    for lv, a in ((1, 0.10), (2, 0.05), (3, 0.01)):
        c = bh_cutoff(p, a)
        if c is not None:
            level = np.where(p <= c, lv, level)
    bins = (np.sign(z) * level).astype(int)
    return np.asarray(cells, dtype=np.uint64), y, z, bins


def month_start(t, months):
    d = pd.Timestamp(t, unit="s")
    m = d.year * 12 + d.month - 1 + months
    return int(pd.Timestamp(year=m // 12, month=m % 12 + 1, day=1).timestamp())


def main():
    d = sys.argv[1]
    df = pd.read_csv(
        os.path.join(d, "peer_incidents.csv"),
        usecols=["id", "t", "category", "source", "x", "y", "lon", "lat"],
    )
    sub = pd.read_csv(
        os.path.join(d, "incidents.csv"),
        usecols=["external_id", "subject"],
        dtype={"external_id": str, "subject": str},
    )
    assert (sub["external_id"].to_numpy() == df["id"].to_numpy()).all(), "row order"
    df["subject"] = sub["subject"].to_numpy()
    del sub
    fac = pd.read_csv(os.path.join(d, "peer_facilities.csv"))
    svc_path = os.path.join(d, "insights_service.json")
    svc = json.load(open(svc_path)) if os.path.exists(svc_path) else None

    st = Stages()
    lat, lng = df["lat"].tolist(), df["lon"].tolist()
    fine = st("h3_res12", lambda: [h3i.latlng_to_cell(a, b, 12) for a, b in zip(lat, lng)])
    fine_np = np.asarray(fine, dtype=np.uint64)

    # --- concentration by place
    place = {}
    def parents(res):
        return np.fromiter((h3i.cell_to_parent(c, res) for c in fine), np.uint64, len(fine))

    p10 = st("parents_r10", lambda: parents(10))
    p9 = st("parents_r9", lambda: parents(9))
    for name, cells in (("conc_place", p10), ("conc_place_r9", p9), ("conc_place_r12", fine_np)):
        counts = st(f"{name}_counts", lambda c=cells: pd.Series(c).value_counts())
        place[name] = st(f"{name}_measures", lambda c=counts: measures(c.to_numpy()))

    # --- concentration by subject
    has = df["subject"].notna().to_numpy()
    s_df = df.loc[has, ["subject", "source"]]
    s_counts = st("subject_counts", lambda: s_df["subject"].value_counts())
    subj = st("subject_measures", lambda: measures(s_counts.to_numpy()))

    def known_to():
        g = s_df.groupby("subject", sort=False)["source"].agg(["nunique", "size"])
        h = g.groupby("nunique")["size"].agg(["count", "sum"])
        return [
            {"organisations": int(k), "subjects": int(h.loc[k, "count"]) if k in h.index else 0,
             "incidents": int(h.loc[k, "sum"]) if k in h.index else 0}
            for k in range(1, int(h.index.max()) + 1)
        ]

    known = st("known_to", known_to)

    def profiles():
        code = pd.factorize(s_df["subject"])[0]
        per = (
            pd.DataFrame({"code": code, "source": s_df["source"].to_numpy()})
            .groupby(["code", "source"]).size().unstack(fill_value=0)
        )
        tot = per.sum(axis=1)
        orgs = (per > 0).sum(axis=1)
        order = np.lexsort((per.index.to_numpy(), -tot.to_numpy()))[:50]
        out = []
        for i in order:
            row = per.iloc[i]
            out.append({"incidents": int(tot.iloc[i]), "organisations": int(orgs.iloc[i]),
                        "per_source": {k: int(v) for k, v in row.items() if v > 0}})
        return out

    top_profiles = st("subject_profiles", profiles)

    # --- coverage
    hot_cells, _, _, hot_bins = st("coverage_gi_r10", lambda: gi_hot(fine, 10))  # its own parents
    hot = np.sort(hot_cells[hot_bins >= 2])
    src = df["source"].to_numpy()
    sources = list(pd.unique(src))
    p10_np = p10

    def signal():
        pairs = pd.DataFrame({"source": src, "cell": p10_np}).drop_duplicates()
        pairs = pairs[pairs["cell"].isin(hot)]
        with_sig = pairs.groupby("source")["cell"].nunique()
        ggd = np.setdiff1d(hot, pairs.loc[pairs["source"] == "ggd", "cell"].to_numpy())
        return with_sig, ggd

    with_sig, ggd_missed = st("coverage_signal", signal)
    per_src = st("coverage_per_source", lambda: pd.Series(src).value_counts())

    def overlap_place():
        window = WINDOW_DAYS * 86_400
        t = df["t"].to_numpy(dtype=np.int64)
        _, rank = np.unique(p10_np, return_inverse=True)
        span = int(t.max() - t.min()) + 2 * window + 1
        key = rank.astype(np.int64) * span + (t - t.min())
        code = pd.Categorical(src, categories=sources).codes
        order = np.argsort(key, kind="stable")
        ks, cs = key[order], code[order]
        m = np.zeros((len(sources), len(sources)), dtype=np.int64)
        for b in range(len(sources)):
            kb = ks[cs == b]
            n_in = np.searchsorted(kb, ks + window, "right") - np.searchsorted(
                kb, ks - window, "left"
            )
            hit = n_in >= 1 + (cs == b)
            m[:, b] = np.bincount(cs[hit], minlength=len(sources))
        return m

    ov_place = st("coverage_overlap_place", overlap_place)

    def overlap_subjects():
        b = (s_df.groupby(["subject", "source"]).size().unstack(fill_value=0) > 0).astype(np.int64)
        b = b.reindex(columns=sources, fill_value=0)
        mat = b.to_numpy()
        multi = mat.sum(axis=1) >= 2
        return mat.T @ mat, mat[multi].sum(axis=0), int(multi.sum()), len(mat)

    ov_subj, multi_per, n_multi, n_subjects = st("coverage_overlap_subjects", overlap_subjects)

    # --- picture
    t_all = df["t"].to_numpy(dtype=np.int64)
    pic_res = 9
    if svc and "picture" in svc:
        pic_res = int(svc["picture"]["top_hot_spots"].get("resolution", 9))

    def period():
        last = int(t_all.max())
        t0 = month_start(last, -11)
        t1 = month_start(last, 1) - 1
        ln = t1 - t0 + 1
        now = (t_all >= t0) & (t_all <= t1)
        prev = (t_all >= t0 - ln) & (t_all <= t0 - 1)
        return t0, t1, now, prev

    t0, t1, now, prev = st("picture_select", period)
    pdf = df.loc[now]

    def breakdowns():
        cats = pdf["category"].value_counts().sort_index()
        pcats = df.loc[prev, "category"].value_counts().reindex(cats.index, fill_value=0)
        srcs = pdf["source"].value_counts().sort_index()
        months = pd.to_datetime(pdf["t"], unit="s").dt.to_period("M").value_counts().sort_index()
        trend = [
            {"category": c, "count": int(cats[c]), "previous": int(pcats[c]),
             "change": (int(cats[c]) - int(pcats[c])) / int(pcats[c]) if pcats[c] > 0 else None}
            for c in cats.index
        ]
        return cats, srcs, months, trend

    cats, srcs, months, trend = st("picture_breakdowns", breakdowns)
    fine_now = fine_np[now].tolist()

    def area():
        a = pd.Series(
            np.fromiter((h3i.cell_to_parent(c, 8) for c in fine_now), np.uint64, len(fine_now))
        ).value_counts()
        a.index = [h3i.int_to_str(int(c)) for c in a.index]
        a = a.reset_index()
        a.columns = ["h3", "count"]
        return a.sort_values(["count", "h3"], ascending=[False, True]).head(25)

    areas = st("picture_area_r8", area)

    def top_hot():
        cells, _, z, bins = gi_hot(fine_now, pic_res)
        sel = np.flatnonzero(bins >= 2)
        sel = sel[np.argsort(-z[sel], kind="stable")][:10]
        return [(h3i.int_to_str(int(cells[i])), float(z[i]), int(bins[i])) for i in sel]

    hot_top = st("picture_gi", top_hot)

    def near():
        tree = cKDTree(fac[["x", "y"]].to_numpy())
        dist, _ = tree.query(pdf[["x", "y"]].to_numpy())
        return float((dist <= 250.0).mean())

    share = st("picture_share_within_250m", near)

    s = st.s
    routes = {
        "conc_place": st.total(["parents_r10", "conc_place_counts", "conc_place_measures"]),
        "conc_place_r9": st.total(["parents_r9", "conc_place_r9_counts", "conc_place_r9_measures"]),
        "conc_place_r12": st.total(["conc_place_r12_counts", "conc_place_r12_measures"]),
        "conc_subject": st.total(["subject_counts", "subject_measures", "known_to",
                                  "subject_profiles"]),
        "coverage": st.total(["parents_r10", "coverage_gi_r10", "coverage_signal",
                              "coverage_per_source", "coverage_overlap_place",
                              "coverage_overlap_subjects"]),
        "picture": st.total(["picture_select", "picture_breakdowns", "picture_area_r8",
                             "picture_gi", "picture_share_within_250m"]),
    }

    checks = {}
    if svc:
        def cmp_conc(a, mine):
            return {
                "gini_abs_diff": abs(a["gini"] - mine["gini"]),
                "gini_generalized_abs_diff": abs(a["gini_generalized"] - mine["gini_generalized"]),
                "top_shares_max_abs_diff": max(
                    abs(x["incidents_share"] - y) for x, y in zip(a["top_shares"], mine["top_shares"])
                ),
                "lorenz_max_abs_diff": max(
                    abs(x["incidents_share"] - y) for x, y in zip(a["lorenz"], mine["lorenz"])
                ),
                "units_equal": a["n_units"] == mine["n_units"]
                and a["n_incidents"] == mine["n_incidents"]
                and a["units_for_half"] == mine["units_for_half"]
                and a["repeat_units"] == mine["repeat_units"]
                and a["repeat_incidents"] == mine["repeat_incidents"],
            }

        for name in ("conc_place", "conc_place_r9", "conc_place_r12"):
            checks[name] = cmp_conc(svc[name], place[name])
        cs = svc["conc_subject"]
        checks["conc_subject"] = cmp_conc(cs, subj)
        checks["conc_subject"]["known_to_equal"] = cs["known_to"]["histogram"] == known
        svc_prof = [
            {"incidents": p["incidents"], "organisations": p["organisations"],
             "per_source": p["per_source"]}
            for p in cs.get("subjects", [])
        ]
        # ties at the cut are ordered by subject code (the service's load order, not the
        # CSV's): the counts in order must agree, and the profiles above the last count
        # as multisets
        key = lambda p: json.dumps(p, sort_keys=True)  # noqa: E731
        cut = svc_prof[-1]["incidents"] if svc_prof else 0
        checks["conc_subject"]["profiles_counts_equal"] = [p["incidents"] for p in svc_prof] == [
            p["incidents"] for p in top_profiles
        ]
        checks["conc_subject"]["profiles_above_cut_equal"] = sorted(
            key(p) for p in svc_prof if p["incidents"] > cut
        ) == sorted(key(p) for p in top_profiles if p["incidents"] > cut)
        checks["conc_subject"]["profiles_compared"] = len(svc_prof)
        cv = svc["coverage"]
        order = [sources.index(o) for o in cv["organisations"]]
        checks["coverage"] = {
            "overlap_place_equal": np.array_equal(
                np.asarray(cv["overlap_place"]), ov_place[np.ix_(order, order)]
            ),
            "overlap_subjects_equal": np.array_equal(
                np.asarray(cv["overlap_subjects"]), ov_subj[np.ix_(order, order)]
            ),
            "n_subjects_equal": cv["n_subjects"] == n_subjects
            and cv["n_multi_organisation_subjects"] == n_multi,
            "hot_cells_service": len(svc["hot_cells_r10"]),
            "hot_cells_peer": int(len(hot)),
            "hot_cells_symmetric_difference": len(
                set(svc["hot_cells_r10"]) ^ {h3i.int_to_str(int(c)) for c in hot}
            ),
            "per_organisation_equal": all(
                o["incidents"] == int(per_src[o["organisation"]])
                and o["hot_cells_with_signal"] == int(with_sig.get(o["organisation"], 0))
                and o["multi_organisation_subjects"] == int(multi_per[sources.index(o["organisation"])])
                and o["subjects"] == int(ov_subj[sources.index(o["organisation"])][sources.index(o["organisation"])])
                for o in cv["per_organisation"]
            ),
            "ggd_missed_equal": next(
                o["hot_cells_without_signal"] for o in svc["coverage_ggd"]["per_organisation"]
                if o["organisation"] == "ggd"
            ) == sorted(h3i.int_to_str(int(c)) for c in ggd_missed),
            "ggd_missed": int(len(ggd_missed)),
        }
        pic = svc["picture"]
        checks["picture"] = {
            "period_equal": list(svc["picture_period"]) == [t0, t1],
            "by_category_equal": pic["by_category"] == {k: int(v) for k, v in cats.items()},
            "by_source_equal": pic["by_source"] == {k: int(v) for k, v in srcs.items()},
            "by_month_equal": pic["by_month"] == {str(k): int(v) for k, v in months.items()},
            "by_area_equal": pic["by_area"]["cells"]
            == [{"h3": h, "count": int(c)} for h, c in zip(areas["h3"], areas["count"])],
            "trend_equal": all(
                a["category"] == b["category"] and a["count"] == b["count"]
                and a["previous"] == b["previous"]
                and (a["change"] is None) == (b["change"] is None)
                and (a["change"] is None or abs(a["change"] - b["change"]) < 1e-12)
                for a, b in zip(pic["trend"], trend)
            ) and len(pic["trend"]) == len(trend),
            "total_equal": pic["total"] == int(now.sum()) and pic["previous_total"] == int(prev.sum()),
            "top_hot_spots_resolution": pic_res,
            "top_hot_spots_same_cells": [c["h3"] for c in pic["top_hot_spots"]["cells"]]
            == [h for h, _, _ in hot_top],
            "top_hot_spots_z_max_abs_diff": max(
                (abs(a["gi_z"] - b[1]) for a, b in zip(pic["top_hot_spots"]["cells"], hot_top)),
                default=float("nan"),
            ),
            "share_within_service": pic["proximity"]["share_within"],
            "share_within_peer": share,
        }

    versions = (
        f"python {sys.version.split()[0]}, pandas {pd.__version__}, numpy {np.__version__}, "
        f"h3 {h3.__version__}, libpysal {libpysal.__version__}, esda {esda.__version__}, "
        f"scipy {scipy.__version__}"
    )
    print(
        json.dumps(
            {
                "versions": versions,
                "n": len(df),
                "stages_s": s,
                "routes_s": routes,
                "checks": checks,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            },
            default=lambda o: o.item() if hasattr(o, "item") else str(o),
        )
    )


if __name__ == "__main__":
    main()
