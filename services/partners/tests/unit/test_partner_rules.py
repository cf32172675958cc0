"""The partners service's rules without I/O: grants by pattern, HTTPS-only webhooks,
consent, and the retry schedule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from kinetic_contracts import CloudEvent
from kinetic_contracts.registry import EVENT_MODELS, GRANTABLE_EVENT_TYPES
from partners.adapters.delivery import MAX_RETRY, backoff, signed_headers
from partners.domain import disclosure, partner

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def register(url: str = "https://crm.example/hook", *patterns: str,
             loopback: bool = False) -> list[partner.PartnerRegistered]:
    return list(partner.decide(partner.RegisterPartner(
        partner_id=uuid.uuid4(), name="acme-crm", webhook_url=url,
        grant=partner.Grant(event_types=list(patterns or ["kinetic.booking.*"])),
        known_event_types=frozenset(EVENT_MODELS), allow_loopback_http=loopback, now=NOW),
        None))


def test_a_grant_covers_the_event_types_its_patterns_match() -> None:
    grant = partner.Grant(event_types=["kinetic.booking.appointment.*",
                                       "kinetic.billing.invoice.issued.v1"])
    assert grant.allows("kinetic.booking.appointment.completed.v1")
    assert grant.allows("kinetic.billing.invoice.issued.v1")
    assert not grant.allows("kinetic.billing.payment.recorded.v1")
    assert not grant.allows("kinetic.booking.patient.registered.v1")
    assert grant.data_classes == ["identifiers"]


def test_a_pattern_that_matches_no_published_event_is_refused() -> None:
    with pytest.raises(partner.UnknownEventTypeError):
        register("https://crm.example/hook", "kinetic.boking.*")


@pytest.mark.parametrize("url", ["http://crm.example/hook", "ftp://crm.example",
                                 "https://", "http://127.0.0.1:9/hook"])
def test_webhooks_go_to_https_only(url: str) -> None:
    with pytest.raises(partner.InsecureWebhookError):
        register(url)


def test_loopback_http_only_where_configured() -> None:
    assert register("http://127.0.0.1:9/hook", loopback=True)
    with pytest.raises(partner.InsecureWebhookError):
        register("http://crm.example/hook", loopback=True)


def test_registering_the_same_partner_again_changes_nothing() -> None:
    [event] = register()
    state = partner.evolve(None, event)
    assert partner.decide(partner.RegisterPartner(
        partner_id=event.registered.partner_id, name="acme-crm",
        webhook_url="https://crm.example/hook",
        grant=partner.Grant(event_types=["kinetic.booking.*"]),
        known_event_types=frozenset(EVENT_MODELS), now=NOW), state) == []


def test_only_a_withdrawal_for_that_partner_stops_the_flow() -> None:
    assert partner.withdrawn({"acme-crm": False}, "acme-crm")
    assert not partner.withdrawn({"acme-crm": True}, "acme-crm")
    assert not partner.withdrawn({"other": False}, "acme-crm")


def test_retries_back_off_exponentially_with_jitter_up_to_an_hour() -> None:
    assert 1.0 <= backoff(1) <= 1.2
    assert 8.0 <= backoff(4) <= 9.6
    assert MAX_RETRY <= backoff(40) <= MAX_RETRY * 1.2


def test_a_signature_verifies_with_the_standard_webhooks_library() -> None:
    from standardwebhooks import Webhook

    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = '{"id":"e1"}'
    headers = signed_headers([secret], "e1", datetime.now(UTC), body)
    assert Webhook(secret).verify(body, headers) == {"id": "e1"}
    with pytest.raises(Exception):
        Webhook(secret).verify(body.replace("e1", "e2"), headers)


def test_during_a_rotation_either_secret_verifies_and_after_it_only_the_new() -> None:
    from datetime import timedelta

    from standardwebhooks import Webhook

    from partners.adapters.delivery import secrets_in_force

    old, new = "whsec_" + "A" * 32, "whsec_" + "B" * 32
    now = datetime.now(UTC)
    row = {"secret": new, "previous_secret": old, "previous_until": now + timedelta(hours=1)}
    headers = signed_headers(secrets_in_force(row, now), "e1", now, "{}")
    assert Webhook(old).verify("{}", headers) == {} and Webhook(new).verify("{}", headers) == {}
    later = now + timedelta(hours=2)
    assert secrets_in_force(row, later) == [new]


def test_more_than_identifiers_needs_both_the_grant_and_the_patients_consent() -> None:
    grant = partner.Grant(event_types=["kinetic.booking.*"],
                          data_classes=["identifiers", "contact_details"])
    assert partner.may_disclose(grant, {"acme-crm": True}, "acme-crm", "contact_details")
    assert not partner.may_disclose(grant, {}, "acme-crm", "contact_details")  # never asked
    assert not partner.may_disclose(grant, {"acme-crm": False}, "acme-crm", "contact_details")
    assert not partner.may_disclose(grant, {"other-crm": True}, "acme-crm", "contact_details")
    assert not partner.may_disclose(grant, {"acme-crm": True}, "acme-crm", "clinical_free_text")
    assert grant.richer == ["contact_details"]


def test_a_grant_cannot_name_a_restricted_or_disclosed_event_type() -> None:
    for restricted in ("kinetic.booking.patient.contact_details_recorded.v1",
                       "kinetic.assessment.evaluation.clinical_notes_recorded.v1",
                       "kinetic.partners.patient.contact_details_disclosed.v1"):
        with pytest.raises(partner.UnknownEventTypeError):
            partner.check_grant(partner.Grant(event_types=[restricted]), GRANTABLE_EVENT_TYPES)
    partner.check_grant(partner.Grant(event_types=["kinetic.booking.patient.*"]),
                        GRANTABLE_EVENT_TYPES)


def restricted_details(patient_id: uuid.UUID) -> CloudEvent:
    return CloudEvent(
        id=uuid.uuid4(), source="/kinetic/booking", subject=str(patient_id), time=NOW,
        type="kinetic.booking.patient.contact_details_recorded.v1", tenantid=uuid.uuid4(),
        sequence=2, data={"patient_id": str(patient_id), "given_name": "Ada",
                          "family_name": "Canarysson", "date_of_birth": "1996-04-02",
                          "phone": "+49 30 5550100", "recorded_at": NOW.isoformat()})


def test_a_disclosure_is_the_same_event_when_handled_again_and_its_own_per_partner() -> None:
    patient_id, one, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    details = restricted_details(patient_id)
    first = disclosure.disclosure(one, details, details)
    assert first == disclosure.disclosure(one, details, details)
    assert first.id != disclosure.disclosure(other, details, details).id
    assert first.type == "kinetic.partners.patient.contact_details_disclosed.v1"
    assert first.source == "/kinetic/partners" and first.causationid == details.id
    assert (first.data["family_name"], first.data["phone"]) == ("Canarysson", "+49 30 5550100")
    assert first.tenantid == details.tenantid
    # A consent given later discloses the same details again, as an event of its own.
    consent = details.model_copy(update={"id": uuid.uuid4(), "sequence": 3})
    assert disclosure.disclosure(one, details, consent).id != first.id
    erase = disclosure.withdrawal(one, consent, patient_id, ["contact_details"])
    assert erase.data == {"patient_id": str(patient_id), "erase": ["contact_details"],
                          "withdrawn_at": NOW.isoformat().replace("+00:00", "Z")}
