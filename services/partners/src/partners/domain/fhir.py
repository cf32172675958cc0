"""FHIR R4B resources from Kinetic's published events: the read model a partner's EHR queries
at /fhir/R4. Pure: one event and the bodies already stored in, the full new body of every
resource the event creates or changes out. Storing, versioning and serving are the caller's.

Public events carry identifiers and codes only, so the resources do too: a Patient is an
identifier and a birth year. A partner's own disclosures add more, and only for it: a name,
telecom and the full birth date (contact details), a ClinicalImpression's notes (one more
for each addendum) and description (clinical free text). A Goal's description is the
patient's own words only for a partner that may have free text; for the others the feed
withholds them (domain/disclosure.py) and the description is masked. Each body is validated by its
``fhir.resources`` R4B model before it leaves, so a mapping mistake fails here, not in a
partner's parser. The library checks structure, not value sets: the codes below are chosen
from the FHIR value sets by hand, and the tests pin them.

Ids: a resource with its own Kinetic id keeps it (Appointment, Encounter = the appointment
id, CarePlan = the plan id, ...); one derived from part of an event gets uuid5(parent, key),
so a replay of the same events yields the same resources.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from babel.numbers import get_currency_precision
from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.clinicalimpression import ClinicalImpression
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.domainresource import DomainResource
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.episodeofcare import EpisodeOfCare
from fhir.resources.R4B.goal import Goal
from fhir.resources.R4B.invoice import Invoice
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner

from kinetic_contracts.assessment.v1 import events as assessment
from kinetic_contracts.billing.v1 import events as billing
from kinetic_contracts.booking.v1 import events as booking
from kinetic_contracts.partners.v1 import events as disclosed
from kinetic_contracts.plan.v1 import events as plan
from kinetic_contracts.registry import UnknownEventTypeError, model_for
from partners.domain.disclosure import WITHHELD

FHIR_VERSION = "4.3.0"  # R4B
Body = dict[str, Any]
Lookup = Callable[[str, str], Body | None]  # (resource_type, id) -> the stored body, if any

MODELS: dict[str, type[DomainResource]] = {m.get_resource_type(): m for m in (
    Patient, Practitioner, Location, Appointment, Encounter, EpisodeOfCare, Condition,
    ClinicalImpression, Observation, CarePlan, Goal, Invoice)}
WITHOUT_PATIENT = frozenset({"Patient", "Practitioner", "Location"})

HL7 = "http://terminology.hl7.org/CodeSystem/"
EPISODE_EXT = "http://hl7.org/fhir/StructureDefinition/workflow-episodeOfCare"
TIMEZONE_EXT = "http://hl7.org/fhir/StructureDefinition/timezone"
CREDIT_NOTE_EXT = "https://kinetic.dev/fhir/StructureDefinition/credit-note"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
UCUM = "http://unitsofmeasure.org"
SNOMED_PAIN = {"system": "http://snomed.info/sct", "code": "22253000", "display": "Pain"}
# Finding units (assessment's findings) that have a UCUM form; any other stays display-only.
UCUM_UNITS = {"%": "%", "cm": "cm", "deg": "deg", "N": "N", "kgf": "kgf", "N·m": "N.m",
              "N·m/kg": "N.m/kg", "reps": "{reps}", "rating": "{rating}"}


@dataclass(frozen=True)
class FhirResource:
    resource_type: str
    id: str
    patient_id: str | None  # the Kinetic patient it is about; None for Location/Practitioner
    body: Body  # validated R4B JSON


def project(event: Mapping[str, Any], current: Lookup) -> list[FhirResource]:
    """The resources this event creates or changes (the full new body of each); [] for an
    event type that has no FHIR meaning or that this release does not know. A malformed
    payload of a known type raises pydantic.ValidationError (the caller dead-letters it)."""
    try:
        model = model_for(str(event.get("type")))
    except UnknownEventTypeError:
        return []
    handler = _HANDLERS.get(model)
    if handler is None:
        return []
    tenant = event.get("tenantid")
    ctx = _Ctx(time=_iso(event["time"]), source=event.get("source"),
               tenant=str(tenant) if tenant else None, current=current)
    return handler(ctx, model.model_validate(event["data"]))


def capability_statement(base_url: str, now: datetime) -> Body:
    """What /fhir/R4 serves: read and search for every projected type, JSON only."""
    def resource(kind: str) -> Body:
        params = ([{"name": "_id", "type": "token"}, {"name": "identifier", "type": "token"}]
                  if kind in WITHOUT_PATIENT else [{"name": "patient", "type": "reference"}])
        return {"type": kind, "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchParam": params}
    body = {"resourceType": "CapabilityStatement", "status": "active", "date": _iso(now),
            "publisher": "Kinetic", "kind": "instance", "software": {"name": "Kinetic"},
            "implementation": {"description": "Kinetic's FHIR read API", "url": base_url},
            "fhirVersion": FHIR_VERSION, "format": ["json"],
            "rest": [{"mode": "server", "resource": [resource(k) for k in sorted(MODELS)]}]}
    return CapabilityStatement.model_validate(body).model_dump(mode="json", exclude_none=True)


# -- building blocks -------------------------------------------------------------------------

@dataclass(frozen=True)
class _Ctx:
    time: str
    source: str | None
    tenant: str | None
    current: Lookup

    def stored(self, kind: str, rid: str) -> Body | None:
        body = self.current(kind, rid)
        return copy.deepcopy(body) if body is not None else None  # never edit the caller's

    def build(self, kind: str, rid: str, patient_id: str | None, body: Body) -> FhirResource:
        full = {**body, "resourceType": kind, "id": rid,
                "meta": {"lastUpdated": self.time, "source": self.source}}
        valid = MODELS[kind].model_validate(full)
        return FhirResource(kind, rid, patient_id,
                            valid.model_dump(mode="json", exclude_none=True))

    def ruleset(self, version: int) -> list[str] | None:
        # A rule-set version is numbered per organization.
        return [f"urn:kinetic:ruleset:{self.tenant}:{version}"] if self.tenant else None

    def org(self) -> Body | None:
        # The tenant has no Organization resource here; a logical reference still names it.
        return {"type": "Organization", "identifier": _identifier("organization", self.tenant)
                } if self.tenant else None


def _iso(value: date | datetime | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


def _child(parent: Any, key: str) -> str:
    return str(uuid.uuid5(uuid.UUID(str(parent)), key))


def _ref(kind: str, rid: Any) -> Body:
    return {"reference": f"{kind}/{rid}"}


def _identifier(kind: str, value: Any) -> Body:
    return {"system": f"urn:kinetic:{kind}", "value": str(value)}


def _code(kind: str, code: str, text: str | None = None) -> Body:
    return {"coding": [{"system": f"urn:kinetic:{kind}", "code": code}], "text": text}


def _hl7(system: str, code: str) -> Body:
    return {"coding": [{"system": HL7 + system, "code": code}]}


def _episode(episode_id: Any) -> list[Body]:
    # Observation, Condition, Goal, CarePlan and ClinicalImpression have no episode element
    # in R4B; the core workflow extension carries the link instead.
    return [{"url": EPISODE_EXT, "valueReference": _ref("EpisodeOfCare", episode_id)}]


def _money(minor: int, currency: str) -> Body:
    return {"value": Decimal(minor).scaleb(-get_currency_precision(currency)),
            "currency": currency}


def _minor(money: Body) -> int:
    exponent = get_currency_precision(money["currency"])
    return int(Decimal(str(money["value"])).scaleb(exponent))


def _append(items: list[Body], item: Body) -> list[Body]:
    return items if item in items else [*items, item]


# -- booking: who, where, when ---------------------------------------------------------------

def _patient(ctx: _Ctx, p: booking.PatientRegistered) -> list[FhirResource]:
    pid = str(p.patient_id)
    return [ctx.build("Patient", pid, pid, {
        "identifier": [_identifier("patient", pid)], "active": True,
        "birthDate": str(p.birth_year),  # a year is a valid FHIR date; the event has no more
        "managingOrganization": ctx.org()})]


def _contact_details(ctx: _Ctx, p: disclosed.ContactDetailsDisclosed) -> list[FhirResource]:
    pid = str(p.patient_id)
    body = ctx.stored("Patient", pid) or {
        "identifier": [_identifier("patient", pid)], "active": True,
        "managingOrganization": ctx.org()}
    telecom = [{"system": system, "value": value, "use": "home"}
               for system, value in (("phone", p.phone), ("email", p.email)) if value]
    body.update({
        "name": [{"use": "official", "family": p.family_name, "given": [p.given_name]}],
        "telecom": telecom or None, "birthDate": _iso(p.date_of_birth),
        "communication": [{"language": {"coding": [
            {"system": "urn:ietf:bcp:47", "code": p.preferred_language}]},
            "preferred": True}] if p.preferred_language else None})
    return [ctx.build("Patient", pid, pid, body)]


def _therapist(ctx: _Ctx, p: booking.TherapistRegistered) -> list[FhirResource]:
    tid = str(p.therapist_id)
    return [ctx.build("Practitioner", tid, None, {
        "identifier": [_identifier("therapist", tid)], "active": True,
        "name": [{"text": p.display_name}] if p.display_name else None})]


def _location(ctx: _Ctx, p: booking.LocationRegistered) -> list[FhirResource]:
    lid = str(p.location_id)
    return [ctx.build("Location", lid, None, {
        "identifier": [_identifier("location", lid)], "status": "active", "mode": "instance",
        "name": p.name, "managingOrganization": ctx.org(),
        "extension": [{"url": TIMEZONE_EXT, "valueCode": p.timezone}]})]


def _location_hours(ctx: _Ctx, p: booking.LocationHoursSet) -> list[FhirResource]:
    lid = str(p.location_id)
    body = ctx.stored("Location", lid)
    if body is None:
        return []  # hours without the registration make no Location (it would lack a name)
    # FHIR times stop at 23:59:59; a stretch to midnight ("24:00") ends there.
    body["hoursOfOperation"] = [
        {"daysOfWeek": [day], "allDay": True} if (h.opens, h.closes) == ("00:00", "24:00") else
        {"daysOfWeek": [day], "openingTime": f"{h.opens}:00",
         "closingTime": "23:59:59" if h.closes == "24:00" else f"{h.closes}:00"}
        for day, spans in p.opening_hours.items() for h in spans]
    return [ctx.build("Location", lid, None, body)]


def _episode_opened(ctx: _Ctx, p: booking.EpisodeOpened) -> list[FhirResource]:
    eid, pid = str(p.episode_id), str(p.patient_id)
    complaint = _child(eid, "complaint")
    return [
        ctx.build("Condition", complaint, pid, {
            "clinicalStatus": _hl7("condition-clinical", "active"),
            "verificationStatus": _hl7("condition-ver-status", "provisional"),
            "category": [_hl7("condition-category", "problem-list-item")],
            "code": {"coding": [SNOMED_PAIN]},  # symptom_site is "where it hurts"
            "bodySite": [_code("symptom-site", p.symptom_site)],
            "subject": _ref("Patient", pid), "recordedDate": _iso(p.opened_at),
            "extension": _episode(eid)}),
        ctx.build("EpisodeOfCare", eid, pid, {
            "identifier": [_identifier("episode", eid)], "status": "active",
            "patient": _ref("Patient", pid), "managingOrganization": ctx.org(),
            "period": {"start": _iso(p.opened_at)},
            "diagnosis": [{"condition": _ref("Condition", complaint),
                           "role": _hl7("diagnosis-role", "CC")}]})]


def _episode_finished(ctx: _Ctx, episode_id: Any, patient_id: Any, at: datetime
                      ) -> FhirResource:
    eid, pid = str(episode_id), str(patient_id)
    body = ctx.stored("EpisodeOfCare", eid) or {
        "identifier": [_identifier("episode", eid)], "patient": _ref("Patient", pid),
        "managingOrganization": ctx.org()}
    if body.get("status") != "finished":  # booking's close and plan's discharge both end it
        body["status"] = "finished"
        body["period"] = {**body.get("period", {}), "end": _iso(at)}
    return ctx.build("EpisodeOfCare", eid, pid, body)


def _episode_closed(ctx: _Ctx, p: booking.EpisodeClosed) -> list[FhirResource]:
    return [_episode_finished(ctx, p.episode_id, p.patient_id, p.closed_at)]


_APPOINTMENT_STATUS: dict[type, str] = {
    booking.AppointmentBooked: "booked", booking.AppointmentRescheduled: "booked",
    booking.AppointmentCancelled: "cancelled", booking.AppointmentCheckedIn: "arrived",
    booking.AppointmentCompleted: "fulfilled", booking.AppointmentNoShow: "noshow"}


# The slot's end is unknown: FHIR's way to say so where R4 requires the element (app-3: a
# booked, arrived, fulfilled or noshow appointment has a start and an end).
END_UNKNOWN = {"extension": [{
    "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}


def _slot(body: Body, p: Any) -> None:
    """Start and end, always both (R4's app-2, app-3). Only booked and rescheduled carry the
    end; the other events keep the one stored for the same start. Without it (a partner
    granted only outcomes, or the booking came before the partner was registered) the end
    is marked unknown rather than guessed."""
    start = _iso(p.starts_at)
    if (ends_at := getattr(p, "ends_at", None)) is not None:
        end: str | None = _iso(ends_at)
    else:
        stored = (body.get("start"), body.get("end"))
        end = stored[1] if stored[0] is not None and _same_instant(stored[0], start) else None
    body["start"] = start
    if end is not None:
        body["end"] = end
        body.pop("_end", None)
    else:
        body.pop("end", None)
        body["_end"] = copy.deepcopy(END_UNKNOWN)


def _same_instant(a: str, b: str) -> bool:
    return datetime.fromisoformat(a.replace("Z", "+00:00")) == datetime.fromisoformat(
        b.replace("Z", "+00:00"))


def _appointment_body(ctx: _Ctx, p: Any, status: str) -> Body:
    aid = str(p.appointment_id)
    body = ctx.stored("Appointment", aid) or {"identifier": [_identifier("appointment", aid)]}
    body.update(status=status, participant=[
        {"actor": _ref(kind, rid), "required": "required", "status": "accepted"}
        for kind, rid in (("Patient", p.patient_id), ("Practitioner", p.therapist_id),
                          ("Location", p.location_id))])
    _slot(body, p)
    if (kind := getattr(p, "appointment_type", None)) is not None:
        body["appointmentType"] = _code("appointment-type", kind)
    if (episode_id := getattr(p, "episode_id", None)) is not None:
        body["supportingInformation"] = [_ref("EpisodeOfCare", episode_id)]
    return body


def _appointment(ctx: _Ctx, p: Any) -> list[FhirResource]:
    aid, pid = str(p.appointment_id), str(p.patient_id)
    body = _appointment_body(ctx, p, _APPOINTMENT_STATUS[type(p)])
    if isinstance(p, booking.AppointmentBooked):
        body["created"] = _iso(p.booked_at)
    if isinstance(p, booking.AppointmentCancelled):
        body["cancelationReason"] = _code("cancellation", "late" if p.late else "in_time")
    out = [ctx.build("Appointment", aid, pid, body)]
    if isinstance(p, booking.AppointmentCompleted):
        out.append(_encounter(ctx, p, body))
    return out


def _encounter(ctx: _Ctx, p: booking.AppointmentCompleted, appointment: Body) -> FhirResource:
    aid, pid = str(p.appointment_id), str(p.patient_id)
    episode_id = p.episode_id or next(
        (r["reference"].split("/")[1] for r in appointment.get("supportingInformation", [])),
        None)
    return ctx.build("Encounter", aid, pid, {
        "identifier": [_identifier("appointment", aid)], "status": "finished",
        "class": {"system": HL7 + "v3-ActCode", "code": "AMB", "display": "ambulatory"},
        "type": [_code("appointment-type", p.appointment_type)],
        "subject": _ref("Patient", pid), "appointment": [_ref("Appointment", aid)],
        "episodeOfCare": [_ref("EpisodeOfCare", episode_id)] if episode_id else None,
        "participant": [{"individual": _ref("Practitioner", p.therapist_id)}],
        "location": [{"location": _ref("Location", p.location_id)}],
        "serviceProvider": ctx.org(),
        # The slot's end when known: `at` is when the desk recorded it, which may be later.
        "period": {"start": _iso(p.starts_at), "end": appointment.get("end") or _iso(p.at)}})


def _appointment_reversed(ctx: _Ctx, p: booking.AppointmentReversed) -> list[FhirResource]:
    # fee_waived: the session stands as recorded, only its charge goes (invoice.credited).
    # A reversed cancellation stays cancelled: booking allows nothing more on it.
    if p.reason_code == "fee_waived" or p.reversed_outcome == "cancelled":
        return []
    # A completion or no-show recorded in error did not happen, and booking treats a reversed
    # appointment as final: "booked" would leave it pending forever, so it is cancelled.
    aid, pid = str(p.appointment_id), str(p.patient_id)
    body = _appointment_body(ctx, p, "cancelled")
    body["cancelationReason"] = _code("cancellation", "recorded_in_error")
    out = [ctx.build("Appointment", aid, pid, body)]
    encounter = ctx.stored("Encounter", aid)
    if p.reversed_outcome == "completed" and encounter is not None:
        encounter["status"] = "entered-in-error"
        out.append(ctx.build("Encounter", aid, pid, encounter))
    return out


# -- assessment: what was found --------------------------------------------------------------

def _score(value: float) -> Body:
    return {"value": value, "unit": "score", "system": UCUM, "code": "{score}"}


def _measure(ctx: _Ctx, evaluation_id: Any, episode_id: Any, patient_id: Any, measure: str,
             version: str, scores: Mapping[str, float], at: datetime) -> FhirResource:
    # Events carry scores, never the item answers, so a PROM is an Observation (category
    # survey) and not a QuestionnaireResponse. One Observation per measure; a measure scored
    # per subscale (KOOS, SPADI) has a component per score instead of a value.
    oid = _child(evaluation_id, f"measure:{measure}")
    single = len(scores) == 1 and measure in scores
    return ctx.build("Observation", oid, str(patient_id), {
        "status": "final", "category": [_hl7("observation-category", "survey")],
        "code": _code("measure", measure), "method": {"text": f"{measure} version {version}"},
        "subject": _ref("Patient", patient_id), "effectiveDateTime": _iso(at),
        "valueQuantity": _score(scores[measure]) if single else None,
        "component": None if single else [
            {"code": _code("measure", key), "valueQuantity": _score(value)}
            for key, value in scores.items()],
        "extension": _episode(episode_id)})


def _finding_id(evaluation_id: Any, f: assessment.FindingIndex) -> str:
    return _child(evaluation_id, f"finding:{f.finding_id}:{f.index}")


def _finding(ctx: _Ctx, p: Any, f: assessment.FindingIndex) -> FhirResource:
    quantity = {"value": f.value, "unit": f.unit}
    if f.unit in UCUM_UNITS:
        quantity |= {"system": UCUM, "code": UCUM_UNITS[f.unit]}
    verdict = None if f.passed is None else [
        _hl7("v3-ObservationInterpretation", "N" if f.passed else "A")]
    return ctx.build("Observation", _finding_id(p.evaluation_id, f), str(p.patient_id), {
        "status": "final", "category": [_hl7("observation-category", "exam")],
        "code": {"coding": [{"system": "urn:kinetic:finding", "code": f.finding_id}],
                 "text": f"{f.finding_id} {f.index}"},
        "method": _code("finding-index", f.index), "valueQuantity": quantity,
        "interpretation": verdict, "subject": _ref("Patient", p.patient_id),
        "effectiveDateTime": _iso(p.completed_at), "extension": _episode(p.episode_id)})


# A goal's text withheld from this partner (domain/disclosure.py: it may not have the
# patient's free text): R4 requires a description, so it is there, masked for privacy.
GOAL_MASKED = {"extension": [{
    "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "masked"}]}


def _goal_description(g: assessment.Goal) -> Body:
    if WITHHELD in (g.activity, g.level):
        return copy.deepcopy(GOAL_MASKED)
    return {"text": f"{g.activity}: {g.level}"}


def _evaluation(ctx: _Ctx, p: assessment.EvaluationCompleted) -> list[FhirResource]:
    ev, pid, at = str(p.evaluation_id), str(p.patient_id), _iso(p.completed_at)
    findings = [_finding(ctx, p, f) for f in p.findings]
    # outcome.measured carries when each measure was taken; do not overwrite it with this
    # event's completion time whichever of the two arrives first.
    measures = [_measure(ctx, ev, p.episode_id, pid, m.measure, m.version, m.scores,
                         p.completed_at) for m in p.baseline_measures
                if ctx.stored("Observation", _child(ev, f"measure:{m.measure}")) is None]
    common = {"clinicalStatus": _hl7("condition-clinical", "active"),
              "category": [_hl7("condition-category", "problem-list-item")],
              "subject": _ref("Patient", pid), "recordedDate": at,
              "recorder": _ref("Practitioner", p.therapist_id) if p.therapist_id else None,
              "extension": _episode(p.episode_id)}
    diagnosis = ({"coding": [{"system": ICD10, "code": p.working_diagnosis_icd10}]}
                 if p.working_diagnosis_icd10 else {"coding": [SNOMED_PAIN]})
    sites = [ctx.build("Condition", _child(ev, f"site:{site}"), pid, {
        **common, "verificationStatus": _hl7("condition-ver-status", "provisional"),
        "code": diagnosis, "bodySite": [_code("symptom-site", site)]})
        for site in p.symptom_sites]
    drivers = []
    for d in p.drivers:
        evidence = [_ref("Observation", _finding_id(ev, f)) for f in p.findings
                    if f.finding_id in d.finding_ids]
        drivers.append(ctx.build("Condition", _child(ev, f"driver:{d.code}"), pid, {
            **common, "code": _code("driver", d.code),
            "verificationStatus": _hl7("condition-ver-status",
                                       "confirmed" if evidence else "provisional"),
            "evidence": [{"detail": evidence}] if evidence else None}))
    goals = [ctx.build("Goal", _child(ev, f"goal:{i}"), pid, {
        "lifecycleStatus": "active", "description": _goal_description(g),
        "subject": _ref("Patient", pid), "expressedBy": _ref("Patient", pid),
        "target": [{"dueDate": _iso(g.target_date)}] if g.target_date else None,
        "addresses": [_ref("Condition", s.id) for s in sites],
        "extension": _episode(p.episode_id)}) for i, g in enumerate(p.goals)]
    impression = ctx.build("ClinicalImpression", ev, pid, {
        "identifier": [_identifier("evaluation", ev)], "status": "completed",
        "code": _code("evaluation", "initial"), "subject": _ref("Patient", pid),
        "effectiveDateTime": at, "date": at,
        "assessor": _ref("Practitioner", p.therapist_id) if p.therapist_id else None,
        "problem": [_ref("Condition", s.id) for s in sites],
        "finding": [{"itemReference": _ref("Condition", c.id),
                     "basis": ", ".join(d.finding_ids) or None}
                    for c, d in zip(drivers, p.drivers, strict=True)],
        "supportingInfo": [_ref("Observation", _child(ev, f"measure:{m.measure}"))
                           for m in p.baseline_measures]
                          + [_ref("Observation", f.id) for f in findings],
        "prognosisCodeableConcept": [_code("episode-type", p.episode_type)],
        "summary": f"Episode type {p.episode_type}; driver: "
                   + ", ".join(d.code for d in p.drivers),
        "protocol": ctx.ruleset(p.ruleset_version),
        "extension": _episode(p.episode_id)})
    out = [*findings, *measures, *sites, *drivers, *goals, impression]
    episode = ctx.stored("EpisodeOfCare", str(p.episode_id))
    if episode is not None:
        episode["type"] = [_code("episode-type", p.episode_type)]
        out.append(ctx.build("EpisodeOfCare", str(p.episode_id), pid, episode))
    return out


def _clinical_notes(ctx: _Ctx, p: disclosed.ClinicalNotesDisclosed) -> list[FhirResource]:
    """The evaluation's impression gains its free text; without the impression (the partner
    is not granted the evaluation) there is nothing to annotate."""
    ev = str(p.evaluation_id)
    body = ctx.stored("ClinicalImpression", ev)
    if body is None:
        return []
    notes = [{"text": f"{d.code}: {d.rationale}"} for d in p.drivers if d.rationale]
    if p.explanation:
        notes.append({"text": p.explanation})
    notes += _addenda(body)  # disclosed again (a renewed consent): its addenda still stand
    body.update({"description": p.working_diagnosis or None, "note": notes or None})
    return [ctx.build("ClinicalImpression", ev, str(p.patient_id), body)]


ADDENDUM_NOTE = "addendum-"  # the id of an addendum's note: ``addendum-<addendum id>``


def _addenda(body: Body) -> list[Body]:
    return [n for n in body.get("note") or [] if str(n.get("id", "")).startswith(ADDENDUM_NOTE)]


def _addendum(ctx: _Ctx, p: disclosed.AddendumDisclosed) -> list[FhirResource]:
    """An addendum is one more note of the impression it corrects, dated, with its reason;
    the same addendum disclosed again replaces its own note."""
    ev = str(p.evaluation_id)
    body = ctx.stored("ClinicalImpression", ev)
    if body is None:
        return []
    note_id = f"{ADDENDUM_NOTE}{p.addendum_id}"
    notes = [n for n in body.get("note") or [] if n.get("id") != note_id]
    notes.append({"id": note_id, "time": _iso(p.added_at),
                  "text": f"Addendum ({p.reason}): {p.text}"})
    body["note"] = notes
    return [ctx.build("ClinicalImpression", ev, str(p.patient_id), body)]


def _outcome(ctx: _Ctx, p: assessment.OutcomeMeasured) -> list[FhirResource]:
    return [_measure(ctx, p.evaluation_id, p.episode_id, p.patient_id, p.measure, p.version,
                     p.scores, p.measured_at)]


def _reassessment(ctx: _Ctx, p: assessment.ReassessmentCompleted) -> list[FhirResource]:
    ev, pid, at = str(p.evaluation_id), str(p.patient_id), _iso(p.completed_at)
    findings = [_finding(ctx, p, f) for f in p.findings]
    changes = []
    for c in p.changes:
        verdict = ("B" if c.passed_mcid else "W" if c.deteriorated else None)  # better/worse
        changes.append(ctx.build("Observation", _child(ev, f"change:{c.measure}:{c.score}"),
                                 pid, {
            "status": "final", "category": [_hl7("observation-category", "survey")],
            "code": _code("measure-change", c.score, f"{c.score} change from baseline"),
            "subject": _ref("Patient", pid), "effectiveDateTime": at,
            "valueQuantity": _score(c.improvement),  # positive = better, whatever direction
            "interpretation": [_hl7("v3-ObservationInterpretation", verdict)] if verdict else None,
            "component": [
                *({"code": _code("measure-change", key), "valueQuantity": _score(value)}
                  for key, value in (("baseline", c.baseline), ("current", c.current),
                                     ("mcid", c.mcid))),
                {"code": _code("measure-change", "possibly_noise"),
                 "valueBoolean": c.possibly_noise}],
            "derivedFrom": [_ref("Observation", _child(e, f"measure:{c.measure}"))
                            for e in (ev, p.baseline_evaluation_id)],
            "extension": _episode(p.episode_id)}))
    measured = sorted({c.measure for c in p.changes})
    impression = ctx.build("ClinicalImpression", ev, pid, {
        "identifier": [_identifier("evaluation", ev)], "status": "completed",
        "code": _code("evaluation", "reassessment"), "subject": _ref("Patient", pid),
        "effectiveDateTime": at, "date": at,
        "previous": _ref("ClinicalImpression", p.baseline_evaluation_id),
        "supportingInfo": [_ref("Observation", _child(ev, f"measure:{m}")) for m in measured]
                          + [_ref("Observation", r.id) for r in (*changes, *findings)],
        "summary": f"{sum(c.passed_mcid for c in p.changes)} of {len(p.changes)} scores "
                   "improved by at least their MCID",
        "protocol": ctx.ruleset(p.ruleset_version),
        "extension": _episode(p.episode_id)})
    return [*findings, *changes, impression]


# -- plan: the plan of care and its milestones -----------------------------------------------

def _is_activity(activity: Body, kind: str, code: str | None = None) -> bool:
    coding = activity.get("detail", {}).get("code", {}).get("coding", [{}])[0]
    return coding.get("system") == f"urn:kinetic:{kind}" and code in (None, coding.get("code"))


def _stage(body: Body, stage: str) -> Body:
    """The plan's activity for a stage, added (in progress) the first time it is named."""
    for activity in body.setdefault("activity", []):
        if _is_activity(activity, "stage", stage):
            return activity
    activity = {"detail": {"code": _code("stage", stage), "status": "in-progress"}}
    body["activity"].append(activity)
    return activity


