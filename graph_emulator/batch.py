"""POST /$batch: up to 20 requests, dependsOn, a status/headers/body per response."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, urlsplit

from multidict import CIMultiDict

from .errors import GraphError
from .http_types import DropConnection, GReq, GResp, error_body

MAX_REQUESTS = 20


async def run_batch(dispatch: Callable[[GReq], Awaitable[GResp]], req: GReq) -> GResp:
    """Run the batch's requests through ``dispatch`` (the router's entry, passed in so this module
    needs nothing above it): concurrently, each after the requests it dependsOn."""
    payload = req.json()
    if not isinstance(payload, dict) or not isinstance(payload.get("requests"), list):
        raise GraphError(400, "BadRequest", "Invalid batch payload format.")
    requests = payload["requests"]
    if not requests:
        raise GraphError(400, "BadRequest", "Invalid batch payload format: the requests array is empty.")
    if len(requests) > MAX_REQUESTS:
        raise GraphError(400, "BadRequest", f"The batch request contains {len(requests)} requests; the maximum is {MAX_REQUESTS}.")
    ids = []
    for r in requests:
        if not isinstance(r, dict) or not r.get("id") or not r.get("method") or not r.get("url"):
            raise GraphError(400, "BadRequest", "Invalid batch payload format: each request needs id, method and url.")
        if str(r["id"]) in ids:
            raise GraphError(400, "BadRequest", f"Batch request contains duplicate id '{r['id']}'.")
        deps = r.get("dependsOn") or []
        if not isinstance(deps, list) or any(str(d) not in ids for d in deps):
            raise GraphError(400, "BadRequest", "The dependsOn of a request must name requests that come before it in the batch.")
        ids.append(str(r["id"]))
    # Graph runs a batch's requests in parallel unless dependsOn orders them, and each counts
    # against the mailbox's limits on its own, so a batch of many requests to one mailbox gets
    # per-request 429s: https://learn.microsoft.com/en-us/graph/json-batching and
    # https://learn.microsoft.com/en-us/graph/throttling#throttling-and-batching
    done: dict[str, asyncio.Future] = {}
    loop = asyncio.get_running_loop()
    for r in requests:
        done[str(r["id"])] = loop.create_future()

    async def run(r) -> dict:
        rid = str(r["id"])
        deps = [str(d) for d in (r.get("dependsOn") or [])]
        statuses = [await asyncio.shield(done[d]) for d in deps]
        failed = [d for d, status in zip(deps, statuses, strict=True) if status >= 400]
        if failed:
            err = GraphError(424, "FailedDependency", f"The request depends on request '{failed[0]}', which failed.")
            done[rid].set_result(424)
            return {"id": rid, "status": 424, "headers": {"Content-Type": "application/json"}, "body": error_body(err, req)}
        try:
            entry = await _one(dispatch, req, r)
        except BaseException:
            done[rid].set_result(500)
            raise
        done[rid].set_result(entry["status"])
        return entry

    responses = list(await asyncio.gather(*(run(r) for r in requests)))
    return GResp(200, {"responses": responses})


async def _one(dispatch, req: GReq, r: dict) -> dict:
    rid = str(r["id"])
    url = str(r["url"])
    if url.startswith("https://") or url.startswith("http://"):
        url = urlsplit(url).path + ("?" + urlsplit(url).query if urlsplit(url).query else "")
    if url.startswith("/v1.0/"):
        url = url[5:]
    if not url.startswith("/"):
        url = "/" + url
    parts = urlsplit(url)
    headers = CIMultiDict({str(k): str(v) for k, v in (r.get("headers") or {}).items()})
    if "Authorization" in req.headers:
        headers["Authorization"] = req.headers["Authorization"]
    body = r.get("body")
    raw = b"" if body is None else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
    sub = GReq(method=str(r["method"]).upper(), path=parts.path, query=dict(parse_qsl(parts.query, keep_blank_values=True)),
               headers=headers, body=raw, base=req.base, batch=True)
    try:
        resp = await dispatch(sub)
    except DropConnection:
        resp = GResp(504, error_body(GraphError(504, "GatewayTimeout", "The request timed out."), sub))
    out_headers = {k: v for k, v in resp.headers.items() if k.lower() not in ("request-id", "client-request-id", "x-ms-ags-diagnostic")}
    entry = {"id": rid, "status": resp.status, "headers": out_headers}
    if resp.body is not None:
        if isinstance(resp.body, (bytes, bytearray)):
            entry["body"] = base64.b64encode(resp.body).decode()
        else:
            entry["headers"].setdefault("Content-Type", "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8")
            entry["body"] = resp.body
    return entry
