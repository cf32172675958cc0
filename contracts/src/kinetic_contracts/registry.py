"""Every event type Kinetic publishes, by its CloudEvents ``type``."""

from __future__ import annotations

from kinetic_contracts.assessment.v1 import events as assessment_v1
from kinetic_contracts.billing.v1 import events as billing_v1
from kinetic_contracts.booking.v1 import events as booking_v1
from kinetic_contracts.envelope import EventData
from kinetic_contracts.partners.v1 import events as partners_v1
from kinetic_contracts.plan.v1 import events as plan_v1

_MODULES = [booking_v1, assessment_v1, plan_v1, billing_v1, partners_v1]

EVENT_MODELS: dict[str, type[EventData]] = {
    model.event_type: model
    for module in _MODULES
    for model in module.EVENTS
}

# What a partner's grant can name: events of identifiers and codes. The richer ones are
# restricted source events or the partners service's own disclosures (EventData.data_class).
GRANTABLE_EVENT_TYPES: frozenset[str] = frozenset(
    event_type for event_type, model in EVENT_MODELS.items() if model.data_class == "identifiers")


class UnknownEventTypeError(LookupError):
    pass


def model_for(event_type: str) -> type[EventData]:
    try:
        return EVENT_MODELS[event_type]
    except KeyError:
        raise UnknownEventTypeError(event_type) from None


def schema_uri(event_type: str) -> str:
    return f"https://kinetic.dev/contracts/schemas/{event_type}.json"
