"""One exception root: every error Crieur raises on purpose is a CrieurError, whose docstring is its
default message."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import alerts
import channels
import rules
from alerts.errors import AlertNotFound, CrieurError, LeaseLost, NotAwaitingApproval


def crieur_modules() -> list[str]:
    names = []
    for package in (alerts, channels, rules):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            names.append(module.name)
    return sorted(names)


def test_every_exception_defined_in_the_packages_is_a_crieur_error() -> None:
    strays = []
    for name in crieur_modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and issubclass(cls, BaseException) and not issubclass(cls, CrieurError):
                strays.append(f"{name}.{cls.__name__}")
    assert strays == []


def test_the_docstring_is_the_default_message() -> None:
    assert str(NotAwaitingApproval()) == "The alert is not waiting for approval (already approved, rejected or ended)."
    assert str(AlertNotFound("no alert 7")) == "no alert 7"  # a KeyError would show "'no alert 7'"
    assert str(LeaseLost("delivery k")) == "delivery k"


@pytest.mark.parametrize("error, legacy", [(AlertNotFound, KeyError), (NotAwaitingApproval, ValueError)])
def test_callers_catching_the_builtin_still_catch_them(error: type[Exception], legacy: type[Exception]) -> None:
    with pytest.raises(legacy):
        raise error()
