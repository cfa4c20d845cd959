"""A Graph request and response as the handlers see them, and Graph's error envelope.

The lowest layer of the Graph side: the router (``graph``), ``$batch``, delta,
getSchedule, subscriptions and the control API all speak these types, and this
module imports none of them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from multidict import CIMultiDict

from .errors import GraphError
from .model import User


class DropConnection(Exception):
    """Fault injection: close the connection without a response."""


@dataclass
class GReq:
    method: str
    path: str  # below /v1.0, e.g. /users/x/events
    query: dict
    headers: CIMultiDict
    body: bytes
    base: str
    batch: bool = False
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    claims: dict | None = None
    mailbox: User | None = None

    def json(self):
        if not self.body or not self.body.strip():
            raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise GraphError(400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.") from exc

    def q(self, name: str) -> str | None:
        v = self.query.get("$" + name)
        if v is None:
            v = self.query.get(name)
        return v


@dataclass
class GResp:
    status: int
    body: object = None
    headers: dict = field(default_factory=dict)


def error_body(err: GraphError, req: GReq | None) -> dict:
    return {
        "error": {
            "code": err.code,
            "message": err.message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": req.request_id if req else str(uuid.uuid4()),
                "client-request-id": (req.headers.get("client-request-id") if req else None) or (req.request_id if req else ""),
            },
        }
    }
