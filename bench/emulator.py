"""Emulator throughput: simple authenticated GETs with keep-alive, from client processes.

Starts ``python -m graph_emulator`` as a subprocess (the client burns CPU too,
so in-process would flatter nothing), takes an app-only token, then hammers
GET /v1.0/users/alice@contoso.example for ~5 s from a few processes, each
with a few threads on keep-alive sessions. Prints one JSON object.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing as mp
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import common  # noqa: E402

URL_PATH = "/v1.0/users/alice@contoso.example"


free_port, session = common.free_port, common.session


def worker(base: str, ca: str, token: str, seconds: float, threads: int, out: mp.Queue) -> None:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def loop():
        # http.client with one keep-alive connection per thread: a light client, so the
        # figure measures the emulator rather than the client library
        parsed = urlsplit(base)
        ctx = ssl.create_default_context(cafile=ca)
        conn = http.client.HTTPSConnection(parsed.hostname, parsed.port, context=ctx, timeout=10)
        mine, bad = [], 0
        headers = {"Authorization": f"Bearer {token}", "Connection": "keep-alive"}
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            conn.request("GET", URL_PATH, headers=headers)
            r = conn.getresponse()
            r.read()
            mine.append(time.perf_counter() - t0)
            if r.status != 200:
                bad += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    ts = [threading.Thread(target=loop) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put((latencies, errors[0]))


def main() -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "5"))
    procs = int(os.environ.get("BENCH_PROCS", "2"))
    threads = int(os.environ.get("BENCH_THREADS", "2"))
    port = free_port()
    state = tempfile.mkdtemp(prefix="emu-bench-")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    server = subprocess.Popen(
        [sys.executable, "-m", "graph_emulator", "--port", str(port), "--state-dir", state,
         "--throttle-requests", "100000000", "--throttle-concurrency", "1000"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        ca = os.path.join(state, "ca.pem")
        base = f"https://127.0.0.1:{port}"
        for line in server.stdout:
            if line.startswith("Base URL"):
                break
        s = session(ca)
        token = s.post(f"{base}/contoso/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": "wsd-demo-client", "client_secret": "demo-secret",
            "scope": "https://graph.microsoft.com/.default"}, timeout=10).json()["access_token"]
        assert s.get(base + URL_PATH, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
        q: mp.Queue = mp.Queue()
        started = time.perf_counter()
        ps = [mp.Process(target=worker, args=(base, ca, token, seconds, threads, q)) for _ in range(procs)]
        for p in ps:
            p.start()
        results = [q.get() for _ in ps]
        for p in ps:
            p.join()
        elapsed = time.perf_counter() - started
        server_cpu = round(common.cpu_seconds([server.pid]), 2)
        lat = sorted(x for r in results for x in r[0])
        errors = sum(r[1] for r in results)
        n = len(lat)
        print(json.dumps({
            "requests": n,
            "errors": errors,
            "seconds": round(elapsed, 3),
            "requests_per_second": round(n / elapsed, 1),
            "p50_ms": round(lat[n // 2] * 1000, 2) if n else None,
            "p99_ms": round(lat[min(n - 1, int(n * 0.99))] * 1000, 2) if n else None,
            "clients": {"processes": procs, "threads_per_process": threads},
            "endpoint": "GET " + URL_PATH,
            "server_cpu_seconds_total": server_cpu,
            "load": common.load(),
        }))
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