def _care_plan(ctx: _Ctx, p: plan.PlanCreated | plan.PlanRevised) -> list[FhirResource]:
    # A revision replaces the plan's course; goals, stages and sessions so far carry over
    # because plan's public events do not repeat them.
    pid, patient = str(p.plan_id), str(p.patient_id)
    prior = ctx.stored("CarePlan", pid) or {}
    at = _iso(p.created_at if isinstance(p, plan.PlanCreated) else p.revised_at)
    per_week = Fraction(p.sessions_per_week).limit_denominator(7)  # 0.8/wk = 4 per 5 weeks
    sessions = next((a for a in prior.get("activity", []) if _is_activity(a, "plan-activity")),
                    {})
    sessions["detail"] = {
        "kind": "Appointment", "code": _code("plan-activity", "sessions"),
        "status": sessions.get("detail", {}).get("status", "in-progress"),
        "location": _ref("Location", p.location_id),
        "scheduledTiming": {"repeat": {
            "count": p.expected_sessions, "frequency": per_week.numerator,
            "period": per_week.denominator, "periodUnit": "wk",
            "boundsPeriod": {"start": prior.get("period", {}).get("start", at),
                             "end": _iso(p.target_date)}}}}
    stages = [a for a in prior.get("activity", []) if _is_activity(a, "stage")]
    return [ctx.build("CarePlan", pid, patient, {
        "identifier": [_identifier("plan", pid)], "status": prior.get("status", "active"),
        "intent": "plan", "subject": _ref("Patient", patient),
        "created": prior.get("created", at),
        "period": {"start": prior.get("period", {}).get("start", at),
                   "end": _iso(p.target_date)},
        "addresses": [_ref("Condition", _child(p.episode_id, "complaint"))],
        "goal": prior.get("goal"), "activity": [sessions, *stages],
        "extension": _episode(p.episode_id)})]


