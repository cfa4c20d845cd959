"""GET /feeds/<token>.ics: an employee's or a room's iCalendar feed (no sign-in: the URL
is the secret; see ``reservations.feeds``).

Anything but a current token answers the same bare 404, so a guess learns nothing.
Calendar apps poll: the response carries a strong ETag (the body's SHA-256) and a
Last-Modified (when the body last changed), and a matching If-None-Match or
If-Modified-Since gets 304 with no body."""

import hashlib

from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import get_conditional_response
from django.utils.http import http_date
from django.views.decorators.http import require_http_methods

from reservations import feeds, ical

CONTENT_TYPE = "text/calendar; charset=utf-8"


def _not_found() -> HttpResponse:
    response = HttpResponseNotFound("Not found.\n", content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "HEAD"])
def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    feed = feeds.calendar_feed_get_by_token(token=token)
    if feed is None:
        return _not_found()
    now = timezone.now()
    rows = list(feeds.calendar_feed_reservations(feed=feed, now=now))

    def detail_url(reservation) -> str:
        return request.build_absolute_uri(reverse("portal:reservation_detail", args=[reservation.pk]))

    body = ical.feed_ical(feed, rows, detail_url=detail_url)
    digest = hashlib.sha256(body).hexdigest()
    feeds.calendar_feed_record_fetch(feed=feed, content_hash=digest, now=now)
    changed_at = feed.content_changed_at or now
    etag = f'"{digest}"'

    response = HttpResponse(body, content_type=CONTENT_TYPE)
    response["ETag"] = etag
    response["Last-Modified"] = http_date(changed_at.timestamp())
    # The URL is a credential: shared caches keep nothing, apps revalidate with the ETag.
    response["Cache-Control"] = "private, no-cache"
    response["Content-Disposition"] = f'inline; filename="{"reservations" if feed.user_id else "room"}.ics"'
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return get_conditional_response(request, etag=etag, last_modified=int(changed_at.timestamp()), response=response)
