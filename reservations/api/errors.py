"""One error shape for the whole API: {"message": ..., "extra": {field: [...]}}."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def _flatten(detail) -> dict:
    if isinstance(detail, dict):
        return {key: [str(item) for item in (value if isinstance(value, list) else [value])] for key, value in detail.items()}
    if isinstance(detail, list):
        return {"non_field_errors": [str(item) for item in detail]}
    return {}


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = exc.detail if isinstance(exc, exceptions.APIException) else None
    if isinstance(exc, exceptions.ValidationError):
        extra = _flatten(detail)
        message = "Invalid input."
        if list(extra) == ["non_field_errors"] and len(extra["non_field_errors"]) == 1:
            message = extra["non_field_errors"][0]
    else:
        extra = _flatten(detail) if isinstance(detail, dict | list) else {}
        message = str(detail) if isinstance(detail, str) else str(getattr(exc, "default_detail", "Error."))
    return Response({"message": message, "extra": extra}, status=response.status_code, headers=dict(response.headers) if hasattr(response, "headers") else None)
