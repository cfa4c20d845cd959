"""Signing, issuing and validating the emulator's JWTs (RS256), refresh tokens and codes."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .errors import OAuthError, unauthenticated
from .model import App, Store, User, stable_guid

GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_json(obj: dict) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def check_certificate(pem: str) -> str:
    """A PEM certificate as registered on an app (seed / control API); ValueError when it isn't one."""
    x509.load_pem_x509_certificate(pem.encode())
    return pem


def _assertion_error(aadsts: int, description: str) -> OAuthError:
    return OAuthError(401, "invalid_client", aadsts, description)


def verify_client_assertion(assertion: str, app: App, audiences: set[str]) -> None:
    """Check a signed client assertion (RFC 7523) as Entra ID does
    (https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials):

    1. a JWT whose header names the certificate: ``x5t`` (base64url SHA-1 thumbprint of its DER)
       with RS256, or ``x5t#S256`` (SHA-256) with PS256;
    2. that certificate is registered on the app and not expired; the signature verifies with its key;
    3. ``aud`` is the token endpoint, ``iss`` = ``sub`` = the client id, a ``jti``, now before ``exp``
       and (when given) not before ``nbf``. No clock skew is allowed: stricter than Entra, never kinder.
    Raises OAuthError (invalid_client, AADSTS700027 for the key and signature)."""
    try:
        head_b64, payload_b64, sig_b64 = assertion.split(".")
        header = json.loads(b64url_decode(head_b64))
        claims = json.loads(b64url_decode(payload_b64))
        signature = b64url_decode(sig_b64)
    except (ValueError, json.JSONDecodeError) as exc:
        raise _assertion_error(50027, "JWT token is invalid or malformed.") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _assertion_error(50027, "JWT token is invalid or malformed.")
    alg = header.get("alg")
    if alg == "RS256" and header.get("x5t"):
        digest, thumb, pad = hashes.SHA1(), header["x5t"], padding.PKCS1v15()  # noqa: S303 - x5t is SHA-1 by definition
    elif alg == "PS256" and header.get("x5t#S256"):
        digest, thumb, pad = hashes.SHA256(), header["x5t#S256"], padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
    else:
        raise _assertion_error(700027, "Client assertion contains an invalid signature. [Reason - The header must name the "
                                       "certificate: x5t with alg RS256, or x5t#S256 with alg PS256.]")
    cert = next((c for c in (x509.load_pem_x509_certificate(p.encode()) for p in app.certificates)
                 if b64url(c.fingerprint(digest)) == str(thumb).rstrip("=")), None)
    if cert is None:
        raise _assertion_error(700027, f"Client assertion contains an invalid signature. [Reason - The key was not found., "
                                       f"Thumbprint of key used by client: '{thumb}', Please visit the Azure Portal, Graph Explorer or "
                                       f"directly use MS Graph to see configured keys for app Id '{app.client_id}'.]")
    if cert.not_valid_after_utc.timestamp() < time.time():
        raise _assertion_error(700027, f"Client assertion contains an invalid signature. [Reason - The key used is expired., "
                                       f"Thumbprint of key used by client: '{thumb}'.]")
    pss = isinstance(pad, padding.PSS)
    try:
        cert.public_key().verify(signature, f"{head_b64}.{payload_b64}".encode(), pad, hashes.SHA256())
    except (InvalidSignature, TypeError, ValueError):
        raise _assertion_error(700027, "Client assertion contains an invalid signature. [Reason - The provided signature value "
                                       f"did not match the expected signature value ({'PS256' if pss else 'RS256'}).]") from None
    if claims.get("aud") not in audiences:
        raise _assertion_error(50012, f"Client assertion audience claim does not match Realm issuer ('{claims.get('aud')}').")
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        raise _assertion_error(700021, "Client assertion application identifier doesn't match 'client_id' parameter "
                                       "(iss and sub must be the client id).")
    if not claims.get("jti"):
        raise _assertion_error(50027, "JWT token is invalid or malformed: the jti claim is missing.")
    t = time.time()
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, (int, float)) or exp <= t or (nbf is not None and (not isinstance(nbf, (int, float)) or nbf > t)):
        raise _assertion_error(700024, "Client assertion is not within its valid time range.")


