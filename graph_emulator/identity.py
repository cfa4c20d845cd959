"""Entra ID endpoints: OpenID discovery, JWKS, the sign-in page (/authorize) and /token.

About 470 lines on purpose: the token endpoint's grants (client credentials with a secret
or a certificate's signed assertion, authorization code + PKCE, refresh, password) are
checked the way Microsoft's identity platform checks them, side by side in one file."""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode, urlparse

from aiohttp import web

from .errors import OAuthError
from .model import App, User
from .tokens import GRAPH_APP_ID, GRAPH_AUDIENCE, JWT_BEARER, b64url_json, verify_client_assertion

OIDC_SCOPES = {"openid", "profile", "email", "offline_access"}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def base_url(request: web.Request) -> str:
    return f"https://{request.host}"


class Identity:
    def __init__(self, ctx):
        self.ctx = ctx

    @property
    def store(self):
        return self.ctx.store

    def routes(self) -> list:
        return [
            web.get("/{tenant}/v2.0/.well-known/openid-configuration", self.discovery),
            web.get("/{tenant}/.well-known/openid-configuration", self.discovery),
            web.get("/{tenant}/discovery/v2.0/keys", self.keys),
            web.get("/{tenant}/oauth2/v2.0/authorize", self.authorize),
            web.post("/{tenant}/oauth2/v2.0/authorize", self.authorize_submit),
            web.post("/{tenant}/oauth2/v2.0/token", self.token),
            web.get("/{tenant}/oauth2/v2.0/logout", self.logout),
        ]

    # -- helpers -------------------------------------------------------------
    def _tenant_ok(self, tenant: str) -> bool:
        return tenant.lower() in ("common", "organizations") or self.store.tenant_matches(tenant)

    def issuer(self, request: web.Request) -> str:
        return f"{base_url(request)}/{self.store.tenant_id}/v2.0"

    def oauth_error(self, exc: OAuthError) -> web.Response:
        trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
        ts = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        body = {
            "error": exc.error,
            "error_description": f"AADSTS{exc.aadsts}: {exc.description} Trace ID: {trace} Correlation ID: {corr} Timestamp: {ts}",
            "error_codes": [exc.aadsts],
            "timestamp": ts,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": f"https://login.microsoftonline.com/error?code={exc.aadsts}",
        }
        return web.json_response(body, status=exc.status, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _unknown_tenant(self, tenant: str) -> OAuthError:
        return OAuthError(
            400, "invalid_request", 90002,
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
        )

    def _app(self, client_id: str | None) -> App:
        if not client_id:
            raise OAuthError(400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
        app = self.store.apps.get(client_id)
        if app is None:
            raise OAuthError(
                400, "unauthorized_client", 700016,
                f"Application with identifier '{client_id}' was not found in the directory '{self.store.tenant_name}'. "
                "This can happen if the application has not been installed by the administrator of the tenant.",
            )
        return app

    def redirect_allowed(self, app: App, uri: str | None) -> bool:
        if not uri:
            return False
        if uri in app.redirect_uris or uri in self.store.config.get("redirect_uris", []):
            return True
        parsed = urlparse(uri)
        return app.allow_loopback_redirects and parsed.scheme in ("http", "https") and (parsed.hostname or "") in LOOPBACK_HOSTS

    # -- discovery -------------------------------------------------------------
    async def discovery(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not self._tenant_ok(tenant):
            return self.oauth_error(self._unknown_tenant(tenant))
        base = base_url(request)
        tid = self.store.tenant_id
        doc = {
            "token_endpoint": f"{base}/{tid}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/{tid}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/{tid}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{base}/oidc/userinfo",
            "authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/{tid}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host",
                "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash",
                "c_hash", "email",
            ],
            "kerberos_endpoint": f"{base}/{tid}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": request.host,
            "rbac_url": "https://pas.windows.net",
        }
        return web.json_response(doc)

    async def keys(self, request: web.Request) -> web.Response:
        jwk = dict(self.ctx.tokens.jwk, issuer=f"{base_url(request)}/{self.store.tenant_id}/v2.0")
        return web.json_response({"keys": [jwk]})

    async def logout(self, request: web.Request) -> web.Response:
        target = request.query.get("post_logout_redirect_uri")
        if target:
            raise web.HTTPFound(target)
        return web.Response(text="<html><body><p>You signed out of your account.</p></body></html>", content_type="text/html")

    # -- authorize -------------------------------------------------------------
    def _error_page(self, status: int, code: int, message: str) -> web.Response:
        page = (
            "<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body>"
            f"<h1>Sorry, but we're having trouble signing you in.</h1><p id=\"error\">AADSTS{code}: {html.escape(message)}</p>"
            "</body></html>"
        )
        return web.Response(status=status, text=page, content_type="text/html")

    def _check_authorize(self, tenant: str, params) -> tuple[App | None, web.Response | None]:
        if not self._tenant_ok(tenant):
            e = self._unknown_tenant(tenant)
            return None, self._error_page(400, e.aadsts, e.description)
        try:
            app = self._app(params.get("client_id"))
        except OAuthError as e:
            return None, self._error_page(400, e.aadsts, e.description)
        redirect_uri = params.get("redirect_uri")
        if not self.redirect_allowed(app, redirect_uri):
            return None, self._error_page(
                400, 50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{app.client_id}'.",
            )
        return app, None

    def _redirect_error(self, params, error: str, code: int, message: str) -> web.Response:
        q = {"error": error, "error_description": f"AADSTS{code}: {message}"}
        if params.get("state"):
            q["state"] = params["state"]
        return self._deliver(params, q)

    def _deliver(self, params, values: dict) -> web.Response:
        redirect_uri = params["redirect_uri"]
        if params.get("response_mode") == "form_post":
            inputs = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}"/>' for k, v in values.items()
            )
            page = (
                "<html><head><title>Working...</title></head><body onload=\"document.forms[0].submit()\">"
                f'<form method="POST" name="hiddenform" action="{html.escape(redirect_uri)}">{inputs}'
                "<noscript><p>Script is disabled. Click Submit to continue.</p><input type=\"submit\" value=\"Submit\"/></noscript>"
                "</form></body></html>"
            )
            return web.Response(text=page, content_type="text/html")
        sep = "&" if "?" in redirect_uri else "?"
        if params.get("response_mode") == "fragment":
            sep = "#"
        raise web.HTTPFound(redirect_uri + sep + urlencode(values))

    def _signin_page(self, tenant: str, params, error: str | None = None, status: int = 200) -> web.Response:
        users = sorted((u for u in self.store.users.values() if u.kind == "user"), key=lambda u: u.upn)
        hint = params.get("login_hint", "")
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}"/>'
            for k, v in params.items()
            if k not in ("login", "passwd")
        )
        options = "".join(
            f'<li><label><input type="radio" name="login" value="{html.escape(u.upn)}"'
            f'{" checked" if u.upn.lower() == hint.lower() else ""}/> {html.escape(u.display_name)} '
            f'&lt;{html.escape(u.upn)}&gt;</label></li>'
            for u in users
        )
        err = f'<p id="error" role="alert" style="color:#a80000">{html.escape(error)}</p>' if error else ""
        page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to your account</title>
