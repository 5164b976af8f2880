#!/usr/bin/env python3
"""The peer of the `foundation` benchmark: the same file read and transformed with pandas + pyproj.

Usage: python3 benches/peer_pandas.py FILE --from EPSG:28992 --to EPSG:4326

Reads FILE with pandas (separator and decimal mark sniffed from the header line the way a data
analyst would pass them: `;` files get `decimal=","`), parses `occurred_at` to UTC timestamps
and transforms the `x`/`y` (or `lon`/`lat`) columns with one vectorised pyproj call
(always_xy=True, the same PROJ pipeline the service uses). Prints one JSON line:

    {"rows": n, "import_s": .., "read_s": .., "times_s": .., "transform_s": ..,
     "read_transform_s": .., "total_s": .., "pandas": "..", "pyproj": "..", "proj": ".."}

`read_transform_s` (read CSV + transform) is the job the issue names; `total_s` adds the time
parsing. Interpreter start-up and imports are reported apart (`import_s`) and not included.
Nothing is written to disk and nothing is validated or indexed: this is a lower bound for the
in-memory part of the job, not an equivalent of a durable, indexed ingest.
"""

import argparse
import json
import time

T_START = time.perf_counter()
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyproj  # noqa: E402

T_IMPORTED = time.perf_counter()


def sniff(path):
    """(separator, decimal) from the first line, as one would pass them to read_csv."""
    with open(path, encoding="utf-8-sig") as f:
        head = f.readline()
    sep = max([",", ";", "\t", "|"], key=head.count)
    return sep, ("," if sep == ";" else ".")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--from", dest="src", default="EPSG:4326")
    ap.add_argument("--to", dest="dst", default="EPSG:28992")
    a = ap.parse_args()

    t0 = time.perf_counter()
    sep, dec = sniff(a.file)
    df = pd.read_csv(a.file, sep=sep, decimal=dec, encoding="utf-8-sig",
                     dtype={"subject": "string", "external_id": "string"})
    t1 = time.perf_counter()
    times = pd.to_datetime(df["occurred_at"], utc=True, format="ISO8601")
    t2 = time.perf_counter()
    xcol, ycol = ("lon", "lat") if "lon" in df.columns else ("x", "y")
    tr = pyproj.Transformer.from_crs(a.src, a.dst, always_xy=True)
    ox, oy = tr.transform(df[xcol].to_numpy(np.float64), df[ycol].to_numpy(np.float64))
    t3 = time.perf_counter()
    ok = int(np.isfinite(ox).sum() + np.isfinite(oy).sum()) // 2
    print(json.dumps({
        "rows": int(len(df)),
        "finite": ok,
        "first_time": str(times.iloc[0]) if len(times) else None,
        "import_s": T_IMPORTED - T_START,
        "read_s": t1 - t0,
        "times_s": t2 - t1,
        "transform_s": t3 - t2,
        "read_transform_s": (t1 - t0) + (t3 - t2),
        "total_s": t3 - t0,
        "pandas": pd.__version__,
        "pyproj": pyproj.__version__,
        "proj": pyproj.proj_version_str,
    }))


if __name__ == "__main__":
    main()
