"""Money: an integer amount of a currency's minor units (cents, pence, yen), never a float.

The number of minor units per currency comes from CLDR through Babel (EUR 2, JPY 0, KWD 3).
Arithmetic across currencies is refused. Tax is contained in the flat fee the patient pays
(a self-pay price is what the patient pays); the tax share is computed once per line as
``gross × rate ÷ (1 + rate)``, rounded half-up to the minor unit.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from babel.numbers import format_currency, get_currency_precision, list_currencies
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from kinetic_contracts.problems import RuleViolationError

BASIS_POINTS = 10_000  # a tax rate of 1 900 basis points is 19.00 %


class CurrencyMismatchError(RuleViolationError):
    type_slug = "currency-mismatch"
    title = "Amounts in different currencies cannot be combined"


class UnknownCurrencyError(RuleViolationError):
    type_slug = "unknown-currency"
    title = "Not an ISO 4217 currency code"


def _known(code: str) -> str:
    if code not in list_currencies():
        raise ValueError(f"{code!r} is not an ISO 4217 currency code")
    return code


Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["EUR"]),
                     AfterValidator(_known)]
MinorUnits = Annotated[int, Field(ge=0, le=10**12, description="Integer minor units (cents)")]
TaxRate = Annotated[int, Field(ge=0, le=BASIS_POINTS,
                               description="Basis points: 1900 is 19.00 %, 0 is none")]


class Money(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: int = Field(description="Minor units; negative only for a ledger's credits")
    currency: Currency

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatchError(
                f"cannot combine {self.currency} with {other.currency}",
                currencies=[self.currency, other.currency])

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def __neg__(self) -> Money:
        return Money(amount=-self.amount, currency=self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount=0, currency=currency)

    def decimal(self) -> Decimal:
        return Decimal(self.amount).scaleb(-get_currency_precision(self.currency))

    def display(self, locale: str = "en") -> str:
        return str(format_currency(self.decimal(), self.currency, locale=locale))


def ensure_currency(amount: Money, currency: str) -> None:
    """Refuse an amount in a currency other than the one it is set against."""
    if amount.currency != currency:
        raise CurrencyMismatchError(
            f"the amount is in {amount.currency}, the account in {currency}",
            currencies=[amount.currency, currency])


def half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def contained_tax(gross: int, rate_bp: int) -> int:
    """The tax share of a tax-inclusive amount, in minor units, rounded half-up."""
    if rate_bp == 0:
        return 0
    return half_up(Decimal(gross) * rate_bp / (BASIS_POINTS + rate_bp))


def pro_rata(total: int, part: int, whole: int) -> int:
    """``total × part ÷ whole`` in minor units, rounded down: a pro-rata refund never pays
    out a fraction of a minor unit more than was paid."""
    if whole <= 0:
        return 0
    return total * part // whole
