"""Helpers shared by the emulator tests: named people, a Graph caller, a webhook receiver."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ALICE = "alice@contoso.example"
BOB = "bob@contoso.example"
ADMIN = "admin@contoso.example"
RESERVATIONS = "reservations@contoso.example"
ATLAS = "atlas@contoso.example"
BOREALIS = "borealis@contoso.example"
COSMOS = "cosmos@contoso.example"
USER_SCOPE = "https://graph.microsoft.com/.default offline_access openid profile"


class Graph:
    """requests against /v1.0 with a bearer token."""

    def __init__(self, emulator_server, session, token):
        self.base = emulator_server.base_url + "/v1.0"
        self.s = session
        self.token = token

    def __call__(self, method, path, json_body=None, headers=None, **kw):
        h = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        h.update(headers or {})
        url = path if path.startswith("https://") else self.base + path
        return self.s.request(method, url, json=json_body, headers=h, timeout=15, **kw)

    def get(self, path, **kw):
        return self("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self("DELETE", path, **kw)


def meeting(subject="Planning", start="2030-01-07T09:00:00", end="2030-01-07T10:00:00", tz="UTC", rooms=(), people=(), **extra):
    body = {
        "subject": subject,
        "body": {"contentType": "text", "content": f"About {subject}"},
        "start": {"dateTime": start, "timeZone": tz},
        "end": {"dateTime": end, "timeZone": tz},
        "attendees": [{"type": "resource", "emailAddress": {"address": r}} for r in rooms]
        + [{"type": "required", "emailAddress": {"address": p}} for p in people],
    }
    if rooms:
        body["location"] = {"displayName": rooms[0].split("@")[0].title(), "locationEmailAddress": rooms[0]}
    body.update(extra)
    return body


class Webhook:
    """A tiny HTTP endpoint: echoes validation tokens, records notifications, can fail on purpose."""

    def __init__(self):
        self.received: list[dict] = []
        self.validations: list[str] = []
        self.fail_next = 0
        self.fail_path = None  # only POSTs to this path fail (fail_next counts them); None: any
        self.notify_delay = 0.0  # seconds each notification POST takes to answer (a slow endpoint)
        self.validation_mode = "echo"  # echo | wrong | error | slow
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                q = parse_qs(urlparse(self.path).query)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if "validationToken" in q:
                    token = q["validationToken"][0]
                    hook.validations.append(token)
                    if hook.validation_mode == "slow":
                        time.sleep(1.5)  # the behaviour under test: an endpoint slower than Graph's validation timeout
                    if hook.validation_mode == "error":
                        self.send_response(500)
                        self.end_headers()
                        return
                    out = (token if hook.validation_mode != "wrong" else "nope").encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                    return
                path = urlparse(self.path).path
                if hook.notify_delay:
                    time.sleep(hook.notify_delay)
                with hook.lock:
                    failing = hook.fail_next > 0 and hook.fail_path in (None, path)
                    if failing:
                        hook.fail_next -= 1
                    else:
                        hook.received.append({"path": path, "body": json.loads(raw or b"{}"), "at": time.monotonic()})
                self.send_response(500 if failing else 202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # shutdown() waits for the serve loop's next poll: 0.5 s by default, after every test.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def items(self, path="/notify"):
        with self.lock:
            return [item for r in self.received if r["path"] == path for item in r["body"]["value"]]

    def posts(self, path="/notify") -> list[list[dict]]:
        """The items of each POST received on ``path``, one list per POST."""
        with self.lock:
            return [r["body"]["value"] for r in self.received if r["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


