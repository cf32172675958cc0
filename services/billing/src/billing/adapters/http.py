"""Billing's HTTP API: patient accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import BaseModel

from billing.adapters.accounts import accounts
from kinetic_contracts.problems import NotFoundError
from kinetic_infra.auth.principal import Role
from kinetic_infra.http.audit import AuditedRoute, audited, note
from kinetic_infra.http.auth import Staff
from kinetic_infra.read_models import fetch_all, fetch_one
from kinetic_infra.service.definition import Runtime


class AccountNotFoundError(NotFoundError):
    type_slug = "account-not-found"
    title = "No such patient account"


class AccountOut(BaseModel):
    patient_id: UUID
    opened_at: datetime
    episodes: int
    last_episode_id: UUID
    last_location_id: UUID


ACCOUNT_READERS = (Role.BILLING, Role.FRONT_DESK, Role.OPERATOR)


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["billing"], route_class=AuditedRoute)

    @api.get("/accounts", response_model=list[AccountOut],
             summary="Patient accounts at your locations", openapi_extra=audited("list", "account"))
    async def list_accounts(principal: Staff(*ACCOUNT_READERS)) -> list[dict[str, Any]]:
        return await fetch_all(runtime.db, accounts, principal, accounts.c.opened_at.desc(),
                               location=accounts.c.last_location_id, roles=ACCOUNT_READERS)

    @api.get("/accounts/{patient_id}", response_model=AccountOut,
             summary="One patient's account", openapi_extra=audited("read", "account"))
    async def get_account(request: Request, patient_id: UUID,
                          principal: Staff(*ACCOUNT_READERS)) -> dict[str, Any]:
        note(request).patient_id = patient_id
        row = await fetch_one(runtime.db, accounts, accounts.c.patient_id, patient_id, principal,
                              AccountNotFoundError(f"no account for patient {patient_id}"),
                              location=accounts.c.last_location_id, roles=ACCOUNT_READERS)
        note(request).location_id = row["last_location_id"]
        return row

    return api
