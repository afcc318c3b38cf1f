"""The SSRF guard with production's policy: schemes, userinfo, every blocked range (IPv6 and
IPv4-in-IPv6 forms too), names that resolve inward, and redirects re-checked at each hop."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from common.domain.errors import InvalidInput
from common.edge.ssrf import (
    UrlNotAllowed,
    UrlPolicy,
    check_url,
    fetch,
    guarded_session,
)

# Addresses the guard must refuse: one of each range it blocks, in IPv4, IPv6 and the IPv6
# forms that carry an IPv4 address.
BLOCKED = (
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a00:1",
    "2002:a00:1::",
)

PUBLIC = {"public.test": ["93.184.216.34"], "v6public.test": ["2606:2800:220:1::1"]}


def resolver(table: dict[str, list[str]]) -> Any:
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            import socket

            raise socket.gaierror(-2, "Name or service not known")
        return table[host]

    return resolve


@pytest.mark.parametrize("address", BLOCKED)
def test_every_non_public_address_is_refused(address: str) -> None:
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(UrlNotAllowed) as err:
        check_url(f"https://{host}/a.wav")
    assert err.value.code == "url_address_not_allowed"
    assert isinstance(err.value, InvalidInput)


@pytest.mark.parametrize(
    ("name", "addresses"),
    [
        ("loopback.test", ["127.0.0.1"]),
        ("metadata.test", ["169.254.169.254"]),
        ("v6.test", ["::1"]),
        ("mapped.test", ["::ffff:10.0.0.1"]),
        ("mixed.test", ["93.184.216.34", "192.168.0.10"]),  # one bad answer is enough
    ],
)
def test_names_resolving_inward_are_refused(name: str, addresses: list[str]) -> None:
    with pytest.raises(UrlNotAllowed) as err:
        check_url(f"https://{name}/a.wav", resolver=resolver({name: addresses}))
    assert err.value.code == "url_address_not_allowed"
    assert name in err.value.message


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://public.test/a.wav", "url_scheme_not_allowed"),
        ("ftp://public.test/a.wav", "url_scheme_not_allowed"),
        ("file:///etc/passwd", "url_scheme_not_allowed"),
        ("gs://bucket/a.wav", "url_scheme_not_allowed"),
        ("//public.test/a.wav", "url_scheme_not_allowed"),
        ("https://user:pw@public.test/a.wav", "url_userinfo_not_allowed"),
        ("https://user@public.test/a.wav", "url_userinfo_not_allowed"),
        ("https:///a.wav", "url_host_missing"),
        ("https://public.test:99999/", "url_host_missing"),
        ("https://nowhere.test/a.wav", "url_unresolvable"),
    ],
)
def test_url_shapes_are_refused(url: str, code: str) -> None:
    with pytest.raises(UrlNotAllowed) as err:
        check_url(url, resolver=resolver(PUBLIC))
    assert err.value.code == code


def test_public_urls_pass_and_report_their_addresses() -> None:
    ok = check_url("https://public.test/a.wav", resolver=resolver(PUBLIC))
    assert (ok.host, ok.port, ok.addresses) == ("public.test", 443, ("93.184.216.34",))
    v6 = check_url("https://v6public.test:8443/x", resolver=resolver(PUBLIC))
    assert (v6.port, v6.addresses) == (8443, ("2606:2800:220:1::1",))
    assert check_url("http://public.test/", allow_http=True, resolver=resolver(PUBLIC))


def test_allowed_networks_exempt_exactly_themselves() -> None:
    assert check_url("http://127.0.0.1:8080/", allow_http=True, allowed_networks=["127.0.0.1/32"])
    for other in ("127.0.0.2", "[::1]", "10.0.0.1"):
        with pytest.raises(UrlNotAllowed):
            check_url(f"http://{other}/", allow_http=True, allowed_networks=["127.0.0.1/32"])


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port_box: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            port = port_box["port"]
            targets = {
                "/metadata": "http://169.254.169.254/latest/meta-data/",
                "/private": "http://10.1.2.3/",
                "/v6": f"http://[::1]:{port}/ok",
                "/userinfo": f"http://u:p@127.0.0.1:{port}/ok",
                "/ftp": "ftp://127.0.0.1/ok",
                "/hop": "/ok",
                "/loop": "/loop",
            }
            if self.path in targets:
                self.send_response(302)
                self.send_header("Location", targets[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_box["port"] = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port_box['port']}"
    srv.shutdown()


LOCAL = UrlPolicy(allow_http=True, allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))


def test_fetch_follows_allowed_redirects(server: str) -> None:
    response = fetch(f"{server}/hop", LOCAL)
    assert (response.status_code, response.content, response.url) == (200, b"ok", f"{server}/ok")


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/metadata", "url_address_not_allowed"),
        ("/private", "url_address_not_allowed"),
        ("/v6", "url_address_not_allowed"),
        ("/userinfo", "url_userinfo_not_allowed"),
        ("/ftp", "url_scheme_not_allowed"),
        ("/loop", "url_too_many_redirects"),
    ],
)
def test_every_redirect_is_checked_again(server: str, path: str, code: str) -> None:
    with pytest.raises(UrlNotAllowed) as err:
        fetch(f"{server}{path}", LOCAL)
    assert err.value.code == code


def test_connections_are_checked_when_they_are_made(server: str) -> None:
    """Past the preflight (a DNS answer that changed, a caller that skipped check_url), the
    guarded session itself refuses to connect to a non-public address."""
    session = guarded_session(UrlPolicy(allow_http=True))
    with pytest.raises(UrlNotAllowed) as err:
        session.get(f"{server}/ok", timeout=5)
    assert err.value.code == "url_address_not_allowed"
    rebinding = UrlPolicy(allow_http=True, resolver=resolver({"rebind.test": ["127.0.0.1"]}))
    with pytest.raises(UrlNotAllowed):
        guarded_session(rebinding).get("http://rebind.test/", timeout=5)


def test_production_policy_from_settings() -> None:
    from common.config.settings import Settings

    settings = Settings(project="audionotes-x", buckets={"inbox": "in-b", "results": "out-b"})
    policy = UrlPolicy.from_settings(settings)
    assert (policy.allow_http, policy.allowed_networks) == (False, ())
    assert (settings.auth.rate_per_minute, settings.auth.rate_per_hour) == (60, 1000)
