"""Outbound and inbound guards: no request to an internal address, no flood on the public endpoints.

SSRF. Webhook subscribers and partner feeds give Crieur URLs to call. Such a URL must not reach the
machine itself, the database, a cloud metadata service (169.254.169.254) or the département's internal
network. `check_url` refuses it before the request; `SafeResolver` and `guard_trace` refuse it again at
connect time, for every redirect and every DNS answer (a name that resolved to a public address at check
time and to 127.0.0.1 at connect time — DNS rebinding — is caught there). `safe_session()` puts both on
one aiohttp session. Hosts or networks a deployment really needs (a partner on a private network, the
fakes in tests) are allowed by name or CIDR in the `allow` list.

Secrets in logs. `install_log_redaction(config)` puts a filter on the log handlers that replaces every
configured secret (the values of the variables channels name with `*_env`, the signing key, the database
password) by `[secret]` in every record, whichever library logged it: a safety net under the rule that
no code logs credentials (oauthlib, for one, logs OAuth consumer keys and tokens at DEBUG).

Request limits. `request_limits()` is an aiohttp middleware: a per-path body cap (stricter than the app's
global client_max_size) and a per-client token bucket (alerts.delivery.TokenBucket) on the endpoints
anyone can POST to, answering 413 or 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import json
import logging
import math
import os
import re
import socket
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Mapping, Sequence
from urllib.parse import quote, quote_plus, urlsplit

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from alerts.errors import CrieurError

from .delivery import TokenBucket

log = logging.getLogger("crieur.security")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = ("http", "https")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


# ---------------------------------------------------------------------------------------------- SSRF


class UnsafeURL(CrieurError, ValueError):
    """A URL Crieur must not request: wrong scheme, or a host on a non-public address."""


class UnsafeConnection(UnsafeURL, aiohttp.ClientConnectionError):
    """Raised inside an aiohttp request (resolver or redirect): an aiohttp.ClientError, so the code that
    already handles connection failures (channels, feed fetcher) handles this one too."""


class Allowlist:
    """Host names (exact, or `*.example.org` / `.example.org` for a domain and its subdomains), single
    addresses and networks (`10.41.0.0/16`) a deployment explicitly allows."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.hosts: set[str] = set()
        self.domains: tuple[str, ...] = ()
        self.networks: list[IPNetwork] = []
        domains = []
        for raw in entries:
            entry = str(raw).strip().lower().rstrip(".")
            if not entry:
                continue
            if entry.startswith("[") and entry.endswith("]"):
                entry = entry[1:-1]
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith("*."):
                domains.append(entry[1:])
            elif entry.startswith("."):
                domains.append(entry)
            else:
                self.hosts.add(entry)
        self.domains = tuple(domains)

    def host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.hosts or any(host.endswith(d) or host == d[1:] for d in self.domains)

    def address(self, address: IPAddress) -> bool:
        return any(address.version == n.version and address in n for n in self.networks)

    def __bool__(self) -> bool:
        return bool(self.hosts or self.domains or self.networks)


