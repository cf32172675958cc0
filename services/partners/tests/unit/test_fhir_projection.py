"""The FHIR projection, pure: CLINICAL.md §5 (patellofemoral pain in a runner) told as the
CloudEvents Kinetic publishes, each checked against the committed JSON Schemas so the story
cannot drift from the contracts, fed through ``project`` with an in-memory store."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from kinetic_contracts.registry import model_for, schema_uri
from partners.domain.fhir import MODELS, FhirResource, capability_statement, project

SCHEMAS = Path(__file__).resolve().parents[4] / "contracts" / "schemas"
NS = uuid.UUID("6f1c1d1e-8a57-4a39-9d0c-5b1f5e0c0a11")
DAY0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


def kid(name: str) -> str:
    return str(uuid.uuid5(NS, name))


TENANT, LOCATION, THERAPIST, PATIENT = kid("org"), kid("mitte"), kid("anna"), kid("runner")
EPISODE, EVALUATION, REASSESSMENT = kid("episode"), kid("evaluation"), kid("reassessment")
PLAN = str(uuid.uuid5(uuid.UUID(EPISODE), "plan"))  # plan's one plan per episode
A1, A2, A3, A4, A5 = (kid(f"appointment-{n}") for n in range(1, 6))
INV_SESSION, INV_LATE = kid("invoice-session"), kid("invoice-late")
WHO = {"patient_id": PATIENT, "therapist_id": THERAPIST, "location_id": LOCATION}
CARE = {"episode_id": EPISODE, "patient_id": PATIENT, "location_id": LOCATION}

# The value sets the library does not enforce (it checks structure, not codes).
STATUS_CODES = {
    "Appointment": {"proposed", "pending", "booked", "arrived", "fulfilled", "cancelled",
                    "noshow", "entered-in-error", "checked-in", "waitlist"},
    "Encounter": {"planned", "arrived", "triaged", "in-progress", "onleave", "finished",
                  "cancelled", "entered-in-error", "unknown"},
    "EpisodeOfCare": {"planned", "waitlist", "active", "onhold", "finished", "cancelled",
                      "entered-in-error"},
    "Observation": {"registered", "preliminary", "final", "amended", "corrected", "cancelled",
                    "entered-in-error", "unknown"},
    "ClinicalImpression": {"in-progress", "completed", "entered-in-error"},
    "CarePlan": {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error",
                 "unknown"},
    "Invoice": {"draft", "issued", "balanced", "cancelled", "entered-in-error"},
}
GOAL_LIFECYCLE = {"proposed", "planned", "accepted", "active", "on-hold", "completed",
                  "cancelled", "entered-in-error", "rejected"}
ACTIVITY_STATUS = {"not-started", "scheduled", "in-progress", "on-hold", "completed",
                   "cancelled", "stopped", "unknown", "entered-in-error"}


def at(day: int, hour: int = 9, minute: int = 0) -> str:
    return (DAY0 + timedelta(days=day, hours=hour, minutes=minute)).isoformat().replace(
        "+00:00", "Z")


def on(day: int) -> str:
    return (DAY0.date() + timedelta(days=day)).isoformat()


@functools.cache
def validator(file: str) -> Any:
    return jsonschema_rs.validator_for(json.loads((SCHEMAS / file).read_text()),
                                       validate_formats=True)


class Clinic:
    """Publishes events as delivered (plain JSON) and keeps what the projection returns."""

    def __init__(self) -> None:
        self.store: dict[tuple[str, str], dict[str, Any]] = {}
        self.history: list[tuple[str, list[FhirResource]]] = []

    def lookup(self, kind: str, rid: str) -> dict[str, Any] | None:
        return self.store.get((kind, rid))

    def event(self, type_: str, time: str, data: dict[str, Any]) -> dict[str, Any]:
        n = len(self.history) + 1
        event = json.loads(json.dumps({
            "specversion": "1.0", "id": kid(f"event-{n}"),
            "source": f"/kinetic/{type_.split('.')[1]}", "type": type_,
            "subject": str(data[model_for(type_).aggregate_id_field]),
            "time": time, "datacontenttype": "application/json",
            "dataschema": schema_uri(type_), "data": data, "tenantid": TENANT, "sequence": n}))
        validator("cloudevent.json").validate(event)
        validator(f"{type_}.json").validate(event["data"])
        return event

    def emit(self, type_: str, time: str, **data: Any) -> list[FhirResource]:
        out = project(self.event(type_, time, data), self.lookup)
        for resource in out:
            self.store[(resource.resource_type, resource.id)] = resource.body
        self.history.append((type_, out))
        return out

    def get(self, kind: str, rid: str) -> dict[str, Any]:
        return self.store[(kind, rid)]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [body for (k, _), body in self.store.items() if k == kind]

    def versions(self, kind: str, rid: str) -> list[tuple[str, dict[str, Any]]]:
        """(event type, body) each time an event changed the resource."""
        return [(type_, r.body) for type_, out in self.history for r in out
                if (r.resource_type, r.id) == (kind, rid)]

    def statuses(self, kind: str, rid: str) -> list[str]:
        return [body["status"] for _, body in self.versions(kind, rid)]


def child(parent: str, key: str) -> str:
    return str(uuid.uuid5(uuid.UUID(parent), key))


def ref(kind: str, rid: str) -> dict[str, str]:
    return {"reference": f"{kind}/{rid}"}


def book(c: Clinic, aid: str, day: int, kind: str = "treatment_session") -> None:
    c.emit("kinetic.booking.appointment.booked.v1", at(day - 3), appointment_id=aid, **WHO,
           episode_id=EPISODE, appointment_type=kind, starts_at=at(day),
           ends_at=at(day, 10), booked_at=at(day - 3))


def outcome(c: Clinic, aid: str, what: str, day: int, kind: str = "treatment_session",
            hour: int = 9) -> list[FhirResource]:
    return c.emit(f"kinetic.booking.appointment.{what}.v1", at(day, hour, 55),
                  appointment_id=aid, **WHO, episode_id=EPISODE, appointment_type=kind,
                  starts_at=at(day, hour), at=at(day, hour, 55))


def reverse(c: Clinic, aid: str, day: int, what: str, reason: str) -> list[FhirResource]:
    return c.emit("kinetic.booking.appointment.reversed.v1", at(day, 17), appointment_id=aid,
                  **WHO, episode_id=EPISODE, appointment_type="treatment_session",
                  starts_at=at(day), reversed_outcome=what, reason_code=reason,
                  reversed_at=at(day, 17))


def measured(c: Clinic, evaluation: str, measure: str, score: float, day: int,
             context: str) -> None:
    c.emit("kinetic.assessment.outcome.measured.v1", at(day, 9, 20), evaluation_id=evaluation,
           **CARE, measure=measure, version="1", scores={measure: score}, context=context,
           measured_at=at(day, 9, 20))


def milestone(c: Clinic, what: str, milestone_id: str, stage: str, target: int, day: int
              ) -> list[FhirResource]:
    stamp = "met_at" if what == "met" else "overdue_at"
    return c.emit(f"kinetic.plan.milestone.{what}.v1", at(day, 12), plan_id=PLAN, **CARE,
                  milestone_id=milestone_id, stage=stage, target_date=on(target),
                  **{stamp: at(day, 12)})


def advance(c: Clinic, from_stage: str, to_stage: str, day: int) -> None:
    c.emit("kinetic.plan.stage.advanced.v1", at(day, 11), plan_id=PLAN, **CARE,
           from_stage=from_stage, to_stage=to_stage, advanced_by=THERAPIST,
           advanced_at=at(day, 11))


def finding(finding_id: str, index: str, value: float, unit: str, passed: bool | None
            ) -> dict[str, Any]:
    return {"finding_id": finding_id, "index": index, "value": value, "unit": unit,
            "passed": passed}


def invoice(c: Clinic, iid: str, number: str, kind: str, total: int, day: int,
            currency: str = "EUR", aid: str | None = None) -> list[FhirResource]:
    return c.emit("kinetic.billing.invoice.issued.v1", at(day, 18), invoice_id=iid,
                  patient_id=PATIENT, location_id=LOCATION, currency=currency, number=number,
                  kind=kind, appointment_id=aid, episode_id=EPISODE, total=total, tax=0,
                  issued_at=at(day, 18), due_on=on(day + 14))


def worked_example() -> Clinic:
    """CLINICAL.md §5: 29 F runner, right anterior knee pain, 8 sessions over 10 weeks."""
    c = Clinic()
    c.emit("kinetic.booking.location.registered.v1", at(-60), location_id=LOCATION,
           name="Kinetic Mitte", timezone="Europe/Berlin", registered_at=at(-60))
    c.emit("kinetic.booking.location.hours_set.v1", at(-60, 10), location_id=LOCATION,
           opening_hours={"mon": [{"opens": "07:00", "closes": "13:00"},
                                  {"opens": "14:00", "closes": "20:00"}],
                          "sat": [{"opens": "00:00", "closes": "24:00"}]},
           set_at=at(-60, 10))
    c.emit("kinetic.booking.therapist.registered.v1", at(-59), therapist_id=THERAPIST,
           location_ids=[LOCATION], display_name="Anna K.", registered_at=at(-59))
    c.emit("kinetic.booking.patient.registered.v1", at(-5), patient_id=PATIENT,
           home_location_id=LOCATION, birth_year=1997, registered_at=at(-5))
    c.emit("kinetic.booking.episode.opened.v1", at(-5, 10), episode_id=EPISODE,
           patient_id=PATIENT, location_id=LOCATION, symptom_site="knee_anterior",
           referral=False, goal_target_date=on(70), opened_at=at(-5, 10))

    # Session 1: the one-hour initial evaluation.
    book(c, A1, 0, "initial_assessment")
    c.emit("kinetic.booking.appointment.reminder_due.v1", at(-1), appointment_id=A1, **WHO,
           appointment_type="initial_assessment", starts_at=at(0), lead_minutes=1440,
           due_at=at(-1))
    outcome(c, A1, "checked_in", 0, "initial_assessment", hour=8)
    outcome(c, A1, "completed", 0, "initial_assessment")
    c.emit("kinetic.assessment.evaluation.completed.v1", at(0, 10, 5),
           evaluation_id=EVALUATION, **CARE, therapist_id=THERAPIST,
           symptom_sites=["knee_anterior_right"],
           drivers=[{"code": "hip_abductor_weakness",
                     "finding_ids": ["strength:hip_abduction", "movement:sls"]}],
           working_diagnosis_icd10="M22.2", episode_type="acute_clear_driver",
           goals=[{"activity": "running", "level": "45 min at pre-injury pace, 3 times a week",
                   "target_date": on(70)},
                  {"activity": "stairs", "level": "down without pain"}],
           baseline_measures=[
               {"measure": "nprs", "version": "1", "scores": {"nprs": 6}},
               {"measure": "lefs", "version": "1", "scores": {"lefs": 52}},
               {"measure": "psfs", "version": "1", "scores": {"psfs": 3.7}},
               {"measure": "tsk17", "version": "1", "scores": {"tsk17": 31}}],
           findings=[
               finding("strength:hip_abduction", "lsi_pct", 78.9, "%", False),
               finding("strength:hip_er", "lsi_pct", 82.0, "%", False),
               finding("strength:quadriceps", "lsi_pct", 92.0, "%", True),
               finding("movement:sls", "right_rating", 0, "rating", False),
               finding("y_balance", "anterior_asymmetry_cm", 5.0, "cm", False)],
           ruleset_version=1, completed_at=at(0, 10, 5))
    for measure, score in (("nprs", 6), ("lefs", 52), ("psfs", 3.7), ("tsk17", 31)):
        measured(c, EVALUATION, measure, score, 0, "initial")
    c.emit("kinetic.plan.plan.created.v1", at(0, 10, 30), plan_id=PLAN, **CARE,
           sessions_per_week=0.8, expected_sessions=8, target_date=on(70),
           created_at=at(0, 10, 30))
    invoice(c, INV_SESSION, "2026-000042", "session", 9000, 0, aid=A1)
    c.emit("kinetic.billing.payment.recorded.v1", at(0, 18, 5), invoice_id=INV_SESSION,
           patient_id=PATIENT, location_id=LOCATION, currency="EUR", payment_id=kid("pay-1"),
           appointment_id=A1, amount=9000, method="card", outstanding=0,
           recorded_at=at(0, 18, 5))

    # Session 2, moved a day; stage 1 "calm" exits at week 2.
    book(c, A2, 7)
    c.emit("kinetic.booking.appointment.rescheduled.v1", at(5), appointment_id=A2, **WHO,
           episode_id=EPISODE, appointment_type="treatment_session",
           previous_therapist_id=THERAPIST, previous_starts_at=at(7), starts_at=at(8, 15),
           ends_at=at(8, 16), rescheduled_at=at(5))
    outcome(c, A2, "checked_in", 8, hour=15)
    outcome(c, A2, "completed", 8, hour=15)
    c.emit("kinetic.plan.session.logged.v1", at(8, 17), plan_id=PLAN, **CARE,
           appointment_id=A2, session_number=2, logged_at=at(8, 17))
    milestone(c, "met", "stairs_pain_le_2", "calm", 14, 8)
    milestone(c, "met", "walk_30_min_pain_le_2", "calm", 14, 10)
    advance(c, "calm", "restore", 14)

    # A late cancellation, its fee waived; a no-show and a completion recorded in error.
    book(c, A3, 15)
    c.emit("kinetic.booking.appointment.cancelled.v1", at(15, 7), appointment_id=A3, **WHO,
           starts_at=at(15), late=True, cancelled_at=at(15, 7))
    invoice(c, INV_LATE, "2026-000043", "late_cancellation", 4500, 15)
    reverse(c, A3, 15, "cancelled", "fee_waived")
    c.emit("kinetic.billing.invoice.credited.v1", at(15, 17, 5), invoice_id=INV_LATE,
           patient_id=PATIENT, location_id=LOCATION, currency="EUR",
           credit_note_id=kid("credit-1"), amount=4500, reason_code="appointment_reversed",
           appointment_id=A3, outstanding=0, credited_at=at(15, 17, 5))
    book(c, A4, 21)
    outcome(c, A4, "no_show", 21, hour=9)
    reverse(c, A4, 21, "no_show", "recorded_in_error")
    book(c, A5, 22)
    outcome(c, A5, "checked_in", 22, hour=9)
    outcome(c, A5, "completed", 22, hour=9)
    reverse(c, A5, 22, "completed", "recorded_in_error")

    # Stage 2 runs late, then a reassessment (LEFS 52 -> 64) and a revised plan.
    milestone(c, "overdue", "hip_abduction_lsi_85", "restore", 28, 42)
    c.emit("kinetic.assessment.reassessment.completed.v1", at(42, 10),
           evaluation_id=REASSESSMENT, **CARE, baseline_evaluation_id=EVALUATION,
           changes=[
               {"measure": "lefs", "score": "lefs", "baseline": 52, "current": 64,
                "improvement": 12, "mcid": 9, "passed_mcid": True, "possibly_noise": False,
                "deteriorated": False},
               {"measure": "nprs", "score": "nprs", "baseline": 6, "current": 5,
                "improvement": 1, "mcid": 2, "passed_mcid": False, "possibly_noise": True,
                "deteriorated": False}],
           findings=[finding("strength:hip_abduction", "lsi_pct", 86.0, "%", False)],
           ruleset_version=1, completed_at=at(42, 10))
    measured(c, REASSESSMENT, "lefs", 64, 42, "reassessment")
    measured(c, REASSESSMENT, "nprs", 5, 42, "reassessment")
    c.emit("kinetic.plan.plan.revised.v1", at(42, 11), plan_id=PLAN, **CARE,
           sessions_per_week=1, expected_sessions=8, target_date=on(77), revision=2,
           revised_at=at(42, 11))
    milestone(c, "met", "hip_abduction_lsi_85", "restore", 28, 45)
    advance(c, "restore", "build", 45)
    advance(c, "build", "perform", 56)
    milestone(c, "met", "lefs_ge_70", "perform", 70, 70)
    c.emit("kinetic.plan.episode.discharged.v1", at(77, 12), **CARE, discharged_at=at(77, 12),
           basis="criteria_met", discharged_by=THERAPIST)
    c.emit("kinetic.booking.episode.closed.v1", at(77, 13), episode_id=EPISODE,
           patient_id=PATIENT, location_id=LOCATION, reason="discharged",
           closed_at=at(77, 13))
    return c


@pytest.fixture(scope="module")
def story() -> Clinic:
    return worked_example()


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


# -- contracts and validity ------------------------------------------------------------------

def test_the_story_events_are_checked_against_the_committed_schemas() -> None:
    clinic = Clinic()
    with pytest.raises(jsonschema_rs.ValidationError):  # the check bites: birth_year missing
        clinic.event("kinetic.booking.patient.registered.v1", at(0),
                     {"patient_id": PATIENT, "home_location_id": LOCATION,
                      "registered_at": at(0)})


def test_every_projected_body_validates_with_its_r4b_model(story: Clinic) -> None:
    produced = [r for _, out in story.history for r in out]
    assert {r.resource_type for r in produced} == set(MODELS)
    for r in produced:
        model = MODELS[r.resource_type].model_validate(r.body)
        assert (r.body["resourceType"], r.body["id"]) == (r.resource_type, r.id)
        assert model.model_dump(mode="json", exclude_none=True) == r.body


def test_statuses_are_codes_of_their_fhir_value_sets(story: Clinic) -> None:
    for (kind, _), body in story.store.items():
        if kind in STATUS_CODES:
            assert body["status"] in STATUS_CODES[kind], (kind, body["status"])
    for goal in story.of_type("Goal"):
        assert goal["lifecycleStatus"] in GOAL_LIFECYCLE
    for care_plan in story.of_type("CarePlan"):
        assert {a["detail"]["status"] for a in care_plan["activity"]} <= ACTIVITY_STATUS


def test_every_reference_resolves_to_a_projected_resource(story: Clinic) -> None:
    targets = {f"{kind}/{rid}" for kind, rid in story.store}
    dangling = {r for body in story.store.values() for r in references(body)} - targets
    assert dangling == set()


def test_meta_carries_the_event_time_and_source(story: Clinic) -> None:
    appointment = story.get("Appointment", A2)
    assert appointment["meta"] == {"lastUpdated": at(8, 15, 55), "source": "/kinetic/booking"}
    assert "versionId" not in appointment["meta"]  # versions are the store's


def test_the_projection_is_deterministic(story: Clinic) -> None:
    assert worked_example().store == story.store


def test_unknown_or_irrelevant_events_project_to_nothing() -> None:
    clinic = Clinic()
    unknown = {"id": kid("u"), "type": "kinetic.unknown.thing.happened.v1",
               "source": "/kinetic/unknown", "time": at(0), "tenantid": TENANT, "data": {}}
    assert project(unknown, clinic.lookup) == []
    assert project({**unknown, "type": "kinetic.booking.episode.opened.v9"}, clinic.lookup) == []
    assert clinic.emit("kinetic.booking.appointment.reminder_due.v1", at(0), appointment_id=A1,
                       **WHO, appointment_type="treatment_session", starts_at=at(1),
                       lead_minutes=1440, due_at=at(0)) == []


# -- who and where ---------------------------------------------------------------------------

def test_patient_carries_identifiers_only(story: Clinic) -> None:
    patient = story.get("Patient", PATIENT)
    assert patient["identifier"] == [{"system": "urn:kinetic:patient", "value": PATIENT}]
    assert patient["birthDate"] == "1997"  # the event's year, no more
    assert not {"name", "telecom", "address", "photo", "contact"} & patient.keys()


def test_disclosed_contact_details_give_that_partners_patient_a_name_and_telecom() -> None:
    c = worked_example()
    [patient] = c.emit("kinetic.partners.patient.contact_details_disclosed.v1", at(1),
                       patient_id=PATIENT, given_name="Ada", family_name="Runner",
                       date_of_birth="1997-05-04", phone="+49 30 5550100",
                       email="ada@example.org", preferred_language="de", disclosed_at=at(1))
    body = patient.body
    assert body["identifier"] == [{"system": "urn:kinetic:patient", "value": PATIENT}]
    assert body["name"] == [{"use": "official", "family": "Runner", "given": ["Ada"]}]
    assert [(t["system"], t["value"]) for t in body["telecom"]] == [
        ("phone", "+49 30 5550100"), ("email", "ada@example.org")]
    assert body["birthDate"] == "1997-05-04"
    assert body["communication"][0]["language"]["coding"][0]["code"] == "de"


def test_disclosed_clinical_notes_annotate_the_evaluations_impression() -> None:
    c = worked_example()
    [impression] = c.emit(
        "kinetic.partners.evaluation.clinical_notes_disclosed.v1", at(1), **CARE,
        evaluation_id=EVALUATION, working_diagnosis="Patellofemoral pain",
        drivers=[{"code": "hip_abductor_weakness", "rationale": "Knee drops in on the SLS"}],
        explanation="Your knee hurts; your hip lets it.", disclosed_at=at(1))
    body = impression.body
    assert body["id"] == EVALUATION and body["status"] == "completed"  # the same impression
    assert body["description"] == "Patellofemoral pain"
    assert [n["text"] for n in body["note"]] == [
        "hip_abductor_weakness: Knee drops in on the SLS", "Your knee hurts; your hip lets it."]
    # Notes about an evaluation this partner never received annotate nothing.
    assert c.emit("kinetic.partners.evaluation.clinical_notes_disclosed.v1", at(1), **CARE,
                  evaluation_id=kid("unknown evaluation"), explanation="x",
                  disclosed_at=at(1)) == []


def test_a_disclosed_addendum_is_one_more_dated_note_that_stays_once() -> None:
    c = worked_example()
    notes = {"evaluation_id": EVALUATION, "working_diagnosis": "Patellofemoral pain",
             "explanation": "Your knee hurts; your hip lets it.", "disclosed_at": at(1)}
    c.emit("kinetic.partners.evaluation.clinical_notes_disclosed.v1", at(1), **CARE, **notes)
    addendum = {"evaluation_id": EVALUATION, "addendum_id": kid("addendum"),
                "reason": "Corrected hip ER value", "text": "Hip ER was 9.0 kgf, not 6.0",
                "added_at": at(2), "disclosed_at": at(2)}
    for _ in range(2):  # disclosed again (a renewed consent): still one note
        [impression] = c.emit("kinetic.partners.evaluation.addendum_disclosed.v1", at(2),
                              **CARE, **addendum)
    assert [n["text"] for n in impression.body["note"]] == [
        "Your knee hurts; your hip lets it.",
        "Addendum (Corrected hip ER value): Hip ER was 9.0 kgf, not 6.0"]
    assert impression.body["note"][1]["time"] == at(2)
    # The notes disclosed again later keep the addendum that corrects them.
    [impression] = c.emit("kinetic.partners.evaluation.clinical_notes_disclosed.v1", at(3),
                          **CARE, **notes)
    assert [n["text"] for n in impression.body["note"]][-1].startswith("Addendum (")


def test_location_has_its_timezone_and_opening_hours(story: Clinic) -> None:
    location = story.get("Location", LOCATION)
    assert location["name"] == "Kinetic Mitte"
    assert location["extension"][0]["valueCode"] == "Europe/Berlin"
    assert location["hoursOfOperation"] == [
        {"daysOfWeek": ["mon"], "openingTime": "07:00:00", "closingTime": "13:00:00"},
        {"daysOfWeek": ["mon"], "openingTime": "14:00:00", "closingTime": "20:00:00"},
        {"daysOfWeek": ["sat"], "allDay": True}]
    assert story.get("Practitioner", THERAPIST)["name"] == [{"text": "Anna K."}]


# -- appointments and encounters -------------------------------------------------------------

def test_appointment_status_follows_the_booking_lifecycle(story: Clinic) -> None:
    assert story.statuses("Appointment", A2) == ["booked", "booked", "arrived", "fulfilled"]
    moved = story.get("Appointment", A2)
    assert (moved["start"], moved["end"]) == (at(8, 15), at(8, 16))
    assert moved["appointmentType"]["coding"][0]["code"] == "treatment_session"
    assert [p["actor"] for p in moved["participant"]] == [
        ref("Patient", PATIENT), ref("Practitioner", THERAPIST), ref("Location", LOCATION)]
    assert story.statuses("Appointment", A3) == ["booked", "cancelled"]  # fee waived: stands
    assert story.get("Appointment", A3)["cancelationReason"]["coding"][0]["code"] == "late"
    assert story.statuses("Appointment", A4) == ["booked", "noshow", "cancelled"]
    assert story.statuses("Appointment", A5) == ["booked", "arrived", "fulfilled", "cancelled"]
    reason = story.get("Appointment", A5)["cancelationReason"]["coding"][0]["code"]
    assert reason == "recorded_in_error"


def test_a_completed_appointment_is_an_encounter_of_its_episode(story: Clinic) -> None:
    encounter = story.get("Encounter", A2)
    assert encounter["status"] == "finished"
    assert encounter["class"]["code"] == "AMB"
    assert encounter["episodeOfCare"] == [ref("EpisodeOfCare", EPISODE)]
    assert encounter["appointment"] == [ref("Appointment", A2)]
    assert encounter["subject"] == ref("Patient", PATIENT)
    assert encounter["period"] == {"start": at(8, 15), "end": at(8, 16)}
    assert ("Encounter", A4) not in story.store  # a no-show is no encounter


def test_a_completion_recorded_in_error_retracts_its_encounter(story: Clinic) -> None:
    assert story.statuses("Encounter", A5) == ["finished", "entered-in-error"]


# -- episode, evaluation and measures --------------------------------------------------------

def test_the_episode_is_active_until_discharge_then_finished(story: Clinic) -> None:
    assert story.statuses("EpisodeOfCare", EPISODE)[0] == "active"
    episode = story.get("EpisodeOfCare", EPISODE)
    assert episode["status"] == "finished"
    assert episode["period"] == {"start": at(-5, 10), "end": at(77, 12)}  # the discharge
    assert episode["type"][0]["coding"][0]["code"] == "acute_clear_driver"
    assert episode["diagnosis"][0]["condition"] == ref("Condition", child(EPISODE, "complaint"))


def test_the_evaluation_is_an_impression_of_site_and_driver(story: Clinic) -> None:
    impression = story.get("ClinicalImpression", EVALUATION)
    assert impression["status"] == "completed"
    site = story.get("Condition", child(EVALUATION, "site:knee_anterior_right"))
    assert impression["problem"] == [ref("Condition", site["id"])]
    assert site["code"]["coding"][0] == {"system": "http://hl7.org/fhir/sid/icd-10",
                                         "code": "M22.2"}
    assert site["bodySite"][0]["coding"][0]["code"] == "knee_anterior_right"
    driver = story.get("Condition", child(EVALUATION, "driver:hip_abductor_weakness"))
    assert impression["finding"] == [{"itemReference": ref("Condition", driver["id"]),
                                      "basis": "strength:hip_abduction, movement:sls"}]
    shown_by = [story.get("Observation", r["reference"].split("/")[1])
                for r in driver["evidence"][0]["detail"]]
    assert [(o["code"]["coding"][0]["code"], o["valueQuantity"]["value"]) for o in shown_by] \
        == [("strength:hip_abduction", 78.9), ("movement:sls", 0)]
    assert shown_by[0]["interpretation"][0]["coding"][0]["code"] == "A"  # below threshold


def test_a_measure_is_one_observation_per_evaluation_with_its_score(story: Clinic) -> None:
    lefs = [o for o in story.of_type("Observation")
            if o["code"]["coding"][0] == {"system": "urn:kinetic:measure", "code": "lefs"}]
    assert sorted(o["valueQuantity"]["value"] for o in lefs) == [52, 64]  # initial, reassessed
    baseline = story.get("Observation", child(EVALUATION, "measure:lefs"))
    assert baseline["effectiveDateTime"] == at(0, 9, 20)  # when measured, not when completed
    assert baseline["category"][0]["coding"][0]["code"] == "survey"
    assert baseline["subject"] == ref("Patient", PATIENT)


def test_the_measuring_time_survives_either_delivery_order() -> None:
    clinic = Clinic()
    measured(clinic, EVALUATION, "lefs", 52, 0, "initial")
    evaluation = clinic.event("kinetic.assessment.evaluation.completed.v1", at(0, 10, 5), {
        "evaluation_id": EVALUATION, **CARE, "symptom_sites": ["knee_anterior_right"],
        "drivers": [{"code": "hip_abductor_weakness"}], "episode_type": "acute_clear_driver",
        "goals": [{"activity": "running", "level": "45 min"}],
        "baseline_measures": [{"measure": "lefs", "version": "1", "scores": {"lefs": 52}}],
        "findings": [], "completed_at": at(0, 10, 5)})
    produced = project(evaluation, clinic.lookup)
    assert child(EVALUATION, "measure:lefs") not in {r.id for r in produced}
    assert clinic.get("Observation", child(EVALUATION, "measure:lefs"))[
        "effectiveDateTime"] == at(0, 9, 20)


def test_a_reassessment_judges_each_change_against_its_mcid(story: Clinic) -> None:
    lefs = story.get("Observation", child(REASSESSMENT, "change:lefs:lefs"))
    assert lefs["valueQuantity"]["value"] == 12
    assert lefs["interpretation"][0]["coding"][0]["code"] == "B"  # better by >= MCID 9
    assert lefs["derivedFrom"] == [ref("Observation", child(REASSESSMENT, "measure:lefs")),
                                   ref("Observation", child(EVALUATION, "measure:lefs"))]
    nprs = story.get("Observation", child(REASSESSMENT, "change:nprs:nprs"))
    assert "interpretation" not in nprs  # 1 point is below the MCID: neither better nor worse
    impression = story.get("ClinicalImpression", REASSESSMENT)
    assert impression["previous"] == ref("ClinicalImpression", EVALUATION)


# -- plan of care ----------------------------------------------------------------------------

def milestone_goal(milestone_id: str) -> str:
    return child(PLAN, f"milestone:{milestone_id}")


def test_the_care_plan_references_each_milestone_goal(story: Clinic) -> None:
    care_plan = story.get("CarePlan", PLAN)
    milestones = ["stairs_pain_le_2", "walk_30_min_pain_le_2", "hip_abduction_lsi_85",
                  "lefs_ge_70"]
    assert care_plan["goal"] == [ref("Goal", milestone_goal(m)) for m in milestones]
    for goal in care_plan["goal"]:
        assert story.get("Goal", goal["reference"].split("/")[1])["subject"] == \
            ref("Patient", PATIENT)
    stages = {a["detail"]["code"]["coding"][0]["code"]: a["detail"]
              for a in care_plan["activity"][1:]}
    assert list(stages) == ["calm", "restore", "build", "perform"]
    assert stages["calm"]["goal"] == [ref("Goal", milestone_goal(m)) for m in milestones[:2]]


def test_a_met_milestone_is_an_achieved_goal(story: Clinic) -> None:
    overdue_then_met = milestone_goal("hip_abduction_lsi_85")
    achievements = [body["achievementStatus"]["coding"][0]["code"]
                    for _, body in story.versions("Goal", overdue_then_met)]
    assert achievements == ["not-achieved", "achieved"]
    goal = story.get("Goal", overdue_then_met)
    assert goal["lifecycleStatus"] == "completed"
    assert goal["target"] == [{"dueDate": on(28)}]
    assert goal["statusDate"] == on(45)


def test_a_plan_is_active_with_its_expected_sessions_at_its_frequency(story: Clinic) -> None:
    (event, created), *_ = story.versions("CarePlan", PLAN)
    assert (event, created["status"], created["intent"]) == (
        "kinetic.plan.plan.created.v1", "active", "plan")
    assert created["subject"] == ref("Patient", PATIENT)
    assert created["activity"][0]["detail"]["scheduledTiming"]["repeat"] == {
        "count": 8, "frequency": 4, "period": 5, "periodUnit": "wk",  # 0.8 a week
        "boundsPeriod": {"start": at(0, 10, 30), "end": on(70)}}


def test_a_revision_replaces_the_course_and_keeps_goals_stages_and_sessions(
        story: Clinic) -> None:
    versions = story.versions("CarePlan", PLAN)
    i = next(i for i, (event, _) in enumerate(versions)
             if event == "kinetic.plan.plan.revised.v1")
    before, revised = versions[i - 1][1], versions[i][1]
    assert revised["period"] == {"start": at(0, 10, 30), "end": on(77)}
    assert revised["activity"][0]["detail"]["scheduledTiming"]["repeat"]["frequency"] == 1
    assert revised["activity"][0]["outcomeReference"] == [ref("Encounter", A2)]
    assert revised["goal"] == before["goal"]
    assert revised["activity"][1:] == before["activity"][1:]


def test_discharge_completes_the_care_plan(story: Clinic) -> None:
    care_plan = story.get("CarePlan", PLAN)
    assert care_plan["status"] == "completed"
    assert {a["detail"]["status"] for a in care_plan["activity"]} == {"completed"}


# -- billing ---------------------------------------------------------------------------------

def test_invoice_totals_are_in_major_units(story: Clinic) -> None:
    paid = story.get("Invoice", INV_SESSION)
    assert paid["totalGross"] == {"value": 90.0, "currency": "EUR"}
    assert paid["totalNet"] == {"value": 90.0, "currency": "EUR"}
    assert {"system": "urn:kinetic:invoice-number", "value": "2026-000042"}.items() \
        <= paid["identifier"][1].items()


@pytest.mark.parametrize(("currency", "minor", "major"),
                         [("EUR", 9000, 90), ("JPY", 9000, 9000), ("KWD", 9000, 9)])
def test_minor_units_follow_the_currency_exponent(currency: str, minor: int, major: float
                                                  ) -> None:
    clinic = Clinic()
    [issued] = invoice(clinic, INV_SESSION, "2026-000001", "session", minor, 0, currency)
    assert issued.body["totalGross"] == {"value": major, "currency": currency}


def test_payment_in_full_balances_the_invoice(story: Clinic) -> None:
    assert story.statuses("Invoice", INV_SESSION) == ["issued", "balanced"]


def test_an_invoice_credited_in_full_is_cancelled(story: Clinic) -> None:
    assert story.statuses("Invoice", INV_LATE) == ["issued", "cancelled"]
    credited = story.get("Invoice", INV_LATE)
    deduction = credited["lineItem"][0]["priceComponent"][-1]
    assert (deduction["type"], deduction["amount"]) == ("deduction",
                                                        {"value": 45.0, "currency": "EUR"})


def test_a_redelivered_credit_note_counts_once() -> None:
    clinic = Clinic()
    invoice(clinic, INV_LATE, "2026-000043", "late_cancellation", 4500, 0)
    for _ in range(2):
        [credited] = clinic.emit(
            "kinetic.billing.invoice.credited.v1", at(1), invoice_id=INV_LATE,
            patient_id=PATIENT, location_id=LOCATION, currency="EUR",
            credit_note_id=kid("credit-2"), amount=1500, reason_code="goodwill",
            outstanding=3000, credited_at=at(1))
    assert credited.body["status"] == "issued"
    assert len(credited.body["lineItem"][0]["priceComponent"]) == 3  # base, tax, one credit


# -- capability statement --------------------------------------------------------------------

def test_capability_statement_offers_read_and_search_by_patient() -> None:
    statement = capability_statement("https://api.kinetic.example/fhir/R4",
                                     datetime(2026, 11, 23, 9, tzinfo=UTC))
    CapabilityStatement.model_validate(statement)
    assert (statement["fhirVersion"], statement["format"]) == ("4.3.0", ["json"])
    [rest] = statement["rest"]
    offered = {r["type"]: r for r in rest["resource"]}
    assert set(offered) == set(MODELS)
    for kind, resource in offered.items():
        assert {i["code"] for i in resource["interaction"]} == {"read", "search-type"}
        names = {p["name"] for p in resource["searchParam"]}
        assert ("patient" in names) == (kind not in {"Patient", "Practitioner", "Location"})
    assert date.fromisoformat(statement["date"][:10]) == date(2026, 11, 23)
