"""Limits of the public question form, shared by every web process (alerts.shared_limits).

The form can make Crieur send an SMS to the number typed in it (the answer), so without a limit it would
let anyone run up the SMS bill or bombard a stranger's phone. The allowance is per client (its address,
behind trusted reverse proxies the one they forwarded: alerts.security.client_of) and per phone number,
counted in the database, so that N web processes do not allow N times as many.
"""

from __future__ import annotations

from typing import Any

from alerts.shared_limits import Rate, SharedRate

QUESTIONS_PER_ADDRESS = Rate.per(5, 600.0)  # 5 questions at once from one address, then one per 2 minutes
QUESTIONS_PER_PHONE = Rate.per(3, 3600.0)  # 3 answers at once to one number, then one per 20 minutes


class QuestionLimits:
    def __init__(self, db: Any):
        self.shared = SharedRate(db)

    async def allow(self, address: str, phone: str = "") -> bool:
        """Count one question from `address` (and to `phone`); False when either allowance is spent (a
        question refused for its phone still counts for its address)."""
        if not await self.shared.allow(f"questions:address:{address}", QUESTIONS_PER_ADDRESS):
            return False
        return not phone or await self.shared.allow(f"questions:phone:{phone}", QUESTIONS_PER_PHONE)
