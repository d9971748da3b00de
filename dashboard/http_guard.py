"""The dashboard's HTTP guard: a Host header naming another site is refused, and no other site may frame a page.

DNS rebinding lets a page on evil.example reach a dashboard on 127.0.0.1 under the name evil.example; framing
lets another site overlay the dashboard (clickjacking). Streamlit 1.67 checks `server.allowedHosts` on its
WebSocket only and has no setting for response headers, so `dashboard_server.py` serves the dashboard as an
`st.App` wrapped in `DashboardGuard`: one ASGI middleware in front of every route, Streamlit's and any a
component adds (docs/ARCHITECTURE.md "Dashboard safety").
"""

from __future__ import annotations

import ipaddress

from starlette.middleware.trustedhost import TrustedHostMiddleware

# Same-origin framing stays allowed: Streamlit's own components (and a future map component) are iframes served
# by the dashboard itself; the Host check makes "self" the dashboard's own names only.
FRAME_HEADERS = [(b"x-frame-options", b"SAMEORIGIN"), (b"content-security-policy", b"frame-ancestors 'self'")]
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")


def host_patterns(names) -> list[str]:
    """Host-header patterns for `names` (as given to `server.allowedHosts`): IPv6 literals also in brackets, the
    form a Host header carries them in."""
    out = []
    for name in names:
        name = str(name).strip().lower().rstrip(".")
        if not name:
            continue
        out.append(name)
        try:
            if ipaddress.ip_address(name).version == 6:
                out.append(f"[{name}]")
        except ValueError:
            pass
    return list(dict.fromkeys(out))


def configured_hosts() -> list[str]:
    """The names `dfatlas serve` passed as `server.allowedHosts` (the loopback names when none were)."""
    from streamlit import config

    return list(config.get_option("server.allowedHosts") or DEFAULT_HOSTS)


class DashboardGuard:
    """ASGI middleware: refuse (400) any HTTP request or WebSocket upgrade whose Host is not allowed, and add
    `FRAME_HEADERS` to every HTTP response, refusals included."""

    def __init__(self, app, allowed_hosts=None) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self._checked = None

    def _inner(self):
        if self._checked is None:  # built on first use: Streamlit's config is loaded by then
            hosts = host_patterns(self.allowed_hosts if self.allowed_hosts is not None else configured_hosts())
            self._checked = TrustedHostMiddleware(self.app, allowed_hosts=hosts, www_redirect=False)
        return self._checked

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        inner = self._inner()
        if scope["type"] == "websocket":
            await inner(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-frame-options"]
                message = {**message, "headers": kept + FRAME_HEADERS}
            await send(message)

        await inner(scope, receive, send_with_headers)
