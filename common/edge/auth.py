"""Bearer JWT verification: HS256 with a shared secret, RS256 against a JWKS (Google ID tokens).

Each algorithm is accepted only with its own kind of key, so an RS256 public key can never
serve as an HS256 secret (the classic algorithm confusion), and ``none`` is never accepted.
Every token must carry ``sub`` and ``exp``; ``aud`` and ``iss`` are checked when configured.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt

from common.config.settings import Auth
from common.domain.errors import AudionotesError

LEEWAY_S = 30
_MAX_TOKEN_CHARS = 8192


class Unauthenticated(AudionotesError):
    """No usable credentials: the caller gets 401 with ``WWW-Authenticate: Bearer``."""

    code = "unauthenticated"


@dataclass(frozen=True)
class Principal:
    subject: str
    issuer: str | None
    algorithm: str


class Verifier:
    """Verifies bearer tokens per ``Settings.auth``. The JWKS client is made on first use."""

    def __init__(self, auth: Auth) -> None:
        self.auth = auth
        self._jwks: jwt.PyJWKClient | None = None

    @property
    def jwks(self) -> jwt.PyJWKClient:
        if self._jwks is None:
            if not self.auth.jwks_url:
                raise Unauthenticated("RS256 tokens are not accepted here", code="unsupported_alg")
            # Keys are cached for lifespan seconds; an unknown kid refetches once.
            self._jwks = jwt.PyJWKClient(self.auth.jwks_url, cache_keys=True, lifespan=3600)
        return self._jwks

    def verify_header(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthenticated("missing Authorization: Bearer <token>", code="missing_token")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "the Authorization header must be 'Bearer <token>'", code="missing_token"
            )
        return self.verify(token.strip())

    def verify(self, token: str) -> Principal:
        if len(token) > _MAX_TOKEN_CHARS:
            raise Unauthenticated("the token is too long", code="invalid_token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"malformed token: {exc}", code="invalid_token") from None
        alg = header.get("alg")
        key: Any
        if alg == "HS256" and self.auth.jwt_secret is not None:
            key = self.auth.jwt_secret.get_secret_value()
        elif alg == "RS256" and self.auth.jwks_url:
            try:
                key = self.jwks.get_signing_key_from_jwt(token).key
            except jwt.PyJWKClientError as exc:
                raise Unauthenticated(
                    f"no key for this token: {exc}", code="invalid_token"
                ) from None
        else:
            accepted = self.accepted_algorithms()
            raise Unauthenticated(
                f"token algorithm {alg!r} is not accepted (accepted: {', '.join(accepted)})",
                code="unsupported_alg",
            )
        options: Any = {
            "require": ["exp", "sub"],
            "verify_aud": bool(self.auth.audience),
        }
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.auth.audience,
                issuer=self.auth.issuers or None,
                leeway=LEEWAY_S,
                options=options,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired", code="token_expired") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated(
                "the token's signature is not valid", code="bad_signature"
            ) from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the token is not valid: {exc}", code="invalid_token") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 256:
            raise Unauthenticated("the token's sub must be 1-256 characters", code="invalid_token")
        return Principal(subject=subject, issuer=claims.get("iss"), algorithm=alg)

    def accepted_algorithms(self) -> list[str]:
        return [
            alg
            for alg, on in (("HS256", self.auth.jwt_secret), ("RS256", self.auth.jwks_url))
            if on
        ]


def issue_hs256(
    secret: str,
    subject: str,
    *,
    ttl_s: int = 3600,
    audience: str | None = None,
    issuer: str | None = None,
    now: float | None = None,
) -> str:
    """An HS256 token for ``subject`` (the local stack's ``token`` command, tests)."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "iat": issued,
        "exp": issued + ttl_s,
        "jti": secrets.token_hex(8),
    }
    if audience:
        claims["aud"] = audience
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm="HS256")