def _milestone(ctx: _Ctx, p: plan.MilestoneMet | plan.MilestoneOverdue) -> list[FhirResource]:
    pid, patient = str(p.plan_id), str(p.patient_id)
    gid = _child(pid, f"milestone:{p.milestone_id}")
    goal = ctx.stored("Goal", gid) or {
        "lifecycleStatus": "active", "subject": _ref("Patient", patient),
        "description": _code("milestone", p.milestone_id, p.milestone_id),
        "category": [_code("stage", p.stage)],
        "addresses": [_ref("Condition", _child(p.episode_id, "complaint"))],
        "extension": _episode(p.episode_id)}
    if p.target_date is not None:
        goal["target"] = [{"dueDate": _iso(p.target_date)}]
    achieved = goal.get("lifecycleStatus") == "completed"
    if isinstance(p, plan.MilestoneMet):
        goal |= {"lifecycleStatus": "completed", "statusDate": _iso(p.met_at.date()),
                 "achievementStatus": _hl7("goal-achievement", "achieved")}
    elif not achieved:  # an overdue notice never undoes a milestone already met
        goal |= {"statusDate": _iso(p.overdue_at.date()),
                 "achievementStatus": _hl7("goal-achievement", "not-achieved")}
    out = [ctx.build("Goal", gid, patient, goal)]
    care_plan = ctx.stored("CarePlan", pid)
    if care_plan is not None:
        care_plan["goal"] = _append(care_plan.get("goal", []), _ref("Goal", gid))
        detail = _stage(care_plan, p.stage)["detail"]
        detail["goal"] = _append(detail.get("goal", []), _ref("Goal", gid))
        out.append(ctx.build("CarePlan", pid, patient, care_plan))
    return out


