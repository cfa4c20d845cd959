"""calendarView/delta: rounds of pages (@odata.nextLink) closed by an @odata.deltaLink.

Sync state is kept server-side behind opaque tokens, like Exchange's sync
state; expiring it (control API) makes the next call fail, and the client must
start a full sync again. How it fails is the config's ``delta_expired_mode``:
"syncStateNotFound" (the default) answers 400 with that code, as Outlook does for
a token it no longer holds; "gone" answers 410 Gone, the other documented restart
signal. https://learn.microsoft.com/en-us/graph/delta-query-overview#synchronization-reset
and https://learn.microsoft.com/en-us/graph/api/event-delta?view=graph-rest-1.0
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

from .errors import GraphError
from .event_views import event_view, preferences
from .http_types import GResp
from .model import User, instances, occurrence, parse_occurrence_id
from .timeutil import parse_query_instant, prefer_pagesize


def _token() -> str:
    return secrets.token_urlsafe(24)


class DeltaEngine:
    def __init__(self, ctx):
        self.ctx = ctx
        self.states: dict[str, dict] = {}  # deltatoken -> {mailbox, start, end, seq, epoch, known}
        self.pages: dict[str, dict] = {}  # skiptoken -> {mailbox, start, end, epoch, entries, next_state}

    def reset(self) -> None:
        self.states.clear()
        self.pages.clear()

    def expire(self, mailbox_id: str | None = None) -> int:
        n = 0
        for mid, mb in self.ctx.store.mailboxes.items():
            if mailbox_id is None or mid == mailbox_id:
                mb.epoch += 1
                n += 1
        return n

    def _gone(self) -> GraphError:
        if self.ctx.store.config.get("delta_expired_mode") == "gone":
            return GraphError(410, "SyncStateNotFound",
                              "The sync state generation is not valid or has expired. Please perform a full sync (restart the delta round without a token).")
        return GraphError(400, "syncStateNotFound", "The sync state is not found or has expired. Please perform a full sync.")

    def handle(self, req, target: User):
        store = self.ctx.store
        mb = store.mailboxes[target.id]
        skip, delta = req.q("skiptoken"), req.q("deltatoken")
        if skip:
            page = self.pages.get(skip)
            if page is None or page["mailbox"] != target.id or page["epoch"] != mb.epoch:
                raise self._gone()
            return self._emit(req, target, page, skip)
        if delta:
            state = self.states.get(delta)
            if state is None or state["mailbox"] != target.id or state["epoch"] != mb.epoch:
                raise self._gone()
            start, end = state["start"], state["end"]
            known, since = state["known"], state["seq"]
        else:
            start = parse_query_instant(req.q("startDateTime") or req.query.get("StartDateTime"), "startDateTime")
            end = parse_query_instant(req.q("endDateTime") or req.query.get("EndDateTime"), "endDateTime")
            if end < start:
                raise GraphError(400, "ErrorInvalidParameter", "The parameter 'EndDateTime' must be later than 'StartDateTime'.")
            known, since = set(), -1
        current: dict[str, int] = {}
        for ev in mb.events.values():
            for inst in instances(ev, start, end):
                current[inst.id] = ev.seq
        entries = [("upsert", iid) for iid, seq in sorted(current.items(), key=lambda kv: (kv[1], kv[0]))
                   if seq > since or iid not in known]
        entries += [("removed", iid) for iid in sorted(known - set(current))]
        page = {"mailbox": target.id, "start": start, "end": end, "epoch": mb.epoch, "entries": entries,
                "next_state": {"mailbox": target.id, "start": start, "end": end, "seq": mb.seq, "epoch": mb.epoch,
                               "known": set(current)}}
        return self._emit(req, target, page, None)

    def _emit(self, req, target: User, page: dict, used_skip: str | None):
        store = self.ctx.store
        size = prefer_pagesize(req.headers.get("Prefer")) or int(store.config["delta_page_size"])
        size = max(1, size)
        tz, headers = preferences(req)
        chunk, rest = page["entries"][:size], page["entries"][size:]
        mb = store.mailboxes[target.id]
        value = []
        for kind, iid in chunk:
            inst = None
            if kind == "upsert":
                ev = mb.events.get(iid)
                if ev is not None and ev.recurrence is None:
                    inst = ev
                else:
                    occ = parse_occurrence_id(iid)
                    master = mb.events.get(occ[0]) if occ else None
                    inst = occurrence(master, occ[1]) if master is not None else None
            if inst is None:
                value.append({"@odata.type": "#microsoft.graph.event", "id": iid, "@removed": {"reason": "deleted"}})
            else:
                value.append({"@odata.type": "#microsoft.graph.event", **event_view(store, req, target, inst, tz)})
        if used_skip:
            self.pages.pop(used_skip, None)
        base = f"{req.base}/v1.0/users/{quote(target.upn)}/calendarView/delta"
        body = {"@odata.context": f"{req.base}/v1.0/$metadata#Collection(event)", "value": value}
        if rest:
            token = _token()
            self.pages[token] = dict(page, entries=rest)
            body["@odata.nextLink"] = f"{base}?$skiptoken={token}"
        else:
            token = _token()
            self.states[token] = page["next_state"]
            body["@odata.deltaLink"] = f"{base}?$deltatoken={token}"
        return GResp(200, body, headers)
