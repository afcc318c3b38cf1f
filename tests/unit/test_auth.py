"""Bearer tokens: HS256 with the shared secret, RS256 through a JWKS (Google ID tokens), and
everything else refused with a precise code."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from common.config.settings import Auth
from common.edge.auth import Unauthenticated, Verifier, issue_hs256

SECRET = "s3cret-for-tests-only-" + "x" * 24
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/certs"
    server.shutdown()


def _rs256(key: Any, **claims: Any) -> str:
    base = {
        "sub": "1234567890",
        "exp": int(time.time()) + 600,
        "iss": "https://accounts.google.com",
    }
    return jwt.encode({**base, **claims}, key, algorithm="RS256", headers={"kid": "k1"})


def _code(verifier: Verifier, token: str) -> str:
    with pytest.raises(Unauthenticated) as err:
        verifier.verify(token)
    return err.value.code


def test_hs256_round_trip_and_failures() -> None:
    verifier = Verifier(Auth(jwt_secret=SECRET))
    principal = verifier.verify(issue_hs256(SECRET, "alice"))
    assert (principal.subject, principal.algorithm) == ("alice", "HS256")
    now = time.time()
    assert (
        _code(verifier, issue_hs256(SECRET, "alice", ttl_s=10, now=now - 3600)) == "token_expired"
    )
    assert _code(verifier, issue_hs256("another-secret-" + "y" * 30, "alice")) == "bad_signature"
    unsigned = jwt.encode({"sub": "alice", "exp": int(now) + 60}, None, algorithm="none")
    assert _code(verifier, unsigned) == "unsupported_alg"
    hs512 = jwt.encode({"sub": "alice", "exp": int(now) + 60}, SECRET, algorithm="HS512")
    assert _code(verifier, hs512) == "unsupported_alg"
    assert _code(verifier, _rs256(KEY)) == "unsupported_alg"  # no JWKS configured
    assert _code(verifier, jwt.encode({"exp": int(now) + 60}, SECRET, algorithm="HS256")) == (
        "invalid_token"
    )
    assert _code(verifier, jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256")) == (
        "invalid_token"
    )
    assert _code(verifier, "a.b.c") == "invalid_token"
    with pytest.raises(Unauthenticated) as err:
        verifier.verify_header(None)
    assert err.value.code == "missing_token"
    with pytest.raises(Unauthenticated) as err:
        verifier.verify_header("Basic YTpi")
    assert err.value.code == "missing_token"


def test_audience_and_issuer_when_configured() -> None:
    verifier = Verifier(Auth(jwt_secret=SECRET, audience="audionotes", issuers=["me"]))
    good = issue_hs256(SECRET, "alice", audience="audionotes", issuer="me")
    assert verifier.verify_header(f"Bearer {good}").subject == "alice"
    assert _code(verifier, issue_hs256(SECRET, "alice", audience="other", issuer="me")) == (
        "invalid_token"
    )
    assert _code(verifier, issue_hs256(SECRET, "alice", issuer="me")) == "invalid_token"
    assert _code(verifier, issue_hs256(SECRET, "alice", audience="audionotes")) == "invalid_token"


def test_rs256_through_jwks(jwks_url: str) -> None:
    verifier = Verifier(
        Auth(jwks_url=jwks_url, audience="https://api", issuers=["https://accounts.google.com"])
    )
    principal = verifier.verify(_rs256(KEY, aud="https://api"))
    assert (principal.subject, principal.algorithm) == ("1234567890", "RS256")
    assert _code(verifier, _rs256(OTHER_KEY, aud="https://api")) == "bad_signature"
    assert _code(verifier, _rs256(KEY, aud="https://other")) == "invalid_token"
    assert _code(verifier, _rs256(KEY, aud="https://api", iss="https://evil")) == "invalid_token"
    assert _code(verifier, _rs256(KEY, aud="https://api", exp=int(time.time()) - 600)) == (
        "token_expired"
    )
    # Algorithm confusion: an HS256 token "signed" with the RSA public key must not pass.
    public_pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    confused = _hs256_with_raw_key(public_pem)
    assert _code(verifier, confused) == "unsupported_alg"


def _hs256_with_raw_key(key: bytes) -> str:
    """HS256 over the header and claims with ``key`` as the secret, built by hand (PyJWT
    refuses to use a PEM as an HMAC secret, which is the point)."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    claims = {"sub": "x", "exp": int(time.time()) + 60, "aud": "https://api"}
    payload = b64(json.dumps(claims).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def test_a_jwks_url_without_an_audience_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match=r"needs auth\.audience"):
        Auth(jwks_url="https://www.googleapis.com/oauth2/v3/certs")
