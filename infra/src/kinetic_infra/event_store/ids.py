"""Event and command ids are UUIDv7: time-ordered, so indexes stay compact, and usable as
the NATS message id for broker-side de-duplication."""

from uuid import UUID

import uuid_utils.compat


def new_id() -> UUID:
    return uuid_utils.compat.uuid7()
