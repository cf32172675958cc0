"""What a superbill claims for each session: only what was charged after credits and what was
actually paid.

The patient sends the superbill to their insurer for reimbursement, so no line may claim more
than the clinic kept. A charge's row never changes after the session (a credit note changes
the invoice, not the charge), so the amounts come from the invoice that pays the session:

- an invoiced session: charged = its invoice's total less credits; paid = paid less refunded,
  at most what was charged (money held in credit on the invoice paid for nothing yet);
- a session from a pack: the pack's invoice pays for every session the pack still covers,
  so the session claims its share of what that invoice charges after credits and of what was
  paid on it, never more than its share of the pack price;
- a session credited in full (goodwill, a billing error) is waived: it prints at 0.

The totals are the sums of the lines, per currency.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from billing.domain.money import pro_rata


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InvoiceSums(_Frozen):
    total: int = Field(ge=0)
    paid: int = Field(ge=0)
    refunded: int = Field(ge=0)
    credited: int = Field(ge=0)

    @property
    def charged(self) -> int:
        """What the invoice charges once credit notes (and refunds that credited it) are off."""
        return max(self.total - self.credited, 0)

    @property
    def paid_for_charges(self) -> int:
        """Money kept against what it charges: paid less refunded, never above the charge."""
        return min(max(self.paid - self.refunded, 0), self.charged)


class PackCover(_Frozen):
    """A pack's terms and how many sessions its invoice still pays for: those drawn and not
    reversed, and the unused ones unless their value went back when the pack was closed."""

    sessions: int = Field(gt=0)
    price: int = Field(ge=0)
    covered: int = Field(ge=0)
    invoice: InvoiceSums


class Session(_Frozen):
    service_date: date
    appointment_type: str
    cpt_codes: list[str]
    currency: str
    invoice: InvoiceSums | None = Field(
        default=None, description="The session's own invoice (paid by invoice)")
    pack: PackCover | None = Field(default=None, description="The pack it was drawn from")


class Line(_Frozen):
    service_date: date
    appointment_type: str
    cpt_codes: list[str]
    currency: str
    paid_by: Literal["invoice", "pack"]
    charged: int
    paid: int

    @property
    def waived(self) -> bool:
        return self.charged == 0


class Superbill(_Frozen):
    lines: list[Line]
    charged: dict[str, int] = Field(description="Per currency, the sum of the lines")
    paid: dict[str, int] = Field(description="Per currency, the sum of the lines")


def pack_share(cover: PackCover) -> tuple[int, int]:
    """One pack session's charged and paid amounts: the pack invoice's amounts spread over
    the sessions it still covers (rounded down), capped at the session's share of the price."""
    share = pro_rata(cover.price, 1, cover.sessions)
    covered = max(cover.covered, 1)
    charged = min(share, pro_rata(cover.invoice.charged, 1, covered))
    paid = min(charged, pro_rata(cover.invoice.paid_for_charges, 1, covered))
    return charged, paid


def line(session: Session) -> Line:
    if session.pack is not None:
        charged, paid = pack_share(session.pack)
        paid_by: Literal["invoice", "pack"] = "pack"
    elif session.invoice is not None:
        charged, paid = session.invoice.charged, session.invoice.paid_for_charges
        paid_by = "invoice"
    else:
        raise ValueError("a charged session is paid by its invoice or from a pack")
    return Line(service_date=session.service_date, appointment_type=session.appointment_type,
                cpt_codes=session.cpt_codes, currency=session.currency, paid_by=paid_by,
                charged=charged, paid=paid)


def superbill(sessions: list[Session]) -> Superbill:
    lines = [line(s) for s in sessions]
    charged: dict[str, int] = {}
    paid: dict[str, int] = {}
    for each in lines:
        charged[each.currency] = charged.get(each.currency, 0) + each.charged
        paid[each.currency] = paid.get(each.currency, 0) + each.paid
    return Superbill(lines=lines, charged=charged, paid=paid)
