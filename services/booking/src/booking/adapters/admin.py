"""What the front desk sees first on booking's admin page."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from booking.adapters.projections import episodes, locations, patients
from kinetic_infra.service.definition import AdminTable


async def admin_tables(conn: AsyncConnection) -> Sequence[AdminTable]:
    location_rows = (await conn.execute(
        select(locations.c.name, locations.c.timezone,
               select(func.count()).where(patients.c.home_location_id == locations.c.location_id)
               .scalar_subquery())
        .order_by(locations.c.name)
    )).all()
    episode_rows = (await conn.execute(
        select(episodes.c.opened_at, patients.c.given_name, patients.c.family_name,
               episodes.c.symptom_site, locations.c.name, episodes.c.status)
        .join(patients, patients.c.patient_id == episodes.c.patient_id)
        .join(locations, locations.c.location_id == episodes.c.location_id)
        .order_by(episodes.c.opened_at.desc()).limit(50)
    )).all()
    return [
        AdminTable("Locations", ["Name", "Timezone", "Patients"], location_rows,
                   "No locations yet."),
        AdminTable("Latest episodes of care",
                   ["Opened", "Given name", "Family name", "Symptom site", "Location", "Status"],
                   [(r[0].strftime("%Y-%m-%d %H:%M"), *r[1:]) for r in episode_rows],
                   "No episodes yet."),
    ]
