"""One error shape for the whole API: {"message": ..., "extra": {field: [...]}}.

* DRF validation errors: 400, ``extra`` maps each field (nested ones as
  ``attendees[1].email``, ``recurrence.count``) to its messages;
* ``ReservationError`` subclasses: their own ``status_code`` (400 invalid,
  403 not permitted / refused by a sync-mode rule, 409 slot taken, not active
  or edit not allowed), their ``message``, their ``extra`` and a ``code``;
* 401/403/404/405/406/415/429 from DRF or Django: their message, empty extra;
* Django's refusals of a request itself: a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``
  (``RequestDataTooBig``) 413, more than ``DATA_UPLOAD_MAX_NUMBER_FIELDS`` fields
  (``TooManyFieldsSent``) and every other ``SuspiciousOperation`` 400, JSON nested
  too deeply to parse (``RecursionError``) 400 — a warning in the log, no traceback;
* anything unexpected: logged, and 500 with the same shape (never HTML).
"""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from reservations.exceptions import ReservationError

logger = logging.getLogger(__name__)


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {dotted.field[index]: [messages]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # a list serializer's errors, by item index
                name = f"{prefix}[{key}]"
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors" and prefix:
                name = prefix
            for field, messages in _flatten(value, name).items():
                out.setdefault(field, []).extend(messages)
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            if detail:
                out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                if isinstance(item, dict | list):
                    for field, messages in _flatten(item, f"{prefix}[{index}]").items():
                        out.setdefault(field, []).extend(messages)
                elif item:
                    out.setdefault(prefix or "non_field_errors", []).append(str(item))
    elif detail is not None:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def _validation_message(extra: dict[str, list[str]]) -> str:
    if list(extra) == ["non_field_errors"] and len(extra["non_field_errors"]) == 1:
        return extra["non_field_errors"][0]
    if len(extra) == 1:
        [(field, messages)] = extra.items()
        return f"{field}: {messages[0]}"
    return f"Invalid input ({len(extra)} fields): {', '.join(extra)}."


def _bad_request(exc) -> Response | None:
    """The caller's request itself can't be read: 400/413 and a warning, never a 500."""
    if isinstance(exc, RequestDataTooBig):
        status, message = 413, "The request body is too large."
    elif isinstance(exc, TooManyFieldsSent):
        status, message = 400, "The request has too many fields."
    elif isinstance(exc, SuspiciousOperation):
        status, message = 400, "The request can't be accepted."
    elif isinstance(exc, RecursionError):
        status, message = 400, "JSON parse error - the body is nested too deeply."
    else:
        return None
    logger.warning("API request refused (%s): %s", type(exc).__name__, status)
    return Response({"message": message, "extra": {}}, status=status)


def exception_handler(exc, context):
    refused = _bad_request(exc)
    if refused is not None:
        return refused
    if isinstance(exc, ReservationError):
        body = {"message": exc.message, "extra": exc.extra, "code": exc.code}
        return Response(body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        view = context.get("view")
        logger.exception("Unhandled error in %s", view.__class__.__name__ if view else "API", exc_info=exc)
        return Response({"message": "Something went wrong on our side; nothing was changed.", "extra": {}}, status=500)
    detail = exc.detail if isinstance(exc, exceptions.APIException) else None
    if isinstance(exc, exceptions.ValidationError):
        extra = _flatten(detail)
        message = _validation_message(extra) if extra else "Invalid input."
    else:
        extra = _flatten(detail) if isinstance(detail, dict | list) else {}
        message = str(detail) if isinstance(detail, str) else str(getattr(exc, "default_detail", "Error."))
    response.data = {"message": message, "extra": extra}
    return response


def api_not_found(request, exception=None):
    """Unknown URLs under /api/ answer in the API's shape too (see workplace.urls)."""
    return JsonResponse({"message": "No such endpoint.", "extra": {}}, status=404)


def not_found(request, exception=None):
    """The root URLconf's handler404: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return api_not_found(request, exception)
    return defaults.page_not_found(request, exception)
