#!/usr/bin/env python3
"""Benchmark (not a test): `hedui ingest` of a generated city against DuckDB converting the same
CSV files to Parquet, in the same run, on the same machine.

    pip install duckdb
    python3 bench/ingest_vs_duckdb.py --persons 1000000

Prints rows/s per dataset for both and the ratio of their times (hedui / DuckDB; below 1 means
hedui is faster). DuckDB reads the CSV with its own type detection and writes Parquet, nothing
more: it does no ID validation, normalisation, quarantine or lineage, so it is the floor a user
would compare against. DuckDB cannot decode GBK without an extension it would download, so GBK
files are timed for hedui only.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def hedui_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/hedui-target"))
    subprocess.run(["cargo", "build", "--release", "-p", "hedui", "--quiet"], cwd=ROOT, check=True,
                   env={**os.environ, "CARGO_TARGET_DIR": str(target)})
    return target / "release" / "hedui"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/hedui-bench"))
    args = ap.parse_args()
    try:
        import duckdb
    except ImportError:
        sys.exit("error: DuckDB is not installed: pip install duckdb")

    hedui = hedui_binary()
    city = args.work / f"city-{args.persons}-{args.seed}"
    if not (city / "truth.json").exists():
        t = time.perf_counter()
        subprocess.run([hedui, "generate", "--persons", str(args.persons), "--seed", str(args.seed), "--out", city], check=True,
                       stdout=subprocess.DEVNULL)
        print(f"generate {args.persons} persons: {time.perf_counter() - t:.1f} s")
    truth = json.loads((city / "truth.json").read_text())

    lake = args.work / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    report_path = args.work / "report.json"
    t = time.perf_counter()
    subprocess.run([hedui, "ingest", "--connectors", ROOT / "connectors", "--data", city / "data", "--lake", lake,
                    "--report", report_path], check=True, stdout=subprocess.DEVNULL)
    hedui_total = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    report = json.loads(report_path.read_text())

    # hedui per dataset: rows read and seconds of the files feeding it.
    h_rows, h_secs, d_rows, d_secs = defaultdict(int), defaultdict(float), defaultdict(int), defaultdict(float)
    comparable = defaultdict(bool)
    out = args.work / "duckdb"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    con = duckdb.connect()
    con.execute(f"SET threads = {os.cpu_count()}")
    for f in report["files"]:
        if f["status"] != "loaded":
            continue
        datasets = truth["files"].get(f["file"], {}).get("dataset", [])
        dataset = "+".join(datasets) or f["file"]
        h_rows[dataset] += f["rows_read"]
        h_secs[dataset] += f["seconds"]
        enc = truth["files"].get(f["file"], {}).get("encoding", "")
        if f["file"].endswith(".csv") and enc.startswith("UTF-8"):
            src = city / "data" / f["file"]
            dst = out / (f["file"].replace("/", "_") + ".parquet")
            t = time.perf_counter()
            con.execute(f"COPY (SELECT * FROM read_csv('{src}', header = true, ignore_errors = true)) TO '{dst}' (FORMAT parquet, COMPRESSION snappy)")
            d_secs[dataset] += time.perf_counter() - t
            d_rows[dataset] += con.execute(f"SELECT count(*) FROM '{dst}'").fetchone()[0]
            comparable[dataset] = True

    print(f"\nhedui ingest of {args.persons:,} persons: {hedui_total:.1f} s wall, peak RSS {peak_mb:.0f} MiB, "
          f"{report['totals']['rows_read']:,} rows read")
    print(f"{'dataset':<40} {'rows':>11} {'hedui s':>8} {'hedui rows/s':>13} {'duckdb s':>9} {'duckdb rows/s':>14} {'ratio':>6}")
    th = td = 0.0
    for ds in sorted(h_rows):
        line = f"{ds:<40} {h_rows[ds]:>11,} {h_secs[ds]:>8.2f} {h_rows[ds] / max(h_secs[ds], 1e-9):>13,.0f}"
        if comparable[ds]:
            th += h_secs[ds]
            td += d_secs[ds]
            line += f" {d_secs[ds]:>9.2f} {d_rows[ds] / max(d_secs[ds], 1e-9):>14,.0f} {h_secs[ds] / max(d_secs[ds], 1e-9):>6.2f}"
        else:
            line += f" {'n/a (GBK or Excel/JSON)':>31}"
        print(line)
    if td > 0:
        # Files are read on every core, so per-file seconds add up to more than the wall time:
        # the comparison is the wall time of an ingest of exactly the files DuckDB converted.
        both = args.work / "both-read"
        shutil.rmtree(both, ignore_errors=True)
        for f in report["files"]:
            enc = truth["files"].get(f["file"], {}).get("encoding", "")
            if f["status"] == "loaded" and f["file"].endswith(".csv") and enc.startswith("UTF-8"):
                dst = both / f["file"]
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.link(city / "data" / f["file"], dst)
        lake2 = args.work / "lake-both-read"
        shutil.rmtree(lake2, ignore_errors=True)
        t = time.perf_counter()
        subprocess.run([hedui, "ingest", "--connectors", ROOT / "connectors", "--data", both, "--lake", lake2],
                       check=True, stdout=subprocess.DEVNULL)
        tw = time.perf_counter() - t
        print(f"\non the files both read: hedui ingest {tw:.1f} s wall (the same files' seconds add up to {th:.1f} s "
              f"across threads), DuckDB {td:.1f} s, ratio hedui/DuckDB = {tw / td:.2f}")


if __name__ == "__main__":
    main()
