#!/usr/bin/env python3
"""REST throughput of `acql serve` on PostgreSQL: one server, then two on the same database.

Issue 18's scale-out claim, measured: several `acql serve` processes on one PostgreSQL
database answer the same searches, so a load balancer in front of two should serve more
requests per second than one. This script

1. starts a throwaway PostgreSQL cluster (initdb into a temporary directory, as the
   `postgres` user when run as root, a free port, default durability settings), unless
   `--database-url` names one;
2. generates `--docs` accounts with `acql gen` and imports them with `acql import`;
3. starts one `acql serve`, drives indexed `accounts.search` requests at it from
   `--clients` client processes (keep-alive HTTP/1.1, each request a random point lookup
   by email or an equality page by country) for `--seconds`, and counts the answers;
4. starts a second `acql serve` on the same database and drives the same clients, half at
   each server;
5. prints a table (requests/s, latency percentiles, ratio) and stops everything it started.

Every answer is checked (`errorCode` 0 and the expected result count), so a failing server
cannot look fast. It measures; it asserts no speed.

    cargo build --release --bin acql
    python3 scripts/bench/serve.py --docs 100000 --clients 8 --seconds 20
    python3 scripts/bench/serve.py --docs 100000 --clients 16 --seconds 20 --wrk

With `--wrk` the load comes from wrk (one process per server, `--clients` connections in
all) instead of Python processes, which on a small machine take more CPU than the servers
they measure; the same mix, every answer checked in wrk's Lua.
"""

import argparse
import json
import multiprocessing
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import http.client
import urllib.parse


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin():
    root = "/usr/lib/postgresql"
    versions = sorted(
        (d for d in os.listdir(root) if os.path.isfile(f"{root}/{d}/bin/initdb")),
        key=lambda v: int(v) if v.isdigit() else 0,
    ) if os.path.isdir(root) else []
    if versions:
        return f"{root}/{versions[-1]}/bin"
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(found)
    sys.exit("no PostgreSQL server binaries (initdb, pg_ctl) found")


class Cluster:
    """A throwaway cluster, stopped and removed by `stop`."""

    def __init__(self):
        self.bin = pg_bin()
        self.root = os.geteuid() == 0
        self.dir = tempfile.mkdtemp(prefix="acql-serve-bench-")
        if self.root:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
                 "--locale=C")
        self.run("pg_ctl", "-D", self.data, "-w", "-l", os.path.join(self.dir, "log"), "-o",
                 f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                 "-c max_connections=200", "start")
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, program, *args):
        cmd = [os.path.join(self.bin, program), *args]
        if self.root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def stop(self):
        try:
            self.run("pg_ctl", "-D", self.data, "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def wait_for_port(port, process, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"acql serve on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"acql serve on port {port} did not start")


def serve(acql, url, log):
    port = free_port()
    process = subprocess.Popen(
        [acql, "serve", url, "--listen", f"127.0.0.1:{port}", "--log-level", "warn",
         "--max-queries", "16"],
        stdout=log, stderr=log,
    )
    wait_for_port(port, process)
    return port, process


def client(args):
    """One client process: keep-alive requests at its server until the deadline."""
    port, emails, countries, deadline, seed = args
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    done, failed, latencies = 0, 0, []
    while time.time() < deadline:
        if rng.random() < 0.8:
            email = rng.choice(emails)
            query = f'SELECT email FROM emailAccounts WHERE email = "{email}"'
            want = 1
        else:
            country = rng.choice(countries)
            query = (f'SELECT email FROM emailAccounts WHERE profile.country = "{country}"'
                     " LIMIT 10")
            want = 10
        body = urllib.parse.urlencode({"query": query})
        started = time.perf_counter()
        try:
            conn.request("POST", "/accounts.search", body,
                         {"Content-Type": "application/x-www-form-urlencoded"})
            reply = json.loads(conn.getresponse().read())
        except (OSError, http.client.HTTPException, ValueError):
            failed += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        latencies.append(time.perf_counter() - started)
        if reply.get("errorCode") == 0 and len(reply.get("results", [])) == want:
            done += 1
        else:
            failed += 1
    return done, failed, latencies


def drive(ports, clients, seconds, emails, countries):
    deadline = time.time() + seconds
    jobs = [(ports[i % len(ports)], emails, countries, deadline, i) for i in range(clients)]
    started = time.time()
    with multiprocessing.Pool(clients) as pool:
        results = pool.map(client, jobs)
    elapsed = time.time() - started
    done = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    latencies = sorted(l for r in results for l in r[2])
    pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000
    return {
        "rps": done / elapsed,
        "done": done,
        "failed": failed,
        "p50": pct(0.5) if latencies else 0,
        "p99": pct(0.99) if latencies else 0,
    }


