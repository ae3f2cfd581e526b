"""A local endpoint that accepts any JSON POST with 200: the receiving end of the Apprise reference run in
bench/fanout.py (`json://` URLs). `python -m tests.faults.sink --port 0` prints `listening on <url>`."""

from __future__ import annotations

from aiohttp import web

from tests.fakes.base import FakeProvider, run_standalone


class JsonSink(FakeProvider):
    name = "json-sink"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/{path:.*}", self.receive)]

    async def receive(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})


def main() -> None:
    run_standalone(lambda args: JsonSink(seed=args.seed), "JSON sink")


if __name__ == "__main__":
    main()
