"""One patient's whole episode, over the services' HTTP APIs as the front desk, the therapist
and billing staff drive it, written to survive the processes it talks to being killed.

A request whose connection drops (a killed API replica) is sent again; creations carry an
``Idempotency-Key``, so a repeat is the same effect. A state change (check-in, completion,
activation, discharge) that already happened answers 409 or 422 when repeated: the step then
reads the record back and goes on if it shows the change.

The episode (CLINICAL.md §5, the runner with anterior knee pain, without the stall): registered,
an episode opened, the initial assessment booked, checked in and completed, the evaluation
recorded and completed on the draft assessment opened, the drafted plan activated, one
treatment session booked, completed and logged, discharged (override: the episode is
shortened), and each invoice paid, so every charge workflow and the episode's workflow end.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from tests.e2e.test_evaluations import evaluate_the_runner
from tests.e2e.test_plan import far_dates, session_log

ATTEMPTS = 40
RETRY_PAUSE = 0.5  # seconds, growing to 5 s
WAIT_SECONDS = 900.0  # for another service to react (the whole run shares two cores)
RETRIED = (502, 503, 504)


class FlowError(RuntimeError):
    pass


@dataclass
class Staff:
    """Signed-in HTTP clients, one per service, that re-send what a dropped connection lost."""

    urls: dict[str, str]
    token: str
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    retries: int = 0  # requests sent again after a dropped connection or a 5xx
    run: uuid.UUID = field(default_factory=uuid.uuid4)  # keys of one run are its own

    def key(self, name: str) -> str:
        """The Idempotency-Key of one creation of this run (the same on every repeat)."""
        return str(uuid.uuid5(self.run, name))

    async def __aenter__(self) -> Staff:
        for service, url in self.urls.items():
            self.clients[service] = httpx.AsyncClient(
                base_url=url, timeout=60.0,
                headers={"Authorization": f"Bearer {self.token}"},
                limits=httpx.Limits(max_connections=48, max_keepalive_connections=48))
        return self

    async def __aexit__(self, *_: object) -> None:
        for client in self.clients.values():
            await client.aclose()

    async def call(self, service: str, method: str, path: str, *, json: Any = None,
                   key: str | None = None, headers: dict[str, str] | None = None
                   ) -> httpx.Response:
        sent = {**({"Idempotency-Key": self.key(key)} if key else {}), **(headers or {})}
        pause = RETRY_PAUSE
        last = "no answer"
        for _ in range(ATTEMPTS):
            try:
                response = await self.clients[service].request(method, path, json=json,
                                                                headers=sent)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code not in RETRIED:
                    return response
                last = f"{response.status_code} {response.text[:200]}"
            self.retries += 1
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)
        raise FlowError(f"{method} {service}{path}: gave up after {ATTEMPTS} attempts ({last})")

    async def ok(self, service: str, method: str, path: str, *, json: Any = None,
                 key: str | None = None, headers: dict[str, str] | None = None) -> Any:
        response = await self.call(service, method, path, json=json, key=key, headers=headers)
        if response.status_code >= 300:
            raise FlowError(f"{method} {service}{path}: {response.status_code} "
                            f"{response.text[:300]}")
        return response.json() if response.content else None

    async def change(self, service: str, path: str, done: Callable[[], Awaitable[bool]], *,
                     json: Any = None) -> None:
        """A state change: done when it answers 2xx, or when a repeat is refused because the
        first one, whose answer was lost, already made it."""
        response = await self.call(service, "POST", path, json=json)
        if response.status_code < 300:
            return
        if response.status_code in (409, 422) and await done():
            return
        raise FlowError(f"POST {service}{path}: {response.status_code} {response.text[:300]}")

    async def get(self, service: str, path: str) -> Any:
        response = await self.call(service, "GET", path)
        return response.json() if response.status_code == 200 else None


async def until(probe: Callable[[], Awaitable[Any]], what: str,
                timeout: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if got := await probe():
            return got
        await asyncio.sleep(0.5)
    raise FlowError(f"{what}: not within {timeout:.0f} s")


@dataclass
class Clinic:
    location_id: str
    therapists: list[str]  # one per patient: their appointments never compete for a slot


@dataclass
class Episode:
    """What one patient's flow produced, for the checks afterwards."""

    patient_id: str = ""
    episode_id: str = ""
    appointments: list[str] = field(default_factory=list)
    evaluation_id: str = ""
    invoices: list[str] = field(default_factory=list)
    stage: str = ""  # the last step reached
    seconds: float = 0.0