def _stage_advanced(ctx: _Ctx, p: plan.StageAdvanced) -> list[FhirResource]:
    care_plan = ctx.stored("CarePlan", str(p.plan_id))
    if care_plan is None:
        return []
    _stage(care_plan, p.from_stage)["detail"]["status"] = "completed"
    _stage(care_plan, p.to_stage)["detail"]["status"] = "in-progress"  # also after a step back
    return [ctx.build("CarePlan", str(p.plan_id), str(p.patient_id), care_plan)]


def _session_logged(ctx: _Ctx, p: plan.SessionLogged) -> list[FhirResource]:
    care_plan = ctx.stored("CarePlan", str(p.plan_id))
    if care_plan is None:
        return []
    for activity in care_plan.get("activity", []):
        if _is_activity(activity, "plan-activity", "sessions"):
            activity["outcomeReference"] = _append(activity.get("outcomeReference", []),
                                                   _ref("Encounter", p.appointment_id))
    return [ctx.build("CarePlan", str(p.plan_id), str(p.patient_id), care_plan)]


def _discharged(ctx: _Ctx, p: plan.EpisodeDischarged) -> list[FhirResource]:
    out = [_episode_finished(ctx, p.episode_id, p.patient_id, p.discharged_at)]
    # The event names the episode, not the plan: plan keeps one plan per episode with the id
    # uuid5(episode_id, "plan") (plan.application.plans.plan_id_for).
    pid = _child(p.episode_id, "plan")
    care_plan = ctx.stored("CarePlan", pid)
    if care_plan is not None:
        care_plan["status"] = "completed"
        open_end = "stopped" if p.basis == "override" else "completed"
        for activity in care_plan.get("activity", []):
            if activity["detail"]["status"] in ("not-started", "scheduled", "in-progress"):
                activity["detail"]["status"] = open_end
        out.append(ctx.build("CarePlan", pid, str(p.patient_id), care_plan))
    return out


