"""SQLite on a full disk or a read-only data directory: a clear error, the data already accepted intact,
and `PRAGMA integrity_check` ok afterwards.

As root (CI, the dev machines) the disk is a real 1 MiB tmpfs, remounted read-only for the second test;
elsewhere a full disk is simulated with `PRAGMA max_page_count` and a read-only directory with chmod."""

from __future__ import annotations

import contextlib
import os
import pathlib
import sqlite3
import subprocess
import threading
from typing import Iterator

import pytest

from alerts.storage import NewDelivery, StorageError, open_store


def _mount_tmpfs(path: pathlib.Path, size: str = "1m") -> bool:
    if os.geteuid() != 0:
        return False
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def _umount(path: pathlib.Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextlib.contextmanager
def small_disk(tmp_path: pathlib.Path) -> Iterator[tuple[pathlib.Path, bool]]:
    """A directory on a 1 MiB filesystem (True) or, without the right to mount, a plain one (False)."""
    mount = tmp_path / "mnt"
    mounted = _mount_tmpfs(mount)
    mount.mkdir(exist_ok=True)
    try:
        yield mount, mounted
    finally:
        if mounted:
            _umount(mount)


def batch(start: int, count: int) -> list[NewDelivery]:
    text = "Verglas sur la RD 957 : circulation très difficile entre Blois et Vendôme. " * 6
    return [
        NewDelivery(key=f"1:sms:Alert:+336{i:08d}", alert_id=1, channel="sms", text=text, recipient=f"+336{i:08d}")
        for i in range(start, start + count)
    ]


def read_only(path: pathlib.Path) -> sqlite3.Connection:
    """Open without writing anything, not even WAL's -shm file (the directory is read-only). Only for a
    database closed cleanly: `immutable` ignores a WAL file."""
    return sqlite3.connect(f"file:{path}?immutable=1", uri=True)


def chain(exc: BaseException | None) -> list[BaseException]:
    found = []
    while exc is not None and exc not in found:
        found.append(exc)
        exc = exc.__cause__ or exc.__context__
    return found


def integrity(path: pathlib.Path, immutable: bool = False) -> str:
    """A fresh connection's verdict; it reads the WAL too (a full disk leaves it un-checkpointed)."""
    conn = read_only(path) if immutable else sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


async def test_full_disk_gives_a_clear_error_and_keeps_what_was_accepted(tmp_path):
    with small_disk(tmp_path) as (folder, real_disk):
        path = folder / "crieur.db"
        store = await open_store(f"sqlite:///{path}")
        try:
            if not real_disk:
                pages = await store.db.fetchval("PRAGMA page_count")
                await store.db.fetchval(f"PRAGMA max_page_count = {pages + 40}")
            accepted = 0
            with pytest.raises((StorageError, sqlite3.OperationalError)) as failure:
                for start in range(0, 100_000, 200):
                    accepted += await store.enqueue(batch(start, 200))
            # the cause is named ("database or disk is full"); with max_page_count SQLite has already
            # rolled back when the store's own ROLLBACK runs, which raises on top of it (see report)
            assert "full" in " | ".join(str(e) for e in chain(failure.value)).lower()
            assert accepted > 0
            # the failed transaction was rolled back whole; the earlier ones are all there
            assert await store.db.fetchval("SELECT COUNT(*) FROM deliveries") == accepted
            assert await store.db.fetchval("PRAGMA integrity_check") == "ok"
            # and the store still answers reads (the workers' progress, the web page)
            [progress] = await store.progress(1)
            assert progress["queued"] == accepted
        finally:
            with contextlib.suppress(Exception):
                await store.close()
        assert integrity(path) == "ok"
        store = await open_store(f"sqlite:///{path}")
        try:
            assert await store.db.fetchval("SELECT COUNT(*) FROM deliveries") == accepted
        finally:
            await store.close()


async def test_read_only_data_directory_is_refused_naming_the_path(tmp_path):
    with small_disk(tmp_path) as (folder, real_disk):
        path = folder / "crieur.db"
        store = await open_store(f"sqlite:///{path}")
        await store.enqueue(batch(0, 50))
        await store.close()
        for leftover in folder.glob("crieur.db-*"):  # a clean shutdown leaves only the database file
            leftover.unlink()
        if real_disk:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        elif os.geteuid() != 0:
            folder.chmod(0o555)
        else:  # root without the right to mount ignores permissions: make the database unreachable instead
            moved = folder.with_name("moved")
            folder.rename(moved)
            folder.write_text("not a directory")
            path = folder / "crieur.db"
        try:
            with pytest.raises(StorageError) as refused:
                await open_store(f"sqlite:///{path}")  # a failed open leaves no thread behind
            assert str(path) in str(refused.value)
            assert not [t for t in threading.enumerate() if t.name.startswith("crieur-sqlite")]
            if folder.is_file():
                path = folder.with_name("moved") / "crieur.db"
            assert integrity(path, immutable=True) == "ok"
            conn = read_only(path)
            assert conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 50
            conn.close()
        finally:
            if folder.is_dir() and not real_disk:
                folder.chmod(0o755)
