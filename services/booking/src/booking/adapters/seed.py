"""Demo data for `make run`: one organization with two locations, through booking's own API.

Idempotency keys are fixed, so a second `make run` on the same data directory finds the
locations already there instead of adding copies.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import httpx

DEMO_TENANT = UUID("0194f0a0-0000-7000-8000-00000000de70")
DEMO_LOCATIONS = [
    (UUID("0194f0a0-0000-7000-8000-0000000001a1"), "Riverside Clinic", "Europe/Berlin"),
    (UUID("0194f0a0-0000-7000-8000-0000000001a2"), "Harbour Clinic", "Europe/Berlin"),
]


async def seed_demo(base_url: str) -> Sequence[str]:
    lines = [f"demo organization (send as Kinetic-Tenant): {DEMO_TENANT}"]
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        for key, name, timezone in DEMO_LOCATIONS:
            response = await client.post(
                "/locations", json={"name": name, "timezone": timezone},
                headers={"Kinetic-Tenant": str(DEMO_TENANT), "Idempotency-Key": str(key)},
            )
            response.raise_for_status()
            lines.append(f"demo location {name}: {response.json()['id']}")
    return lines
