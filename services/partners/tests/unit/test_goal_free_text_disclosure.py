"""An evaluation's goals are the patient's own words, carried by a public event: a partner
receives that text, on its feed and in its FHIR Goals, only when it may have clinical free
text (granted the class and named in the patient's data-sharing consent). Pure: the partner's
copy of the event and its projection."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import jsonschema_rs

from kinetic_contracts import CloudEvent
from kinetic_contracts.assessment.v1.events import EvaluationCompleted
from kinetic_contracts.registry import schema_uri
from partners.domain import disclosure, partner
from partners.domain.fhir import project

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SCHEMAS = Path(__file__).resolve().parents[4] / "contracts" / "schemas"
COMPLETED = EvaluationCompleted.event_type
WORDS = ("carry my daughter Emma upstairs", "without stopping, by her birthday")


def completed() -> CloudEvent:
    patient, evaluation = uuid.uuid4(), uuid.uuid4()
    data = EvaluationCompleted(
        evaluation_id=evaluation, episode_id=uuid.uuid4(), patient_id=patient,
        location_id=uuid.uuid4(), symptom_sites=["knee_anterior_right"],
        drivers=[{"code": "hip_abductor_weakness"}], episode_type="acute_clear_driver",
        goals=[{"activity": WORDS[0], "level": WORDS[1], "target_date": "2027-01-15"},
               {"activity": "running", "level": "45 min"}],
        baseline_measures=[], findings=[], completed_at=NOW)
    return CloudEvent(id=uuid.uuid4(), source="/kinetic/assessment", type=COMPLETED,
                      subject=str(evaluation), time=NOW, dataschema=schema_uri(COMPLETED),
                      data=data.model_dump(mode="json"), tenantid=uuid.uuid4(), sequence=3)


def free_text_of(grant: partner.Grant, consents: dict[str, bool]) -> bool:
    return partner.may_disclose(grant, consents, "acme-ehr", "clinical_free_text")


def test_given_no_free_text_grant_or_consent_when_goals_are_delivered_then_their_text_is_withheld(
        ) -> None:
    event = completed()
    identifiers = partner.Grant(event_types=["kinetic.assessment.*"])
    richer = partner.Grant(event_types=["kinetic.assessment.*"],
                           data_classes=["identifiers", "clinical_free_text"])
    for grant, consents in ((identifiers, {"acme-ehr": True}),  # consent, no grant
                            (richer, {}),  # grant, no consent recorded
                            (richer, {"other-crm": True})):  # consent names another partner
        copy = disclosure.as_granted(event, free_text_of(grant, consents))
        assert not any(w in json.dumps(copy.data) for w in WORDS), (grant, consents)
        assert [(g["activity"], g["level"], g.get("target_date")) for g in copy.data["goals"]] \
            == [(disclosure.WITHHELD, disclosure.WITHHELD, "2027-01-15"),
                (disclosure.WITHHELD, disclosure.WITHHELD, None)]
        assert copy.id == event.id  # the partner still de-duplicates on the event's id


def test_given_free_text_grant_and_consent_when_goals_are_delivered_then_they_are_as_written(
        ) -> None:
    event = completed()
    grant = partner.Grant(event_types=["kinetic.assessment.*"],
                          data_classes=["identifiers", "clinical_free_text"])
    assert disclosure.as_granted(event, free_text_of(grant, {"acme-ehr": True})) == event


def test_a_withheld_copy_is_still_valid_against_the_published_schema() -> None:
    schema = json.loads((SCHEMAS / f"{COMPLETED}.json").read_text())
    copy = disclosure.as_granted(completed(), free_text=False)
    jsonschema_rs.validator_for(schema).validate(copy.data)
    EvaluationCompleted.model_validate(copy.data)


def test_events_without_free_text_are_delivered_as_they_are() -> None:
    event = completed().model_copy(update={"type": "kinetic.assessment.outcome.measured.v1"})
    assert disclosure.as_granted(event, free_text=False) is event


def goals(event: CloudEvent) -> list[dict]:
    return [r.body for r in project(event.model_dump(mode="json"), lambda *_: None)
            if r.resource_type == "Goal"]


def test_a_goal_withheld_from_the_partner_is_a_masked_description_in_its_fhir_goal() -> None:
    event = completed()
    withheld = goals(disclosure.as_granted(event, free_text=False))
    assert [g["description"] for g in withheld] == [{"extension": [{
        "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
        "valueCode": "masked"}]}] * 2
    assert withheld[0]["target"] == [{"dueDate": "2027-01-15"}]
    assert not any(w in json.dumps(withheld) for w in WORDS + (disclosure.WITHHELD,))


def test_a_goal_the_partner_may_read_keeps_the_patients_words_in_its_fhir_goal() -> None:
    shown = goals(disclosure.as_granted(completed(), free_text=True))
    assert [g["description"] for g in shown] == [{"text": f"{WORDS[0]}: {WORDS[1]}"},
                                                 {"text": "running: 45 min"}]
