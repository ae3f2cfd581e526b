"""Phone numbers: one canonical E.164 form for storage and sending, and a masked form for logs.

Citizens write "06 12 34 56 78", "+33 (0)6 12 34 56 78" or "0033612345678"; Twilio sends "+33612345678".
Everything is stored as E.164 so a STOP from Twilio finds the subscription made from a web form.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from alerts.errors import CrieurError

__all__ = ["InvalidPhone", "normalise_phone", "is_mobile", "mask"]

_MASK = "•"
_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


class InvalidPhone(CrieurError, ValueError):
    """A number that cannot receive our SMS; the message says why, with the number as given."""


def normalise_phone(raw: str, default_region: str = "FR", *, mobile_only: bool = False) -> str:
    """Return `raw` in E.164 ("+33612345678"), reading national forms in `default_region`.

    Raises InvalidPhone for text that is not a number, a number of the wrong length or an unallocated
    range, and, with `mobile_only`, for a number that cannot receive SMS (landline, premium rate).
    """
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidPhone("numéro de téléphone vide")
    try:
        number = phonenumbers.parse(raw, default_region)
    except NumberParseException:
        raise InvalidPhone(f"{raw!r} n'est pas un numéro de téléphone") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(
            f"{raw!r} n'est pas un numéro valide"
            f" (indicatif +{number.country_code}, {len(str(number.national_number))} chiffres)"
        )
    if mobile_only and phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise InvalidPhone(f"{raw!r} n'est pas un numéro de mobile : il ne peut pas recevoir de SMS")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def is_mobile(e164: str) -> bool:
    """True when the number can receive SMS according to the numbering plan."""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return False
    return phonenumbers.number_type(number) in _MOBILE_TYPES


def mask(e164: str) -> str:
    """A loggable form that still lets an operator recognise a number: "+33 6 •• •• •• 78".

    Keeps the country code, the first national digit and the last two digits. Never raises: garbage is
    masked wholesale, keeping only its last two characters.
    """
    try:
        number = phonenumbers.parse(e164, None)
        spaced = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    except NumberParseException:
        tail = "".join(ch for ch in str(e164) if ch.isdigit())[-2:]
        return _MASK * 4 + tail
    prefix = f"+{number.country_code}"
    national = spaced[len(prefix) :]
    digit_positions = [i for i, ch in enumerate(national) if ch.isdigit()]
    keep = set(digit_positions[:1] + digit_positions[-2:])
    masked = "".join(ch if (i in keep or not ch.isdigit()) else _MASK for i, ch in enumerate(national))
    return prefix + masked
