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

- DuckDB, idiomatic: each rule written by hand the way a DuckDB user would write it (plain
  joins, `USING`, `GROUP BY ... HAVING`, no evidence structs: the subject and the month), over
  the same views. It must find exactly hedui's hits: the same (rule, subject, month) triples as
  `hedui check` reports.

Both sides must return the same number of SQL rows per rule, and the idiomatic queries the same
hits; the script says so when they do not and exits 1. The ratios are hedui / DuckDB: below 1
means hedui is faster. `--memory-limit 4GiB` runs both inside that much memory (hedui's pool,
DuckDB's `memory_limit`) and prints what hedui spilled.
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
    # Both pipes drained at once (a chatty stderr must not block the child), then wait4 gives
    # this child's own rusage, so each side's peak memory is its own.
    import threading
    err = []
    reader = threading.Thread(target=lambda: err.append(p.stderr.read()))
    reader.start()
    out_chunks = p.stdout.read()
    reader.join()
    err_chunks = err[0]
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


# Each rule as a DuckDB user writes it: what the rule means (shared/domain/rules.md), with this
# city's default parameters, returning (subject, month). Written from the definitions, not from
# hedui's SQL; the script checks they find the same hits.
DEATH = """
death AS (
    SELECT person_id_key, min(d) AS death_date
    FROM (SELECT person_id_key, death_date AS d FROM cremations
          UNION ALL SELECT person_id_key, death_date FROM death_certificates
          UNION ALL SELECT person_id_key, cancel_date FROM persons
                    WHERE status = 'deceased' AND cancel_date IS NOT NULL)
    GROUP BY person_id_key
)"""

IDIOMATIC = {
    "R1": f"""
WITH {DEATH}
SELECT p.person_id AS subject, p.month
FROM pension_payments p JOIN death USING (person_id_key)
WHERE p.month > date_trunc('month', death.death_date)""",
    "R2": """
WITH spans AS (
    SELECT e.person_id_key AS k, e.person_id AS pid, e.scheme, e.region_code AS region,
           e.start_date AS s, coalesce(e.end_date, b.as_of) AS e, 'm' || e._batch || e._row AS ref
    FROM medical_enrolments e JOIN batches b ON e._batch = b.batch
    UNION ALL
    SELECT person_id_key, person_id, 'rural_coop_medical', region,
           make_date(enrol_year, 1, 1), make_date(enrol_year, 12, 31), 'r' || _batch || _row
    FROM rural_coop_enrolments
),
pairs AS (
    SELECT a.pid,
           date_trunc('month', greatest(a.s, b.s) - INTERVAL 1 DAY) + INTERVAL 1 MONTH AS first_full,
           date_trunc('month', least(a.e, b.e) + INTERVAL 1 DAY) - INTERVAL 1 MONTH AS last_full
    FROM spans a JOIN spans b ON a.k = b.k AND a.ref < b.ref
    WHERE (a.scheme <> b.scheme OR a.region <> b.region)
)
SELECT pid AS subject, CAST(unnest(generate_series(first_full, last_full, INTERVAL 1 MONTH)) AS DATE) AS month
FROM pairs WHERE first_full <= last_full""",
    "R3": """
SELECT u.person_id AS subject, u.month
FROM unemployment_benefits u JOIN contributions c USING (person_id_key, month)""",
    "R4": """
SELECT p.person_id AS subject, p.month
FROM pension_payments p JOIN incarcerations i USING (person_id_key)
WHERE p.month > date_trunc('month', i.entry_date)
  AND (i.release_date IS NULL OR p.month < date_trunc('month', i.release_date))""",
    "R5": """
WITH pay AS (
    SELECT DISTINCT p.household_no, p.month, last_day(p.month) AS month_end, h.covered_persons AS size
    FROM dibao_payments p JOIN dibao_households h USING (household_no)
    WHERE h.covered_persons > 0
),
member_pay AS (
    SELECT pay.*, m.person_id_key AS k FROM pay JOIN dibao_members m USING (household_no)
),
vehicle AS (
    SELECT household_no, month FROM member_pay x JOIN vehicles v ON v.owner_id_key = x.k
    WHERE v.vehicle_type = 'passenger_car' AND (v.deregistered_date IS NOT NULL OR v.status = 'registered')
      AND (v.first_registered IS NULL OR v.first_registered <= x.month_end)
      AND (v.deregistered_date IS NULL OR v.deregistered_date >= x.month)
),
business AS (
    SELECT household_no, month FROM member_pay x JOIN businesses b ON b.legal_rep_id_key = x.k
    WHERE b.status = 'active' AND (b.founded_date IS NULL OR b.founded_date <= x.month_end)
),
housing AS (
    SELECT household_no, month FROM member_pay x JOIN properties r ON r.owner_id_key = x.k
    WHERE r.usage = 'residential' AND (r.registered_date IS NULL OR r.registered_date <= x.month_end)
    GROUP BY household_no, month, x.k HAVING count(*) > 1
),
income AS (
    SELECT person_id_key AS k, period AS month, income AS amount FROM tax_income
    UNION ALL SELECT person_id_key, month, amount FROM pension_payments
    UNION ALL SELECT person_id_key, month, amount FROM unemployment_benefits
    UNION ALL SELECT person_id_key, month, base FROM provident_fund
),
poor_line AS (
    SELECT household_no, month FROM member_pay x JOIN income i USING (k, month)
    GROUP BY household_no, month, size HAVING sum(i.amount) > 800 * size
)
SELECT household_no AS subject, month FROM vehicle
UNION SELECT * FROM business UNION SELECT * FROM housing UNION SELECT * FROM poor_line""",
    "R6": """
SELECT any_value(person_id) AS subject, month
FROM pension_payments WHERE scheme IN ('enterprise', 'urban_rural_resident')
GROUP BY person_id_key, month HAVING count(DISTINCT scheme) = 2""",
    "R7": f"""
WITH {DEATH},
member AS (
    SELECT m.household_no, date_trunc('month', death.death_date) AS death_month
    FROM dibao_members m LEFT JOIN death USING (person_id_key)
)
SELECT p.household_no AS subject, p.month
FROM dibao_payments p
WHERE EXISTS (SELECT 1 FROM member x WHERE x.household_no = p.household_no AND x.death_month < p.month)
  AND p.covered_persons > (SELECT count(*) FROM member x
                           WHERE x.household_no = p.household_no
                             AND (x.death_month IS NULL OR x.death_month >= p.month))""",
}


def fetch(con, sql):
    """The whole result of `sql`, as Arrow when pyarrow is there (cheapest for DuckDB), else as
    rows."""
    try:
        return con.sql(sql).to_arrow_table()
    except (AttributeError, ImportError, ModuleNotFoundError):
        return con.execute(sql).fetchall()


def duckdb_side(lake: Path, sql_dir: Path, threads: int, memory_limit: str | None, hits_out: Path) -> None:
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
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
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
    hits = {}
    for rule in RULES:
        sql = to_duckdb((sql_dir / f"{rule}.sql").read_text())
        t = time.perf_counter()
        rows = len(fetch(con, sql))
        translated_s = time.perf_counter() - t
        t = time.perf_counter()
        result = fetch(con, IDIOMATIC[rule])
        idiomatic_s = time.perf_counter() - t
        pairs = result.to_pylist() if hasattr(result, "to_pylist") else [
            {"subject": r[0], "month": r[1]} for r in result]
        hits[rule] = sorted({f"{p['subject']} {str(p['month'])[:7]}" for p in pairs})
        print(json.dumps({"rule": rule, "rows": rows, "s": translated_s, "idiomatic_s": idiomatic_s}), flush=True)
    hits_out.write_text(json.dumps(hits))


def print_split(h_wall: float, rules_s: float, recorded: dict, memory_limit: str | None) -> None:
    """Where the time of `hedui check` went after its rules (its `run recorded` event), and what
    it spilled inside a memory limit."""
    if not recorded:
        return
    rest = h_wall - rules_s - (recorded["evidence_ms"] + recorded["regions_ms"] + recorded["store_ms"]) / 1000
    print(f"split of `hedui check`: rules {rules_s:.2f} s, evidence rows {recorded['evidence_ms'] / 1000:.2f} s, "
          f"subjects' regions {recorded['regions_ms'] / 1000:.2f} s, case store {recorded['store_ms'] / 1000:.2f} s "
          f"({recorded['hits']:,} hits, {recorded['new']:,} new cases), the rest (start, lake, planning) {rest:.2f} s")
    if memory_limit:
        print(f"inside {memory_limit}: hedui spilled {recorded.get('spilled_bytes', 0) / 2**20:.1f} MiB, "
              f"{recorded.get('replanned', 0)} rule runs planned again with sort-merge joins")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/hedui-bench"))
    ap.add_argument("--hedui", type=Path, help="a hedui release binary to use instead of building one")
    ap.add_argument("--memory-limit", help="run both sides inside this much memory, e.g. 4GiB")
    ap.add_argument("--no-duckdb", action="store_true",
                    help="hedui's figures only (a city too large to wait for DuckDB's translated SQL)")
    ap.add_argument("--duckdb-side", nargs=3, metavar=("LAKE", "SQL_DIR", "HITS_OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    threads = os.cpu_count()
    if args.duckdb_side:
        duckdb_side(Path(args.duckdb_side[0]), Path(args.duckdb_side[1]), threads, args.memory_limit,
                    Path(args.duckdb_side[2]))
        return
    try:
        import duckdb  # noqa: F401
    except ImportError:
        sys.exit("error: DuckDB is not installed: pip install duckdb")

    hedui = args.hedui or hedui_binary()
    city = args.work / f"city-{args.persons}-{args.seed}"
    if not (city / "truth.json").exists():
        wall, rss, _, _ = run_measured(
            [hedui, "generate", "--persons", str(args.persons), "--seed", str(args.seed), "--out", city])
        print(f"generate {args.persons:,} persons: {wall:.1f} s, peak RSS {rss:.0f} MiB")
    lake = args.work / f"lake-{args.persons}-{args.seed}"
    if not (lake / "_log").is_dir():
        wall, rss, _, _ = run_measured(
            [hedui, "ingest", "--connectors", ROOT / "connectors", "--data", city / "data", "--lake", lake])
        print(f"ingest: {wall:.1f} s, peak RSS {rss:.0f} MiB")

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
    if args.memory_limit:
        env["HEDUI_ENGINE_MEMORY_LIMIT"] = args.memory_limit
        env["HEDUI_ENGINE_SPILL_DIR"] = str(args.work / "spill")
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

    if args.no_duckdb:
        th = sum(h[rule]["s"] for rule in RULES)
        print(f"\nrule suite on a city of {args.persons:,} persons (seed {args.seed}), {threads} threads, hedui only")
        for rule in RULES:
            print(f"{rule:<5} {h[rule]['rows']:>10,} rows {h[rule]['hits']:>8,} hits {h[rule]['s']:>9.2f} s")
        print(f"whole command: `hedui check` {h_wall:.1f} s wall, peak RSS {h_rss:.0f} MiB")
        print_split(h_wall, th, recorded, args.memory_limit)
        return

    # DuckDB, in a process of its own.
    idiomatic_hits = args.work / "idiomatic-hits.json"
    d_wall, d_rss, d_out, d_err = run_measured(
        [sys.executable, __file__, "--duckdb-side", str(lake), str(sql_dir), str(idiomatic_hits)]
        + (["--memory-limit", args.memory_limit] if args.memory_limit else []))
    if not idiomatic_hits.exists():
        sys.exit(f"error: the DuckDB side failed:\n{d_err[-2000:]}")
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
    # hedui's hits as (rule, subject, month), from the check's CSV: `rule,subject,months,...`.
    import csv
    hedui_hits = {rule: set() for rule in RULES}
    with open(args.work / "hits.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for month in row["months"].split():
                hedui_hits[row["rule"]].add(f"{row['subject']} {month}")
    duck_hits = {rule: set(v) for rule, v in json.loads(idiomatic_hits.read_text()).items()}

    ratio = lambda a, b: a / max(b, 1e-9)  # noqa: E731
    print(f"{'rule':<5} {'SQL rows':>10} {'hits':>8} {'months':>8} {'hedui s':>9} {'DuckDB s':>9} {'ratio':>6}"
          f" {'idiomatic s':>12} {'ratio':>6}")
    th = td = ti = 0.0
    mismatch = []
    for rule in RULES:
        th += h[rule]["s"]
        td += d[rule]["s"]
        ti += d[rule]["idiomatic_s"]
        notes = []
        if h[rule]["rows"] != d[rule]["rows"]:
            mismatch.append(f"{rule}: hedui {h[rule]['rows']} rows, DuckDB translated {d[rule]['rows']}")
            notes.append("ROW COUNTS DIFFER")
        if hedui_hits[rule] != duck_hits[rule]:
            only_h = sorted(hedui_hits[rule] - duck_hits[rule])
            only_d = sorted(duck_hits[rule] - hedui_hits[rule])
            mismatch.append(f"{rule}: {len(only_h)} subject-months only hedui found (e.g. {only_h[:3]}), "
                            f"{len(only_d)} only idiomatic DuckDB (e.g. {only_d[:3]})")
            notes.append("HITS DIFFER")
        print(f"{rule:<5} {h[rule]['rows']:>10,} {h[rule]['hits']:>8,} {len(hedui_hits[rule]):>8,} "
              f"{h[rule]['s']:>9.2f} {d[rule]['s']:>9.2f} {ratio(h[rule]['s'], d[rule]['s']):>6.2f}"
              f" {d[rule]['idiomatic_s']:>12.2f} {ratio(h[rule]['s'], d[rule]['idiomatic_s']):>6.2f}"
              f"{'  ' + ', '.join(notes) if notes else ''}")
    print(f"{'all':<5} {'':>10} {'':>8} {'':>8} {th:>9.2f} {td:>9.2f} {ratio(th, td):>6.2f} {ti:>12.2f} {ratio(th, ti):>6.2f}")
    print(f"\nrules only: hedui {th:.2f} s, DuckDB translated {td:.2f} s (ratio {ratio(th, td):.2f}), "
          f"DuckDB idiomatic {ti:.2f} s (ratio {ratio(th, ti):.2f})")
    print(f"whole command: `hedui check` {h_wall:.1f} s wall (rules + evidence rows + case store), "
          f"peak RSS {h_rss:.0f} MiB; DuckDB process {d_wall:.1f} s wall (views {d_setup:.2f} s), "
          f"peak RSS {d_rss:.0f} MiB")
    print_split(h_wall, th, recorded, args.memory_limit)
    if recorded:
        print(f"`hedui check` against DuckDB's idiomatic rules: {h_wall:.1f} s / {ti:.2f} s = {ratio(h_wall, ti):.1f}")
    if mismatch:
        print("\nerror: the two sides disagree: " + "; ".join(mismatch))
        sys.exit(1)


if __name__ == "__main__":
    main()
