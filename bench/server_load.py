#!/usr/bin/env python3
"""Benchmark (not a test): `hedui serve` under load from `wrk` on loopback, answering a point
query (one person, by resident ID, with a stated purpose) through the policies and the audit log;
then the reviewers' calls one at a time: the single-person check and household verification,
with their percentiles, and DuckDB doing the same lookups over the same Parquet.

    apt-get install wrk; pip install duckdb
    python3 bench/server_load.py --persons 1000000 --seconds 30 [--connections 1,8]

One wrk pass per connection count. Prints wrk's requests/s and latency percentiles, the non-2xx responses and socket errors (both
must be 0), checks the audit log's chain and that it holds one entry per request, and runs the
same point query with DuckDB over the same Parquet files in one process (no HTTP, no policy, no
audit) as the floor a user would compare against.
"""
import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def hedui_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/hedui-target"))
    subprocess.run(["cargo", "build", "--release", "-p", "hedui", "--quiet"], cwd=ROOT, check=True,
                   env={**os.environ, "CARGO_TARGET_DIR": str(target)})
    return target / "release" / "hedui"


def post(url: str, token: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--connections", default="1,8", help="wrk connection counts to run, one pass each")
    ap.add_argument("--work", type=Path, default=Path("/tmp/hedui-bench"))
    ap.add_argument("--hedui", type=Path, help="a hedui release binary to use instead of building one")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("error: wrk is not installed: apt-get install wrk")
    hedui = args.hedui or hedui_binary()
    city = args.work / f"city-{args.persons}-{args.seed}"
    if not (city / "truth.json").exists():
        subprocess.run([hedui, "generate", "--persons", str(args.persons), "--seed", str(args.seed), "--out", city],
                       check=True, stdout=subprocess.DEVNULL)
    serve_dir = args.work / "serve"
    shutil.rmtree(serve_dir, ignore_errors=True)
    lake = serve_dir / "lake"
    t = time.perf_counter()
    subprocess.run([hedui, "ingest", "--connectors", ROOT / "connectors", "--data", city / "data", "--lake", lake],
                   check=True, stdout=subprocess.DEVNULL)
    print(f"ingest of {args.persons:,} persons: {time.perf_counter() - t:.1f} s")

    server = subprocess.Popen([hedui, "serve", "--lake", lake, "--http", "127.0.0.1:0", "--pg", "off"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        addr = None
        for line in server.stdout:
            m = re.search(r"http://([0-9.:]+)/api/v1", line)
            if m:
                addr = m.group(1)
                break
        if not addr:
            sys.exit("error: the server did not start")
        url = f"http://{addr}/api/v1/sql"
        token = subprocess.run([hedui, "token", "--lake", lake, "--role", "admin", "--ttl", "1h"],
                               check=True, capture_output=True, text=True).stdout.strip()
        sample = post(url, token, {"sql": "SELECT person_id FROM persons WHERE person_id IS NOT NULL LIMIT 5000",
                                   "purpose": "BENCH-LOAD-1"})
        ids = [r["person_id"] for r in sample["rows"]]
        random.Random(1).shuffle(ids)
        query = "SELECT person_id, name, sex, birth_date, region_code, status FROM persons WHERE person_id = '{id}'"
        one = post(url, token, {"sql": query.format(id=ids[0]), "purpose": "BENCH-LOAD-1"})
        assert one["row_count"] == 1, one
        # The server precomputes the person checks of each lake version in the background; wait
        # until that is done (as a clerk would find it a few seconds after a start), so that no
        # measurement below shares the cores with it.
        def check(i):
            req = urllib.request.Request(f"http://{addr}/api/v1/persons/{i}/check?purpose=BENCH-LOAD-1",
                                         headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req) as r:
                return json.loads(r.read())
        t = time.perf_counter()
        while not check(ids[0]).get("precomputed"):
            if time.perf_counter() - t > 300:
                sys.exit("error: person checks were not precomputed within 5 minutes")
            time.sleep(0.5)
        print(f"person checks precomputed {time.perf_counter() - t:.1f} s after the first request")
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write("ids = {" + ",".join(f'"{i}"' for i in ids) + "}\n")
            lua.write(f'token = "{token}"\n')
            lua.write("n = 0\nrequest = function()\n  n = n + 1\n  local id = ids[(n % #ids) + 1]\n")
            lua.write('  local body = \'{"sql":"' + query.replace("'", "\\'").replace("{id}", "\' .. id .. \'")
                      + '","purpose":"BENCH-LOAD-1"}\'\n')
            lua.write('  return wrk.format("POST", "/api/v1/sql", {["Authorization"] = "Bearer " .. token, '
                      '["Content-Type"] = "application/json"}, body)\nend\n')
            script = lua.name
        passes = []
        for conns in [int(c) for c in args.connections.split(",")]:
            lines_before = sum(1 for _ in open(serve_dir / "hedui-audit.log"))
            out = subprocess.run(["wrk", "-t", str(min(conns, 2)), "-c", str(conns), "-d", f"{args.seconds}s",
                                  "--latency", "-s", script, f"http://{addr}/api/v1/sql"], check=True,
                                 capture_output=True, text=True).stdout
            time.sleep(1)
            lines_after = sum(1 for _ in open(serve_dir / "hedui-audit.log"))
            passes.append((conns, out, lines_after - lines_before))
        os.unlink(script)
        # The single-person check at application time: every person rule for one person.
        check_ms = []
        for i in ids[:200]:
            req = urllib.request.Request(f"http://{addr}/api/v1/persons/{i}/check?purpose=BENCH-LOAD-1",
                                         headers={"Authorization": f"Bearer {token}"})
            t = time.perf_counter()
            with urllib.request.urlopen(req) as r:
                json.loads(r.read())
            check_ms.append((time.perf_counter() - t) * 1000)
        check_ms.sort()
        # Household verification: 200 dibao households, every member in every source.
        # An administrator: households of every region (a dibao reviewer's token names one region
        # and verifies only that region's households).
        dibao = token
        households = post(url, token, {"sql": "SELECT household_no, string_agg(person_id, ',') AS members "
                                              "FROM dibao_members GROUP BY household_no ORDER BY household_no LIMIT 200",
                                       "purpose": "BENCH-LOAD-1"})["rows"]
        households = [h["members"].split(",") for h in households]
        verify_ms, verdicts = [], {}
        for members in households:
            req = urllib.request.Request(f"http://{addr}/api/v1/households/verify", method="POST",
                                         data=json.dumps({"members": members, "authorisation": "BENCH-AUTH-1"}).encode(),
                                         headers={"Authorization": f"Bearer {dibao}", "Content-Type": "application/json"})
            t = time.perf_counter()
            with urllib.request.urlopen(req) as r:
                report = json.loads(r.read())
            verify_ms.append((time.perf_counter() - t) * 1000)
            verdicts[report["verdict"]] = verdicts.get(report["verdict"], 0) + 1
            window = report["window"]
        verify_ms.sort()
        verify = subprocess.run([hedui, "audit", "verify", "--lake", lake], capture_output=True, text=True)
    finally:
        server.terminate()
        server.wait()

    failed = False
    p50_one = None
    for conns, out, audited in passes:
        requests = int(re.search(r"(\d+) requests in", out).group(1))
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
        non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
        sock = re.search(r"Socket errors: (.*)", out)
        failed |= bool(non2xx or sock)
        if conns == 1:
            p50_one = parse_ms(pct.get("50"))
        print(f"\nhedui serve, point query by resident ID (admin with a purpose, audited), {conns} connection(s), "
              f"{args.seconds} s, on {args.persons:,} persons:")
        print(f"  {requests:,} requests, {rps:,.0f} requests/s; latency p50 {pct.get('50')}, p75 {pct.get('75')}, "
              f"p90 {pct.get('90')}, p99 {pct.get('99')}")
        print(f"  non-2xx responses: {non2xx}; socket errors: {sock.group(1) if sock else 'none'}; "
              f"audit entries written: {audited:,} (wrk counts the {requests:,} completed in its window; "
              f"requests in flight at its end are answered and audited too)")
    q = lambda xs, f: xs[int(f * (len(xs) - 1))]
    print(f"\nGET /api/v1/persons/{{id}}/check (5 person rules for one person), one at a time, {len(check_ms)} "
          f"persons: p50 {q(check_ms, 0.5):.1f} ms, p90 {q(check_ms, 0.9):.1f} ms, p99 {q(check_ms, 0.99):.1f} ms")
    print(f"POST /api/v1/households/verify ({len(verify_ms)} dibao households, "
          f"{sum(len(h) for h in households) / max(1, len(households)):.1f} members each, 9 sources), one at a time: "
          f"p50 {q(verify_ms, 0.5):.1f} ms, p90 {q(verify_ms, 0.9):.1f} ms, p99 {q(verify_ms, 0.99):.1f} ms; "
          f"verdicts {verdicts}")
    print(f"`hedui audit verify`: {verify.stdout.strip() or verify.stderr.strip()}")

    try:
        import duckdb
    except ImportError:
        print("DuckDB is not installed (pip install duckdb): no comparison")
        return
    commits = [json.loads(p.read_text()) for p in sorted((lake / "_log").glob("*.json"))]
    superseded = {b for c in commits for b in c.get("supersedes", [])}
    con = duckdb.connect()
    for dataset, _ in HOUSEHOLD_SOURCES:
        files = [str(lake / f["path"]) for c in commits if c["batch"] not in superseded
                 for f in c["files"] if f["dataset"] == dataset and f["rows"] > 0]
        con.execute(f"CREATE VIEW {dataset} AS SELECT * FROM read_parquet({files!r})")
    times = []
    for i in ids[:500]:
        t = time.perf_counter()
        con.execute(query.format(id=i)).fetchall()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    p = lambda q: times[int(q * (len(times) - 1))]
    print(f"\nDuckDB, same query in-process over the same Parquet (no HTTP, policy or audit), one at a time: "
          f"{1000 / statistics.mean(times):,.0f} queries/s; p50 {p(0.5):.2f} ms, p99 {p(0.99):.2f} ms")
    if p50_one:
        print(f"ratio of p50 latencies, one connection, hedui/DuckDB: {p50_one / p(0.5):.2f}")
    # The household lookups alone, in DuckDB: each source's rows for the members' keys, income
    # within the same months as hedui's window.
    duck_ms = []
    months = f"DATE '{window[0]}-01' AND DATE '{window[-1]}-01'"
    for members in households:
        keys = ", ".join(str(int(m[:17])) for m in members)
        t = time.perf_counter()
        for dataset, key in HOUSEHOLD_SOURCES:
            month = INCOME_MONTH.get(dataset)
            within = f" AND {month} BETWEEN {months}" if month else ""
            con.execute(f"SELECT * FROM {dataset} WHERE {key} IN ({keys}){within}").fetchall()
        duck_ms.append((time.perf_counter() - t) * 1000)
    duck_ms.sort()
    print(f"DuckDB, the household lookups alone (9 sources, income in the same window, in-process, no verdict, "
          f"HTTP, policy or audit): "
          f"p50 {q(duck_ms, 0.5):.1f} ms, p90 {q(duck_ms, 0.9):.1f} ms, p99 {q(duck_ms, 0.99):.1f} ms; "
          f"ratio of p99, hedui/DuckDB: {q(verify_ms, 0.99) / q(duck_ms, 0.99):.2f}")
    if failed:
        sys.exit(1)


# What household verification reads: each source and its resident-ID key column.
HOUSEHOLD_SOURCES = [("persons", "person_id_key"), ("tax_income", "person_id_key"),
                     ("pension_payments", "person_id_key"), ("unemployment_benefits", "person_id_key"),
                     ("provident_fund", "person_id_key"), ("vehicles", "owner_id_key"),
                     ("properties", "owner_id_key"), ("businesses", "legal_rep_id_key"),
                     ("dibao_members", "person_id_key")]
INCOME_MONTH = {"tax_income": "period", "pension_payments": "month", "unemployment_benefits": "month",
                "provident_fund": "month"}


def parse_ms(s: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", s or "")
    if not m:
        return float("nan")
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


if __name__ == "__main__":
    main()
