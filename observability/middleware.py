"""Binds a correlation id for each HTTP request and returns it in ``X-Request-ID``."""

from __future__ import annotations

from . import correlation


class CorrelationMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = correlation.bind(correlation.sane(request.headers.get(correlation.HEADER)))
        try:
            response = self.get_response(request)
            response[correlation.HEADER] = correlation.current()
            return response
        finally:
            correlation.unbind(token)