# -- billing: the patient's invoices ---------------------------------------------------------

def _invoice(ctx: _Ctx, p: billing.InvoiceIssued) -> list[FhirResource]:
    iid, pid = str(p.invoice_id), str(p.patient_id)
    net = p.total - p.tax
    return [ctx.build("Invoice", iid, pid, {
        "identifier": [_identifier("invoice", iid),
                       {**_identifier("invoice-number", p.number), "assigner": ctx.org()}],
        "status": "issued", "type": _code("charge-kind", p.kind),
        "subject": _ref("Patient", pid), "recipient": _ref("Patient", pid),
        "date": _iso(p.issued_at), "issuer": ctx.org(),
        "lineItem": [{"sequence": 1, "chargeItemCodeableConcept": _code("charge-kind", p.kind),
                      "priceComponent": [
                          {"type": "base", "amount": _money(net, p.currency)},
                          {"type": "tax", "amount": _money(p.tax, p.currency)}]}],
        "totalNet": _money(net, p.currency), "totalGross": _money(p.total, p.currency),
        "paymentTerms": f"Due on {_iso(p.due_on)}"})]


def _deduct(components: list[Body], note_id: Any, minor: int, reason: str, currency: str
            ) -> None:
    # One deduction per credit note or refund, so a redelivered event never counts twice.
    mark = [{"url": CREDIT_NOTE_EXT, "valueIdentifier": _identifier("credit-note", note_id)}]
    if not any(c.get("extension") == mark for c in components):
        components.append({"extension": mark, "type": "deduction",
                           "code": _code("credit-reason", reason),
                           "amount": _money(minor, currency)})


