"""Fake Facebook Graph API: POST /{version}/{page_id}/feed with a Page access token.

Errors are Graph error objects {"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from aiohttp import web

from .base import RECORDED, FakeProvider, Recorded, run_standalone

STATUS_FOR_CODE = {1: 500, 2: 503, 4: 400, 17: 400, 32: 400, 613: 400, 190: 400, 100: 400, 200: 403, 506: 400}


class FakeFacebook(FakeProvider):
    name = "facebook"

    def __init__(self, *, page_id: str = "100200300400500", token: str = "test-token", seed: int = 0):
        super().__init__(seed=seed)
        self.page_id = page_id
        self.token = token
        self.posts: list[dict[str, Any]] = []
        self._ids = itertools.count(900_000_000_000_001)
        self.next_error: list[tuple[int, int | None, str]] = []  # (code, subcode, message) answered in order

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/{version}/{page_id}/feed", self.post_feed)]

    def _token(self, request: web.Request, recorded: Recorded) -> str:
        return recorded.form.get("access_token") or request.query.get("access_token", "")

    def authorized(self, request: web.Request, recorded: Recorded) -> bool:
        return self._token(request, recorded) == self.token

    def graph_error(self, code: int, message: str, *, subcode: int | None = None, status: int | None = None,
                    error_type: str = "OAuthException") -> web.Response:
        error: dict[str, Any] = {"message": message, "type": error_type, "code": code, "fbtrace_id": secrets.token_urlsafe(8)}
        if subcode is not None:
            error["error_subcode"] = subcode
        if code in (1, 2):
            error["is_transient"] = True
        return web.json_response({"error": error}, status=status or STATUS_FOR_CODE.get(code, 400))

    def error(self, status: int, code: int | str, message: str) -> web.Response:
        if status == 429:
            return self.graph_error(32, "Page request limit reached", status=400)
        if status >= 500:
            return self.graph_error(2, "An unexpected error has occurred. Please retry your request later.", status=status)
        return self.graph_error(int(code) if str(code).isdigit() else 100, message, status=status)

    def unauthorized(self) -> web.Response:
        return self.graph_error(190, "Error validating access token: Session has expired.", subcode=463)

    def fail_with(self, code: int, message: str = "error", subcode: int | None = None) -> None:
        """The next post answers this Graph error."""
        self.next_error.append((code, subcode, message))

    def recipient(self, recorded: Recorded) -> str:
        return self.page_id if recorded.path.endswith("/feed") else ""

    async def post_feed(self, request: web.Request) -> web.Response:
        if self.next_error:
            code, subcode, message = self.next_error.pop(0)
            return self.graph_error(code, message, subcode=subcode)
        if request.match_info["page_id"] != self.page_id:
            return self.graph_error(100, "Unsupported post request. Object does not exist", subcode=33)
        form = request[RECORDED].form
        if not form.get("message") and not form.get("link"):
            return self.graph_error(100, "(#100) Either message or link must be specified")
        if any(p["message"] == form.get("message") for p in self.posts):
            return self.graph_error(506, "Duplicate status message", subcode=1455006)
        post = {"id": f"{self.page_id}_{next(self._ids)}", "message": form.get("message", ""), "link": form.get("link", "")}
        self.posts.append(post)
        return web.json_response({"id": post["id"]})


def main() -> None:
    run_standalone(lambda args: FakeFacebook(token=args.token, seed=args.seed), "Fake Facebook Graph API")


if __name__ == "__main__":
    main()
