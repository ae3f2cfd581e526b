"""Phone numbers: E.164 normalisation, clear errors, masking for logs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.phones import InvalidPhone, is_mobile, mask, normalise_phone


@pytest.mark.parametrize(
    "raw",
    [
        "06 12 34 56 78",
        "0612345678",
        "06.12.34.56.78",
        "06-12-34-56-78",
        "+33 6 12 34 56 78",
        "+33612345678",
        "0033 6 12 34 56 78",
        "+33 (0)6 12 34 56 78",
        " 06 12 34 56 78 ",
    ],
)
def test_french_mobile_spellings(raw: str) -> None:
    assert normalise_phone(raw) == "+33612345678"


def test_other_regions() -> None:
    assert normalise_phone("+44 7911 123456") == "+447911123456"
    assert normalise_phone("0690 12 34 56", default_region="GP") == "+590690123456"  # Guadeloupe mobile
    assert normalise_phone("02 54 58 41 41") == "+33254584141"


@pytest.mark.parametrize("raw", ["", "   ", "abc", "0612", "06 12 34 56 78 90 12", "+33 0 00 00 00 00", "STOP"])
def test_invalid_numbers_name_the_input(raw: str) -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalise_phone(raw)
    if raw.strip():
        assert repr(raw) in str(caught.value)


def test_mobile_only_rejects_landlines() -> None:
    with pytest.raises(InvalidPhone, match="mobile"):
        normalise_phone("02 54 58 41 41", mobile_only=True)
    assert normalise_phone("07 81 23 45 67", mobile_only=True) == "+33781234567"
    assert is_mobile("+33612345678") and not is_mobile("+33254584141") and not is_mobile("nonsense")


def test_mask() -> None:
    assert mask("+33612345678") == "+33 6 •• •• •• 78"
    assert mask("+447911123456") == "+44 7••• ••••56"
    assert mask("+590690123456") == "+590 6•• •• •• 56"
    assert mask("not a number 1234") == "••••34"
    masked = mask("+33254584141")
    assert masked.startswith("+33 2") and masked.endswith("41") and "58" not in masked


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_mask_never_raises_and_never_leaks_the_middle(raw: str) -> None:
    masked = mask(raw)
    # at most a 3-digit country code, the first national digit and the last two
    assert sum(c.isdigit() for c in masked) <= 6


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_normalise_raises_only_invalid_phone(raw: str) -> None:
    try:
        result = normalise_phone(raw)
    except InvalidPhone:
        return
    assert result.startswith("+") and result[1:].isdigit()
