"""Refuse every connection and name lookup that leaves the loopback interface.

The tests install this in their own process and, through `sitecustomize`, in
every Python subprocess they start, so that a library trying to reach a model
hub or a telemetry host fails the test instead of silently going online.
"""

from __future__ import annotations

import ipaddress
import socket

LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "0.0.0.0", ""}
attempts: list[str] = []


class NetworkAccessError(OSError):
    """A test tried to reach a host other than 127.0.0.1."""


def is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return False
    if host in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def check_address(address: object) -> None:
    """Raise NetworkAccessError unless the address is on the loopback interface."""
    if isinstance(address, tuple) and address and not is_loopback(address[0]):
        attempts.append(str(address[0]))
        raise NetworkAccessError(f"network access to {address[0]!r} is not allowed")


def install() -> None:
    if getattr(socket.socket, "_netguard", False):
        return
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            check_address(address)
        return original_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            check_address(address)
        return original_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and not is_loopback(name):
            attempts.append(str(name))
            raise NetworkAccessError(f"name lookup of {name!r} is not allowed")
        return original_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.getaddrinfo = getaddrinfo
    socket.socket._netguard = True
