"""Start helper processes (a delivery worker, a fake provider) and wait for the line that says they are ready.

stdout is read line by line in the background (so a chatty process never blocks on a full pipe); stderr
goes to a file that a failing test shows.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import sys
from typing import Sequence

ROOT = pathlib.Path(__file__).resolve().parents[2]


class Proc:
    def __init__(self, args: Sequence[str], stderr_path: pathlib.Path):
        self.args = list(args)
        self.stderr_path = stderr_path
        self.lines: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task | None = None
        self._new_line = asyncio.Event()

    @classmethod
    async def python_module(cls, module: str, *args: str, stderr_path: pathlib.Path) -> "Proc":
        proc = cls([sys.executable, "-m", module, *args], stderr_path)
        await proc.start()
        return proc

    async def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        with open(self.stderr_path, "ab") as err:
            self.process = await asyncio.create_subprocess_exec(
                *self.args,
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._new_line.set()
        self._new_line.set()

    def stderr(self, tail: int = 4000) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    async def wait_line(self, prefix: str, timeout: float = 20.0) -> str:
        """The first stdout line starting with `prefix`; fails (with the process's stderr) on timeout or exit."""
        async with asyncio.timeout(timeout):
            while True:
                for line in self.lines:
                    if line.startswith(prefix):
                        return line
                if self._reader is not None and self._reader.done():
                    raise AssertionError(f"{self.args} exited before printing {prefix!r}; stderr:\n{self.stderr()}")
                self._new_line.clear()
                await self._new_line.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(sig)

    async def wait(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        async with asyncio.timeout(timeout):
            code = await self.process.wait()
            if self._reader is not None:
                await self._reader
            return code

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within 5 s (test clean-up)."""
        if self.process is None or self.process.returncode is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            await self.wait(5.0)
        except TimeoutError:
            self.signal(signal.SIGKILL)
            await self.wait(5.0)
