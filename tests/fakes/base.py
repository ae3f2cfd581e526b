"""What every fake provider shares: an aiohttp server on 127.0.0.1, a record of every request, and fault
switches (fail the next N, rate-limit the next N, hang, a seeded failure ratio). A provider subclass adds
its routes, its auth check and its error body format.

Usable in pytest (see fixtures.py) and as a process: `python -m tests.fakes.<provider> --port N`.

A fake with a `contract` (tests/fakes/contract.py, tests/fakes/lexicon.py) checks every request against the
provider's published description before its handler sees it, refuses what the description refuses (in
the provider's error format, recorded in `refused`), and checks its own answers against the described
response schemas (`answer_violations`). Leaving `async with` (so every fixture) fails the test when
either list is not empty: a test that sends a bad request on purpose takes it with `take_refused()`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class Recorded:
    """One request the fake received, whatever it answered."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    form: dict[str, str] = field(default_factory=dict)
    json: Any = None
    time: float = 0.0
    answered: int = 0  # the status the fake answered (0 while hanging)

    def header(self, name: str) -> str:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return ""


RECORDED = web.RequestKey("recorded", Recorded)

# At start and every this many requests kept, what the process holds is moved out of the collector's reach
# (gc.freeze, undone at stop): what a fake keeps is never garbage, and a full collection over 100,000 records
# held the fake's event loop for up to half a second, after which it took in the requests waiting meanwhile
# at once, recording them as having arrived together (a second above the provider's limit that no sender
# had sent).
FREEZE_EVERY = 5_000


