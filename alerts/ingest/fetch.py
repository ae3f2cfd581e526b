"""Fetch one source's document: conditional GET, decoded-size limit, hard deadline, file: URLs."""

from __future__ import annotations

import asyncio
import email.utils
import pathlib
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

import aiohttp
import tenacity

from alerts.errors import CrieurError

from . import SourceSpec

__all__ = ["FetchError", "FetchResult", "fetch", "next_delay"]

CHUNK = 64 * 1024
MAX_BACKOFF = 1800.0  # a failing source is still retried at least every 30 minutes
USER_AGENT = "Crieur/0.1 (alertes civiques)"


class FetchError(CrieurError):
    """The document could not be obtained. `status` is the HTTP status when there was one."""

    def __init__(self, source: str, message: str, status: int | None = None) -> None:
        self.source = source
        self.status = status
        super().__init__(f"source {source!r}: {message}")


@dataclass(frozen=True, slots=True)
class FetchResult:
    status: Literal["ok", "not_modified"]
    body: bytes = b""
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None


async def fetch(
    session: aiohttp.ClientSession, spec: SourceSpec, etag: str | None, last_modified: str | None
) -> FetchResult:
    """GET spec.url (or read a file: URL). The whole exchange, body included, must end within
    spec.timeout seconds, and the decoded body may not exceed spec.max_bytes."""
    scheme = urlsplit(spec.url).scheme.lower()
    try:
        async with asyncio.timeout(spec.timeout):
            if scheme == "file":
                return await asyncio.to_thread(_read_file, spec, etag, last_modified)
            if scheme not in {"http", "https"}:
                raise FetchError(spec.name, f"unsupported URL scheme {scheme or 'none'!r}")
            return await _http(session, spec, etag, last_modified)
    except TimeoutError:
        raise FetchError(spec.name, f"no complete answer within {spec.timeout:g} s") from None
    except aiohttp.ClientResponseError as exc:
        raise FetchError(spec.name, f"HTTP {exc.status} {exc.message}", exc.status) from None
    except aiohttp.ClientError as exc:
        raise FetchError(spec.name, f"{type(exc).__name__}: {exc}") from None
    except OSError as exc:
        raise FetchError(spec.name, f"{type(exc).__name__}: {exc}") from None


async def _http(
    session: aiohttp.ClientSession, spec: SourceSpec, etag: str | None, last_modified: str | None
) -> FetchResult:
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    timeout = aiohttp.ClientTimeout(total=spec.timeout, sock_read=spec.timeout)
    async with session.get(
        spec.url, headers=headers, timeout=timeout, allow_redirects=True, max_redirects=5
    ) as response:
        if response.status == 304:
            return FetchResult(
                "not_modified",
                etag=response.headers.get("ETag", etag),
                last_modified=response.headers.get("Last-Modified", last_modified),
            )
        if not 200 <= response.status < 300:
            raise FetchError(spec.name, f"HTTP {response.status} {response.reason or ''}".strip(), response.status)
        declared = response.headers.get("Content-Length")
        encoded = response.headers.get("Content-Encoding", "identity").lower() not in {"", "identity"}
        if declared and declared.isdigit() and not encoded and int(declared) > spec.max_bytes:
            raise FetchError(spec.name, f"document of {declared} bytes exceeds the limit of {spec.max_bytes}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(CHUNK):  # already decompressed
            size += len(chunk)
            if size > spec.max_bytes:
                raise FetchError(spec.name, f"document exceeds the limit of {spec.max_bytes} bytes (decoded)")
            chunks.append(chunk)
        return FetchResult(
            "ok",
            b"".join(chunks),
            response.headers.get("Content-Type", ""),
            response.headers.get("ETag"),
            response.headers.get("Last-Modified"),
        )


def _file_path(spec: SourceSpec) -> pathlib.Path:
    """file:relative/path is relative to options["base_dir"] (the configuration's directory)."""
    parts = urlsplit(spec.url)
    raw = unquote(parts.path if not parts.netloc else f"//{parts.netloc}{parts.path}")
    path = pathlib.Path(raw)
    if not path.is_absolute():
        path = pathlib.Path(spec.options.get("base_dir") or ".") / path
    return path


_CONTENT_TYPES = {
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".cap": "application/cap+xml",
    ".json": "application/json",
    ".geojson": "application/geo+json",
    ".csv": "text/csv",
}


def _read_file(spec: SourceSpec, etag: str | None, last_modified: str | None) -> FetchResult:
    path = _file_path(spec)
    try:
        stat = path.stat()
    except OSError as exc:
        raise FetchError(spec.name, f"cannot read {path.name}: {exc.strerror or exc}") from None
    modified = email.utils.formatdate(stat.st_mtime, usegmt=True)
    tag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
    if (etag and etag == tag) or (not etag and last_modified and last_modified == modified):
        return FetchResult("not_modified", etag=tag, last_modified=modified)
    if stat.st_size > spec.max_bytes:
        raise FetchError(spec.name, f"{path.name}: {stat.st_size} bytes exceeds the limit of {spec.max_bytes}")
    with open(path, "rb") as handle:
        body = handle.read(spec.max_bytes + 1)
    if len(body) > spec.max_bytes:
        raise FetchError(spec.name, f"{path.name} exceeds the limit of {spec.max_bytes} bytes")
    return FetchResult("ok", body, _CONTENT_TYPES.get(path.suffix.lower(), ""), tag, modified)


def next_delay(spec: SourceSpec, consecutive_failures: int) -> float:
    """Seconds before the next poll: the source's interval when healthy, else exponential backoff with
    jitter starting near min(interval, 60 s) and capped at options["max_backoff"] (default 30 min)."""
    if consecutive_failures <= 0:
        return float(spec.interval)
    cap = float(spec.options.get("max_backoff") or MAX_BACKOFF)
    base = min(float(spec.interval), 60.0)
    # exponential plus random jitter, spelled with waits every tenacity >= 8.2 has
    wait = tenacity.wait_exponential(multiplier=base, max=cap) + tenacity.wait_random(0, base)
    state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = consecutive_failures
    return float(min(cap, wait(state)))
