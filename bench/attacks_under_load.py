#!/usr/bin/env python3
"""Benchmark (not a test): honest point queries under load, with and without an attacker.

    python3 bench/attacks_under_load.py --persons 100000 --seconds 60 [--hedui PATH]

Starts `hedui serve` on a generated city and keeps `--connections` keep-alive connections of
honest point queries (one person by resident ID, as an administrator with a purpose) busy for
`--seconds`; then the same again while a second client sends the attacks of issue 11 in a loop:
a 2,000-term expression, a 300 KB statement, a value doubled through 40 CTEs, functions that are
not allowed, tokens from the future / valid for centuries / of 267 KB, a statement refused at
Parse over Postgres, 200 idle connections and a client trickling its headers. Prints the honest
client's requests/s, p50, p99 and errors (which must be 0) for both runs, and the ratio.
"""
import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def hedui_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/hedui-target"))
    subprocess.run(["cargo", "build", "--release", "-p", "hedui", "--quiet"], cwd=ROOT, check=True,
                   env={**os.environ, "CARGO_TARGET_DIR": str(target)})
    return target / "release" / "hedui"


def honest(addr, token, ids, seconds, out):
    host, port = addr.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    lat, errors, i = [], 0, 0
    end = time.time() + seconds
    while time.time() < end:
        pid = ids[i % len(ids)]
        i += 1
        body = json.dumps({"sql": f"SELECT * FROM pension_payments WHERE person_id = '{pid}'",
                           "purpose": "BENCH-2026-1"})
        t = time.perf_counter()
        try:
            conn.request("POST", "/api/v1/sql", body, {"Authorization": f"Bearer {token}",
                                                       "Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                errors += 1
        except Exception:
            errors += 1
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
        lat.append((time.perf_counter() - t) * 1000)
    out.append((lat, errors))


def attacker(addr, pg, tokens, stop):
    host, port = addr.split(":")
    deep = "SELECT " + "+".join(["1"] * 2000)
    huge = "SELECT length('" + "x" * 300_000 + "')"
    ctes = "WITH s0 AS (SELECT name AS v FROM persons)" + "".join(
        f", s{i} AS (SELECT concat(v, v) AS v FROM s{i - 1})" for i in range(1, 41)) + " SELECT max(length(v)) FROM s40"
    bad_fn = "SELECT levenshtein(repeat('a', 90000), repeat('b', 90000))"
    idle = []
    while not stop.is_set():
        for sql in [deep, huge, ctes, bad_fn]:
            try:
                c = http.client.HTTPConnection(host, int(port), timeout=60)
                c.request("POST", "/api/v1/sql", json.dumps({"sql": sql}),
                          {"Authorization": f"Bearer {tokens['connector']}", "Content-Type": "application/json"})
                c.getresponse().read()
                c.close()
            except Exception:
                pass
        for t in tokens["bad"]:
            try:
                c = http.client.HTTPConnection(host, int(port), timeout=10)
                c.request("GET", "/api/v1/whoami", headers={"Authorization": f"Bearer {t}"})
                c.getresponse().read()
                c.close()
            except Exception:
                pass
        subprocess.run(["psql", f"host={pg[0]} port={pg[1]} user=x dbname=hedui", "-c", deep],
                       env={**os.environ, "PGPASSWORD": tokens["connector"]}, capture_output=True)
        while len(idle) < 200:
            try:
                idle.append(socket.create_connection((host, int(port)), timeout=2))
            except OSError:
                break
        try:
            s = socket.create_connection((host, int(port)), timeout=2)
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
            idle.append(s)
        except OSError:
            pass
        idle = idle[-200:]


def run_phase(addr, pg, admin, ids, conns, seconds, tokens, attack):
    stop = threading.Event()
    atk = threading.Thread(target=attacker, args=(addr, pg, tokens, stop)) if attack else None
    if atk:
        atk.start()
    out = []
    threads = [threading.Thread(target=honest, args=(addr, admin, ids[k::conns], seconds, out)) for k in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    if atk:
        atk.join()
    lat = sorted(x for l, _ in out for x in l)
    errors = sum(e for _, e in out)
    rps = len(lat) / seconds
    return rps, statistics.median(lat), lat[int(len(lat) * 0.99) - 1], errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--hedui", type=Path)
    args = ap.parse_args()
    hedui = args.hedui or hedui_binary()
    work = Path(tempfile.mkdtemp(prefix="hedui-attacks-"))
    subprocess.run([hedui, "generate", "--persons", str(args.persons), "--seed", "1", "--out", work / "city"], check=True, capture_output=True)
    subprocess.run([hedui, "ingest", "--connectors", ROOT / "connectors", "--data", work / "city" / "data", "--lake", work / "lake"], check=True, capture_output=True)
    tok = lambda *a: subprocess.run([hedui, "token", "--lake", work / "lake", *a], check=True, capture_output=True, text=True).stdout.strip()
    server = subprocess.Popen([hedui, "serve", "--lake", work / "lake", "--http", "127.0.0.1:0", "--pg", "127.0.0.1:0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    addr = pg = None
    for line in server.stdout:
        if "HTTP      http://" in line:
            addr = line.split("http://")[1].split("/")[0]
        if line.strip().startswith("Postgres"):
            pg = (line.split("host=")[1].split(" ")[0], line.split("port=")[1].split(" ")[0])
        if addr and pg:
            break
    threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
    admin = tok("--role", "admin")
    out = subprocess.run([hedui, "sql", "--lake", work / "lake", "--format", "csv", "SELECT DISTINCT person_id FROM pension_payments LIMIT 5000"],
                         check=True, capture_output=True, text=True).stdout.split()[1:]
    import base64, hmac, hashlib
    key = bytes.fromhex((work / "hedui-jwt.key").read_text().strip())
    def jwt(claims):
        b = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=")
        msg = b({"alg": "HS256", "typ": "JWT"}) + b"." + b(claims)
        return (msg + b"." + base64.urlsafe_b64encode(hmac.new(key, msg, hashlib.sha256).digest()).rstrip(b"=")).decode()
    now = int(time.time())
    base = {"sub": "mallory", "roles": ["analyst"], "iss": "hedui"}
    tokens = {"connector": tok("--role", "connector"), "bad": [
        jwt({**base, "iat": now + 3600, "exp": now + 7200}),
        jwt({**base, "iat": now, "exp": 7258118400}),
        jwt({**base, "iat": now, "exp": now + 3600, "pad": "x" * 267_000})]}
    try:
        quiet = run_phase(addr, pg, admin, out, args.connections, args.seconds, tokens, False)
        loud = run_phase(addr, pg, admin, out, args.connections, args.seconds, tokens, True)
    finally:
        server.kill()
    print(f"{args.persons} persons, {args.connections} honest connections, {args.seconds} s each")
    print(f"{'':28s} {'requests/s':>11s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s}")
    for name, (rps, p50, p99, err) in [("honest, no attack", quiet), ("honest, under attack", loud)]:
        print(f"{name:28s} {rps:11.1f} {p50:8.1f} {p99:8.1f} {err:7d}")
    print(f"ratio under attack / without: requests/s {loud[0] / quiet[0]:.2f}, p99 {loud[2] / quiet[2]:.2f}")
    if loud[3] or quiet[3]:
        sys.exit("error: the honest client saw errors")


if __name__ == "__main__":
    main()
