"""The emulator process: one aiohttp application over TLS, on its own event loop thread."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from pathlib import Path

from aiohttp import web

from .calendar import Calendar
from .control import Control
from .errors import GraphError
from .graph import Graph
from .http_types import DropConnection, GReq, error_body
from .identity import Identity
from .limits import Faults, RequestLog, Throttle
from .model import Store
from .seed import SEEDS
from .subscriptions import Subscriptions
from .tls import server_context
from .tokens import TokenService

log = logging.getLogger("graph_emulator")

JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


def default_state_dir() -> Path:
    return Path(os.environ.get("GRAPH_EMULATOR_STATE_DIR") or "./var/emulator")


class Context:
    """Everything one emulator instance holds; handlers reach each other through it."""

    def __init__(self, state_dir: Path, seed: str):
        if seed not in SEEDS:
            raise ValueError(f"unknown seed {seed!r}; known: {sorted(SEEDS)}")
        self.state_dir = state_dir
        self.seed_name = seed
        self.initial_config: dict = {}  # the process's own settings (command line), kept across resets
        self.store = Store()
        SEEDS[seed](self.store)
        self.tokens = TokenService(self.store, state_dir)
        self.throttle = Throttle(lambda: self.store.config)
        self.faults = Faults()
        self.requests = RequestLog()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.calendar = Calendar(self.store, self.defer)
        self.graph = Graph(self)
        self.subscriptions = Subscriptions(self)
        self.identity = Identity(self)
        self.control = Control(self)

    def defer(self, delay: float, fn) -> None:
        def run():
            try:
                fn()
            except Exception:  # a background step must never take the loop down
                log.exception("deferred calendar work failed")

        if self.loop is None:
            run()
        elif delay > 0:
            self.loop.call_later(delay, run)
        else:
            self.loop.call_soon(run)

    def reset(self, seed: str | None = None) -> None:
        seed = seed or self.seed_name
        if seed not in SEEDS:
            raise GraphError(400, "BadRequest", f"unknown seed {seed!r}; known: {sorted(SEEDS)}")
        self.seed_name = seed
        self.store.load_json({})
        SEEDS[seed](self.store)
        self.store.config.update(self.initial_config)
        self.graph.delta.reset()
        self.subscriptions.reset()
        self.faults.clear()
        self.throttle.reset()
        self.requests.clear()

    def load_snapshot(self, data: dict) -> None:
        self.store.load_json(data)
        self.graph.delta.reset()
        self.throttle.reset()


def build_app(ctx: Context) -> web.Application:
    @web.middleware
    async def outer(request: web.Request, handler):
        path = request.path
        if path.startswith("/_emulator/"):
            return await handler(request)
        if path.startswith("/v1.0/") or path == "/v1.0":
            return await handler(request)
        # identity endpoints: faults and the request log apply here too
        started = time.perf_counter()
        if ctx.faults.rules:
            rule = ctx.faults.match(request.method, path, (), None)
            if rule is not None:
                if rule["action"] == "drop":
                    _drop(request)
                    return web.Response(status=204)
                if rule["action"] == "delay":
                    await asyncio.sleep(rule["seconds"])
                else:
                    err = ctx.faults.error_for(rule)
                    ctx.requests.record(request.method, path, None, None, err.status, 0.0)
                    return web.json_response({"error": "temporarily_unavailable", "error_description": err.message,
                                              "error_codes": [0]}, status=err.status, headers=err.headers)
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            ctx.requests.record(request.method, path, None, None, exc.status, (time.perf_counter() - started) * 1000)
            if exc.status in (404, 405):
                return web.json_response(
                    {"error": "invalid_request", "error_description": f"AADSTS900561: The endpoint only accepts supported requests ({exc.status})."},
                    status=exc.status)
            raise
        except Exception:
            log.exception("identity handler failed")
            resp = web.json_response({"error": "server_error", "error_description": "AADSTS90033: A transient error has occurred. Please try again."}, status=500)
        ctx.requests.record(request.method, path, None, None, resp.status, (time.perf_counter() - started) * 1000)
        return resp

    app = web.Application(middlewares=[outer, ctx.control.errors], client_max_size=16 * 1024 * 1024)

    async def graph_entry(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        path = request.path[len("/v1.0"):] or "/"
        req = GReq(method=request.method, path=path, query=dict(request.query), headers=request.headers,
                   body=body, base=f"https://{request.host}")
        try:
            resp = await ctx.graph.dispatch(req)
        except DropConnection:
            _drop(request)
            return web.Response(status=204)
        except Exception:
            log.exception("graph handler failed")
            err = GraphError(500, "InternalServerError", "An internal server error occurred in the emulator.")
            return web.Response(body=json.dumps(error_body(err, req)).encode(), status=500,
                                headers={"Content-Type": JSON_TYPE})
        headers = dict(resp.headers)
        if resp.body is None:
            return web.Response(status=resp.status, headers=headers)
        if isinstance(resp.body, (bytes, bytearray)):
            return web.Response(body=resp.body, status=resp.status, headers=headers)
        headers["Content-Type"] = JSON_TYPE
        return web.Response(body=json.dumps(resp.body).encode(), status=resp.status, headers=headers)

    app.router.add_route("*", "/v1.0/{tail:.*}", graph_entry)
    app.router.add_routes(ctx.control.routes())
    app.router.add_routes(ctx.identity.routes())

    async def root(request):
        return web.json_response({"service": "graph_emulator", "tenant": ctx.store.tenant_id,
                                  "graph": f"https://{request.host}/v1.0", "control": f"https://{request.host}/_emulator/state"})

    app.router.add_get("/", root)
    return app


def _drop(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


class EmulatorServer:
    """The emulator on a background thread: ``start()`` returns once it listens.

    >>> srv = EmulatorServer(host="127.0.0.1", port=0, seed="demo", state_dir=tmp)
    >>> srv.start(); srv.base_url, srv.ca_path; srv.stop()
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 8443, seed: str = "demo",
                 state_dir: str | os.PathLike | None = None, snapshot: str | os.PathLike | None = None,
                 config: dict | None = None):
        self.host = host
        self.port = port
        self.seed = seed
        self.state_dir = Path(state_dir) if state_dir else default_state_dir()
        self.snapshot = Path(snapshot) if snapshot else None
        self.initial_config = config or {}
        self.ctx: Context | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.ca_path: str = ""

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.host in ("0.0.0.0", "::"):  # noqa: S104 - a wildcard bind is reached via loopback
            host = "127.0.0.1"
        return f"https://{host}:{self.port}"

    @property
    def store(self) -> Store:
        return self.ctx.store

    def start(self) -> EmulatorServer:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="graph-emulator", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError(f"graph emulator failed to start: {self._error}") from self._error
        if not self._ready.is_set():
            raise RuntimeError("graph emulator did not start within 30 s")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._shutdown())
        loop.close()

    async def _startup(self) -> None:
        ssl_ctx, ca = server_context(self.state_dir)
        self.ca_path = str(ca.resolve())
        ctx = Context(self.state_dir, self.seed)
        ctx.loop = asyncio.get_running_loop()
        if self.snapshot and self.snapshot.exists():
            ctx.load_snapshot(json.loads(self.snapshot.read_text()))
        ctx.initial_config = dict(self.initial_config)
        ctx.store.config.update(self.initial_config)
        self.ctx = ctx
        await ctx.subscriptions.start()
        self._runner = web.AppRunner(build_app(ctx), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=ssl_ctx, backlog=512, reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server else []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self.snapshot and self.ctx:
            self.snapshot.parent.mkdir(parents=True, exist_ok=True)
            self.snapshot.write_text(json.dumps(self.ctx.store.to_json(), indent=1))
        if self.ctx:
            await self.ctx.subscriptions.close()
        if self._runner:
            await self._runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(15)

    def call(self, fn):
        """Run ``fn()`` on the emulator's loop thread and return its result (for in-process tests)."""
        done = threading.Event()
        box: dict = {}

        def run():
            try:
                box["v"] = fn()
            except BaseException as exc:
                box["e"] = exc
            done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(10)
        if "e" in box:
            raise box["e"]
        return box.get("v")

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
