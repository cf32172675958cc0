"""Request headers shared by every service's API."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Header

IdempotencyKey = Annotated[
    UUID | None,
    Header(description="Repeat a request with the same key to get the first result back "
                       "instead of a second effect"),
]