WRK_SCRIPT = r"""
-- One request per call: 80% a point lookup by a random email, 20% the first 10 of a
-- random country; an answer that is not errorCode 0 with one or ten records is counted.
local emails, countries = {}, {}
failed = 0
local function load(path, into)
  for line in io.lines(path) do into[#into + 1] = line end
end
local function encode(s)
  return (s:gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end
local threads = {}
function setup(thread) threads[#threads + 1] = thread end
function init(args)
  load(args[1], emails)
  load(args[2], countries)
  math.randomseed(tonumber(args[3]) + os.time())
end
function request()
  local q
  if math.random() < 0.8 then
    q = 'SELECT email FROM emailAccounts WHERE email = "' .. emails[math.random(#emails)] .. '"'
  else
    q = 'SELECT email FROM emailAccounts WHERE profile.country = "'
      .. countries[math.random(#countries)] .. '" LIMIT 10'
  end
  return wrk.format("POST", "/accounts.search",
    {["Content-Type"] = "application/x-www-form-urlencoded"}, "query=" .. encode(q))
end
function response(status, headers, body)
  local _, n = body:gsub('"email":', "")
  -- A lookup finds one account, a page ten (requests interleave on a thread, so either).
  if status ~= 200 or not body:find('"errorCode":%s*0') or (n ~= 1 and n ~= 10) then
    failed = failed + 1
  end
end
function done(summary, latency, requests)
  local f = 0
  for _, t in ipairs(threads) do f = f + (t:get("failed") or 0) end
  io.write(string.format("FAILED %d\n", f))
end
"""


def drive_wrk(ports, clients, seconds, emails, countries, work):
    """The same mix driven by wrk (C, event-driven: far less CPU per request than the Python
    clients), one wrk per server with its share of the connections; sums their rates."""
    ef, cf, script = (os.path.join(work, n) for n in ("emails.txt", "countries.txt", "load.lua"))
    for path, lines in ((ef, emails), (cf, countries)):
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT)
    per = max(1, clients // len(ports))
    procs = [subprocess.Popen(
        ["wrk", "-t1", f"-c{per}", f"-d{max(1, round(seconds))}s", "--latency", "-s", script,
         f"http://127.0.0.1:{port}", "--", ef, cf, str(i)],
        stdout=subprocess.PIPE, text=True) for i, port in enumerate(ports)]
    rps, done, failed, p50, p99 = 0.0, 0, 0, 0.0, 0.0
    for proc in procs:
        out = proc.communicate()[0]
        for line in out.splitlines():
            parts = line.split()
            if line.startswith("Requests/sec:"):
                rps += float(parts[1])
            elif "requests in" in line:
                done += int(parts[0])
            elif line.startswith("FAILED"):
                failed += int(parts[1])
            elif parts[:1] == ["50%"]:
                p50 = max(p50, wrk_ms(parts[1]))
            elif parts[:1] == ["99%"]:
                p99 = max(p99, wrk_ms(parts[1]))
    return {"rps": rps, "done": done - failed, "failed": failed, "p50": p50, "p99": p99}


def wrk_ms(text):
    for unit, scale in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return float(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--acql", default="target/release/acql")
    ap.add_argument("--database-url", help="use this database instead of a throwaway cluster "
                    "(it must be empty or already hold the generated accounts)")
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--wrk", action="store_true",
                    help="drive the load with wrk (Debian package `wrk`) instead of Python "
                         "client processes; --clients is then the number of connections")
    a = ap.parse_args()
    if a.wrk and not shutil.which("wrk"):
        sys.exit("--wrk: no wrk on PATH (apt-get install wrk)")

    cluster = None
    servers = []
    work = tempfile.mkdtemp(prefix="acql-serve-bench-data-")
    try:
        if a.database_url:
            url = a.database_url
        else:
            cluster = Cluster()
            url = cluster.url
        data = os.path.join(work, "data.ndjson")
        subprocess.run([a.acql, "gen", "--count", str(a.docs), "--seed", "42", "--output", data],
                       check=True)
        emails, countries = [], set()
        with open(data) as f:
            for line in f:
                doc = json.loads(line)
                emails.append(doc["email"])
                countries.add(doc.get("profile", {}).get("country"))
        countries.discard(None)
        # Countries with at least 10 accounts, so that every page is full.
        counts = {}
        with open(data) as f:
            for line in f:
                c = json.loads(line).get("profile", {}).get("country")
                counts[c] = counts.get(c, 0) + 1
        countries = sorted(c for c in countries if counts.get(c, 0) >= 10)
        count_out = subprocess.run([a.acql, url, "SELECT count(*) FROM emailAccounts"],
                                   capture_output=True, text=True)
        if str(a.docs) not in count_out.stdout:
            subprocess.run([a.acql, "import", "--quiet", url, data], check=True)
        os.remove(data)
        log = open(os.path.join(work, "serve.log"), "w")

        rows = []
        servers.append(serve(a.acql, url, log))
        for step in (1, 2):
            if step == 2:
                servers.append(serve(a.acql, url, log))
            ports = [p for p, _ in servers]
            if a.wrk:
                drive_wrk(ports, a.clients, a.warmup, emails, countries, work)
                r = drive_wrk(ports, a.clients, a.seconds, emails, countries, work)
            else:
                drive(ports, a.clients, a.warmup, emails, countries)
                r = drive(ports, a.clients, a.seconds, emails, countries)
            rows.append((step, r))
            print(f"{step} server(s): {r['rps']:.0f} requests/s, {r['failed']} failed",
                  file=sys.stderr)

        nproc = os.cpu_count()
        load = os.getloadavg()
        clients = f"{a.clients} wrk connections" if a.wrk else f"{a.clients} client processes"
        print(f"{a.docs} documents, {clients}, {a.seconds:.0f} s per run, "
              f"{nproc} cores, load average before the last run "
              f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}")
        print()
        print("| servers | requests/s | answers | failed | p50 ms | p99 ms | vs one |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        base = rows[0][1]["rps"]
        for step, r in rows:
            print(f"| {step} | {r['rps']:.0f} | {r['done']} | {r['failed']} | {r['p50']:.2f} "
                  f"| {r['p99']:.2f} | {r['rps'] / base:.2f}× |")
    finally:
        for _, process in servers:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if cluster:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
