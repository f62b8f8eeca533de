"""WebSocket origin check: the page that opens a socket must come from this very site.

Channels' AllowedHostsOriginValidator compares only the host name, so a page served on
another port or over plain HTTP of the same host (another app on that machine, a forgotten
test server) could open a signed-in socket with the user's cookie. Here the Origin must
match scheme, host and port: either the origin the socket itself is served on (its Host
header, which must be in ALLOWED_HOSTS, and ws/wss for http/https), or one of
CSRF_TRUSTED_ORIGINS (the public origin behind a TLS proxy).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]


def parse_origin(value: str) -> Origin | None:
    try:
        parts = urlsplit(value.strip())
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or port is None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.username or parts.password:
        return None
    return parts.scheme, parts.hostname, port


def _header(scope: dict, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""


def served_origin(scope: dict) -> Origin | None:
    """The origin of the page that belongs to this socket: same host, port and security."""
    host = _header(scope, b"host")
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    secure = scope.get("scheme") == "wss"
    proxy = settings.SECURE_PROXY_SSL_HEADER
    if proxy is not None:
        header = proxy[0].removeprefix("HTTP_").replace("_", "-").lower().encode()
        secure = _header(scope, header) == proxy[1]
    return parse_origin(f"{'https' if secure else 'http'}://{host}")


def trusted(origin: Origin) -> bool:
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        scheme, _, rest = entry.partition("://")
        wildcard = rest.startswith("*.")
        allowed = parse_origin(f"{scheme}://{rest[2:] if wildcard else rest}")
        if allowed is None or allowed[0] != origin[0] or allowed[2] != origin[2]:
            continue
        if origin[1] == allowed[1] or (wildcard and origin[1].endswith("." + allowed[1])):
            return True
    return False


def origin_allowed(scope: dict) -> bool:
    origin = parse_origin(_header(scope, b"origin"))
    if origin is None:
        return False  # browsers always send one; a socket without it is not from a page
    return origin == served_origin(scope) or trusted(origin)


class SameOriginValidator:
    """ASGI middleware: refuse (close before accept) a socket from any other origin."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.app(scope, receive, send)
