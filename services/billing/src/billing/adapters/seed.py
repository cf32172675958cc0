"""Demo data for `make run`: a price list at each of the demo organization's locations,
through billing's own API, once billing has heard of the locations from booking. Scheduling
the same tariff again changes nothing, so a second `make run` adds nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx

from kinetic_infra.service.definition import SeedContext

DEMO_TARIFF: dict[str, Any] = {
    "effective_from": "2026-01-01", "currency": "EUR", "tax_rate_bp": 0,
    "fees": {"initial_assessment": 12000, "treatment_session": 9000, "reassessment": 10000},
    "policy": {"late_cancel_hours": 24, "late_cancel_fee": 4500, "no_show_fee": 9000},
    "packs": [{"code": "six", "label": "6 sessions", "sessions": 6, "price": 51000},
              {"code": "ten", "label": "10 sessions", "sessions": 10, "price": 80000}],
    "payment_terms_days": 14,
}
WAIT_SECONDS = 60.0


async def seed_demo(ctx: SeedContext) -> Sequence[str]:
    auth = {"Authorization": f"Bearer {ctx.token}"}
    async with httpx.AsyncClient(base_url=ctx.base_url, timeout=10, headers=auth) as client:
        locations: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            locations = (await client.get("/locations")).raise_for_status().json()
            if len(locations) >= 2:  # booking's seed registers two
                break
            await asyncio.sleep(0.5)
        for location in locations:
            if location["in_force"] is None:
                (await client.post(f"/locations/{location['location_id']}/prices",
                                   json=DEMO_TARIFF)).raise_for_status()
    return [f"billing: price lists at {len(locations)} locations "
            f"(treatment session €90.00, packs of 6 and 10)"]
