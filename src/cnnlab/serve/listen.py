"""Where ``cnnlab serve`` listens: the address and port checked, the socket bound before the model loads.

Light (no FastAPI, no torch): a port in use or a bad option is one line, at once.
"""

from __future__ import annotations

import ipaddress
import socket

from ..errors import ArgumentError, CnnlabError

__all__ = ["LOOPBACK", "exposure_warning", "is_loopback", "listen"]

#: The default address: only this machine can reach the page.
LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str) -> str | None:
    """The warning for an address other machines can reach (the page has no password), else None."""
    if is_loopback(host):
        return None
    return (f"warning: `host` {host} makes the page reachable from other machines, with no password; anyone "
            "who can reach it can use the model")


def listen(host: str, port: int, *, max_upload_mb: float = 10.0) -> socket.socket:
    """A socket bound to (host, port), the options checked first; else a one-line error naming them."""
    if not 0 <= port <= 65535:
        raise ArgumentError(f"{port}: use 0..65535 (0: any free port)", param="port")
    from ..values import check_number

    check_number(max_upload_mb, "max_upload_mb", low=0, low_open=True, example="10")  # before the model loads
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as err:
        raise CnnlabError(f"cannot listen on {host}:{port} ({err.strerror or err}); choose another `port`, "
                          "or 0 for any free one") from None
    return sock
