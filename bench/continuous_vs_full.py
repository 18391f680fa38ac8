#!/usr/bin/env python3
"""Benchmark (not a test): continuous verification against a full check, and the pull rate from
PostgreSQL against `COPY ... TO STDOUT`, on a generated city, in the same run.

    pip install psycopg[binary] duckdb
    python3 bench/continuous_vs_full.py --persons 1000000

What is timed:
1. The city's deliveries up to November (every file, the death certificates without the deaths
   of December, no December pensions) are ingested and checked with `hedui check`: the case store
   a city has when December arrives.
2. December arrives: its pension payments (one file, every pensioner) and its death
   certificates but those of its last day of deaths (a new page); then that day's certificates
   alone (a day's deaths, as a scheduled pull brings them). After each, the new files are ingested, then, each
   on its own copy of the store:
   - full: `hedui check`, every rule over the whole lake (what a city without continuous
     verification runs);
   - incremental: `hedui check --changed`, what `hedui serve` runs after each new lake version:
     the rules reading a changed dataset, for the persons and households whose rows changed.
   Both stores must end with the same cases (the script compares them); the ratio is
   full / incremental.
3. The city's contribution records are loaded into this machine's PostgreSQL as a department's
   table; `hedui pull` takes the whole table into a fresh lake (keyset pages, one repeatable-read
   snapshot, the rows parsed and written as Parquet with their key index), next to `psql`'s
   `COPY table TO STDOUT` of the same table to /dev/null (the fastest any client can read it).
"""
import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = "postgres://postgres@127.0.0.1:5432/test"
TABLE = "bench_contributions"
DECEMBER = "202512"


def hedui_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/hedui-target"))
    subprocess.run(["cargo", "build", "--release", "-p", "hedui", "--quiet"], cwd=ROOT, check=True,
                   env={**os.environ, "CARGO_TARGET_DIR": str(target)})
    return target / "release" / "hedui"


def timed(cmd, **kw):
    """Run a command to completion; (wall seconds, stdout, stderr). Exits on failure."""
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"error: {' '.join(map(str, cmd))} failed:\n{p.stderr[-3000:]}")
    return wall, p.stdout, p.stderr


def death_day(record) -> str:
    return str(record.get("swrq", "")).replace("-", "").replace("/", "")


def certificate_pages(data: Path):
    return [p for p in data.rglob("*.json") if "死亡医学证明" in str(p)]


def last_death_day(data: Path) -> str:
    """The last day of December the certificates record a death on."""
    days = {death_day(r) for p in certificate_pages(data)
            for r in json.loads(p.read_text(encoding="utf-8"))["data"]["list"]}
    return max(d for d in days if d.startswith(DECEMBER))


def split_deliveries(city: Path, before: Path, december: Path, last_day: Path, day: str):
    """`before`: the city's files as of the end of November; `december`: what December adds up
    to the day before `day` (the pensions, the death certificates); `last_day`: the
    certificates of `day`."""
    data = city / "data"
    for src in data.rglob("*"):
        if src.is_dir():
            continue
        rel = src.relative_to(data)
        if src.name == f"养老金发放明细_{DECEMBER}.csv":
            dst = december / rel
        elif src.suffix == ".json" and "死亡医学证明" in str(rel):
            page = json.loads(src.read_text(encoding="utf-8"))
            records = page["data"]["list"]
            parts = {
                before: [r for r in records if not death_day(r).startswith(DECEMBER)],
                december: [r for r in records if death_day(r).startswith(DECEMBER) and death_day(r) != day],
                last_day: [r for r in records if death_day(r) == day],
            }
            for into, rows in parts.items():
                if into is not before and not rows:
                    continue
                page["data"]["list"] = rows
                out = into / rel if into is before else into / rel.parent / into.name / rel.name
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(page, ensure_ascii=False), encoding="utf-8")
            continue
        else:
            dst = before / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.link(src, dst)


def cases_of(db: Path):
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = c.execute("SELECT rule_id, subject, months, amount_cents, evidence_fingerprint, gone_run IS NULL "
                     "FROM cases").fetchall()
    c.close()
    return sorted(rows)


