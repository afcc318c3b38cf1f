"""The web page: a reader for the caller's own jobs, served by ``api`` beside the API.

Plain static files in ``web/`` (no build step): the page speaks only the public API, with the
token it is given kept in memory, so it can do nothing a caller's token could not. The
Content-Security-Policy lets it talk to this origin and to Cloud Storage (signed upload and
audio URLs) and run no script but its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import flask

WEB_DIR = Path(__file__).with_name("web")
# Every file the page is made of, and its media type: nothing else under web/ is served.
FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
PAGE = "index.html"


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str  # unquoted


def content_security_policy(storage_origin: str) -> str:
    """Same-origin scripts and styles only; fetches to the API and to Cloud Storage (the signed
    upload PUT), audio from Cloud Storage or an https audio_url; no frames, forms or plugins."""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' {storage_origin}",
            f"media-src {storage_origin} https:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def load_assets() -> dict[str, Asset]:
    assets = {}
    for name, media_type in FILES.items():
        body = (WEB_DIR / name).read_bytes()
        assets[name] = Asset(body, media_type, hashlib.sha256(body).hexdigest()[:32])
    return assets


def register(app: flask.Flask, *, storage_origin: str) -> None:
    """``GET /`` the page, ``GET /web/<file>`` its other files (read once, revalidated by
    ETag)."""
    assets = load_assets()
    csp = content_security_policy(storage_origin)

    def answer(asset: Asset) -> flask.Response:
        fresh = flask.request.if_none_match.contains(asset.etag)
        response = flask.Response(b"" if fresh else asset.body, 304 if fresh else 200)
        response.content_type = asset.media_type
        response.set_etag(asset.etag)
        response.headers.update(
            {
                "Cache-Control": "no-cache",  # fixed names: always revalidate
                "Content-Security-Policy": csp,
                "X-Frame-Options": "DENY",
                "X-Content-Type-Options": "nosniff",
                # Signed URLs travel in the page's requests: never in a Referer.
                "Referrer-Policy": "no-referrer",
            }
        )
        return response

    def page() -> flask.Response:
        return answer(assets[PAGE])

    def file(name: str) -> flask.Response:
        if name == PAGE or name not in assets:  # the page itself only at /
            flask.abort(404)
        return answer(assets[name])

    app.add_url_rule("/", "page", page, methods=["GET"], provide_automatic_options=False)
    app.add_url_rule(
        "/web/<name>", "page_file", file, methods=["GET"], provide_automatic_options=False
    )
