"""The partners service's rules without I/O: grants by pattern, HTTPS-only webhooks,
consent, and the retry schedule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from kinetic_contracts.registry import EVENT_MODELS
from partners.adapters.delivery import MAX_RETRY, backoff, signed_headers
from partners.domain import partner

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
