"""Released schemas stay compatible, and the checker that says so catches real breaks.

The synthetic cases start from pydantic models, as real events do, so the schemas under test
have the same shapes (``anyOf`` for optional values, ``$defs`` for nested models) as the
committed ones.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from kinetic_contracts.compat import BreakingChange, ChangeKind, breaking_changes, check_released

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
RELEASED = CONTRACTS / "released"
SCHEMAS = CONTRACTS / "schemas"


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Address(_Event):
    city: str
    postcode: str


class VisitBooked(_Event):
    visit_id: UUID
    kind: Literal["initial", "follow_up"]
    minutes: int = Field(ge=15, le=120)
    note: str = Field(default="", max_length=500)
    due: date | None = None
    address: Address


def _kinds(changes: list[BreakingChange]) -> list[tuple[ChangeKind, str]]:
    return [(change.kind, change.path) for change in changes]


def _released() -> dict[str, Any]:
    return VisitBooked.model_json_schema()


def test_every_released_schema_is_compatible_with_the_current_one() -> None:
    released = sorted(p.name for p in RELEASED.glob("*.json"))
    assert "cloudevent.json" in released
    assert any(name.endswith(".v1.json") for name in released)

    report = check_released(RELEASED, SCHEMAS)

    assert report == {}, "breaking changes to released contracts (publish a new version "\
        "instead):\n" + "\n".join(f"{name} {c}" for name, cs in report.items() for c in cs)


def test_identical_schemas_have_no_breaking_change() -> None:
    assert breaking_changes(_released(), _released()) == []


def test_an_added_optional_field_is_accepted() -> None:
    class VisitBookedWithRoom(VisitBooked):
        room: str | None = None
        reminded: bool = False

    assert breaking_changes(_released(), VisitBookedWithRoom.model_json_schema()) == []


def test_a_removed_field_is_flagged() -> None:
    class VisitBookedWithoutNote(_Event):
        visit_id: UUID
        kind: Literal["initial", "follow_up"]
        minutes: int = Field(ge=15, le=120)
        due: date | None = None
        address: Address

    changes = breaking_changes(_released(), VisitBookedWithoutNote.model_json_schema())

    assert _kinds(changes) == [(ChangeKind.PROPERTY_REMOVED, "$.note")]


def test_a_retyped_field_is_flagged() -> None:
    class VisitBookedMinutesAsText(VisitBooked):
        minutes: str  # type: ignore[assignment]

    changes = breaking_changes(_released(), VisitBookedMinutesAsText.model_json_schema())

    assert _kinds(changes) == [(ChangeKind.TYPE_CHANGED, "$.minutes")]
    assert "integer -> string" in changes[0].detail


def test_a_changed_format_or_nullability_is_a_type_change() -> None:
    class VisitBookedDueAsDateTime(VisitBooked):
        due: str | None = Field(default=None, json_schema_extra={"format": "date-time"})

    class VisitBookedDueRequiredDate(VisitBooked):
        due: date = date(2025, 1, 1)  # type: ignore[assignment]

    assert _kinds(breaking_changes(_released(), VisitBookedDueAsDateTime.model_json_schema())) \
        == [(ChangeKind.TYPE_CHANGED, "$.due")]
    assert _kinds(breaking_changes(_released(), VisitBookedDueRequiredDate.model_json_schema())) \
        == [(ChangeKind.TYPE_CHANGED, "$.due")]


def test_a_field_that_became_required_or_a_new_required_field_is_flagged() -> None:
    class VisitBookedNoteRequired(VisitBooked):
        note: str = Field(max_length=500)
        therapist_id: UUID

    changes = breaking_changes(_released(), VisitBookedNoteRequired.model_json_schema())

    assert _kinds(changes) == [(ChangeKind.BECAME_REQUIRED, "$.note"),
                               (ChangeKind.BECAME_REQUIRED, "$.therapist_id")]


def test_a_removed_enum_value_is_flagged_and_an_added_one_is_not() -> None:
    class VisitBookedInitialOnly(VisitBooked):
        kind: Literal["initial"]  # type: ignore[assignment]

    class VisitBookedMoreKinds(VisitBooked):
        kind: Literal["initial", "follow_up", "discharge"]  # type: ignore[assignment]

    changes = breaking_changes(_released(), VisitBookedInitialOnly.model_json_schema())
    assert _kinds(changes) == [(ChangeKind.ENUM_VALUE_REMOVED, "$.kind")]
    assert '"follow_up"' in changes[0].detail
    assert breaking_changes(_released(), VisitBookedMoreKinds.model_json_schema()) == []


def test_narrowed_constraints_are_flagged_and_widened_ones_are_not() -> None:
    class VisitBookedNarrower(VisitBooked):
        minutes: int = Field(ge=30, le=120)
        note: str = Field(default="", max_length=100, pattern="^[a-z ]*$")

    class VisitBookedWider(VisitBooked):
        minutes: int = Field(ge=5, le=240)
        note: str = Field(default="", max_length=2000)

    changes = breaking_changes(_released(), VisitBookedNarrower.model_json_schema())
    assert _kinds(changes) == [(ChangeKind.CONSTRAINT_NARROWED, "$.minutes"),
                               (ChangeKind.CONSTRAINT_NARROWED, "$.note"),
                               (ChangeKind.CONSTRAINT_NARROWED, "$.note")]
    assert breaking_changes(_released(), VisitBookedWider.model_json_schema()) == []


def test_changes_inside_a_nested_model_are_found_through_refs() -> None:
    class AddressWithoutPostcode(_Event):
        city: str
        country: str

    class VisitBookedNewAddress(VisitBooked):
        address: AddressWithoutPostcode  # type: ignore[assignment]

    changes = breaking_changes(_released(), VisitBookedNewAddress.model_json_schema())

    assert _kinds(changes) == [(ChangeKind.PROPERTY_REMOVED, "$.address.postcode"),
                               (ChangeKind.BECAME_REQUIRED, "$.address.country")]


def test_reordering_a_union_is_not_a_change() -> None:
    released = {"type": "object", "properties": {"v": {"anyOf": [
        {"type": "integer", "maximum": 9}, {"type": "string"}, {"type": "null"}]}}}
    current = {"type": "object", "properties": {"v": {"anyOf": [
        {"type": "null"}, {"type": "string"}, {"type": "integer", "maximum": 5}]}}}

    assert _kinds(breaking_changes(released, current)) == [
        (ChangeKind.CONSTRAINT_NARROWED, "$.v|0")]


def _write(directory: Path, name: str, schema: dict[str, Any]) -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(json.dumps(schema), encoding="utf-8")


def test_a_new_version_is_a_new_file_and_never_compared_with_v1(tmp_path: Path) -> None:
    class VisitBookedV2(_Event):
        visit_id: str
        slot: int

    released, current = tmp_path / "released", tmp_path / "current"
    _write(released, "kinetic.booking.visit.booked.v1.json", _released())
    _write(current, "kinetic.booking.visit.booked.v1.json", _released())
    _write(current, "kinetic.booking.visit.booked.v2.json", VisitBookedV2.model_json_schema())

    assert check_released(released, current) == {}


def test_a_released_schema_without_a_current_file_is_flagged(tmp_path: Path) -> None:
    released, current = tmp_path / "released", tmp_path / "current"
    _write(released, "kinetic.booking.visit.booked.v1.json", _released())
    current.mkdir()

    report = check_released(released, current)

    assert list(report) == ["kinetic.booking.visit.booked.v1.json"]
    assert report["kinetic.booking.visit.booked.v1.json"][0].kind == ChangeKind.SCHEMA_REMOVED