def _allowlist(allow: Iterable[str] | Allowlist) -> Allowlist:
    return allow if isinstance(allow, Allowlist) else Allowlist(allow)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: IPv4-mapped (::ffff:a.b.c.d), 6to4, Teredo client, NAT64."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public_address(address: IPAddress) -> bool:
    """True for an address on the public Internet: not private, loopback, link-local, multicast,
    reserved, unspecified, shared (100.64/10) or documentation, including through an IPv6 form."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None and not is_public_address(embedded):
            return False
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def literal_address(host: str) -> IPAddress | None:
    """The address a host written as an IP literal designates, including the legacy IPv4 spellings that
    inet_aton (and so many HTTP clients) accept: 2130706433, 0x7f.1, 0177.0.0.1, 127.1."""
    host = host.strip("[]")
    if "%" in host:  # IPv6 zone index: fe80::1%eth0
        host = host.split("%", 1)[0]
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _split(url: str) -> tuple[str, str]:
    """(scheme, host) of a URL, or UnsafeURL for a URL that names no host. Messages name the scheme and
    host only: the rest of a webhook URL (path, query, user info) is often its secret."""
    try:
        parts = urlsplit(str(url).strip())
        host = parts.hostname or ""
        parts.port  # noqa: B018 — raises ValueError for a port out of range
    except ValueError as exc:
        raise UnsafeURL(f"invalid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise UnsafeURL(f"URL scheme {scheme or 'none'!r} is not allowed (only http and https)")
    if not host:
        raise UnsafeURL(f"{scheme} URL without a host")
    return scheme, host


def _check_address(host: str, address: IPAddress, allow: Allowlist) -> None:
    if not is_public_address(address) and not allow.address(address):
        shown = host if str(address) == host else f"{host} ({address})"
        raise UnsafeURL(f"host {shown} is not a public address; add it to the allow list if it must be reached")


def _check_literal(url: str, allow: Allowlist) -> tuple[str, bool]:
    """Scheme and literal-address checks, no DNS. Returns (host, resolution still needed)."""
    _, host = _split(url)
    if allow.host(host):
        return host, False
    address = literal_address(host)
    if address is not None:
        _check_address(host, address, allow)
        return host, False
    if host.lower().rstrip(".") in {"localhost", "localhost.localdomain"} or host.lower().endswith(".localhost"):
        raise UnsafeURL(f"host {host} is the local machine")
    return host, True


def _check_resolved(host: str, infos: Sequence[tuple[Any, ...]], allow: Allowlist) -> None:
    if not infos:
        raise UnsafeURL(f"host {host} does not resolve")
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        _check_address(host, address, allow)


def check_url(url: str, allow: Iterable[str] | Allowlist = ()) -> None:
    """Raise UnsafeURL unless `url` is http(s) and every address its host resolves to is public (or
    allowed). Blocking DNS: from async code use check_url_async."""
    allowlist = _allowlist(allow)
    host, resolve = _check_literal(url, allowlist)
    if resolve:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError) as exc:
            raise UnsafeURL(f"host {host} does not resolve: {exc}") from None
        _check_resolved(host, infos, allowlist)


async def check_url_async(url: str, allow: Iterable[str] | Allowlist = ()) -> None:
    """check_url with the event loop's getaddrinfo."""
    allowlist = _allowlist(allow)
    host, resolve = _check_literal(url, allowlist)
    if resolve:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError) as exc:
            raise UnsafeURL(f"host {host} does not resolve: {exc}") from None
        _check_resolved(host, infos, allowlist)


class SafeResolver(AbstractResolver):
    """An aiohttp resolver that drops every non-public address (unless allowed) from a DNS answer, and
    fails the connection when none is left. aiohttp does not call a resolver for IP literals: pair it
    with guard_trace (safe_session does both)."""

    def __init__(self, allow: Iterable[str] | Allowlist = (), resolver: AbstractResolver | None = None) -> None:
        self.allow = _allowlist(allow)
        self._resolver = resolver
        self._owns_resolver = resolver is None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._resolver is None:
            self._resolver = aiohttp.DefaultResolver()
        results = await self._resolver.resolve(host, port, family)
        if self.allow.host(host):
            return results
        kept = []
        for result in results:
            address = ipaddress.ip_address(result["host"].split("%", 1)[0])
            if is_public_address(address) or self.allow.address(address):
                kept.append(result)
            else:
                log.warning("refused connection to %s: it resolves to %s, not a public address", host, address)
        if not kept:
            raise UnsafeConnection(f"host {host} resolves only to non-public addresses")
        return kept

    async def close(self) -> None:
        if self._resolver is not None and self._owns_resolver:
            await self._resolver.close()