async def open_clinic(staff: Staff, patients: int, tariff: dict[str, Any]) -> Clinic:
    """A location open around the clock, one therapist per patient, and a price list."""
    every_day = {d: [{"opens": "00:00", "closes": "24:00"}]
                 for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    location = (await staff.ok("booking", "POST", "/locations", key="location", json={
        "name": "Chaos Clinic", "timezone": "Europe/Berlin", "opening_hours": every_day}))["id"]
    gate = asyncio.Semaphore(16)

    async def therapist(i: int) -> str:
        async with gate:
            made = await staff.ok("booking", "POST", "/therapists", key=f"therapist-{i}",
                                  json={"location_ids": [location],
                                        "display_name": f"Therapist {i:03d}"})
            await staff.ok("booking", "PUT", f"/therapists/{made['id']}/working-hours/{location}",
                           json={"working_hours": every_day})
            return str(made["id"])

    therapists = list(await asyncio.gather(*(therapist(i) for i in range(patients))))
    await until(lambda: staff.get("billing", f"/locations/{location}/prices"),
                "billing knows the location")
    await staff.ok("billing", "POST", f"/locations/{location}/prices", json=tariff)
    return Clinic(location, therapists)


async def whole_episode(staff: Staff, clinic: Clinic, i: int, out: Episode) -> None:
    started = time.monotonic()
    therapist = clinic.therapists[i]

    def step(name: str) -> None:
        out.stage = name

    step("register")
    out.patient_id = (await staff.ok("booking", "POST", "/patients", key=f"patient-{i}",
                                     json={"given_name": f"Runner{i}", "family_name": "Chaos",
                                           "date_of_birth": "1990-05-04",
                                           "home_location_id": clinic.location_id}))["id"]
    out.episode_id = (await staff.ok("booking", "POST", "/episodes", key=f"episode-{i}",
                                     json={"patient_id": out.patient_id,
                                           "location_id": clinic.location_id,
                                           "symptom_site": "knee_anterior",
                                           "reason": "Right knee pain when running"}))["id"]
    base = f"/episodes/{out.episode_id}"

    step("initial assessment")
    # Soon, so the session an hour after it can be checked in from then on (check-in opens
    # an hour before the start): the episode waits at most a minute or two for it.
    assessment_at = (datetime.now(UTC) + timedelta(minutes=2)).replace(second=0, microsecond=0)
    assessment = await attend(staff, clinic, out, therapist, "initial_assessment",
                              assessment_at, f"assessment-{i}")

    step("evaluation")

    async def draft() -> str | None:
        got = await staff.get("assessment", f"/evaluations?episode_id={out.episode_id}")
        return next((e["evaluation_id"] for e in got or []
                     if e.get("appointment_id") == assessment), None)

    out.evaluation_id = await until(draft, "assessment opened the draft")
    evaluation = f"/evaluations/{out.evaluation_id}"

    async def completed() -> bool:
        got = await staff.get("assessment", evaluation)
        return bool(got) and got["status"] == "completed"

    # The therapist's evaluation as the end-to-end tests record it (each part an idempotent
    # PUT or a measure that replaces itself); the completion is checked by reading it back.
    await evaluate_the_runner(staff.call, out.evaluation_id)
    if not await completed():
        await staff.change("assessment", f"{evaluation}/complete", completed)

    step("plan")
    plan = await until(lambda: staff.get("plan", f"{base}/plan"), "plan drafted the plan")
    if plan["status"] == "draft":
        edited = await staff.call("plan", "PUT", f"{base}/plan",
                                  headers={"If-Match": str(plan["version"])},
                                  json={"content": far_dates(plan["content"], date.today())})
        if edited.status_code not in (200, 409, 412):
            raise FlowError(f"PUT plan: {edited.status_code} {edited.text[:300]}")

        async def active() -> bool:
            got = await staff.get("plan", f"{base}/plan")
            return bool(got) and got["status"] == "active"

        await staff.change("plan", f"{base}/plan/activate", active)
    plan = await staff.ok("plan", "GET", f"{base}/plan")

    step("treatment session")
    session = await attend(staff, clinic, out, therapist, "treatment_session",
                           assessment_at + timedelta(hours=1), f"session-{i}")

    async def listed() -> bool:
        got = await staff.get("plan", f"{base}/sessions")
        return any(s["appointment_id"] == session for s in got or [])

    await until(listed, "plan listed the session")

    async def logged() -> bool:
        got = await staff.get("plan", f"{base}/sessions")
        return any(s["appointment_id"] == session and s["logged"] for s in got or [])

    await staff.change("plan", f"{base}/sessions/{session}/log", logged,
                       json=session_log(plan, nprs=3))

    step("discharge")

    async def discharged() -> bool:
        got = await staff.get("plan", f"{base}/plan")
        return bool(got) and got["status"] == "discharged"

    await staff.change("plan", f"{base}/discharge", discharged, json={"override": {
        "reason_code": "patient_withdrew", "free_text": "Chaos run: shortened episode"}})

    step("payment")

    async def invoiced() -> list[dict[str, Any]] | None:
        got = await staff.get("billing", f"/invoices?patient_id={out.patient_id}")
        return got if got and len(got) >= len(out.appointments) else None

    for row in await until(invoiced, "billing invoiced both appointments"):
        out.invoices.append(str(row["invoice_id"]))
        if row["outstanding"] > 0:
            await staff.ok("billing", "POST", f"/invoices/{row['invoice_id']}/payments",
                           key=f"pay-{row['invoice_id']}",
                           json={"amount": row["outstanding"], "currency": row["currency"],
                                 "method": "card"})
    step("done")
    out.seconds = time.monotonic() - started


async def attend(staff: Staff, clinic: Clinic, out: Episode, therapist: str, kind: str,
                 starts_at: datetime, key: str) -> str:
    """Booked, checked in (retried until check-in opens) and completed: the appointment id."""
    appointment = (await staff.ok("booking", "POST", "/appointments", key=key, json={
        "patient_id": out.patient_id, "therapist_id": therapist,
        "location_id": clinic.location_id, "episode_id": out.episode_id,
        "appointment_type": kind, "starts_at": starts_at.isoformat()}))["id"]
    out.appointments.append(appointment)

    def reached(*statuses: str) -> Callable[[], Awaitable[bool]]:
        async def probe() -> bool:
            got = await staff.get("booking", f"/appointments/{appointment}")
            return bool(got) and got["status"] in statuses
        return probe

    opens = starts_at - timedelta(hours=1)  # check-in opens an hour before the start
    await asyncio.sleep(max(0.0, (opens - datetime.now(UTC)).total_seconds()))

    async def checked_in() -> bool:
        response = await staff.call("booking", "POST", f"/appointments/{appointment}/check-in")
        return response.status_code == 200 or await reached("checked_in", "completed")()

    await until(checked_in, f"check-in of {kind}")
    await staff.change("booking", f"/appointments/{appointment}/complete", reached("completed"))
    return appointment