class TokenService:
    def __init__(self, store: Store, state_dir: Path):
        self.store = store
        key_path = state_dir / "signing-key.pem"
        if key_path.exists():
            self.key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        else:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key_path.write_bytes(
                self.key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
            key_path.chmod(0o600)
        pub = self.key.public_key().public_numbers()
        self.kid = b64url(hashlib.sha256(str(pub.n).encode()).digest()[:15])
        self.jwk = {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": b64url(pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")),
            "e": b64url(pub.e.to_bytes(3, "big")),
            "issuer": "",
        }
        self.access: dict[str, dict] = {}  # token -> claims (plus "_expired")
        self.refresh: dict[str, dict] = {}
        self.codes: dict[str, dict] = {}

    # -- JWT ---------------------------------------------------------------
    def sign(self, claims: dict) -> str:
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid, "x5t": self.kid}
        signing_input = f"{b64url_json(header)}.{b64url_json(claims)}".encode()
        sig = self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input.decode()}.{b64url(sig)}"

    def verify(self, token: str) -> dict | None:
        try:
            head, payload, sig = token.split(".")
            self.key.public_key().verify(
                b64url_decode(sig), f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            return json.loads(b64url_decode(payload))
        except (ValueError, InvalidSignature, json.JSONDecodeError):
            return None

    # -- issuing -------------------------------------------------------------
    def _base_claims(self, app: App, lifetime: int) -> dict:
        t = int(time.time())
        tid = self.store.tenant_id
        return {
            "aud": GRAPH_AUDIENCE,
            "iss": f"https://sts.windows.net/{tid}/",
            "iat": t,
            "nbf": t - 300,
            "exp": t + lifetime,
            "aio": b64url(secrets.token_bytes(24)),
            "app_displayname": app.display_name,
            "appid": app.client_id,
            "azp": app.client_id,
            "rh": "0.AAAA" + b64url(secrets.token_bytes(12)) + ".",
            "tid": tid,
            "uti": b64url(secrets.token_bytes(16)),
            "ver": "1.0",
            "xms_tcdt": 1600000000,
        }

    def issue_app_token(self, app: App) -> tuple[str, int]:
        lifetime = int(self.store.config["access_token_lifetime"])
        claims = self._base_claims(app, lifetime)
        sp = stable_guid("service-principal", app.client_id)
        claims.update({"appidacr": "1", "idp": f"https://sts.windows.net/{self.store.tenant_id}/", "idtyp": "app",
                       "oid": sp, "sub": sp, "roles": sorted(app.app_roles)})
        token = self.sign(claims)
        self.access[token] = dict(claims, _issued=time.time())
        return token, lifetime

    def issue_user_token(self, app: App, user: User, scopes: list[str], confidential: bool) -> tuple[str, int]:
        lifetime = int(self.store.config["access_token_lifetime"])
        claims = self._base_claims(app, lifetime)
        claims.update({
            "acct": 0, "acr": "1", "amr": ["pwd"], "appidacr": "1" if confidential else "0",
            "family_name": user.surname, "given_name": user.given_name, "idtyp": "user", "ipaddr": "127.0.0.1",
            "name": user.display_name, "oid": user.id, "platf": "3", "puid": "10032" + user.id[:11].replace("-", "").upper(),
            "scp": " ".join(scopes), "sub": stable_guid("sub", user.id, app.client_id), "unique_name": user.upn,
            "upn": user.upn, "preferred_username": user.upn, "wids": [],
        })
        token = self.sign(claims)
        self.access[token] = dict(claims, _issued=time.time())
        return token, lifetime

    def issue_id_token(self, app: App, user: User, issuer: str, nonce: str | None) -> str:
        t = int(time.time())
        claims = {
            "aud": app.client_id, "iss": issuer, "iat": t, "nbf": t, "exp": t + 3600,
            "name": user.display_name, "oid": user.id, "preferred_username": user.upn,
            "rh": "0.AAAA" + b64url(secrets.token_bytes(12)) + ".", "sub": stable_guid("sub", user.id, app.client_id),
            "tid": self.store.tenant_id, "uti": b64url(secrets.token_bytes(16)), "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        return self.sign(claims)

    def issue_refresh_token(self, app: App, user: User, scopes: list[str]) -> str:
        rt = "1.AQ" + b64url(secrets.token_bytes(48))
        self.refresh[rt] = {
            "client_id": app.client_id, "user_id": user.id, "scopes": scopes, "issued": time.time(),
            "expires": time.time() + int(self.store.config["refresh_token_lifetime"]),
        }
        return rt

    # -- validation ----------------------------------------------------------
    def validate(self, authorization: str | None) -> dict:
        """Claims of a valid bearer token; 401 InvalidAuthenticationToken otherwise."""
        if not authorization:
            raise unauthenticated("Access token is empty.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthenticated("Access token is empty.")
        token = token.strip()
        claims = self.access.get(token)
        if claims is None:
            if token.count(".") != 2:
                raise unauthenticated("IDX14100: JWT is not well formed, there are no dots (.).")
            claims = self.verify(token)
            if claims is None:
                raise unauthenticated("Invalid JWT token. Token signature validation failed.")
            claims = dict(claims, _issued=float(claims.get("iat", 0)))
            self.access[token] = claims
        if claims.get("_expired") or claims.get("exp", 0) < time.time():
            raise unauthenticated("Lifetime validation failed, the token is expired.")
        if claims.get("aud") not in (GRAPH_AUDIENCE, GRAPH_AUDIENCE + "/", GRAPH_APP_ID):
            raise unauthenticated("Access token validation failure. Invalid audience.")
        if claims.get("tid") != self.store.tenant_id:
            raise unauthenticated("Access token validation failure. Invalid issuer.")
        if claims["appid"] not in self.store.apps:
            raise unauthenticated("Access token validation failure. The application no longer exists.")
        if claims.get("idtyp") == "user":
            if claims["oid"] not in self.store.users:
                raise unauthenticated("Access token validation failure. The user no longer exists.")
            consent = self.store.consent(claims["oid"], claims["appid"])
            if consent is None or consent.get("revoked") or claims["_issued"] <= consent.get("revoked_at", 0):
                raise unauthenticated("The access token has been revoked: the user's consent to the application was withdrawn.")
        return claims

    def expire(self, user_id: str | None = None, client_id: str | None = None) -> int:
        n = 0
        for claims in self.access.values():
            if user_id and claims.get("oid") != user_id:
                continue
            if client_id and claims.get("appid") != client_id:
                continue
            if not claims.get("_expired"):
                claims["_expired"] = True
                n += 1
        return n
