"""Demo data for `make run`: one organization with two locations and its staff, through
booking's own API. Idempotency keys are fixed, so a second `make run` on the same data
directory finds the locations already there instead of adding copies."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import httpx

from kinetic_infra.auth.principal import Principal, Role
from kinetic_infra.service.definition import SeedContext

DEMO_LOCATIONS = [
    (UUID("0194f0a0-0000-7000-8000-0000000001a1"), "Riverside Clinic", "Europe/Berlin"),
    (UUID("0194f0a0-0000-7000-8000-0000000001a2"), "Harbour Clinic", "Europe/Berlin"),
]


def demo_staff(tenant_id: UUID, riverside: UUID, harbour: UUID) -> list[Principal]:
    def at(*grants: tuple[UUID, Role]) -> dict[UUID, frozenset[Role]]:
        by_location: dict[UUID, set[Role]] = {}
        for location, role in grants:
            by_location.setdefault(location, set()).add(role)
        return {k: frozenset(v) for k, v in by_location.items()}

    return [
        Principal("olivia.operator", "Olivia (operator)", tenant_id, frozenset({Role.OPERATOR})),
        Principal("frank.frontdesk", "Frank (front desk, both clinics)", tenant_id,
                  location_roles=at((riverside, Role.FRONT_DESK), (harbour, Role.FRONT_DESK))),
        Principal("tara.therapist", "Tara (therapist, Riverside)", tenant_id,
                  location_roles=at((riverside, Role.THERAPIST))),
        Principal("hugo.therapist", "Hugo (therapist, Harbour)", tenant_id,
                  location_roles=at((harbour, Role.THERAPIST))),
        Principal("bea.billing", "Bea (billing, both clinics)", tenant_id,
                  location_roles=at((riverside, Role.BILLING), (harbour, Role.BILLING))),
    ]


async def seed_demo(ctx: SeedContext) -> Sequence[str]:
    lines = [f"demo organization: {ctx.tenant_id}"]
    ids: list[UUID] = []
    async with httpx.AsyncClient(base_url=ctx.base_url, timeout=10) as client:
        for key, name, timezone in DEMO_LOCATIONS:
            response = await client.post(
                "/locations", json={"name": name, "timezone": timezone},
                headers={"Authorization": f"Bearer {ctx.token}", "Idempotency-Key": str(key)},
            )
            response.raise_for_status()
            ids.append(UUID(response.json()["id"]))
            lines.append(f"demo location {name}: {ids[-1]}")
    ctx.staff.extend(demo_staff(ctx.tenant_id, *ids))
    return lines
