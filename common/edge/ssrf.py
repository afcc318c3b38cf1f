"""The one SSRF guard: every URL we fetch (https audio) or call (webhooks) goes through it.

``check_url`` is the preflight: scheme (https, or http where configured for local use), no
userinfo, a host, and every address the host resolves to must be public. ``fetch`` re-checks
at connect time (it resolves, checks and connects to the checked address itself, so a DNS
answer that changes between check and connect cannot slip through) and again for every
redirect it follows.

Blocked: private (RFC 1918, ULA fc00::/7), loopback, link-local (169.254.0.0/16 with the
metadata server 169.254.169.254, fe80::/10), CGNAT 100.64.0.0/10, multicast, reserved,
unspecified, and anything else that is not globally routable; IPv4-mapped and IPv4-compatible
IPv6 forms are unwrapped first. ``allowed_networks`` exempts chosen networks, for the local
stack only (``Limits.allowed_private_networks``).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3 import connection as u3conn
from urllib3 import connectionpool as u3pool
from urllib3.util import connection as u3util

from common.config.settings import Settings
from common.domain.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

MAX_REDIRECTS = 5
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_REDIRECTS = (301, 302, 303, 307, 308)

# The shape of a URL the service calls: scheme, a DNS name or an IP literal, a port, then
# anything without whitespace. No credentials (refused first, with their own code). Written
# for both Python and ECMAScript (JSON Schema): the OpenAPI document states the same pattern.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_H16 = r"[0-9A-Fa-f]{1,4}"
_LS32 = rf"(?:{_H16}:{_H16}|{_OCTET}(?:\.{_OCTET}){{3}})"
# RFC 3986's IPv6address, the forms ipaddress accepts (no zone id).
_IPV6 = "|".join(
    [
        rf"(?:{_H16}:){{6}}{_LS32}",
        rf"::(?:{_H16}:){{5}}{_LS32}",
        rf"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
        *(
            rf"(?:(?:{_H16}:){{0,{n}}}{_H16})?::{tail}"
            for n, tail in (
                (1, rf"(?:{_H16}:){{3}}{_LS32}"),
                (2, rf"(?:{_H16}:){{2}}{_LS32}"),
                (3, rf"{_H16}:{_LS32}"),
                (4, _LS32),
                (5, _H16),
                (6, ""),
            )
        ),
    ]
)
_HOST = rf"(?:(?:[A-Za-z0-9_-]{{1,63}}\.)*[A-Za-z0-9_-]{{1,63}}\.?|\[(?:{_IPV6})\])"
_PORT = r"(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"


def url_pattern(*, allow_http: bool) -> str:
    scheme = "[hH][tT][tT][pP][sS]" + ("?" if allow_http else "")
    return rf"{scheme}://{_HOST}{_PORT}(?:[/?#][^\s]*)?"


# Named so that an error says *why* an address is refused; is_global catches the rest.
_NAMED_RANGES: tuple[tuple[str, str], ...] = (
    ("169.254.169.254/32", "the cloud metadata server"),
    ("100.64.0.0/10", "a carrier-grade NAT (CGNAT) address"),
    ("0.0.0.0/8", "an unspecified ('this network') address"),
)


class UrlNotAllowed(InvalidInput):
    """A URL the guard refuses; ``code`` says which rule (url_scheme_not_allowed,
    url_userinfo_not_allowed, url_host_missing, url_malformed, url_unresolvable,
    url_address_not_allowed, url_too_many_redirects)."""

    code = "url_not_allowed"


@dataclass(frozen=True)
class UrlPolicy:
    """What the guard allows. The defaults are production's."""

    allow_http: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver | None = field(default=None, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings, *, resolver: Resolver | None = None) -> UrlPolicy:
        return cls(
            allow_http=settings.limits.allow_http_urls,
            allowed_networks=_networks(settings.limits.allowed_private_networks),
            resolver=resolver,
        )


