"""python -m graph_emulator --port 8443 --seed demo [--host 127.0.0.1] [--state-dir DIR] [--snapshot FILE]
[--http-notifications refuse|loopback|any] [--attendant-delay SECONDS] [--delta-expired-mode syncStateNotFound|gone]
[--latency read=50-150,write=150-400] [--notification-batch-max N] [--notification-batch-window-ms MS]
[--notification-retry-max-seconds S]"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from .seed import DEMO_CLIENT_ID, DEMO_TENANT_ID, SEEDS
from .server import EmulatorServer, default_state_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m graph_emulator", description="Microsoft Entra ID + Graph v1.0 emulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8443)
    p.add_argument("--seed", default="demo", choices=sorted(SEEDS))
    p.add_argument("--state-dir", default=None, help="CA, keys (default: $GRAPH_EMULATOR_STATE_DIR or ./var/emulator)")
    p.add_argument("--snapshot", default=None, help="JSON state loaded on start and saved on shutdown")
    p.add_argument("--token-lifetime", type=int, default=None, help="access token lifetime in seconds")
    p.add_argument("--throttle-concurrency", type=int, default=None)
    p.add_argument("--throttle-requests", type=int, default=None)
    p.add_argument("--throttle-window", type=int, default=None, help="seconds")
    p.add_argument("--subscription-max-minutes", type=int, default=None)
    p.add_argument("--http-notifications", choices=("refuse", "loopback", "any"), default=None,
                   help="development only: accept http notification URLs (Graph refuses them; default refuse)")
    p.add_argument("--attendant-delay", type=float, default=None, help="seconds the room's booking attendant takes to answer")
    p.add_argument("--delta-expired-mode", choices=("syncStateNotFound", "gone"), default=None,
                   help="how an expired delta token fails: 400 syncStateNotFound (default) or 410 Gone")
    p.add_argument("--latency", default=None, metavar="read=50-150,write=150-400",
                   help="added latency per kind of request, ms ranges (uniform, seeded by --latency-seed)")
    p.add_argument("--latency-seed", type=int, default=None)
    p.add_argument("--notification-batch-max", type=int, default=None,
                   help="change notifications per POST, as Graph batches them (default 25; 1: one each)")
    p.add_argument("--notification-batch-window-ms", type=float, default=None,
                   help="how long a change notification waits for others to share its POST (default 0)")
    p.add_argument("--notification-retry-max-seconds", type=float, default=None,
                   help="retries of a failed notification stop after this (Graph: 4 hours)")
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)
    if args.notification_batch_max is not None and args.notification_batch_max < 1:
        p.error("--notification-batch-max must be at least 1")
    if args.notification_batch_window_ms is not None and args.notification_batch_window_ms < 0:
        p.error("--notification-batch-window-ms must be at least 0")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = {}
    for key, arg in (("access_token_lifetime", args.token_lifetime), ("throttle_concurrency", args.throttle_concurrency),
                     ("throttle_requests", args.throttle_requests), ("throttle_window_seconds", args.throttle_window),
                     ("subscription_max_minutes", args.subscription_max_minutes),
                     ("http_notification_urls", args.http_notifications), ("attendant_delay_seconds", args.attendant_delay),
                     ("delta_expired_mode", args.delta_expired_mode),
                     ("notification_batch_max", args.notification_batch_max),
                     ("notification_batch_window_ms", args.notification_batch_window_ms),
                     ("notification_retry_max_seconds", args.notification_retry_max_seconds)):
        if arg is not None:
            config[key] = arg
    if args.latency:
        config["latency"] = parse_latency(args.latency)
    if args.latency_seed is not None:
        config["latency_seed"] = args.latency_seed
    srv = EmulatorServer(host=args.host, port=args.port, seed=args.seed, state_dir=args.state_dir or default_state_dir(),
                         snapshot=args.snapshot, config=config)
    srv.start()
    print(f"Graph emulator listening on {srv.base_url}", flush=True)
    print(f"CA certificate: {srv.ca_path}", flush=True)
    print(f"Base URL: {srv.base_url}", flush=True)
    print(f"Tenant: {DEMO_TENANT_ID} (contoso, contoso.example); demo app {DEMO_CLIENT_ID}", flush=True)
    print(f"Authority: {srv.base_url}/{DEMO_TENANT_ID}  Graph: {srv.base_url}/v1.0  Control: {srv.base_url}/_emulator/state", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    srv.stop()
    return 0


def parse_latency(text: str) -> dict:
    """``read=50-150,write=150-400`` → {"read": [50.0, 150.0], "write": [150.0, 400.0]}."""
    out = {}
    for part in text.split(","):
        kind, _, span = part.partition("=")
        low, _, high = span.partition("-")
        if kind.strip() not in ("read", "write") or not low:
            raise SystemExit(f"--latency: {part!r} is not read=LOW-HIGH or write=LOW-HIGH (ms)")
        out[kind.strip()] = [float(low), float(high or low)]
    return out


if __name__ == "__main__":
    sys.exit(main())
