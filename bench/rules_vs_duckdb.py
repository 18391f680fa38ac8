#!/usr/bin/env python3
"""Benchmark (not a test): the whole rule suite (R1-R7) on a generated city, `hedui check`
against DuckDB running the same SQL over the same Parquet files, in the same run.

    pip install duckdb pyarrow
    python3 bench/rules_vs_duckdb.py --persons 1000000

What is timed, for each side, in its own process so that peak memory (max RSS) is its own:
- hedui: `hedui check` over the lake with the built-in rules. Per rule, the time of the query
  (the rule's SQL planned and executed by DataFusion, hits grouped per subject) comes from its
  `rule ran` log event; the whole command also loads each hit's evidence rows and records the
  run and its cases in a fresh SQLite case store, so its wall time is printed separately.
- DuckDB: the rules' own SQL as `hedui rules show ID --sql` renders it, with DataFusion's
  function names translated to DuckDB's (named_struct -> struct_pack, make_array -> list_value,
  array_* -> list_*), over views of exactly the live Parquet files of the lake's commit log (a
  superseded batch is not read, as hedui does not read it), plus the same `batches` table and
  death views hedui registers. Each query's result is fetched whole, as Arrow.

Both sides must return the same number of SQL rows per rule; the script says so when they do not.
The ratio is hedui / DuckDB: below 1 means hedui is faster.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = ["R1", "R2", "R3", "R4", "R5", "R6", "R7"]


def hedui_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/hedui-target"))
    subprocess.run(["cargo", "build", "--release", "-p", "hedui", "--quiet"], cwd=ROOT, check=True,
                   env={**os.environ, "CARGO_TARGET_DIR": str(target)})
    return target / "release" / "hedui"


def run_measured(cmd, **kw):
    """Run a command; return (wall seconds, peak RSS MiB of that process, stdout, stderr)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    # wait4 gives this child's own rusage, so each side's peak memory is its own.
    out_chunks, err_chunks = p.stdout.read(), p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"error: {' '.join(map(str, cmd))} failed:\n{err_chunks.decode(errors='replace')}")
    return wall, usage.ru_maxrss / 1024, out_chunks.decode(), err_chunks.decode()


# --- DataFusion SQL -> DuckDB SQL -----------------------------------------------------------------

def split_args(text: str, start: int):
    """The top-level comma-separated arguments of the call whose '(' is at text[start]."""
    depth, args, cur, i, quote = 0, [], [], start, False
    while True:
        ch = text[i]
        if quote:
            cur.append(ch)
            if ch == "'":
                quote = False
        elif ch == "'":
            quote = True
            cur.append(ch)
        elif ch == "(":
            depth += 1
            if depth > 1:
                cur.append(ch)
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append("".join(cur).strip())
                return args, i + 1
            cur.append(ch)
        elif ch == "," and depth == 1:
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1


def to_duckdb(sql: str) -> str:
    out, i = [], 0
    for m in re.finditer(r"\bnamed_struct\s*\(", sql):
        if m.start() < i:
            continue
        args, end = split_args(sql, m.end() - 1)
        pairs = [f"{args[k].strip(chr(39))} := {to_duckdb(args[k + 1])}" for k in range(0, len(args), 2)]
        out.append(sql[i:m.start()] + "struct_pack(" + ", ".join(pairs) + ")")
        i = end
    sql = "".join(out) + sql[i:]
    for df, duck in [("make_array(", "list_value("), ("array_concat(", "list_concat("),
                     ("array_prepend(", "list_prepend(")]:
        sql = sql.replace(df, duck)
    return sql


# The views hedui's engine registers beside the datasets (crates/engine/src/system.rs).
SYSTEM_VIEWS = """
CREATE VIEW death_records AS
SELECT person_id_key, person_id, death_date, 'cremations' AS source,
       named_struct('dataset', 'cremations', 'batch', _batch, 'row_no', _row) AS evidence
FROM cremations
UNION ALL
SELECT person_id_key, person_id, death_date, 'death_certificates',
       named_struct('dataset', 'death_certificates', 'batch', _batch, 'row_no', _row)
FROM death_certificates
UNION ALL
SELECT person_id_key, person_id, cancel_date, 'persons',
       named_struct('dataset', 'persons', 'batch', _batch, 'row_no', _row)
FROM persons WHERE status = 'deceased' AND cancel_date IS NOT NULL;
CREATE VIEW deaths AS
SELECT person_id_key,
       min(person_id) AS person_id,
       CAST(date_trunc('month', min(death_date)) AS DATE) AS death_month,
       min(death_date) AS first_date,
       max(death_date) AS last_date,
       array_agg(evidence) AS evidence
FROM death_records GROUP BY person_id_key;
"""


