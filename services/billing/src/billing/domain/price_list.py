"""A location's price list: tariffs, each in force from a date until the next one.

A tariff holds the flat fee per appointment type (tax included, in minor units), the
currency, the contained tax rate, the CPT codes a superbill shows for each type, the
cancellation and no-show policy, the session packs on offer and the payment terms.

The rule that decides a charge: the tariff in force on the day the session was booked for
(in the location's timezone) prices it, whenever it is completed and whatever was scheduled
later. So a tariff may not start before today — it would reprice sessions already charged —
except a location's first, which may start on any date.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from billing.domain.money import Currency, MinorUnits, TaxRate
from kinetic_contracts.booking.v1.events import AppointmentType
from kinetic_contracts.problems import NotFoundError, RuleViolationError
from kinetic_infra.event_store.model import StoredEvent

# What a superbill shows for each appointment type unless the location says otherwise:
# physical-therapy evaluation (moderate complexity), re-evaluation, therapeutic exercise.
DEFAULT_CPT: dict[str, list[str]] = {"initial_assessment": ["97162"],
                                     "reassessment": ["97164"],
                                     "treatment_session": ["97110"]}


class NoTariffError(NotFoundError):
    type_slug = "no-tariff"
    title = "No price list is in force for that location and date"


class TariffInThePastError(RuleViolationError):
    type_slug = "tariff-in-the-past"
    title = "A new tariff cannot start before today"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Fees(_Frozen):
    """The flat fee of a one-hour session of each type (no visit caps, no authorizations)."""

    initial_assessment: MinorUnits
    treatment_session: MinorUnits
    reassessment: MinorUnits

    def of(self, appointment_type: AppointmentType) -> int:
        return int(getattr(self, appointment_type))


class CancellationPolicy(_Frozen):
    late_cancel_hours: int = Field(
        default=24, ge=0, le=168,
        description="A cancellation closer than this to the start is late")
    late_cancel_fee: MinorUnits | None = Field(default=None,
                                               description="None: no late-cancellation fee")
    no_show_fee: MinorUnits | None = Field(default=None, description="None: no no-show fee")


class PackOffer(_Frozen):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$", examples=["six"])
    label: str = Field(min_length=1, max_length=100, examples=["6 sessions"])
    sessions: int = Field(ge=2, le=100)
    price: MinorUnits


class Tariff(_Frozen):
    effective_from: date
    currency: Currency
    tax_rate_bp: TaxRate = 0
    fees: Fees
    cpt_codes: dict[AppointmentType, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_CPT.items()},
        description="CPT codes a superbill lists for each appointment type")
    policy: CancellationPolicy = Field(default_factory=CancellationPolicy)
    packs: list[PackOffer] = Field(default_factory=list, max_length=20)
    pack_refund: Literal["pro_rata", "none"] = Field(
        default="pro_rata", description="Unused pack sessions: refunded pro rata, or not")
    payment_terms_days: int = Field(default=14, ge=0, le=365,
                                    description="An invoice is due this many days after issue")

    @model_validator(mode="after")
    def _codes_are_cpt(self) -> Tariff:
        for codes in self.cpt_codes.values():
            for code in codes:
                if not (len(code) == 5 and code[:4].isdigit() and code[4].isalnum()):
                    raise ValueError(f"{code!r} is not a CPT code (five characters)")
        if len({p.code for p in self.packs}) != len(self.packs):
            raise ValueError("pack codes must be unique")
        return self

    def cpt_for(self, appointment_type: AppointmentType) -> list[str]:
        return list(self.cpt_codes.get(appointment_type, DEFAULT_CPT[appointment_type]))

    def offer(self, code: str) -> PackOffer | None:
        return next((p for p in self.packs if p.code == code), None)


class TariffScheduled(StoredEvent):
    event_type: ClassVar[str] = "kinetic.billing.tariff.scheduled.v1"

    location_id: UUID
    tariff: Tariff
    scheduled_by: str
    scheduled_at: datetime


class ScheduleTariff(_Frozen):
    location_id: UUID
    tariff: Tariff
    today: date = Field(description="Today at the location")
    by: str
    now: datetime


class PriceList(_Frozen):
    location_id: UUID | None = None
    tariffs: tuple[Tariff, ...] = ()

    def in_force(self, day: date) -> Tariff | None:
        return next((t for t in reversed(self.tariffs) if t.effective_from <= day), None)


EVENT_TYPES = {TariffScheduled.event_type: TariffScheduled}
INITIAL = PriceList()


def evolve(state: PriceList, event: TariffScheduled) -> PriceList:
    # A tariff scheduled again for the same date replaces the earlier one.
    kept = [t for t in state.tariffs if t.effective_from != event.tariff.effective_from]
    return PriceList(location_id=event.location_id,
                     tariffs=tuple(sorted([*kept, event.tariff], key=lambda t: t.effective_from)))


def decide(command: ScheduleTariff, state: PriceList) -> Sequence[TariffScheduled]:
    if state.tariffs and command.tariff.effective_from < command.today:
        raise TariffInThePastError(
            f"a tariff starting {command.tariff.effective_from} would reprice sessions "
            f"already charged; start it today ({command.today}) or later",
            effective_from=command.tariff.effective_from.isoformat())
    if state.tariffs and state.in_force(command.tariff.effective_from) == command.tariff:
        return []  # the same tariff again changes nothing
    return [TariffScheduled(location_id=command.location_id, tariff=command.tariff,
                            scheduled_by=command.by, scheduled_at=command.now)]
