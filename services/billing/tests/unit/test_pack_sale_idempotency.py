"""A pack's id is the caller's Idempotency-Key: the same key again is the same sale, and the
key sent again for another patient, location or offer is refused, not answered with the
first pack."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from billing.application import billing
from billing.domain import pack
from billing_builders import NOW, bought
from kinetic_contracts.problems import IdempotencyKeyReusedError


def test_the_same_sale_under_the_same_key_is_a_repeat() -> None:
    sold = bought()
    p = sold.purchased
    pack.ensure_same_sale(sold, p.patient_id, p.location_id, p.offer)
    assert pack.decide(pack.BuyPack(purchased=p, by="olivia"), sold) == []


@pytest.mark.parametrize("other", ["patient", "location", "offer"])
def test_another_sale_under_a_packs_key_is_refused(other: str) -> None:
    sold = bought()
    p = sold.purchased
    sale = {"patient_id": p.patient_id, "location_id": p.location_id, "offer": p.offer}
    sale[f"{other}_id" if other != "offer" else "offer"] = \
        "ten" if other == "offer" else uuid.uuid4()
    with pytest.raises(IdempotencyKeyReusedError):
        pack.ensure_same_sale(sold, **sale)  # type: ignore[arg-type]
    with pytest.raises(IdempotencyKeyReusedError):
        pack.decide(pack.BuyPack(purchased=p.model_copy(update=sale), by="olivia"), sold)


async def test_buy_pack_with_a_used_key_for_another_patient_is_refused_before_anything_is_sold(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sold = bought()
    p = sold.purchased

    async def state_of(*args: Any) -> pack.Pack:
        return sold

    async def nothing_else(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a refused sale reads no tariff and issues no invoice")

    monkeypatch.setattr(billing, "state_of", state_of)
    monkeypatch.setattr(billing, "local_date", nothing_else)
    monkeypatch.setattr(billing, "issue_invoice", nothing_else)
    with pytest.raises(IdempotencyKeyReusedError):
        await billing.buy_pack(None, None, uuid.uuid4(),  # type: ignore[arg-type]
                               pack_id=p.pack_id, patient_id=uuid.uuid4(),
                               location_id=p.location_id, offer_code=p.offer, by="bea", now=NOW)
    again = await billing.buy_pack(None, None, uuid.uuid4(),  # type: ignore[arg-type]
                                   pack_id=p.pack_id, patient_id=p.patient_id,
                                   location_id=p.location_id, offer_code=p.offer, by="bea",
                                   now=NOW)
    assert again is sold