<style>body{{font-family:Segoe UI,Arial,sans-serif;background:#f2f2f2}}main{{background:#fff;max-width:440px;margin:60px auto;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}}ul{{list-style:none;padding:0}}li{{margin:6px 0}}button{{background:#0067b8;color:#fff;border:0;padding:8px 24px}}</style>
</head><body><main>
<h1>Sign in</h1>
<p>Microsoft Entra ID emulator &middot; tenant <b>{html.escape(self.store.tenant_name)}</b> ({html.escape(self.store.domain)})</p>
{err}
<form method="post" action="/{html.escape(tenant)}/oauth2/v2.0/authorize" id="signin">
{hidden}
<fieldset><legend>Pick an account</legend><ul>{options}</ul></fieldset>
<p><label>Or type an account <input type="email" name="login_typed" value="" placeholder="someone@{html.escape(self.store.domain)}"/></label></p>
<p><label>Password <input type="password" name="passwd" id="passwd" autocomplete="current-password"/></label></p>
<p><button type="submit" id="idSIButton9">Sign in</button></p>
</form></main></body></html>"""
        return web.Response(text=page, content_type="text/html", status=status)

    async def authorize(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        params = dict(request.query)
        app, error_page = self._check_authorize(tenant, params)
        if error_page:
            return error_page
        if params.get("response_type") != "code":
            return self._redirect_error(params, "unsupported_response_type", 70005,
                                        "The provided value for the input parameter 'response_type' is not allowed for this request.")
        if params.get("code_challenge_method") and params["code_challenge_method"] not in ("S256", "plain"):
            return self._redirect_error(params, "invalid_request", 501491, "Invalid code_challenge_method.")
        if params.get("prompt") == "none":
            return self._redirect_error(params, "login_required", 50058, "A silent sign-in request was sent but no user is signed in.")
        return self._signin_page(tenant, params)

    async def authorize_submit(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        form = dict(await request.post())
        params = {k: v for k, v in form.items() if k not in ("login", "passwd", "login_typed")}
        app, error_page = self._check_authorize(tenant, params)
        if error_page:
            return error_page
        login = (form.get("login_typed") or form.get("login") or "").strip()
        user = self.store.find_user(login)
        if user is None or user.kind != "user":
            return self._signin_page(tenant, params, "This username may be incorrect. Make sure you typed it correctly.", 200)
        if user.password is None or form.get("passwd") != user.password:
            return self._signin_page(tenant, dict(params, login_hint=user.upn), "Your account or password is incorrect. (AADSTS50126)", 200)
        try:
            scopes = self.delegated_scopes(app, user, params.get("scope", ""), interactive=True)
        except OAuthError as e:
            return self._redirect_error(params, e.error, e.aadsts, e.description)
        code = b64url_json({"n": secrets.token_hex(16)})[:8] + "." + secrets.token_urlsafe(48)
        self.ctx.tokens.codes[code] = {
            "client_id": app.client_id, "user_id": user.id, "scopes": scopes, "redirect_uri": params["redirect_uri"],
            "code_challenge": params.get("code_challenge"), "method": params.get("code_challenge_method") or "plain",
            "nonce": params.get("nonce"), "expires": time.time() + 600, "used": False,
        }
        values = {"code": code}
        if params.get("state") is not None:
            values["state"] = params["state"]
        values["session_state"] = str(uuid.uuid4())
        if params.get("client_info") == "1":
            values["client_info"] = b64url_json({"uid": user.id, "utid": self.store.tenant_id})
        return self._deliver(params, values)

    # -- scopes ------------------------------------------------------------------
    def delegated_scopes(self, app: App, user: User, requested: str, interactive: bool = False) -> list[str]:
        """Graph scopes for a user token; consent checked (interactive sign-in grants it)."""
        wanted: set[str] = set()
        default = False
        for raw in requested.split():
            s = raw
            for prefix in (GRAPH_AUDIENCE + "/", GRAPH_APP_ID + "/"):
                if s.lower().startswith(prefix.lower()):
                    s = s[len(prefix):]
                    break
            else:
                if "://" in s or ("/" in s and not s.startswith("/")):
                    raise OAuthError(400, "invalid_resource", 500011,
                                     f"The resource principal named {raw.rsplit('/', 1)[0]} was not found in the tenant named {self.store.tenant_name}.")
            if s == ".default":
                default = True
            elif s in OIDC_SCOPES:
                continue
            else:
                wanted.add(s)
        allowed = {s.lower(): s for s in app.delegated_scopes}
        unknown = [s for s in wanted if s.lower() not in allowed]
        consent = self.store.consent(user.id, app.client_id)
        consented = set() if consent is None or consent.get("revoked") else set(consent["scopes"])
        if unknown or not (wanted or default or consented):
            raise OAuthError(400, "invalid_scope", 70011,
                             f"The provided value for the input parameter 'scope' is not valid. The scope {' '.join(sorted(unknown)) or requested} is not valid.")
        wanted = {allowed[s.lower()] for s in wanted}
        if interactive:
            self.store.grant_consent(user.id, app.client_id, list(wanted or allowed.values()))
            consent = self.store.consent(user.id, app.client_id)
            consented = set(consent["scopes"])
        missing = wanted - consented
        if missing or not consented:
            raise OAuthError(
                400, "invalid_grant", 65001,
                f"The user or administrator has not consented to use the application with ID '{app.client_id}' named "
                f"'{app.display_name}'. Send an interactive authorization request for this user and resource.",
            )
        return sorted(s for s in consented if s not in OIDC_SCOPES)

    # -- token -----------------------------------------------------------------
    def _client_auth(self, request: web.Request, form: dict, require_secret: bool) -> tuple[App, bool]:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                cid, _, sec = base64.b64decode(auth[6:]).decode().partition(":")
                client_id, secret = client_id or cid, sec
            except (ValueError, UnicodeDecodeError):
                pass
        app = self._app(client_id)
        if form.get("client_assertion") or form.get("client_assertion_type"):
            return self._assertion_auth(request, form, app), True
        if secret is not None and secret != "":
            if app.secret_expires_at is not None and app.secret_expires_at < time.time() and secret == app.secret:
                raise OAuthError(
                    401, "invalid_client", 7000222,
                    f"The provided client secret keys for app '{app.client_id}' are expired. Visit the Azure portal to create new "
                    "keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: "
                    "https://aka.ms/certCreds.",
                )
            if secret != app.secret:
                raise OAuthError(
                    401, "invalid_client", 7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, "
                    f"not the client secret ID, for a secret added to app '{app.client_id}'.",
                )
            return app, True
        if require_secret or not app.allow_public_client:
            raise OAuthError(401, "invalid_client", 7000218,
                             "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
        return app, False

    def _assertion_auth(self, request: web.Request, form: dict, app: App) -> App:
        """private_key_jwt: the client assertion signed with a certificate registered on the app."""
        if form.get("client_assertion_type") != JWT_BEARER or not form.get("client_assertion"):
            raise OAuthError(400, "invalid_request", 90014,
                             f"The request body must contain client_assertion and client_assertion_type '{JWT_BEARER}'.")
        if form.get("client_secret"):
            raise OAuthError(400, "invalid_request", 90014, "Send either client_secret or client_assertion, not both.")
        base = base_url(request)
        audiences = {f"{base}/{self.store.tenant_id}/oauth2/v2.0/token", f"{base}{request.path}"}
        verify_client_assertion(form["client_assertion"], app, audiences)
        return app

    def _user_token_response(self, request, app: App, user: User, scopes: list[str], requested: str,
                             confidential: bool, nonce: str | None, client_info: bool) -> dict:
        tokens = self.ctx.tokens
        access, lifetime = tokens.issue_user_token(app, user, scopes, confidential)
        req = set(requested.split())
        out_scopes = [f"{GRAPH_AUDIENCE}/{s}" for s in scopes] + sorted(req & {"openid", "profile", "email", "offline_access"})
        body = {
            "token_type": "Bearer",
            "scope": " ".join(out_scopes),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access,
        }
        if "offline_access" in req:
            body["refresh_token"] = tokens.issue_refresh_token(app, user, scopes)
        if "openid" in req:
            body["id_token"] = tokens.issue_id_token(app, user, self.issuer(request), nonce)
        if client_info:
            body["client_info"] = b64url_json({"uid": user.id, "utid": self.store.tenant_id})
        return body

    async def token(self, request: web.Request) -> web.Response:
        try:
            return await self._token(request)
        except OAuthError as e:
            return self.oauth_error(e)

    async def _token(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not self._tenant_ok(tenant):
            raise self._unknown_tenant(tenant)
        ctype = request.headers.get("Content-Type", "")
        if "application/x-www-form-urlencoded" not in ctype and "multipart/form-data" not in ctype:
            raise OAuthError(400, "invalid_request", 900144,
                             "The request body must contain the following parameter: 'grant_type'.")
        form = {k: str(v) for k, v in (await request.post()).items()}
        grant = form.get("grant_type")
        client_info = form.get("client_info") == "1"
        tokens = self.ctx.tokens
        if grant == "client_credentials":
            app, _ = self._client_auth(request, form, require_secret=True)
            scope = form.get("scope", "").strip()
            if scope not in (f"{GRAPH_AUDIENCE}/.default", f"{GRAPH_APP_ID}/.default", f"{GRAPH_AUDIENCE}//.default"):
                raise OAuthError(400, "invalid_scope", 1002012,
                                 f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
            access, lifetime = tokens.issue_app_token(app)
            return web.json_response({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                                      "access_token": access}, headers={"Cache-Control": "no-store"})
        if grant == "password":
            app, confidential = self._client_auth(request, form, require_secret=False)
            user = self.store.find_user(form.get("username", ""))
            if user is None or user.kind != "user":
                raise OAuthError(400, "invalid_grant", 50034,
                                 f"The user account {form.get('username', '')} does not exist in the {self.store.tenant_name} directory.")
            if user.password is None or form.get("password") != user.password:
                raise OAuthError(400, "invalid_grant", 50126, "Error validating credentials due to invalid username or password.")
            scopes = self.delegated_scopes(app, user, form.get("scope", ""))
            body = self._user_token_response(request, app, user, scopes, form.get("scope", ""), confidential, None, client_info)
            return web.json_response(body, headers={"Cache-Control": "no-store"})
        if grant == "authorization_code":
            app, confidential = self._client_auth(request, form, require_secret=False)
            code = tokens.codes.get(form.get("code", ""))
            if code is None or code["client_id"] != app.client_id:
                raise OAuthError(400, "invalid_grant", 70000, "The provided value for the 'code' parameter is not valid.")
            if code["used"]:
                raise OAuthError(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
            if code["expires"] < time.time():
                raise OAuthError(400, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
            if form.get("redirect_uri") != code["redirect_uri"]:
                raise OAuthError(400, "invalid_grant", 50148, "The redirect_uri specified in the token request does not match the redirect_uri used to obtain the authorization code.")
            challenge = code["code_challenge"]
            if challenge:
                verifier = form.get("code_verifier", "")
                if code["method"] == "S256":
                    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                else:
                    computed = verifier
                if not verifier or computed != challenge:
                    raise OAuthError(400, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
            elif not confidential:
                raise OAuthError(400, "invalid_request", 9002325, "Proof Key for Code Exchange is required for cross-origin authorization code redemption.")
            code["used"] = True
            user = self.store.users.get(code["user_id"])
            consent = self.store.consent(code["user_id"], app.client_id)
            if user is None or consent is None or consent.get("revoked"):
                raise OAuthError(400, "invalid_grant", 65001, f"The user or administrator has not consented to use the application with ID '{app.client_id}'.")
            requested = form.get("scope", "") or " ".join(code["scopes"])
            if "openid" not in requested.split():
                requested += " openid"
            body = self._user_token_response(request, app, user, code["scopes"], requested + " offline_access",
                                             confidential, code["nonce"], client_info)
            return web.json_response(body, headers={"Cache-Control": "no-store"})
        if grant == "refresh_token":
            app, confidential = self._client_auth(request, form, require_secret=False)
            rt = tokens.refresh.get(form.get("refresh_token", ""))
            if rt is None or rt["client_id"] != app.client_id:
                raise OAuthError(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
            if rt["expires"] < time.time():
                raise OAuthError(400, "invalid_grant", 700082, "The refresh token has expired due to inactivity.")
            user = self.store.users.get(rt["user_id"])
            consent = self.store.consent(rt["user_id"], app.client_id)
            if user is None or consent is None or consent.get("revoked") or rt["issued"] <= consent.get("revoked_at", 0):
                raise OAuthError(
                    400, "invalid_grant", 65001,
                    f"The user or administrator has not consented to use the application with ID '{app.client_id}' named "
                    f"'{app.display_name}'. Send an interactive authorization request for this user and resource.",
                )
            scopes = self.delegated_scopes(app, user, form.get("scope", "") or " ".join(rt["scopes"]))
            del tokens.refresh[form["refresh_token"]]  # rotation: a refresh token is good for one use
            requested = form.get("scope", "") + " offline_access"
            body = self._user_token_response(request, app, user, scopes, requested, confidential, None, client_info)
            return web.json_response(body, headers={"Cache-Control": "no-store"})
        if not grant:
            raise OAuthError(400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
        raise OAuthError(400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'.")
