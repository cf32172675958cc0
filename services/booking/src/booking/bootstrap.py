"""Booking's wiring: nothing is built at import time; infra builds the runtime per role."""

from __future__ import annotations

from pathlib import Path

from booking.adapters.admin import admin_tables
from booking.adapters.http import router
from booking.adapters.http_appointments import router as appointments_router
from booking.adapters.http_front_desk import router as front_desk_router
from booking.adapters.http_schedule import router as schedule_router
from booking.adapters import admin_pages, plan_reactions, reminders
from booking.adapters.projections import front_desk
from booking.adapters.seed import seed_demo
from booking.application.reminders import AppointmentReminderWorkflow
from kinetic_infra.service.definition import ServiceDefinition

SERVICE = ServiceDefinition(
    name="booking",
    description="Locations, patients, consents, appointments and episodes of care.",
    migrations=Path(__file__).parent / "migrations",
    projections=[front_desk],
    routers=lambda runtime: [router(runtime), schedule_router(runtime),
                             appointments_router(runtime), front_desk_router(runtime)],
    subscriptions=lambda runtime: [plan_reactions.subscription(runtime),
                                   reminders.subscription(runtime)],
    workflows=[AppointmentReminderWorkflow],
    activities=reminders.activities,
    admin_tables=admin_tables,
    admin_pages=admin_pages.router,
    admin_templates=Path(__file__).parent / "adapters" / "templates",
    admin_menu=admin_pages.MENU,
    seed=seed_demo,
    start_order=0,
)