def guard_trace(allow: Iterable[str] | Allowlist = ()) -> aiohttp.TraceConfig:
    """Checks scheme and IP-literal hosts of every request a session makes and of every redirect target
    before it is followed; host names are SafeResolver's."""
    allowlist = _allowlist(allow)
    trace = aiohttp.TraceConfig()

    async def on_request_start(
        session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestStartParams
    ) -> None:
        try:
            _check_literal(str(params.url), allowlist)
        except UnsafeURL as exc:
            raise UnsafeConnection(str(exc)) from None

    async def on_request_redirect(
        session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestRedirectParams
    ) -> None:
        location = params.response.headers.get("Location") or params.response.headers.get("URI")
        if not location:
            return
        try:
            target = params.url.join(URL(location))
        except ValueError:
            return  # aiohttp refuses the malformed redirect itself
        try:
            _check_literal(str(target), allowlist)
        except UnsafeURL as exc:
            params.response.close()
            raise UnsafeConnection(f"redirect refused: {exc}") from None

    trace.on_request_start.append(on_request_start)
    trace.on_request_redirect.append(on_request_redirect)
    return trace


def safe_connector(
    allow: Iterable[str] | Allowlist = (), *, resolver: AbstractResolver | None = None, **kwargs: Any
) -> aiohttp.TCPConnector:
    """A TCPConnector whose DNS answers go through SafeResolver (wrapping `resolver`, default aiohttp's)."""
    return aiohttp.TCPConnector(resolver=SafeResolver(allow, resolver), **kwargs)


def safe_session(
    allow: Iterable[str] | Allowlist = (), *, resolver: AbstractResolver | None = None, **kwargs: Any
) -> aiohttp.ClientSession:
    """A ClientSession for URLs that come from outside (webhook subscribers, partner feeds)."""
    allowlist = _allowlist(allow)
    traces = list(kwargs.pop("trace_configs", None) or ()) + [guard_trace(allowlist)]
    return aiohttp.ClientSession(connector=safe_connector(allowlist, resolver=resolver), trace_configs=traces, **kwargs)


# ------------------------------------------------------------------------------------ request limits

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class RateRule:
    """`rate` requests a second per client, bursts up to `burst`, for paths starting with `prefix` and
    methods in `methods` (empty: every method)."""

    prefix: str
    rate: float
    burst: float
    methods: frozenset[str] = frozenset()

    def matches(self, method: str, path: str) -> bool:
        return path.startswith(self.prefix) and (not self.methods or method in self.methods)


POST = frozenset({"POST"})


@dataclass(slots=True)
class RequestLimits:
    """Body caps by path prefix (longest prefix wins) and rate rules (first match wins).

    Twilio's servers post every citizen's SMS from a handful of addresses, so /twilio/ gets a generous
    per-address rate; a person's form (/questions) and the login form get a strict one.
    """

    body_caps: dict[str, int] = field(
        default_factory=lambda: {
            "/questions": 8 * 1024,
            "/twilio/": 64 * 1024,
            "/api/": 16 * 1024,
            "/console/login": 8 * 1024,
            "/escalations/": 4 * 1024,
            "/abonnement/": 4 * 1024,
            "/t/": 4 * 1024,
        }
    )
    rules: list[RateRule] = field(
        default_factory=lambda: [
            RateRule("/questions", rate=1 / 30, burst=5, methods=POST),
            RateRule("/console/login", rate=1 / 6, burst=10, methods=POST),
            RateRule("/escalations/", rate=1, burst=10, methods=POST),
            RateRule("/t/", rate=1 / 30, burst=5, methods=POST),  # the subscription form
            RateRule("/abonnement/", rate=1 / 6, burst=20, methods=POST),  # codes, confirmations, unsubscribes
            RateRule("/twilio/", rate=50, burst=200, methods=POST),
            RateRule("/api/", rate=5, burst=30),
        ]
    )
    trusted_proxies: tuple[str, ...] = ()  # e.g. ("127.0.0.1", "172.16.0.0/12") behind a reverse proxy
    max_clients: int = 20_000  # buckets kept in memory; the least recently seen are dropped

    def body_cap(self, path: str) -> int | None:
        best = None
        for prefix, cap in self.body_caps.items():
            if path.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, cap)
        return best[1] if best else None

    def rule(self, method: str, path: str) -> tuple[int, RateRule] | None:
        for index, rule in enumerate(self.rules):
            if rule.matches(method, path):
                return index, rule
        return None