def duckdb_side(lake: Path, sql_dir: Path, threads: int) -> None:
    """Runs in its own process (see main); prints one JSON line per rule."""
    import duckdb
    commits = [json.loads(p.read_text()) for p in sorted((lake / "_log").glob("*.json"))]
    superseded = {b for c in commits for b in c.get("supersedes", [])}
    live = [c for c in commits if c["batch"] not in superseded]
    files = {}
    for c in live:
        for f in c["files"]:
            if f["rows"] > 0:
                files.setdefault(f["dataset"], []).append(str(lake / f["path"]))
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    t = time.perf_counter()
    for dataset, paths in files.items():
        listing = ", ".join(f"'{p}'" for p in paths)
        con.execute(f"CREATE VIEW {dataset} AS SELECT * FROM read_parquet([{listing}], union_by_name = true)")
    con.execute("CREATE TABLE batches (batch VARCHAR, seq BIGINT, source VARCHAR, file VARCHAR, as_of DATE, "
                "committed_at VARCHAR, live BOOLEAN)")
    con.executemany("INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(c["batch"], c["seq"], c["source"], c["file"], c["as_of"], c["committed_at"],
                      c["batch"] not in superseded) for c in commits])
    for stmt in to_duckdb(SYSTEM_VIEWS).split(";"):
        if stmt.strip():
            con.execute(stmt)
    print(json.dumps({"setup_s": time.perf_counter() - t}), flush=True)
    for rule in RULES:
        sql = to_duckdb((sql_dir / f"{rule}.sql").read_text())
        t = time.perf_counter()
        result = con.execute(sql)
        # Whole result, as Arrow when pyarrow is there (cheapest for DuckDB), else as rows.
        try:
            rows = result.to_arrow_table().num_rows
        except (AttributeError, ImportError, ModuleNotFoundError):
            rows = len(result.fetchall())
        print(json.dumps({"rule": rule, "rows": rows, "s": time.perf_counter() - t}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/hedui-bench"))
    ap.add_argument("--hedui", type=Path, help="a hedui release binary to use instead of building one")
    ap.add_argument("--duckdb-side", nargs=2, metavar=("LAKE", "SQL_DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    threads = os.cpu_count()
    if args.duckdb_side:
        duckdb_side(Path(args.duckdb_side[0]), Path(args.duckdb_side[1]), threads)
        return
    try:
        import duckdb  # noqa: F401
    except ImportError:
        sys.exit("error: DuckDB is not installed: pip install duckdb")

    hedui = args.hedui or hedui_binary()
    city = args.work / f"city-{args.persons}-{args.seed}"
    if not (city / "truth.json").exists():
        t = time.perf_counter()
        subprocess.run([hedui, "generate", "--persons", str(args.persons), "--seed", str(args.seed), "--out", city],
                       check=True, stdout=subprocess.DEVNULL)
        print(f"generate {args.persons:,} persons: {time.perf_counter() - t:.1f} s")
    lake = args.work / f"lake-{args.persons}-{args.seed}"
    if not (lake / "_log").is_dir():
        t = time.perf_counter()
        subprocess.run([hedui, "ingest", "--connectors", ROOT / "connectors", "--data", city / "data", "--lake", lake],
                       check=True, stdout=subprocess.DEVNULL)
        print(f"ingest: {time.perf_counter() - t:.1f} s")

    # The SQL each rule runs, with this city's (default) parameters.
    sql_dir = args.work / "rules-sql"
    sql_dir.mkdir(parents=True, exist_ok=True)
    for rule in RULES:
        sql = subprocess.run([hedui, "rules", "show", rule, "--sql"], check=True, capture_output=True, text=True).stdout
        (sql_dir / f"{rule}.sql").write_text(sql)

    # hedui: the whole check, with a fresh case store so every hit is raised as a new case.
    cases_db = args.work / "bench-cases.db"
    cases_db.unlink(missing_ok=True)
    env = {**os.environ, "HEDUI_LOG": "hedui_engine=info,hedui_service=info,warn"}
    h_wall, h_rss, _, h_err = run_measured(
        [hedui, "--log-json", "check", "--lake", lake, "--cases", f"sqlite://{cases_db}", "--format", "csv",
         "--out", args.work / "hits.csv"], env=env)
    h = {}
    recorded = {}
    for line in h_err.splitlines():
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            continue
        f = ev.get("fields", {})
        if f.get("message") == "rule ran":
            h[f["rule"]] = {"rows": f["rows"], "hits": f["hits"], "s": f["ms"] / 1000}
        elif f.get("message") == "run recorded":
            recorded = f
    missing = [r for r in RULES if r not in h]
    if missing:
        sys.exit(f"error: no `rule ran` event for {missing} in hedui's log:\n{h_err[-2000:]}")

    # DuckDB, in a process of its own.
    d_wall, d_rss, d_out, _ = run_measured(
        [sys.executable, __file__, "--duckdb-side", str(lake), str(sql_dir)])
    d = {}
    d_setup = 0.0
    for line in d_out.splitlines():
        ev = json.loads(line)
        if "rule" in ev:
            d[ev["rule"]] = ev
        else:
            d_setup = ev["setup_s"]

    rows_by_dataset = subprocess.run(
        [hedui, "sql", "--lake", lake, "--format", "csv",
         "SELECT (SELECT count(*) FROM persons) AS persons, (SELECT count(*) FROM pension_payments) AS pension_rows, "
         "(SELECT count(*) FROM dibao_payments) AS dibao_rows, (SELECT count(*) FROM contributions) AS contribution_rows"],
        check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    print(f"\nrule suite on a city of {args.persons:,} persons (seed {args.seed}), {threads} threads each; "
          f"live rows persons,pension,dibao,contributions = {rows_by_dataset}")
    print(f"{'rule':<5} {'SQL rows':>10} {'hits':>8} {'hedui s':>9} {'DuckDB s':>9} {'ratio':>6}")
    th = td = 0.0
    mismatch = []
    for rule in RULES:
        th += h[rule]["s"]
        td += d[rule]["s"]
        same = h[rule]["rows"] == d[rule]["rows"]
        if not same:
            mismatch.append(f"{rule}: hedui {h[rule]['rows']} rows, DuckDB {d[rule]['rows']}")
        print(f"{rule:<5} {h[rule]['rows']:>10,} {h[rule]['hits']:>8,} {h[rule]['s']:>9.2f} {d[rule]['s']:>9.2f} "
              f"{h[rule]['s'] / max(d[rule]['s'], 1e-9):>6.2f}{'' if same else '  ROW COUNTS DIFFER'}")
    print(f"{'all':<5} {'':>10} {'':>8} {th:>9.2f} {td:>9.2f} {th / max(td, 1e-9):>6.2f}")
    print(f"\nrules only: hedui {th:.2f} s, DuckDB {td:.2f} s, ratio hedui/DuckDB = {th / max(td, 1e-9):.2f}")
    print(f"whole command: `hedui check` {h_wall:.1f} s wall (rules + evidence rows + case store), "
          f"peak RSS {h_rss:.0f} MiB; DuckDB process {d_wall:.1f} s wall (views {d_setup:.2f} s), "
          f"peak RSS {d_rss:.0f} MiB")
    if recorded:
        rest = h_wall - th - (recorded["evidence_ms"] + recorded["regions_ms"] + recorded["store_ms"]) / 1000
        print(f"split of `hedui check`: rules {th:.2f} s, evidence rows {recorded['evidence_ms'] / 1000:.2f} s, "
              f"subjects' regions {recorded['regions_ms'] / 1000:.2f} s, case store {recorded['store_ms'] / 1000:.2f} s "
              f"({recorded['hits']:,} hits, {recorded['new']:,} new cases), the rest (start, lake, planning) {rest:.2f} s")
    if mismatch:
        print("\nwarning: the two sides returned different row counts: " + "; ".join(mismatch))
        sys.exit(1)


if __name__ == "__main__":
    main()
