"""Billing's HTTP API: patient accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel

from billing.adapters.accounts import accounts
from kinetic_contracts.problems import NotFoundError
from kinetic_infra.http.tenancy import TenantId
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


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["billing"])

    @api.get("/accounts", response_model=list[AccountOut], summary="Patient accounts")
    async def list_accounts(tenant: TenantId) -> list[dict[str, Any]]:
        return await fetch_all(runtime.db, accounts, tenant, accounts.c.opened_at.desc())

    @api.get("/accounts/{patient_id}", response_model=AccountOut,
             summary="One patient's account")
    async def get_account(patient_id: UUID, tenant: TenantId) -> dict[str, Any]:
        return await fetch_one(runtime.db, accounts, accounts.c.patient_id, patient_id, tenant,
                               AccountNotFoundError(f"no account for patient {patient_id}"))

    return api
