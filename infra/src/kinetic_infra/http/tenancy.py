"""Which organization (tenant) a request acts for.

Until sign-in lands (JWT with the tenant claim, issue #4) the caller names its organization
in the ``Kinetic-Tenant`` header. Every read and write below the endpoint is scoped by it:
the event store reads only the tenant's streams and every read model query filters on it,
so another organization's id answers 404.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header

from kinetic_contracts.problems import DomainError


class MissingTenantError(DomainError):
    type_slug = "missing-tenant"
    title = "The request does not say which organization it acts for"


def tenant_from_header(
    kinetic_tenant: Annotated[UUID | None, Header(description="Organization id")] = None,
) -> UUID:
    if kinetic_tenant is None:
        raise MissingTenantError("send the Kinetic-Tenant header with your organization id")
    return kinetic_tenant


TenantId = Annotated[UUID, Depends(tenant_from_header)]

IdempotencyKey = Annotated[
    UUID | None,
    Header(description="Repeat a request with the same key to get the first result back "
                       "instead of a second effect"),
]