def client_address(request: web.Request, trusted: Sequence[IPNetwork] = ()) -> str:
    """Who is asking: the peer address, or behind trusted proxies the first untrusted address of
    X-Forwarded-For read from the right (an IPv4-mapped IPv6 address as IPv4)."""
    chain = [request.remote or ""]
    if trusted:
        forwarded = request.headers.get("X-Forwarded-For", "")
        chain += [part.strip() for part in reversed(forwarded.split(",")) if part.strip()]
    chosen = chain[0]
    for hop in chain:
        chosen = hop
        try:
            address = ipaddress.ip_address(hop.strip("[]"))
        except ValueError:
            break
        if not any(address.version == n.version and address in n for n in trusted):
            break
    try:
        address = ipaddress.ip_address(chosen.strip("[]"))
    except ValueError:
        return chosen or "unknown"
    if address.version == 6 and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def client_key(request: web.Request, trusted: Sequence[IPNetwork] = ()) -> str:
    """The client_address, IPv6 clients grouped by /64 (one subscriber's prefix): what limits count."""
    chosen = client_address(request, trusted)
    try:
        address = ipaddress.ip_address(chosen)
    except ValueError:
        return chosen
    if address.version == 6:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


_RequestKey = getattr(web, "RequestKey", None)
CLIENT: Any = _RequestKey("client", str) if _RequestKey else "crieur.client"
CLIENT_ADDRESS: Any = _RequestKey("client_address", str) if _RequestKey else "crieur.client_address"


def client_of(request: web.Request) -> str:
    """The client's key (address, or /64) as the request limits middleware derived it, trusted proxies
    taken into account; without the middleware, the peer's."""
    found = request.get(CLIENT)
    return str(found) if found else client_key(request)


def client_address_of(request: web.Request) -> str:
    """The client's address as the request limits middleware derived it; without it, the peer's."""
    found = request.get(CLIENT_ADDRESS)
    return str(found) if found else client_address(request)


