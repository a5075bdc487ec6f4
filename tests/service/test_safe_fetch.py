"""Image links reach the public internet only: a local HTTP server that counts its hits proves each refusal.

Every spelling of a private address is refused before a byte is sent (the server sees zero requests); the allow-list
lets 127.0.0.1 through; a redirect to a private host is refused; the connection goes to the address that was
checked (one lookup per hop), with the name kept in the Host header.
"""

from __future__ import annotations

import ipaddress
import socket
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiohttp import web

from impasto.bots.config import Settings
from impasto.bots.service.fetch import FetchError, http_fetcher
from impasto.bots.service.safe_fetch import PRIVATE_ADDRESS, AllowList, _pinned, is_public, literal_address

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@dataclass
class Server:
    port: int
    hits: Counter[str]
    hosts: list[str]

    def url(self, host: str, path: str = "/a.png") -> str:
        return f"http://{host}:{self.port}{path}"

    @property
    def total(self) -> int:
        return sum(self.hits.values())


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    hits: Counter[str] = Counter()
    hosts: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        hits[request.path] += 1
        hosts.append(request.headers.get("Host", ""))
        if request.path == "/a.png":
            return web.Response(body=PNG, content_type="image/png")
        if request.path.startswith("/to/"):  # /to/<url-encoded target>: a redirect
            raise web.HTTPFound(request.match_info["target"])
        if request.path.startswith("/loop/"):
            n = int(request.match_info["n"])
            raise web.HTTPFound(f"/loop/{n + 1}")
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_get("/a.png", handle)
    app.router.add_get("/to/{target:.+}", handle)
    app.router.add_get("/loop/{n}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield Server(port, hits, hosts)
    finally:
        await runner.cleanup()


# Every way to write "this machine" that a resolver, curl or a browser accepts.
LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "localhost",
    "127.1",
    "127.0.1",
    "2130706433",
    "0x7f000001",
    "0x7f.1",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "0177.1",
    "017700000001",
    "127.000.000.001",
    "0.0.0.0",
    "0",
    "[::1]",
    "[::]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[0:0:0:0:0:ffff:127.0.0.1]",
    "[::127.0.0.1]",
    "[2002:7f00:1::]",
    "[64:ff9b::127.0.0.1]",
]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
async def test_every_loopback_spelling_is_refused_with_zero_hits(server: Server, host: str) -> None:
    fetch = http_fetcher(max_bytes=1024)
    with pytest.raises(FetchError) as refused:
        await fetch(server.url(host))
    assert str(refused.value) == PRIVATE_ADDRESS
    assert server.total == 0


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",  # cloud metadata
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",  # CGNAT
        "198.18.0.1",  # benchmarking
        "224.0.0.1",  # multicast
        "240.0.0.1",  # reserved
        "255.255.255.255",
        "[fd00::1]",  # ULA
        "[fe80::1]",  # link-local
        "[ff02::1]",  # multicast
        "[::ffff:169.254.169.254]",
        "[::ffff:10.0.0.1]",
        "[2002:a00:1::]",  # 6to4 around 10.0.0.1
        "[2001:0:4136:e378:8000:63bf:f5ff:fffe]",  # Teredo around 10.0.0.1
        "0xa9.0xfe.0xa9.0xfe",  # 169.254.169.254
        "2852039166",  # 169.254.169.254
    ],
)
async def test_private_networks_are_refused_before_connecting(host: str) -> None:
    # Port 9 (discard) on a private address: a refusal that took a connection attempt would time out instead.
    fetch = http_fetcher(max_bytes=1024, timeout_s=0.5)
    with pytest.raises(FetchError, match=f"^{PRIVATE_ADDRESS}$"):
        await fetch(f"http://{host}:9/a.png")


def test_public_addresses_pass_the_check() -> None:
    for text in ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::"):
        assert is_public(ipaddress.ip_address(text)), text
    assert literal_address("example.com") is None
    assert literal_address("cafe.be") is None  # letters without 0x: a name, not a number
    assert literal_address("0x7f.1") == ipaddress.ip_address("127.0.0.1")


async def test_only_http_and_https() -> None:
    fetch = http_fetcher(max_bytes=1024)
    for url in ("file:///etc/passwd", "ftp://example.com/a.png", "gopher://127.0.0.1:6379/_INFO"):
        with pytest.raises(FetchError, match="is not an http or https link"):
            await fetch(url)


async def test_the_allow_list_lets_127_0_0_1_through(server: Server) -> None:
    for allow in ("127.0.0.1", "127.0.0.0/8", " 10.0.0.0/8 , 127.0.0.1 "):
        fetch = http_fetcher(max_bytes=1024, allow_hosts=allow)
        assert await fetch(server.url("127.0.0.1")) == PNG
    assert server.hits["/a.png"] == 3
    # It names hosts, not the whole machine: ::1 and other loopback addresses stay shut.
    with pytest.raises(FetchError, match=PRIVATE_ADDRESS):
        await http_fetcher(max_bytes=1024, allow_hosts="127.0.0.1")(server.url("[::1]"))


async def test_a_redirect_to_a_private_host_is_refused(server: Server) -> None:
    # "localhost" is allowed by name; the hop it redirects to (127.0.0.1, not named) is checked again and refused.
    fetch = http_fetcher(max_bytes=1024, allow_hosts="localhost")
    with pytest.raises(FetchError, match=f"^{PRIVATE_ADDRESS}$"):
        await fetch(server.url("localhost", "/to/" + server.url("127.0.0.1")))
    assert server.hits == Counter({"/to/" + server.url("127.0.0.1"): 1})
    # The same redirect, with the target allowed too, is followed.
    both = http_fetcher(max_bytes=1024, allow_hosts="localhost,127.0.0.1")
    assert await both(server.url("localhost", "/to/" + server.url("127.0.0.1"))) == PNG


async def test_at_most_three_redirects(server: Server) -> None:
    fetch = http_fetcher(max_bytes=1024, allow_hosts="127.0.0.1")
    with pytest.raises(FetchError, match="redirects more than 3 times"):
        await fetch(server.url("127.0.0.1", "/loop/0"))
    assert server.total == 4  # the link and three redirects; the fourth is never requested


async def test_the_connection_goes_to_the_checked_address(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """One lookup per hop; the socket connects to the IP, and the server still sees the name in Host."""
    lookups: list[str] = []
    real = socket.getaddrinfo

    def counting(host: Any, *args: Any, **kwargs: Any) -> Any:
        lookups.append(host.decode() if isinstance(host, bytes) else str(host))
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    fetch = http_fetcher(max_bytes=1024, allow_hosts="localhost")
    assert await fetch(server.url("localhost")) == PNG
    assert lookups.count("localhost") == 1  # a second answer (DNS rebinding) is never asked for
    assert server.hosts == [f"localhost:{server.port}"]


def test_pinned_request_keeps_the_name_for_host_and_tls() -> None:
    url = httpx.URL("https://images.example:8443/a.png?x=1")
    target, headers, extensions = _pinned(url, ipaddress.ip_address("2606:4700::1"))
    assert str(target) == "https://[2606:4700::1]:8443/a.png?x=1"
    assert headers == {"Host": "images.example:8443"}
    assert extensions == {"sni_hostname": "images.example"}


def test_a_bad_allow_list_is_a_settings_error() -> None:
    assert AllowList.parse("a.lan, 10.0.0.0/8").allows_host("A.LAN")
    with pytest.raises(ValueError, match="IMPASTO_FETCH_ALLOW_HOSTS"):
        Settings(fetch_allow_hosts="10.0.0.0/33")