def rule_ms(stderr: str) -> float:
    total = 0.0
    for line in stderr.splitlines():
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            continue
        f = ev.get("fields", {})
        if f.get("message") == "rule ran":
            total += f["ms"]
    return total / 1000


def deliver(hedui: Path, files: Path, delivered: Path, lake: Path) -> float:
    """Add `files` to the delivery directory and ingest it: the ingest takes the new files."""
    for src in files.rglob("*"):
        if src.is_file():
            dst = delivered / src.relative_to(files)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, dst)
    wall, _, _ = timed([hedui, "ingest", "--connectors", ROOT / "connectors", "--data", delivered, "--lake", lake])
    return wall


def verification(hedui: Path, city: Path, work: Path):
    day = last_death_day(city / "data")
    delivered, december, last_day = work / "delivered", work / DECEMBER, work / day
    for d in (delivered, december, last_day):
        shutil.rmtree(d, ignore_errors=True)
    split_deliveries(city, delivered, december, last_day, day)
    lake = work / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    store = work / "store-november.db"
    store.unlink(missing_ok=True)
    wall, _, _ = timed([hedui, "ingest", "--connectors", ROOT / "connectors", "--data", delivered, "--lake", lake])
    print(f"ingest up to November: {wall:.1f} s")
    wall, _, _ = timed([hedui, "check", "--lake", lake, "--cases", f"sqlite://{store}", "--format", "csv",
                        "--out", work / "hits-november.csv"])
    print(f"hedui check up to November: {wall:.1f} s, {len(cases_of(store)):,} cases")
    stores = {name: work / f"store-{name}.db" for name in ("full", "incremental")}
    for db in stores.values():
        shutil.copy(store, db)

    env = {**os.environ, "HEDUI_LOG": "hedui_engine=info,warn"}
    same = True
    for what, files in ((f"December's pensions and the deaths before {day}", december),
                        (f"the death certificates of {day} alone", last_day)):
        print(f"\n== {what}: ingest {deliver(hedui, files, delivered, lake):.1f} s")
        runs = {}
        for name, extra in (("full", []), ("incremental", ["--changed"])):
            wall, _, err = timed([hedui, "--log-json", "check", "--lake", lake, "--cases", f"sqlite://{stores[name]}",
                                  "--format", "csv", "--out", work / f"hits-{name}.csv", *extra], env=env)
            runs[name] = {"s": wall, "rules_s": rule_ms(err),
                          "summary": [l for l in err.splitlines() if not l.startswith("{")][-1:]}
        now_same = cases_of(stores["full"]) == cases_of(stores["incremental"])
        same &= now_same
        full, inc = runs["full"], runs["incremental"]
        print(f"{'run':<12} {'wall s':>8} {'rule queries s':>15}")
        for name in ("full", "incremental"):
            print(f"{name:<12} {runs[name]['s']:>8.2f} {runs[name]['rules_s']:>15.2f}")
        for line in inc["summary"]:
            print(f"incremental: {line}")
        print(f"ratio full / incremental: {full['s'] / inc['s']:.1f}x wall (goal: at least 20x), "
              f"{full['rules_s'] / max(inc['rules_s'], 1e-9):.1f}x in the rule queries")
        print(f"the two stores hold the same cases ({len(cases_of(stores['full'])):,}): "
              f"{'yes' if now_same else 'NO'}")
    return same