def request_limits(limits: RequestLimits | None = None) -> Any:
    """The middleware. Keep one per application: its buckets are its memory of each client. It also
    records each request's client key (`client_of(request)`) for the handlers' own limits."""
    limits = limits or RequestLimits()
    trusted = [ipaddress.ip_network(n, strict=False) for n in limits.trusted_proxies]
    buckets: OrderedDict[tuple[int, str], TokenBucket] = OrderedDict()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[CLIENT_ADDRESS] = client_address(request, trusted)
        client = request[CLIENT] = client_key(request, trusted)
        found = limits.rule(request.method, request.path)
        if found is not None:
            index, rule = found
            key = (index, client)
            bucket = buckets.get(key)
            if bucket is None:
                bucket = buckets[key] = TokenBucket(rule.rate, rule.burst)
                while len(buckets) > limits.max_clients:
                    buckets.popitem(last=False)
            else:
                buckets.move_to_end(key)
            wait = bucket.try_acquire()
            if wait > 0:
                log.info("rate limit: %s %s from %s, retry in %.0f s", request.method, request.path, key[1], wait)
                return web.Response(
                    status=429,
                    text="Trop de requêtes, réessayez plus tard.\n",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
        cap = limits.body_cap(request.path)
        if cap is not None and request.can_read_body:
            if request.content_length is not None and request.content_length > cap:
                return web.Response(status=413, text=f"Requête trop volumineuse (maximum {cap} octets).\n")
            # a chunked body is cut off at `cap` bytes by aiohttp when the handler reads it
            request = request.clone(client_max_size=min(cap, request.client_max_size))
        return await handler(request)

    return middleware


def install_request_limits(app: web.Application, limits: RequestLimits | None = None) -> None:
    """Put the limits outermost, before authentication and handlers do any work (a route installer)."""
    app.middlewares.insert(0, request_limits(limits))


# ------------------------------------------------------------------------------------- log redaction

SECRET_OPTION_WORDS = ("secret", "password", "token", "auth_token", "app_password", "api_key", "key")
MIN_SECRET_LENGTH = 6  # shorter values ("", "1") would redact ordinary words


def secret_values(config: Any, environ: Mapping[str, str] | None = None) -> set[str]:
    """Every credential a service configuration refers to: values of the environment variables named by
    `*_env` keys (channels, signing key, Twilio token, metrics token), secrets written inline in channel
    options (tests, demos), and the database password."""
    env = os.environ if environ is None else environ
    names = {
        getattr(config, "secret_key_env", ""),
        getattr(config, "twilio_auth_token_env", ""),
        "CRIEUR_METRICS_TOKEN",
    }
    values: set[str] = set()
    for options in (getattr(config, "channels", None) or {}).values():
        for key, value in options.items():
            if key.endswith("_env") and isinstance(value, str):
                names.add(value)
            elif isinstance(value, str) and any(key == w or key.endswith("_" + w) for w in SECRET_OPTION_WORDS):
                values.add(value)
    values.update(env.get(name, "") for name in names if name)
    database = str(getattr(config, "database", "") or "")
    try:
        password = urlsplit(database).password
    except ValueError:
        password = None
    if password:
        values.add(password)
    return {v for v in values if len(v) >= MIN_SECRET_LENGTH}


_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")


class SecretRedactor(logging.Filter):
    """A handler filter: the record's message (arguments merged) and traceback with every secret, in
    every written form (as is, URL-encoded, JSON-escaped, inside base64 such as an HTTP `Basic sid:token`
    header), replaced by [secret]. The traceback is folded into the message, so every formatter shows the
    redacted one."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        forms: set[str] = set()
        for secret in secrets:
            escaped = json.dumps(secret)[1:-1]
            forms.update(
                {
                    secret,
                    quote(secret, safe=""),
                    quote_plus(secret),
                    escaped,
                    json.dumps(secret, ensure_ascii=False)[1:-1],
                    escaped.replace("/", "\\/"),
                }
            )
        self.forms = sorted((f for f in forms if f), key=len, reverse=True)
        self._plain = [f.encode() for f in self.forms if f.isascii()] + [f.encode() for f in self.forms]

    def redact(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, "[secret]")
        if self.forms:
            text = _BASE64_RUN.sub(self._redact_base64, text)
        return text

    def _redact_base64(self, match: re.Match[str]) -> str:
        """A base64 run (standard or URL-safe alphabet) that decodes to text holding a secret."""
        run = match.group(0)
        body = run.rstrip("=")
        for alphabet in ((b"+/"), (b"-_")):
            try:
                decoded = base64.b64decode(body + "=" * (-len(body) % 4), altchars=alphabet, validate=False)
            except (binascii.Error, ValueError):
                continue
            if any(form in decoded for form in self._plain):
                return "[secret]"
        return run

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.forms:
            return True
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            record.exc_info, record.exc_text = None, None
        if record.stack_info:
            message += "\n" + record.stack_info
            record.stack_info = None
        record.msg, record.args = self.redact(message), None
        return True


def install_log_redaction(config: Any, logger: logging.Logger | None = None) -> SecretRedactor:
    """Add a SecretRedactor for `config`'s secrets to every handler of `logger` (default: root). Call it
    after setup_logging and load_config."""
    redactor = SecretRedactor(secret_values(config))
    for handler in (logger or logging.getLogger()).handlers:
        handler.addFilter(redactor)
    return redactor
