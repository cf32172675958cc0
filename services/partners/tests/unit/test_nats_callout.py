"""The auth callout's answers, checked as the NATS server checks them: signed by the issuer,
addressed to the server and the connecting client, and granting a partner its own feed only.
(The server's own verdict is proven in tests/e2e/test_partner_nats.py.)"""

from __future__ import annotations

import base64
import os
import uuid

import nkeys

from kinetic_contracts.partner_feed import feed_subject
from partners.adapters.nats_auth import answer, claims_of, encode, presented_key

ISSUER = nkeys.from_seed(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_ACCOUNT))
USER_NKEY = "UBMHIIGETKVJVUOEEKW25FQUJHSWHUAZ65QDZRE5HXG4XL46SREGDGCC"
TENANT, PARTNER = uuid.uuid4(), uuid.uuid4()
REQUEST = {"nats": {"server_id": {"id": "NSERVER"}, "user_nkey": USER_NKEY,
                    "connect_opts": {"auth_token": "knk_x"}, "type": "authorization_request"}}


def verified(token: str) -> dict:
    header, payload, signature = token.split(".")
    padded = signature + "=" * (-len(signature) % 4)
    assert ISSUER.verify(f"{header}.{payload}".encode(), base64.urlsafe_b64decode(padded))
    return claims_of(token)


def matches(subject: str, patterns: list[str]) -> bool:
    """NATS wildcards: ``*`` one token, ``>`` the rest."""
    def one(pattern: str) -> bool:
        p, s = pattern.split("."), subject.split(".")
        if p[-1] == ">":
            return len(s) >= len(p) and all(a in ("*", b) for a, b in zip(p[:-1], s))
        return len(p) == len(s) and all(a in ("*", b) for a, b in zip(p, s))
    return any(one(p) for p in patterns)


def test_an_admitted_partner_gets_a_signed_user_for_its_own_feed_only() -> None:
    response = verified(answer(REQUEST, ISSUER, "KINETIC", (TENANT, PARTNER, "acme"), 1000, 900))
    assert (response["sub"], response["aud"]) == (USER_NKEY, "NSERVER")
    assert response["nats"]["type"] == "authorization_response"
    assert "error" not in response["nats"]
    user = verified(response["nats"]["jwt"])
    assert (user["sub"], user["aud"], user["iss"]) == (
        USER_NKEY, "KINETIC", ISSUER.public_key.decode())
    assert user["exp"] == 1900  # the server closes the connection then; a reconnect asks again
    sub, pub = user["nats"]["sub"]["allow"], user["nats"]["pub"]["allow"]
    own = feed_subject(TENANT, PARTNER, "kinetic.booking.location.registered.v1")
    other = feed_subject(uuid.uuid4(), uuid.uuid4(), "kinetic.booking.location.registered.v1")
    assert matches(own, sub) and not matches(other, sub)
    assert not matches(f"kinetic.{TENANT}.booking.location.registered", sub)
    assert not any(matches(s, pub) for s in (own, f"kinetic.{TENANT}.booking.x.y", "$JS.API.>",
                                              "$JS.API.STREAM.CREATE.PARTNERS"))
    assert not matches(f"_INBOX.{PARTNER.hex}", sub)  # only an inbox prefix of its own


def test_a_refused_connection_gets_a_signed_error_and_no_user() -> None:
    response = verified(answer(REQUEST, ISSUER, "KINETIC", None, 1000, 900))
    assert response["nats"]["error"] and "jwt" not in response["nats"]


def test_the_key_is_read_from_the_token_or_the_password() -> None:
    assert presented_key(REQUEST) == "knk_x"
    assert presented_key({"nats": {"connect_opts": {"user": "p", "pass": "knk_y"}}}) == "knk_y"
    assert presented_key({"nats": {}}) == ""


def test_a_jwt_id_is_the_hash_of_its_claims() -> None:
    one, two = encode({"a": 1}, ISSUER), encode({"a": 2}, ISSUER)
    assert claims_of(one)["jti"] != claims_of(two)["jti"]
    assert claims_of(one)["jti"] == claims_of(encode({"a": 1}, ISSUER))["jti"]
