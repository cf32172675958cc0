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


OPENING_HOURS = {**{d: [{"opens": "08:00", "closes": "19:00"}]
                    for d in ("mon", "tue", "wed", "thu", "fri")},
                 "sat": [{"opens": "09:00", "closes": "13:00"}]}
DEMO_THERAPISTS = [  # (key, name, index of their location, weekly hours there)
    (UUID("0194f0a0-0000-7000-8000-0000000002b1"), "Tara Nguyen", 0,
     {d: [{"opens": "08:00", "closes": "16:00"}] for d in ("mon", "tue", "wed", "thu")}),
    (UUID("0194f0a0-0000-7000-8000-0000000002b2"), "Sam Okafor", 0,
     {d: [{"opens": "11:00", "closes": "19:00"}] for d in ("tue", "wed", "thu", "fri")}
     | {"sat": [{"opens": "09:00", "closes": "13:00"}]}),
    (UUID("0194f0a0-0000-7000-8000-0000000002b3"), "Hugo Laine", 1,
     {d: [{"opens": "08:00", "closes": "17:00"}] for d in ("mon", "tue", "wed", "thu", "fri")}),
]
DEMO_PATIENTS = [  # (key, given, family, date of birth, index of their home location)
    (UUID("0194f0a0-0000-7000-8000-0000000003c1"), "Ada", "Example", "1996-04-02", 0),
    (UUID("0194f0a0-0000-7000-8000-0000000003c2"), "Ben", "Sample", "1979-11-20", 0),
    (UUID("0194f0a0-0000-7000-8000-0000000003c3"), "Cleo", "Demo", "1988-07-09", 1),
]


async def seed_demo(ctx: SeedContext) -> Sequence[str]:
    lines = [f"demo organization: {ctx.tenant_id}"]
    ids: list[UUID] = []
    auth = {"Authorization": f"Bearer {ctx.token}"}
    async with httpx.AsyncClient(base_url=ctx.base_url, timeout=10, headers=auth) as client:

        async def create(path: str, key: UUID, body: dict) -> str:
            response = await client.post(path, json=body, headers={"Idempotency-Key": str(key)})
            response.raise_for_status()
            return str(response.json()["id"])

        async def put(path: str, body: dict) -> None:  # the same hours again change nothing
            (await client.put(path, json=body)).raise_for_status()

        for key, name, timezone in DEMO_LOCATIONS:
            ids.append(UUID(await create("/locations", key,
                                         {"name": name, "timezone": timezone})))
            await put(f"/locations/{ids[-1]}/opening-hours", {"opening_hours": OPENING_HOURS})
            lines.append(f"demo location {name}: {ids[-1]}")
        for key, name, where, hours in DEMO_THERAPISTS:
            therapist = await create("/therapists", key, {"location_ids": [str(ids[where])],
                                                          "display_name": name})
            await put(f"/therapists/{therapist}/working-hours/{ids[where]}",
                      {"working_hours": hours})
        for key, given, family, born, home in DEMO_PATIENTS:
            await create("/patients", key, {"given_name": given, "family_name": family,
                                            "date_of_birth": born,
                                            "home_location_id": str(ids[home])})
        lines.append(f"demo therapists: {len(DEMO_THERAPISTS)}, patients: {len(DEMO_PATIENTS)}")
    ctx.staff.extend(demo_staff(ctx.tenant_id, *ids))
    return lines