def multipart_parts(recorded: Recorded) -> dict[str, tuple[bytes, str]] | None:
    """The fields of a multipart/form-data body (name -> (bytes, content type)), or None when the body is
    not one. Parsed from the recorded bytes, as the middleware has already read the stream."""
    import email.parser
    import email.policy

    content_type = recorded.header("Content-Type")
    if not content_type.startswith("multipart/form-data"):
        return None
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + recorded.body
    )
    if not message.is_multipart():
        return None
    parts: dict[str, tuple[bytes, str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            parts[str(name)] = (part.get_payload(decode=True) or b"", part.get_content_type())
    return parts


class Contract(Protocol):
    """What a fake needs from a provider description (OpenAPIContract, LexiconContract)."""

    def check_request(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        body: bytes,
        form: dict[str, str],
        json_body: Any,
    ) -> tuple[Any, list[str]]: ...

    def check_response(self, operation: Any, status: int, content_type: str, body: bytes) -> list[str]: ...


@dataclass(slots=True)
class Refused:
    """A request the provider's description refuses, and why."""

    request: Recorded
    problems: list[str]

    def __str__(self) -> str:
        return f"{self.request.method} {self.request.path}: " + "; ".join(self.problems)


class ContractBroken(AssertionError):
    """A test sent a request its provider would refuse, or a fake answered outside its description."""


@dataclass(slots=True)
class Rejection:
    status: int
    code: int | str
    message: str


class FakeProvider:
    """Base class of the fakes. Subclasses implement `routes`, `authorized` and `error`."""

    name = "fake"
    contract: Contract | None = None

    def __init__(self, *, seed: int = 0, keep: bool = True) -> None:
        self.requests: list[Recorded] = []
        self.refused: list[Refused] = []
        self.answer_violations: list[str] = []
        self.keep = keep  # False (benchmarks): count the requests, keep none of them
        self.seen = 0
        self.accepted = 0
        self.rejections: dict[str, Rejection] = {}
        self.base_url = ""
        self._fail_next = 0
        self._frozen = False  # gc.freeze() called (FREEZE_EVERY)
        self._fail_status = 500
        self._limit_next = 0
        self._limit_headers: dict[str, str] = {}
        self._hang_next = 0
        self._failure_ratio = 0.0
        self._rng = random.Random(seed)
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # ---- switches -------------------------------------------------------------------------------
    def fail_next(self, count: int = 1, status: int = 500) -> None:
        self._fail_next, self._fail_status = count, status

    def rate_limit_next(
        self, count: int = 1, *, retry_after: str | None = "2", headers: dict[str, str] | None = None
    ) -> None:
        """Answer 429 to the next `count` requests, with Retry-After and/or the provider's own headers."""
        self._limit_next = count
        self._limit_headers = dict(headers or {})
        if retry_after is not None:
            self._limit_headers["Retry-After"] = retry_after

    def hang_next(self, count: int = 1) -> None:
        """Never answer the next `count` requests (until the fake stops)."""
        self._hang_next = count

    def failure_ratio(self, ratio: float, seed: int | None = None) -> None:
        """Answer that share of requests with a 500 or a 429 (half each), chosen by a seeded RNG."""
        self._failure_ratio = ratio
        if seed is not None:
            self._rng = random.Random(seed)

    def reject(self, recipient: str, code: int | str, message: str = "rejected", status: int = 400) -> None:
        self.rejections[recipient] = Rejection(status, code, message)

    # ---- what subclasses provide ----------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def authorized(self, request: web.Request, recorded: Recorded) -> bool:
        return True

    def error(self, status: int, code: int | str, message: str) -> web.Response:
        """An error in the provider's own format."""
        return web.json_response({"error": message}, status=status)

    def recipient(self, recorded: Recorded) -> str:
        """Whom a recorded request was for (to count deliveries per recipient)."""
        return ""

    def refuse(self, recorded: Recorded, problems: list[str]) -> web.Response:
        """The provider's answer to a request its description refuses (subclasses: the real status/body)."""
        return self.error(400, 400, "; ".join(problems))

    # ---- the contract ---------------------------------------------------------------------------
    def take_refused(self) -> list[Refused]:
        """The refused requests so far, forgotten (for tests that send bad requests on purpose)."""
        refused, self.refused = self.refused, []
        return refused

    def assert_contract_kept(self) -> None:
        problems = [f"refused: {r}" for r in self.refused] + [f"answer: {v}" for v in self.answer_violations]
        if problems:
            raise ContractBroken(f"fake {self.name} (see ../shared/api-specs):\n  " + "\n  ".join(problems))

    # ---- queries for tests ----------------------------------------------------------------------
    def received(self, method: str | None = None, path_contains: str = "") -> list[Recorded]:
        return [r for r in self.requests if (method is None or r.method == method) and path_contains in r.path]

    def count_for(self, recipient: str, *, only_success: bool = True) -> int:
        return sum(
            1 for r in self.requests if self.recipient(r) == recipient and (not only_success or 200 <= r.answered < 300)
        )

    # ---- server ---------------------------------------------------------------------------------
    @web.middleware
    async def _faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()
        recorded = Recorded(
            request.method, request.path, list(request.query.items()), dict(request.headers), body, time=time.time()
        )
        content_type = request.headers.get("Content-Type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            recorded.form = dict((await request.post()).items())  # type: ignore[misc]
        elif content_type.startswith("application/json") and body:
            try:
                recorded.json = json.loads(body)
            except ValueError:
                recorded.json = None
        if self.keep:
            self.requests.append(recorded)
            if len(self.requests) % FREEZE_EVERY == 0:
                self._freeze()
        request[RECORDED] = recorded
        operation = None
        if self.contract is not None:
            operation, problems = self.contract.check_request(
                request.method, request.path, recorded.query, recorded.headers, body, recorded.form, recorded.json
            )
            if problems:
                self.refused.append(Refused(recorded, problems))
                refusal = self.refuse(recorded, problems)
                recorded.answered = refusal.status
                return refusal
        response = await self._answer(request, recorded, handler)
        recorded.answered = response.status
        if operation is not None and isinstance(response, web.Response) and self.contract is not None:
            body_bytes = response.body if isinstance(response.body, bytes) else b""
            for problem in self.contract.check_response(operation, response.status, response.content_type, body_bytes):
                self.answer_violations.append(f"{request.method} {request.path}: {problem}")
        self.seen += 1
        self.accepted += 200 <= response.status < 300
        return response

    async def _answer(self, request: web.Request, recorded: Recorded, handler: Handler) -> web.StreamResponse:
        if self._hang_next > 0:
            self._hang_next -= 1
            await self._release.wait()
            return self.error(503, 503, "Service Unavailable")
        if not self.authorized(request, recorded):
            return self.unauthorized()
        if self._fail_next > 0:
            self._fail_next -= 1
            return self.error(self._fail_status, self._fail_status, "Internal Server Error")
        if self._limit_next > 0:
            self._limit_next -= 1
            return self.too_many(self._limit_headers)
        if self._failure_ratio and self._rng.random() < self._failure_ratio:
            if self._rng.random() < 0.5:
                return self.error(500, 500, "Internal Server Error")
            return self.too_many({"Retry-After": "1"})
        return await handler(request)

    def unauthorized(self) -> web.Response:
        return self.error(401, 401, "Unauthorized")

    def too_many(self, headers: dict[str, str]) -> web.Response:
        response = self.error(429, 429, "Too Many Requests")
        response.headers.update(headers)
        return response

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._faults])
        app.add_routes(self.routes())
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._release = asyncio.Event()
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server  # the only way aiohttp exposes the port chosen for port=0
        assert server is not None and server.sockets
        bound = server.sockets[0].getsockname()[1]
        self.base_url = f"http://{host}:{bound}"
        self._freeze()  # what the process (the test) holds before the fake's first request
        return self.base_url

    def _freeze(self) -> None:
        if self.keep:
            self._frozen = True
            gc.freeze()

    async def stop(self) -> None:
        if self._frozen:
            self._frozen = False
            gc.unfreeze()
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FakeProvider":
        await self.start()
        return self

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        await self.stop()
        if exc_type is None:
            self.assert_contract_kept()


def run_standalone(factory: Callable[[argparse.Namespace], FakeProvider], description: str) -> None:
    """`python -m tests.fakes.<provider> --port N [--failure-ratio 0.3 --seed 1]`: serve until SIGTERM/SIGINT.
    Prints `listening on <base url>` once ready (benchmarks and the kill test wait for that line)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--failure-ratio", type=float, default=0.0)
    parser.add_argument("--token", default="test-token", help="credential the fake accepts")
    parser.add_argument(
        "--no-contract",
        action="store_true",
        help="do not check requests and answers against the provider's description (benchmarks"
        " measuring Crieur's throughput, not the validator's; the test suite always checks)",
    )
    parser.add_argument(
        "--count-only", action="store_true", help="validate and count the requests without keeping them (benchmarks)"
    )
    args = parser.parse_args()

    async def serve() -> None:
        fake = factory(args)
        if args.no_contract:
            fake.contract = None
        fake.keep = not args.count_only
        fake.failure_ratio(args.failure_ratio, args.seed)
        url = await fake.start(args.host, args.port)
        print(f"listening on {url}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        print(
            f"stopping: {fake.seen} requests, {fake.accepted} accepted, {len(fake.refused)} refused by"
            f" the description, {len(fake.answer_violations)} answers outside it",
            flush=True,
        )
        for problem in [*map(str, fake.refused), *fake.answer_violations][:20]:
            print(f"contract: {problem}", flush=True)
        await fake.stop()

    asyncio.run(serve())
