"""The NATS server's auth callout, answered for partner systems.

The server admits the services by their own user and asks this service about every other
connection: it publishes an authorization request (a JWT it signed) on
``$SYS.REQ.USER.AUTH``, and admits the client only if the answer, signed with the issuer key
it was configured with, carries a user JWT. A partner presents its NATS key (``knk_…``) as
the connection's token; when the key is the partner's current one, the answer grants the
permissions of ``domain/nats_access.py`` in the services' account, and the partner's durable
consumer is made sure to exist first, so the partner can read its feed at once. Any other
connection gets an answer with an error, which the server turns into an authorization
violation.

The JWTs are NATS's own format (header ``ed25519-nkey``, signed with an nkey); the few lines
that build them are here because the Python NATS JWT package has no authorization-request
or -response claims, and the signing itself is ``nkeys``, the NATS project's library.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from typing import Any
from uuid import UUID

import nats
import nkeys
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from kinetic_contracts.partner_feed import FEED_STREAM, durable_name, feed_subjects
from kinetic_infra.broker.streams import ensure_consumer
from kinetic_infra.service.definition import Runtime
from kinetic_infra.settings import nats_servers
from partners.adapters.keys import NATS_KEY
from partners.domain.nats_access import permissions
from partners.settings import partners_settings

log = logging.getLogger(__name__)

AUTH_SUBJECT = "$SYS.REQ.USER.AUTH"
_HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(claims: dict[str, Any], signer: nkeys.KeyPair) -> str:
    """A NATS JWT of ``claims``, its ``jti`` the hash of the rest, signed by ``signer``."""
    body = {**claims, "jti": ""}
    body["jti"] = base64.b32encode(
        hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()).decode().rstrip("=")
    signed = f"{_b64(json.dumps(_HEADER).encode())}.{_b64(json.dumps(body).encode())}"
    return f"{signed}.{_b64(signer.sign(signed.encode()))}"


def claims_of(token: str) -> dict[str, Any]:
    """The claims of a NATS JWT (the request's signature is the server's; the request
    arrives in the services' own account, where no partner may publish)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT")
    claims: dict[str, Any] = json.loads(_unb64(parts[1]))
    return claims


def presented_key(request: dict[str, Any]) -> str:
    options = request["nats"].get("connect_opts", {})
    return str(options.get("auth_token") or options.get("pass") or "")


def answer(request: dict[str, Any], issuer: nkeys.KeyPair, account: str,
           admitted: tuple[UUID, UUID, str] | None, now: int, session_seconds: int) -> str:
    """The signed authorization response: a user JWT for an admitted partner, valid for
    ``session_seconds`` (the server then closes the connection, and a reconnect asks again,
    so a replaced key cannot keep a connection open), else an error."""
    nats_request = request["nats"]
    user_nkey = nats_request["user_nkey"]
    issuer_key = issuer.public_key.decode()
    if admitted is None:
        outcome: dict[str, Any] = {"error": "not a current partner NATS key"}
    else:
        tenant_id, partner_id, name = admitted
        outcome = {"jwt": encode({
            "iat": now, "exp": now + session_seconds, "iss": issuer_key, "sub": user_nkey,
            "aud": account, "name": f"partner {name} ({partner_id})",
            "nats": {**permissions(tenant_id, partner_id), "type": "user", "version": 2}},
            issuer)}
    return encode({
        "iat": now, "iss": issuer_key, "sub": user_nkey,
        "aud": nats_request["server_id"]["id"],
        "nats": {"type": "authorization_response", "version": 2, **outcome}}, issuer)


def feed_consumer(tenant_id: UUID, partner_id: UUID) -> ConsumerConfig:
    """The partner's durable consumer of its feed, from the start."""
    return ConsumerConfig(
        durable_name=durable_name(partner_id), filter_subject=feed_subjects(tenant_id, partner_id),
        deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.EXPLICIT, ack_wait=30,
        max_ack_pending=1000)


async def ensure_feed_consumer(js: JetStreamContext, tenant_id: UUID, partner_id: UUID) -> None:
    await ensure_consumer(js, FEED_STREAM, feed_consumer(tenant_id, partner_id))


async def serve(runtime: Runtime, stop: asyncio.Event) -> None:
    """Answer the auth callout until ``stop`` (replicas share the work as a queue group)."""
    seed = runtime.settings.nats_auth_callout_seed
    if not seed:
        log.info("no KINETIC_NATS_AUTH_CALLOUT_SEED: partner NATS connections are not admitted")
        await stop.wait()
        return
    issuer = nkeys.from_seed(seed.encode())
    settings = partners_settings()
    nc = await nats.connect(nats_servers(runtime.settings.nats_url), max_reconnect_attempts=-1)
    js = nc.jetstream()

    async def authorize(msg: Msg) -> None:
        try:
            request = claims_of(msg.data.decode())
        except ValueError:  # not a request: nobody to answer (the server times out, refuses)
            log.warning("auth callout: a message that is no authorization request")
            return
        admitted = None
        try:
            admitted = await NATS_KEY.holder(runtime.db, presented_key(request))
            if admitted is not None:
                tenant_id, partner_id, _name = admitted
                await ensure_feed_consumer(js, tenant_id, partner_id)
        except Exception:  # noqa: BLE001 - what cannot be judged is refused, and logged
            log.exception("auth callout: refused for an error")
            admitted = None
        await msg.respond(answer(request, issuer, settings.nats_account, admitted,
                                 int(time.time()), settings.nats_session_seconds).encode())

    await nc.subscribe(AUTH_SUBJECT, queue="partners-auth-callout", cb=authorize)
    try:
        await stop.wait()
    finally:
        await nc.drain()
