"""Errors in the shapes Microsoft Graph and Entra ID return them."""

from __future__ import annotations


class GraphError(Exception):
    """A Graph error: rendered as {"error": {"code", "message", "innerError"}}."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def invalid_request(message: str) -> GraphError:
    return GraphError(400, "ErrorInvalidRequest", message)


def item_not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def access_denied(message: str = "Access is denied. Check credentials and try again.") -> GraphError:
    return GraphError(403, "ErrorAccessDenied", message)


def unauthenticated(message: str) -> GraphError:
    return GraphError(401, "InvalidAuthenticationToken", message)


class OAuthError(Exception):
    """An Entra ID token-endpoint error: {"error", "error_description", "error_codes", ...}."""

    def __init__(self, status: int, error: str, aadsts: int, description: str):
        super().__init__(f"{error} AADSTS{aadsts}: {description}")
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description