def _settled(ctx: _Ctx, p: Any) -> list[FhirResource]:
    """Payment, credit note or refund: the invoice's status follows what is left to pay."""
    iid = str(p.invoice_id)
    body = ctx.stored("Invoice", iid)
    if body is None:
        return []  # the total is only known from invoice.issued
    components = body["lineItem"][0]["priceComponent"]
    if isinstance(p, billing.InvoiceCredited):
        _deduct(components, p.credit_note_id, p.amount, p.reason_code, p.currency)
    elif isinstance(p, billing.RefundIssued) and p.credited:
        _deduct(components, p.refund_id, p.credited, "refund", p.currency)
    deducted = sum(_minor(c["amount"]) for c in components if c["type"] == "deduction")
    total = _minor(body["totalGross"])
    if total and deducted >= total:  # credited in full: nothing was owed after all
        body |= {"status": "cancelled", "cancelledReason": "credited in full"}
    else:
        body["status"] = "balanced" if p.outstanding <= 0 else "issued"
        body.pop("cancelledReason", None)
    return [ctx.build("Invoice", iid, str(p.patient_id), body)]


_HANDLERS: dict[type, Callable[[_Ctx, Any], list[FhirResource]]] = {
    booking.PatientRegistered: _patient, booking.TherapistRegistered: _therapist,
    booking.LocationRegistered: _location, booking.LocationHoursSet: _location_hours,
    booking.EpisodeOpened: _episode_opened, booking.EpisodeClosed: _episode_closed,
    **{kind: _appointment for kind in _APPOINTMENT_STATUS},
    booking.AppointmentReversed: _appointment_reversed,
    assessment.EvaluationCompleted: _evaluation, assessment.OutcomeMeasured: _outcome,
    assessment.ReassessmentCompleted: _reassessment,
    plan.PlanCreated: _care_plan, plan.PlanRevised: _care_plan,
    plan.MilestoneMet: _milestone, plan.MilestoneOverdue: _milestone,
    plan.StageAdvanced: _stage_advanced, plan.SessionLogged: _session_logged,
    plan.EpisodeDischarged: _discharged,
    billing.InvoiceIssued: _invoice, billing.PaymentRecorded: _settled,
    billing.InvoiceCredited: _settled, billing.RefundIssued: _settled,
    disclosed.ContactDetailsDisclosed: _contact_details,
    disclosed.ClinicalNotesDisclosed: _clinical_notes,
    disclosed.AddendumDisclosed: _addendum,
}
