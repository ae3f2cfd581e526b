"""Fake webhook receiver: accepts POSTs on any path, verifies Standard Webhooks signatures with its secret
and records them. Answers 401 to a bad signature, like a careful receiver."""

from __future__ import annotations

from aiohttp import web

from channels.webhook import WebhookVerificationError, verify

from .base import RECORDED, FakeProvider, Recorded, run_standalone


class FakeWebhookReceiver(FakeProvider):
    name = "webhook"

    def __init__(self, *, secret: str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", seed: int = 0):
        super().__init__(seed=seed)
        self.secret = secret
        self.verified: list[Recorded] = []
        self.refusals: list[str] = []

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/{path:.*}", self.receive)]

    def error(self, status: int, code: int | str, message: str) -> web.Response:
        return web.json_response({"error": message}, status=status)

    def recipient(self, recorded: Recorded) -> str:
        return f"{self.base_url}{recorded.path}"

    async def receive(self, request: web.Request) -> web.Response:
        recorded: Recorded = request[RECORDED]
        url = f"{self.base_url}{request.path}"
        if url in self.rejections:
            rejection = self.rejections[url]
            return self.error(rejection.status, rejection.code, rejection.message)
        try:
            verify(self.secret, recorded.headers, recorded.body)
        except WebhookVerificationError as exc:
            self.refusals.append(str(exc))
            return self.error(401, 401, str(exc))
        self.verified.append(recorded)
        return web.Response(status=204)


def main() -> None:
    run_standalone(lambda args: FakeWebhookReceiver(seed=args.seed), "Fake webhook receiver")


if __name__ == "__main__":
    main()
