"""SSRF guard (URL check, resolver, redirects, DNS rebinding) and request limits on public endpoints.

No test resolves a real name: getaddrinfo and resolvers are replaced by fakes, and servers bind 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from alerts.delivery import TokenBucket
from alerts.security import (
    Allowlist,
    RateRule,
    RequestLimits,
    SafeResolver,
    UnsafeConnection,
    UnsafeURL,
    check_url,
    check_url_async,
    client_key,
    install_request_limits,
    is_public_address,
    literal_address,
    safe_session,
)

UNSAFE = [
    "file:///etc/passwd",
    "ftp://ftp.example.org/x",
    "gopher://127.0.0.1:6379/_INFO",
    "javascript:alert(1)",
    "http:///nohost",
    "http://127.0.0.1/",
    "http://127.0.0.1:5432/",
    "http://2130706433/",  # 127.0.0.1 as one decimal number
    "http://0x7f.1/",  # hex and short form
    "http://0x7f000001/",
    "http://0177.0.0.1/",  # octal
    "http://127.1/",
    "http://017700000001/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:a9fe:a9fe]/",  # 169.254.169.254 mapped
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
    "http://[fe80::1%25eth0]/",  # link-local with zone
    "http://[fc00::1]/",  # unique local
    "http://[::]/",
    "http://[ff02::1]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://0/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://192.0.2.10/",  # documentation range
    "https://localhost/",
    "http://LOCALHOST./",
    "http://api.localhost/",
    "http://user:pass@127.0.0.1/",
    "http://example.org:99999/",  # port out of range
]


@pytest.mark.parametrize("url", UNSAFE)
def test_unsafe_urls_are_refused_without_any_dns(url, monkeypatch):
    def no_dns(*args, **kwargs):
        raise AssertionError(f"{url} needed no resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(UnsafeURL):
        check_url(url)


@pytest.mark.parametrize(
    "url", ["http://8.8.8.8/", "https://[2a00:1450:4007:80e::200e]/feed", "HTTPS://1.1.1.1:8443/x"]
)
def test_public_literals_pass(url):
    check_url(url)


def test_legacy_ipv4_spellings_are_understood():
    assert str(literal_address("2130706433")) == "127.0.0.1"
    assert str(literal_address("0x7f.1")) == "127.0.0.1"
    assert str(literal_address("0177.0.0.01")) == "127.0.0.1"
    assert str(literal_address("[::ffff:127.0.0.1]")) == "::ffff:7f00:1"
    assert literal_address("prefecture41.example") is None
    assert literal_address("deadbeef.example") is None


def fake_getaddrinfo(table: dict[str, list[str]]):
    def resolve(host, port, *args, **kwargs):
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port or 0))
            for a in table[host]
        ]

    return resolve


DNS = {
    "prefecture41.example": ["93.184.215.14"],
    "intranet.cd41.example": ["10.41.2.3"],
    "mixed.example": ["93.184.215.14", "127.0.0.1"],
    "v6internal.example": ["fd00::41"],
    "partner.cd41.internal": ["10.41.9.9"],
}


def test_names_are_checked_on_every_address(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo(DNS))
    check_url("https://prefecture41.example/rss.xml")
    for host in ("intranet.cd41.example", "mixed.example", "v6internal.example"):
        with pytest.raises(UnsafeURL, match=host):
            check_url(f"https://{host}/")
    with pytest.raises(UnsafeURL, match="does not resolve"):
        check_url("https://nowhere.example/")


def test_allow_list_by_host_domain_and_network(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo(DNS))
    check_url("http://127.0.0.1:8080/hook", allow=["127.0.0.1"])
    check_url("http://10.41.200.1/", allow=["10.41.0.0/16"])
    with pytest.raises(UnsafeURL):
        check_url("http://10.42.0.1/", allow=["10.41.0.0/16"])
    check_url("https://intranet.cd41.example/", allow=["10.41.0.0/16"])
    check_url("https://partner.cd41.internal/", allow=["*.cd41.internal"])
    check_url("https://partner.cd41.internal/", allow=["partner.cd41.internal"])
    with pytest.raises(UnsafeURL):
        check_url("https://intranet.cd41.example/", allow=["*.cd41.internal"])
    check_url("http://[::1]:9000/", allow=["[::1]"])
    with pytest.raises(UnsafeURL):  # an allowed host never makes another scheme acceptable
        check_url("file://127.0.0.1/etc/passwd", allow=["127.0.0.1"])
    assert not Allowlist([]) and Allowlist(["x.example"])


async def test_async_check_uses_the_event_loop_resolver(monkeypatch):
    loop = asyncio.get_running_loop()
    calls = []

    async def getaddrinfo(host, port, **kwargs):
        calls.append(host)
        return fake_getaddrinfo(DNS)(host, port)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    await check_url_async("https://prefecture41.example/")
    with pytest.raises(UnsafeURL):
        await check_url_async("https://intranet.cd41.example/")
    with pytest.raises(UnsafeURL):
        await check_url_async("http://0x7f.1/")
    assert calls == ["prefecture41.example", "intranet.cd41.example"]


def test_address_classification():
    import ipaddress

    assert is_public_address(ipaddress.ip_address("93.184.215.14"))
    assert is_public_address(ipaddress.ip_address("2a01:e0a:1::1"))
    assert is_public_address(ipaddress.ip_address("2002:5db8:d70e::1"))  # 6to4 of a public address
    for private in (
        "127.0.0.2",
        "10.1.1.1",
        "169.254.1.1",
        "::1",
        "fe80::1",
        "::ffff:10.0.0.1",
        "2001::1",
        "100.127.255.255",
        "198.18.0.1",
    ):
        assert not is_public_address(ipaddress.ip_address(private)), private


class TableResolver(AbstractResolver):
    """A resolver answering from a table; `answers` can change between calls (DNS rebinding)."""

    def __init__(self, table: dict[str, list[str]]):
        self.table = table
        self.asked: list[str] = []

    async def resolve(self, host, port=0, family=socket.AF_INET):
        self.asked.append(host)
        if host not in self.table:
            raise OSError(f"{host} unknown")
        return [
            {
                "hostname": host,
                "host": a,
                "port": port,
                "family": socket.AF_INET6 if ":" in a else socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
            for a in self.table[host]
        ]

    async def close(self):
        pass


async def test_safe_resolver_drops_internal_addresses():
    inner = TableResolver({"mixed.example": ["127.0.0.1", "93.184.215.14"], "internal.example": ["10.0.0.5"]})
    resolver = SafeResolver((), inner)
    assert [r["host"] for r in await resolver.resolve("mixed.example", 443)] == ["93.184.215.14"]
    with pytest.raises(UnsafeConnection):
        await resolver.resolve("internal.example", 443)
    allowed = SafeResolver(["10.0.0.0/8"], inner)
    assert [r["host"] for r in await allowed.resolve("internal.example", 443)] == ["10.0.0.5"]


@pytest.fixture
async def local_server():
    """A web server on 127.0.0.1 standing for an internal service (and a redirecting 'public' site)."""
    hits: list[str] = []

    async def secret(request):
        hits.append(request.path)
        return web.Response(text="internal data")

    async def redirect(request):
        hits.append(request.path)
        raise web.HTTPFound(f"http://127.0.0.1:{request.url.port}/secret")

    app = web.Application()
    app.router.add_get("/secret", secret)
    app.router.add_post("/redirect", redirect)
    app.router.add_get("/redirect", redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield port, hits
    await runner.cleanup()


async def test_session_refuses_a_literal_internal_address(local_server):
    port, hits = local_server
    async with safe_session() as session:
        with pytest.raises(UnsafeConnection):
            await session.get(f"http://127.0.0.1:{port}/secret")
        with pytest.raises(aiohttp.ClientError):  # callers that catch ClientError catch this too
            await session.get(f"http://[::ffff:127.0.0.1]:{port}/secret")
    async with safe_session(["127.0.0.1"]) as session:
        async with session.get(f"http://127.0.0.1:{port}/secret") as response:
            assert await response.text() == "internal data"
    assert hits == ["/secret"]


async def test_session_refuses_a_redirect_to_an_internal_address(local_server):
    port, hits = local_server
    resolver = TableResolver({"public.example": ["127.0.0.1"]})
    # the first hop is allowed by name (as a configured partner would be); its redirect is not
    async with safe_session(["public.example"], resolver=resolver) as session:
        with pytest.raises(UnsafeConnection, match="127.0.0.1"):
            await session.get(f"http://public.example:{port}/redirect")
    assert hits == ["/redirect"]


async def test_dns_rebinding_is_caught_at_connect_time(local_server, monkeypatch):
    port, hits = local_server
    loop = asyncio.get_running_loop()

    async def getaddrinfo(host, port_, **kwargs):  # the check sees a public address...
        return fake_getaddrinfo({"rebind.example": ["93.184.215.14"]})(host, port_)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    url = f"http://rebind.example:{port}/secret"
    await check_url_async(url)
    resolver = TableResolver({"rebind.example": ["127.0.0.1"]})  # ...the connection would get loopback
    async with safe_session(resolver=resolver) as session:
        with pytest.raises(UnsafeConnection, match="rebind.example"):
            await session.get(url)
    assert resolver.asked == ["rebind.example"] and hits == []


# ------------------------------------------------------------------------------------ request limits


def test_token_bucket_try_acquire_never_waits():
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = bucket.try_acquire()
    assert 0.4 < wait <= 0.5
    bucket.tokens, bucket.updated = 0.0, time.monotonic() - 0.6  # 0.6 s later: one token back
    assert bucket.try_acquire() == 0.0
    bucket.pause(30)
    assert 29 < bucket.try_acquire() <= 30


async def limited_client(limits: RequestLimits | None = None) -> TestClient:
    async def echo(request: web.Request) -> web.Response:
        data = await request.post() if request.content_type.endswith("urlencoded") else await request.read()
        return web.Response(text=f"ok {len(data)}")

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/questions", echo)
    app.router.add_get("/", echo)
    app.router.add_get("/api/v1/alerts", echo)
    app.router.add_post("/twilio/sms", echo)
    install_request_limits(app, limits)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


async def test_questions_are_rate_limited_per_client_with_retry_after():
    client = await limited_client()
    try:
        statuses = [(await client.post("/questions", data={"q": "Les bus roulent ?"})).status for _ in range(5)]
        assert statuses == [200] * 5
        refused = await client.post("/questions", data={"q": "encore"})
        assert refused.status == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 30
        assert "Trop de requêtes" in await refused.text()
        # pages are not limited, and the API has its own bucket
        assert [(await client.get("/")).status for _ in range(40)] == [200] * 40
        assert (await client.get("/api/v1/alerts")).status == 200
    finally:
        await client.close()


async def test_api_is_limited_for_every_method():
    limits = RequestLimits(rules=[RateRule("/api/", rate=0.01, burst=3)])
    client = await limited_client(limits)
    try:
        assert [(await client.get("/api/v1/alerts")).status for _ in range(4)] == [200, 200, 200, 429]
    finally:
        await client.close()


async def test_forwarded_for_only_counts_behind_a_trusted_proxy():
    limits = RequestLimits(rules=[RateRule("/questions", rate=0.01, burst=1, methods=frozenset({"POST"}))])
    client = await limited_client(limits)
    try:  # not trusted: a forged X-Forwarded-For does not buy a fresh bucket
        assert (await client.post("/questions", headers={"X-Forwarded-For": "198.51.100.1"})).status == 200
        assert (await client.post("/questions", headers={"X-Forwarded-For": "198.51.100.2"})).status == 429
    finally:
        await client.close()
    limits.trusted_proxies = ("127.0.0.0/8",)
    client = await limited_client(limits)
    try:
        ok = [(await client.post("/questions", headers={"X-Forwarded-For": f"198.51.100.{i}"})).status for i in (1, 2)]
        assert ok == [200, 200]
        again = await client.post("/questions", headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.1"})
        assert again.status == 429  # the proxy appended the real client; what the client wrote is ignored
    finally:
        await client.close()


def test_client_key_groups_ipv6_by_prefix_and_unwraps_mapped_ipv4():
    import ipaddress

    def key(remote, xff=None, trusted=()):
        headers = {"X-Forwarded-For": xff} if xff else {}
        request = make_mocked_request("POST", "/questions", headers=headers)
        request._transport_peername = (remote, 1234)  # noqa: SLF001 (aiohttp test helper has no remote arg)
        return client_key(request, [ipaddress.ip_network(t) for t in trusted])

    assert key("2a01:cb00:41:1::5") == key("2a01:cb00:41:1:ffff::9") == "2a01:cb00:41:1::/64"
    assert key("::ffff:198.51.100.7") == "198.51.100.7"
    assert key("10.0.0.2", "203.0.113.9, 10.0.0.3", trusted=("10.0.0.0/8",)) == "203.0.113.9"
    assert key("10.0.0.2", "garbage", trusted=("10.0.0.0/8",)) == "garbage"


async def test_body_caps_by_path():
    client = await limited_client(RequestLimits(rules=[]))
    try:
        big = "x" * (20 * 1024)
        assert (await client.post("/questions", data={"q": big})).status == 413
        assert (await client.post("/questions", data={"q": "Le car 4 passe ?"})).status == 200

        async def chunks():  # no Content-Length: cut off while reading
            for _ in range(20):
                yield b"y" * 1024

        response = await client.post("/questions", data=chunks(), headers={"Content-Type": "application/octet-stream"})
        assert response.status == 413
        # Twilio's path has a larger cap than a citizen's form
        ok = await client.post("/twilio/sms", data={"Body": "x" * (20 * 1024)})
        assert ok.status == 200 and await ok.text() == "ok 1"
    finally:
        await client.close()


def test_limits_choose_longest_prefix_and_first_rule():
    limits = RequestLimits(body_caps={"/api/": 10, "/api/v1/upload": 1000})
    assert limits.body_cap("/api/v1/upload/x") == 1000
    assert limits.body_cap("/api/v1/alerts") == 10
    assert limits.body_cap("/") is None
    assert limits.rule("GET", "/questions") is None
    assert limits.rule("POST", "/twilio/status")[1].prefix == "/twilio/"


async def test_bucket_memory_is_bounded():
    limits = RequestLimits(rules=[RateRule("/", rate=0.01, burst=1)], max_clients=3, trusted_proxies=("127.0.0.1",))
    client = await limited_client(limits)
    try:
        for i in range(10):
            assert (await client.get("/", headers={"X-Forwarded-For": f"198.51.100.{i}"})).status == 200
        # the first client's bucket was forgotten: it may ask again; the last one may not
        assert (await client.get("/", headers={"X-Forwarded-For": "198.51.100.0"})).status == 200
        assert (await client.get("/", headers={"X-Forwarded-For": "198.51.100.9"})).status == 429
    finally:
        await client.close()


# ------------------------------------------------------------------------------------- log redaction


def test_secret_values_come_from_env_names_inline_options_and_database_url():
    from types import SimpleNamespace

    from alerts.security import secret_values

    config = SimpleNamespace(
        secret_key_env="CRIEUR_SECRET_KEY",
        twilio_auth_token_env="TWILIO_AUTH_TOKEN",
        database="postgresql://crieur:pg-Pass-41abc@db:5432/crieur",
        channels={
            "mastodon": {"kind": "mastodon", "access_token_env": "M_TOKEN", "rate": 1},
            "x": {"kind": "x", "consumer_key": "inline-ck-123", "api_base": "https://api.x.example"},
            "sms": {"kind": "twilio", "auth_token_env": "TWILIO_AUTH_TOKEN", "from": "+33757000041"},
        },
    )
    env = {
        "CRIEUR_SECRET_KEY": "sk-abcdef",
        "M_TOKEN": "mast-123456",
        "TWILIO_AUTH_TOKEN": "twl-987654",
        "CRIEUR_METRICS_TOKEN": "met-555555",
        "UNRELATED": "not-a-secret",
    }
    assert secret_values(config, env) == {
        "sk-abcdef",
        "mast-123456",
        "twl-987654",
        "met-555555",
        "inline-ck-123",
        "pg-Pass-41abc",
    }


def test_redactor_cleans_message_arguments_and_traceback():
    import io
    import logging

    from alerts.logs import JsonFormatter
    from alerts.security import SecretRedactor

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(SecretRedactor(["tok/en+41=="]))
    logger = logging.getLogger("crieur.test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("posting with %s to %s", "tok/en+41==", "https://h.example/?t=tok%2Fen%2B41%3D%3D")
        try:
            raise RuntimeError("provider said: bad token tok/en+41==")
        except RuntimeError:
            logger.exception("send failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "tok/en" not in out and "tok%2Fen" not in out
    assert out.count("[secret]") == 4  # argument, URL-encoded argument, source line and message of the traceback
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert "RuntimeError" in lines[1]["message"]  # the traceback is kept, redacted


@pytest.mark.parametrize(
    "url",
    [
        "gopher://hooks.example/services/T41/B41/s3cr3tpath",
        "http://user:s3cr3tpw@10.0.0.1/x?token=s3cr3tq",
        "http://[::1]:99999/s3cr3t",
    ],
)
def test_refusals_never_quote_the_secret_parts_of_a_url(url):
    with pytest.raises(UnsafeURL) as refused:
        check_url(url)
    assert "s3cr3t" not in str(refused.value)


def test_redactor_finds_secrets_inside_base64_and_json_escapes():
    import base64

    from alerts.security import SecretRedactor

    sid, token = "AC0123456789abcdef0123456789abcdef", 'tw/"tok\\en+41é'
    redactor = SecretRedactor([token])
    basic = base64.b64encode(f"{sid}:{token}".encode()).decode()
    urlsafe = base64.urlsafe_b64encode(f"x{token}".encode()).decode().rstrip("=")
    for text in (
        f"Authorization: Basic {basic}",
        f"cookie={urlsafe}; path=/",
        json.dumps({"auth_token": token}),
        json.dumps({"auth_token": token}, ensure_ascii=False),
        json.dumps({"t": token}).replace("/", "\\/"),
    ):
        cleaned = redactor.redact(text)
        assert "[secret]" in cleaned, text
        assert token not in cleaned and basic not in cleaned and urlsafe not in cleaned
        assert "tok\\\\en" not in cleaned and "tok\\\\\\\\en" not in cleaned, cleaned
    innocent = "Authorization: Basic " + base64.b64encode(b"someone:else").decode() + " id 0123456789abcdef"
    assert redactor.redact(innocent) == innocent
