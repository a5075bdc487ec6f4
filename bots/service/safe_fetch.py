"""Fetching a URL a user gave us without letting it reach our own network (SSRF).

The rule: only ``http``/``https``; the host is resolved once and *every* address it resolves to must be public
(not loopback, private, link-local, CGNAT, multicast, reserved or unspecified, in IPv4 or IPv6, and not an IPv4
address dressed as IPv6: mapped ``::ffff:a.b.c.d``, compatible ``::a.b.c.d``, 6to4, NAT64, Teredo). The connection
then goes to the checked address itself — the request URL carries the IP, while the ``Host`` header and the TLS
server name (and so the certificate check) keep the name — so a second DNS answer cannot swap in another address
(DNS rebinding). Redirects are followed here, by hand, and each hop is checked the same way.

Host spellings that ``inet_aton`` (and so glibc's resolver, curl and browsers) read as IPv4 — ``2130706433``,
``0x7f.1``, ``0177.0.0.1``, ``127.1`` — are read the same way here before any lookup.

``AllowList`` (``IMPASTO_FETCH_ALLOW_HOSTS``: host names and CIDRs, comma-separated) lifts the rule for named hosts:
for a private deployment whose images live on the LAN, and for tests that serve images from 127.0.0.1.

Written here rather than taken from a library: the SSRF filters on PyPI either check the name only (a second lookup
at connect time then defeats them) or patch the socket layer process-wide; pinning the address through httpx's own
request API keeps the guard local to the calls that need it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: What a user is told; deliberately nothing about the target (no status, no address, no port).
PRIVATE_ADDRESS = "points to a private address"

MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

# Hosts made only of digits, hex digits, 'x' and dots may be an inet_aton IPv4 spelling ("0x7f.1", "2130706433").
_NUMERIC_HOST = re.compile(r"^[0-9a-fx.]+$", re.IGNORECASE)

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURL(Exception):
    """The URL may not be fetched; ``str(exc)`` is a line fit for the user (never a detail from the target)."""


@dataclass(frozen=True)
class AllowList:
    """Hosts (exact names, case-insensitive) and networks that may be fetched although they are not public."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = field(default=())

    @classmethod
    def parse(cls, spec: str | Iterable[str] | None) -> AllowList:
        """``"127.0.0.1, 10.0.0.0/8, images.lan"`` → an allow-list; ValueError naming a bad entry."""
        if spec is None:
            return cls()
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in items:
            item = raw.strip().lower().strip("[]")
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                if "/" in item or not re.fullmatch(r"[a-z0-9.-]+", item):
                    raise ValueError(
                        f"IMPASTO_FETCH_ALLOW_HOSTS: {raw.strip()!r} is neither a host name nor a CIDR"
                    ) from None
                hosts.add(item.rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks if network.version == address.version)


def literal_address(host: str) -> IPAddress | None:
    """The IP address a URL host spells, in any spelling a resolver would accept; None for a name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # "%eth0": an IPv6 zone id
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, 6to4, NAT64, Teredo client), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(address.packed[-4:])
    # IPv4-compatible (::a.b.c.d, deprecated but still routed by some stacks); :: and ::1 are themselves not public.
    if address.packed[:12] == bytes(12) and int(address) > 1:
        return ipaddress.IPv4Address(address.packed[-4:])
    return None


def is_public(address: IPAddress) -> bool:
    """True only for a globally routable unicast address; an IPv6 address wrapping an IPv4 one is judged by that."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:  # the packet ends up at the IPv4 address: judge that one
            return is_public(inner)
    return address.is_global and not (address.is_multicast or address.is_reserved or address.is_unspecified)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (one lookup), in the resolver's order; UnsafeURL when it has none."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeURL("could not be downloaded (the host name was not found)") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeURL("could not be downloaded (the host name was not found)")
    return addresses


async def checked_addresses(url: httpx.URL, allow: AllowList) -> list[IPAddress]:
    """The addresses this URL may be fetched from, all checked; UnsafeURL if any of them is not public."""
    if url.scheme not in ("http", "https"):
        raise UnsafeURL("is not an http or https link")
    host = url.host
    if not host:
        raise UnsafeURL("has no host")
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = await resolve(host, port)
    if allow.allows_host(host):
        return addresses
    # Every address, not only the first: a name that answers with one public and one private address is refused.
    if not all(is_public(a) or allow.allows_address(a) for a in addresses):
        raise UnsafeURL(PRIVATE_ADDRESS)
    return addresses


def _parse(url: str, allow: AllowList, *, base: httpx.URL | None = None) -> httpx.URL:
    """The URL as httpx reads it; UnsafeURL for one it cannot read (said as "private" when the host spells one)."""
    try:
        return base.join(url) if base is not None else httpx.URL(url)
    except httpx.InvalidURL:
        # httpx refuses numeric spellings (``0177.0.0.1``) that a resolver accepts; call them what they are.
        host = urlsplit(url).hostname or ""
        address = literal_address(host)
        if address is not None and not is_public(address) and not allow.allows_address(address):
            raise UnsafeURL(PRIVATE_ADDRESS) from None
        raise UnsafeURL("is not a valid link") from None


def _pinned(url: httpx.URL, address: IPAddress) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """The request URL aimed at ``address``, the Host header and the TLS server name that keep the original name."""
    host_header = url.netloc.decode("ascii").rsplit("@", 1)[-1]  # host[:port], no user info
    extensions = {"sni_hostname": url.host} if url.scheme == "https" and literal_address(url.host) is None else {}
    return url.copy_with(host=str(address)), {"Host": host_header}, extensions


@asynccontextmanager
async def open_public(
    url: str, *, allow: AllowList, timeout_s: float, max_redirects: int = MAX_REDIRECTS
) -> AsyncIterator[httpx.Response]:
    """GET ``url`` (redirects followed, each hop checked) and yield the final, still unread, streaming response.

    Raises UnsafeURL for a refused hop or too many redirects, httpx.HTTPError for transport failures.
    """
    # trust_env=False: a proxy from the environment would do its own lookup and reach whatever it likes.
    async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
        current = _parse(url, allow)
        for _hop in range(max_redirects + 1):
            try:
                # httpx's timeouts cover connect/read/write, not our own lookup: a resolver that hangs is cut here.
                addresses = await asyncio.wait_for(checked_addresses(current, allow), timeout_s)
            except TimeoutError:
                raise UnsafeURL("could not be downloaded (the host name did not resolve in time)") from None
            response = await _send_first_reachable(client, current, addresses)
            location = response.headers.get("location")
            if response.status_code not in _REDIRECTS or not location:
                try:
                    yield response
                finally:
                    await response.aclose()
                return
            await response.aclose()
            current = _parse(location, allow, base=current)
        raise UnsafeURL(f"redirects more than {max_redirects} times")


async def _send_first_reachable(
    client: httpx.AsyncClient, url: httpx.URL, addresses: list[IPAddress]
) -> httpx.Response:
    """Try the checked addresses in order (as a resolver-driven connect would), each pinned; the first that answers."""
    last: httpx.TransportError | None = None
    for address in addresses:
        target, headers, extensions = _pinned(url, address)
        request = client.build_request("GET", target, headers=headers, extensions=extensions)
        try:
            return await client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            last = exc
    assert last is not None  # addresses is never empty
    raise last
