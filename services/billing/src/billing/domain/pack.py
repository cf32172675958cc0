"""A prepaid session pack: a way to pay for completed sessions, never a cap on care.

A completed session draws one session from the patient's pack while it has any; when it runs
out the next session is simply invoiced at the flat fee. A reversed session goes back into
the pack. Unused sessions are refunded pro rata (rounded down to the minor unit) when the
location's policy says so, and the pack is closed.

A pack's id is the caller's Idempotency-Key when given: the same key again is the same sale
(patient, location, offer), and another sale under it is refused, not answered with the first.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from billing.domain.money import pro_rata
from kinetic_contracts.billing.v1 import events as public
from kinetic_contracts.problems import ConflictError, IdempotencyKeyReusedError, NotFoundError
from kinetic_infra.event_store.model import StoredEvent


class PackNotFoundError(NotFoundError):
    type_slug = "pack-not-found"
    title = "No such session pack"


class PackUsedUpError(ConflictError):
    type_slug = "pack-used-up"
    title = "The pack has no sessions left"


class PackBought(StoredEvent):
    event_type: ClassVar[str] = "kinetic.billing.pack.purchased.v1"

    purchased: public.PackPurchased
    by: str

    def to_public(self) -> public.PackPurchased:
        return self.purchased


PackEvent = PackBought | public.PackSessionUsed | public.PackSessionReturned | public.PackRefunded
EVENT_TYPES: dict[str, type[BaseModel]] = {e.event_type: e for e in (
    PackBought, public.PackSessionUsed, public.PackSessionReturned, public.PackRefunded)}


class Pack(BaseModel):
    model_config = ConfigDict(frozen=True)

    purchased: public.PackPurchased
    used: tuple[UUID, ...] = ()  # drawn and not returned; a closed pack takes none back
    refunded: bool = False
    returned: int = 0  # what its unused sessions were worth back when it closed

    @property
    def remaining(self) -> int:
        return 0 if self.refunded else self.purchased.sessions - len(self.used)

    def sessions_paid_for(self, reversed_: Collection[UUID]) -> int:
        """How many sessions the pack's invoice still pays for: those drawn and not reversed
        (one reversed after the pack closed stays drawn, but its share was credited back),
        and the unused ones — unless their value went back when the pack closed."""
        drawn = sum(1 for a in self.used if a not in reversed_)
        unused = self.purchased.sessions - len(self.used)
        return drawn + (0 if self.refunded and self.returned > 0 else unused)


PackState = Pack | None
INITIAL: PackState = None


def evolve(state: PackState, event: PackEvent) -> PackState:
    if isinstance(event, PackBought):
        return Pack(purchased=event.purchased)
    assert state is not None, "a pack's first event is its purchase"
    if isinstance(event, public.PackSessionUsed):
        return state.model_copy(update={"used": (*state.used, event.appointment_id)})
    if isinstance(event, public.PackSessionReturned):
        return state.model_copy(update={
            "used": tuple(a for a in state.used if a != event.appointment_id)})
    return state.model_copy(update={"refunded": True, "returned": event.amount})


class BuyPack(BaseModel):
    model_config = ConfigDict(frozen=True)
    purchased: public.PackPurchased
    by: str


class DrawSession(BaseModel):
    model_config = ConfigDict(frozen=True)
    pack_id: UUID
    appointment_id: UUID
    now: datetime


class ReturnSession(DrawSession):
    pass


class RefundPack(BaseModel):
    model_config = ConfigDict(frozen=True)
    pack_id: UUID
    policy: Literal["pro_rata", "none"]
    now: datetime


PackCommand = BuyPack | DrawSession | ReturnSession | RefundPack


def ensure_same_sale(state: Pack, patient_id: UUID, location_id: UUID, offer: str) -> None:
    """A pack id (the Idempotency-Key) sent again must name the same sale: answering another
    with the first pack would sell the second patient nothing, and show them someone else's."""
    p = state.purchased
    if (p.patient_id, p.location_id, p.offer) != (patient_id, location_id, offer):
        raise IdempotencyKeyReusedError(
            f"{p.pack_id} was the sale of another pack: send a new Idempotency-Key for a new "
            "sale", id=str(p.pack_id))


def refund_due(state: Pack, policy: Literal["pro_rata", "none"]) -> int:
    """What the unused sessions are worth back, by the policy."""
    if policy == "none":
        return 0
    return pro_rata(state.purchased.price, state.remaining, state.purchased.sessions)


def reversal_credit(state: Pack, appointment_id: UUID) -> int:
    """What a reversed session drawn from this pack is owed when the session can no longer go
    back into it (the pack was refunded meanwhile): its share of the pack's price. The
    session did not happen (or its fee was waived), so unlike an unused session left when
    the pack closed, no refund policy takes it away."""
    if not state.refunded or appointment_id not in state.used:
        return 0
    return pro_rata(state.purchased.price, 1, state.purchased.sessions)


def decide(command: PackCommand, state: PackState) -> Sequence[BaseModel]:
    if isinstance(command, BuyPack):
        p = command.purchased
        if state is not None:
            ensure_same_sale(state, p.patient_id, p.location_id, p.offer)
            return []
        return [PackBought(purchased=p, by=command.by)]
    if state is None:
        raise PackNotFoundError(f"pack {command.pack_id} does not exist",
                                pack_id=str(command.pack_id))
    ids = {"pack_id": state.purchased.pack_id, "patient_id": state.purchased.patient_id}
    if isinstance(command, ReturnSession):
        if command.appointment_id not in state.used or state.refunded:
            return []
        return [public.PackSessionReturned(**ids, appointment_id=command.appointment_id,
                                           remaining=state.remaining + 1,
                                           returned_at=command.now)]
    if isinstance(command, DrawSession):
        if command.appointment_id in state.used:
            return []
        if state.remaining <= 0:
            raise PackUsedUpError(f"pack {command.pack_id} has no sessions left")
        return [public.PackSessionUsed(**ids, appointment_id=command.appointment_id,
                                       remaining=state.remaining - 1, used_at=command.now)]
    if state.refunded:
        return []
    return [public.PackRefunded(**ids, unused=state.remaining,
                                amount=refund_due(state, command.policy),
                                currency=state.purchased.currency, refunded_at=command.now)]