def pull_rate(hedui: Path, lake: Path, work: Path):
    import duckdb
    import psycopg

    files = [str(p) for p in sorted((lake / "contributions").glob("*.parquet"))]
    con = duckdb.connect()
    csv = work / "contributions.csv"
    con.execute(
        "COPY (SELECT row_number() OVER () AS id, person_id AS id_no, employer_name AS employer, "
        "employer_credit_code AS credit_code, strftime(month, '%Y%m') AS pay_month, "
        "CAST(base AS VARCHAR) AS base, TIMESTAMPTZ '2026-11-01 08:00:00+08' AS updated_at "
        f"FROM read_parquet({files!r})) TO '{csv}' (HEADER false)")
    with psycopg.connect(PG, autocommit=True) as pg:
        pg.execute(f"DROP TABLE IF EXISTS {TABLE}")
        pg.execute(f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, id_no char(18) NOT NULL, employer varchar(200), "
                   "credit_code varchar(18), pay_month char(6) NOT NULL, base decimal(12,2), "
                   "updated_at timestamptz NOT NULL)")
        with pg.cursor().copy(f"COPY {TABLE} FROM STDIN (FORMAT csv)") as cp, open(csv, "rb") as f:
            while chunk := f.read(1 << 20):
                cp.write(chunk)
        # The index a table pulled incrementally has: keyset pages are read along it.
        pg.execute(f"CREATE INDEX ON {TABLE} (updated_at, id)")
        pg.execute(f"ANALYZE {TABLE}")
        rows = pg.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
    csv.unlink()

    connectors = work / "live-connectors"
    shutil.rmtree(connectors, ignore_errors=True)
    connectors.mkdir()
    (connectors / "contributions.toml").write_text(f'''[source]
id = "contributions_live"
title = "人社局 缴费库"
[source.database]
url_env = "HEDUI_BENCH_PG"
table = "{TABLE}"
key = "id"
cursor = "updated_at"

[[target]]
dataset = "contributions"
[target.columns]
person_id = "id_no"
employer_name = "employer"
employer_credit_code = "credit_code"
month = "pay_month"
base = "base"
''', encoding="utf-8")
    pulled = work / "lake-pulled"
    shutil.rmtree(pulled, ignore_errors=True)
    report = work / "pull-report.json"
    wall, _, _ = timed([hedui, "pull", "contributions_live", "--connectors", connectors, "--lake", pulled,
                        "--report", report], env={**os.environ, "HEDUI_BENCH_PG": PG})
    loaded = json.loads(report.read_text())
    t = time.perf_counter()
    with open(os.devnull, "wb") as null:
        subprocess.run(["psql", "-X", "-q", PG, "-c", f"COPY {TABLE} TO STDOUT"], stdout=null, check=True)
    copy_s = time.perf_counter() - t
    print(f"\npull from PostgreSQL, {rows:,} rows ({TABLE}):")
    print(f"{'reader':<34} {'s':>7} {'rows/s':>11}")
    print(f"{'hedui pull (into the lake)':<34} {wall:>7.2f} {rows / wall:>11,.0f}")
    print(f"{'psql COPY ... TO STDOUT':<34} {copy_s:>7.2f} {rows / copy_s:>11,.0f}")
    print(f"ratio hedui pull / COPY: {wall / copy_s:.1f}x the time")
    totals = loaded.get("totals", loaded)
    print(f"pull report: {json.dumps(totals, ensure_ascii=False)[:300]}")
    with psycopg.connect(PG, autocommit=True) as pg:
        pg.execute(f"DROP TABLE IF EXISTS {TABLE}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/hedui-bench-continuous"))
    ap.add_argument("--hedui", type=Path, help="a hedui binary (default: build the release binary)")
    ap.add_argument("--parts", nargs="+", choices=["verification", "pull"], default=["verification", "pull"],
                    help="what to measure (the pull reads the contributions of the verification's lake)")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    hedui = args.hedui or hedui_binary()
    city = args.work / f"city-{args.persons}-{args.seed}"
    if not (city / "truth.json").exists():
        wall, _, _ = timed([hedui, "generate", "--persons", str(args.persons), "--seed", str(args.seed),
                            "--out", city])
        print(f"generate {args.persons:,} persons: {wall:.1f} s")
    same = True
    if "verification" in args.parts:
        same = verification(hedui, city, args.work)
    if "pull" in args.parts:
        pull_rate(hedui, args.work / "lake", args.work)
    if not same:
        sys.exit("error: the incremental run left other cases than the full run")


if __name__ == "__main__":
    main()
