"""Output adapters. `channel_class(kind)` imports `channels.<kind>` on first use, so that an adapter is one
module and adding one touches nothing else."""

from __future__ import annotations

import importlib
import pkgutil

from .base import REGISTRY, Channel, ConfigurationError


def channel_class(kind: str) -> type[Channel]:
    if kind not in REGISTRY:
        if not kind.isidentifier():
            raise ConfigurationError(f"unknown channel kind {kind!r}")
        try:
            importlib.import_module(f"{__name__}.{kind}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{kind}":
                raise ConfigurationError(f"unknown channel kind {kind!r}") from None
            raise
        if kind not in REGISTRY:
            raise ConfigurationError(f"module channels.{kind} registers no channel of kind {kind!r}")
    return REGISTRY[kind]


def known_kinds() -> list[str]:
    """Every adapter module's kind (for error messages): modules other than the interface and wrappers."""
    return sorted(
        m.name
        for m in pkgutil.iter_modules(__path__)
        if not m.name.startswith("_") and m.name not in ("base", "dryrun")
    )