@dataclass(frozen=True)
class CheckedUrl:
    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def check_url(
    url: str,
    *,
    allow_http: bool = False,
    allowed_networks: Iterable[str | IPNetwork] = (),
    resolver: Resolver | None = None,
) -> CheckedUrl:
    """Refuse (``UrlNotAllowed``, an ``InvalidInput``) or return the URL with its addresses."""
    policy = UrlPolicy(allow_http, _networks(allowed_networks), resolver)
    return _check(url, policy)


def check_with_policy(url: str, policy: UrlPolicy) -> CheckedUrl:
    return _check(url, policy)


def check_address(address: str, policy: UrlPolicy) -> None:
    """Refuse one IP address unless it is public or in ``policy.allowed_networks``."""
    reason = _refusal(address, policy)
    if reason is not None:
        raise UrlNotAllowed(f"{address} is {reason}", code="url_address_not_allowed")


def _refusal(address: str, policy: UrlPolicy) -> str | None:
    ip = _unwrap(ipaddress.ip_address(address.split("%", 1)[0]))
    if any(ip in net for net in policy.allowed_networks if net.version == ip.version):
        return None
    return _why_not_public(ip)


def _check(url: str, policy: UrlPolicy) -> CheckedUrl:
    if not isinstance(url, str) or len(url) > 2048:
        raise UrlNotAllowed("the URL must be a string of at most 2048 characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UrlNotAllowed(f"not a valid URL: {exc}", code="url_host_missing") from exc
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if policy.allow_http else ("https",)
    if scheme not in allowed:
        shown = scheme or "(none)"
        raise UrlNotAllowed(
            f"URL scheme {shown!r} is not allowed; use {' or '.join(allowed)}",
            code="url_scheme_not_allowed",
        )
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UrlNotAllowed(
            "URLs with credentials (user:password@host) are not allowed",
            code="url_userinfo_not_allowed",
        )
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlNotAllowed(f"the URL has no host: {url!r}", code="url_host_missing")
    if not re.fullmatch(url_pattern(allow_http=policy.allow_http), url):
        raise UrlNotAllowed(
            f"not a URL of the form scheme://host[:port][/path]: {url!r}", code="url_malformed"
        )
    port = port or (443 if scheme == "https" else 80)
    addresses = _resolve(host, port, policy)
    for address in addresses:
        reason = _refusal(address, policy)
        if reason is not None:
            what = address if _is_ip_literal(host) else f"{host} resolves to {address}, which"
            raise UrlNotAllowed(
                f"{what} is {reason}; only public addresses are allowed",
                code="url_address_not_allowed",
            )
    return CheckedUrl(url, scheme, host, port, tuple(addresses))


def _resolve(host: str, port: int, policy: UrlPolicy) -> list[str]:
    if _is_ip_literal(host):
        return [host]
    try:
        if policy.resolver is not None:
            found = policy.resolver(host, port)
        else:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found = [str(info[4][0]) for info in infos]
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlNotAllowed(f"{host} does not resolve ({exc})", code="url_unresolvable") from None
    # getaddrinfo also understands 2130706433, 0x7f.1 and friends: those come back as
    # dotted quads here and are checked like any other address.
    unique = list(dict.fromkeys(found))
    if not unique:
        raise UrlNotAllowed(f"{host} resolves to no address", code="url_unresolvable")
    return unique


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _unwrap(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip.teredo is not None:
            return ip.teredo[1]
        if ip in _NAT64:  # 64:ff9b::a.b.c.d is a.b.c.d through a NAT64 gateway
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        # ::a.b.c.d (deprecated IPv4-compatible) reaches the IPv4 host on some stacks.
        if int(ip) >> 32 == 0 and int(ip) > 1:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def _why_not_public(ip: IPAddress) -> str | None:
    for network, name in _NAMED_RANGES:
        net = ipaddress.ip_network(network)
        if ip.version == net.version and ip in net:
            return name
    checks = (
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a globally routable address"),
    )
    for hit, name in checks:
        if hit:
            return name
    return None


def _networks(values: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    return tuple(
        v if not isinstance(v, str) else ipaddress.ip_network(v, strict=False) for v in values
    )


# --- fetching through the guard ---------------------------------------------------------------


def _connect(conn: u3conn.HTTPConnection, policy: UrlPolicy) -> Any:
    """Resolve, check every address, connect to a checked one (no second lookup)."""
    host = conn.host.strip("[]")
    addresses = _resolve(host, conn.port or 0, policy)
    for address in addresses:
        check_address(address, policy)
    last: OSError | None = None
    for address in addresses:
        try:
            return u3util.create_connection(
                (address, conn.port),
                conn.timeout,
                source_address=conn.source_address,
                socket_options=conn.socket_options,
            )
        except OSError as exc:
            last = exc
    raise urllib3.exceptions.NewConnectionError(conn, f"cannot connect to {host}: {last}")


def _pool_classes(policy: UrlPolicy) -> dict[str, type[u3pool.HTTPConnectionPool]]:
    class GuardedHTTPConnection(u3conn.HTTPConnection):
        def _new_conn(self) -> Any:
            return _connect(self, policy)

    class GuardedHTTPSConnection(u3conn.HTTPSConnection):
        def _new_conn(self) -> Any:
            return _connect(self, policy)

    class GuardedHTTPPool(u3pool.HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSPool(u3pool.HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    return {"http": GuardedHTTPPool, "https": GuardedHTTPSPool}


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, policy: UrlPolicy) -> None:
        self._policy = policy
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self._policy)
        self.poolmanager.key_fn_by_scheme = dict(self.poolmanager.key_fn_by_scheme)


def guarded_session(policy: UrlPolicy) -> requests.Session:
    """A requests Session whose every connection goes through the guard.

    It never follows redirects by itself and ignores proxy variables (a proxy would connect
    for us, past the guard). Use ``fetch`` to follow redirects with a check at each hop.
    """
    session = requests.Session()
    session.trust_env = False
    adapter = _GuardedAdapter(policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def fetch(
    url: str,
    policy: UrlPolicy,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    data: bytes | None = None,
    json: Any = None,
    timeout: float | tuple[float, float] = 10.0,
    stream: bool = False,
    max_redirects: int = MAX_REDIRECTS,
    session: requests.Session | None = None,
) -> requests.Response:
    """One request through the guard, following redirects (each target checked again).

    303 turns the method into GET as browsers do; other redirects keep method and body.
    Raises ``UrlNotAllowed`` for a refused URL or hop, and requests' own exceptions for
    network failures. With ``stream=True`` the caller must close the response.
    """
    own = session is None
    session = session or guarded_session(policy)
    try:
        current, current_method = url, method.upper()
        body, body_json = data, json
        for _hop in range(max_redirects + 1):
            _check(current, policy)
            response = session.request(
                current_method,
                current,
                headers=dict(headers or {}),
                data=body,
                json=body_json,
                timeout=timeout,
                allow_redirects=False,
                stream=stream,
            )
            location = response.headers.get("Location")
            if response.status_code not in _REDIRECTS or not location:
                if own and not stream:
                    session.close()
                elif own:
                    _close_with(response, session)
                return response
            response.close()
            current = urljoin(current, location)
            if response.status_code == 303 and current_method != "HEAD":
                current_method, body, body_json = "GET", None, None
        raise UrlNotAllowed(
            f"more than {max_redirects} redirects from {url}", code="url_too_many_redirects"
        )
    except BaseException:
        if own:
            session.close()
        raise


def _close_with(response: requests.Response, session: requests.Session) -> None:
    """A streamed response keeps our session's connection: closing it closes the session."""
    close_response = response.close

    def close() -> None:
        close_response()
        session.close()

    response.close = close  # type: ignore[method-assign]
