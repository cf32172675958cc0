"""Scoring: item answers in, the measure's published score(s) out. Pure.

The clinician enters answers; a score is only ever computed here, never typed. Arithmetic is
exact (fractions) and rounded once, half up, to the decimals the instrument reports, so the
same answers always give the same stored number.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from typing import assert_never

from pydantic import BaseModel, ConfigDict

from assessment.domain.measures.definition import Item, MeasureDefinition, ScoreSpec
from assessment.domain.measures.errors import (
    AnswerOutOfRangeError,
    ConflictingAnswersError,
    ItemLabelError,
    TooManyMissingItemsError,
    UnknownItemError,
)

LABEL_MAX = 200


class Score(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    measure: str
    version: str
    # Keyed by score code: the measure's own code for a single score, one per subscale for
    # KOOS, "ndi" and "ndi_pct" for the NDI's two scales, PSFS's mean plus one per activity.
    values: dict[str, float]
    # Scores the measure reports that had too few answers this time (a KOOS subscale).
    not_scored: tuple[str, ...] = ()
    # Unanswered questions: item ids, or a one-of question's group id (VISA "visa_a_08").
    missing_items: tuple[str, ...] = ()
    answers: dict[str, int]  # the answered items, as entered
    labels: dict[str, str] = {}  # the patient's own name for each PSFS activity


def score(definition: MeasureDefinition, answers: Mapping[str, int | None],
          labels: Mapping[str, str] | None = None) -> Score:
    """Score one completed questionnaire. An unanswered item is absent or None.

    Raises UnknownItemError / AnswerOutOfRangeError naming the item, ConflictingAnswersError
    when two parts of a one-of question are answered, ItemLabelError for a PSFS activity
    without a name, and TooManyMissingItemsError when the published missing-item rule leaves
    the measure's primary score (or, for KOOS, every subscale) unscorable.
    """
    items = {i.id: i for i in definition.items}
    given = _answered(definition, items, answers)
    names = _labels(definition, items, given, labels or {})
    _one_part_each(definition, items, given)

    values: dict[str, float] = {}
    short: list[ScoreSpec] = []
    for spec in definition.scores:
        if all(r in values for r in spec.requires) and (
                _answered_questions(spec, items, given) >= spec.min_answered):
            values[spec.code] = _compute(spec, items, given)
        elif spec.required:
            short.append(spec)

    missing = _missing_questions(definition, given)
    primary = definition.primary_score
    if (primary is not None and primary not in values) or not values:
        spec = definition.score_spec(primary) if primary else short[0]
        assert spec is not None
        raise TooManyMissingItemsError(
            f"{definition.name}: too many unanswered items to score {spec.label}. "
            f"{definition.missing_rule}",
            measure=definition.code, score=spec.code, missing_items=list(missing))
    return Score(measure=definition.code, version=definition.version, values=values,
                 not_scored=tuple(s.code for s in short), missing_items=missing,
                 answers=given, labels=names)


def _answered(definition: MeasureDefinition, items: Mapping[str, Item],
              answers: Mapping[str, int | None]) -> dict[str, int]:
    given: dict[str, int] = {}
    for item_id, answer in answers.items():
        item = items.get(item_id)
        if item is None:
            raise UnknownItemError(f"{definition.code} has no item {item_id!r}",
                                   measure=definition.code, item=item_id)
        if answer is None:
            continue
        # bool is an int in Python; True is not an answer on any form.
        if isinstance(answer, bool) or not isinstance(answer, int) or not item.allows(answer):
            raise AnswerOutOfRangeError(
                f"{item_id} ({item.label}): {answer!r} is not one of {item.allowed()}",
                measure=definition.code, item=item_id, allowed=item.allowed())
        given[item_id] = answer
    return given


def _labels(definition: MeasureDefinition, items: Mapping[str, Item], given: Mapping[str, int],
            labels: Mapping[str, str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for item_id, label in labels.items():
        item = items.get(item_id)
        if item is None:
            raise UnknownItemError(f"{definition.code} has no item {item_id!r}",
                                   measure=definition.code, item=item_id)
        if not item.patient_named:
            raise ItemLabelError(f"{item_id} is a fixed item: it takes no label",
                                 measure=definition.code, item=item_id)
        text = label.strip()
        if not text or len(text) > LABEL_MAX:
            raise ItemLabelError(f"{item_id}: name the activity in 1–{LABEL_MAX} characters",
                                 measure=definition.code, item=item_id)
        names[item_id] = text
    # A rating means nothing later without the activity it rated.
    for item_id in given:
        if items[item_id].patient_named and item_id not in names:
            raise ItemLabelError(f"{item_id}: name the activity the patient rated",
                                 measure=definition.code, item=item_id)
    return names


def _one_part_each(definition: MeasureDefinition, items: Mapping[str, Item],
                   given: Mapping[str, int]) -> None:
    parts: dict[str, list[str]] = {}
    for item_id in given:
        if (group := items[item_id].group) is not None:
            parts.setdefault(group, []).append(item_id)
    for group, answered in parts.items():
        if len(answered) > 1:
            raise ConflictingAnswersError(
                f"{group}: answer one of {', '.join(sorted(answered))}, not several",
                measure=definition.code, item=group, items=sorted(answered))


def _question(item: Item) -> str:
    return item.group or item.id


def _answered_questions(spec: ScoreSpec, items: Mapping[str, Item],
                        given: Mapping[str, int]) -> int:
    return len({_question(items[i]) for i in spec.items if i in given})


def _missing_questions(definition: MeasureDefinition, given: Mapping[str, int]) -> tuple[str, ...]:
    answered = {_question(i) for i in definition.items if i.id in given}
    questions = dict.fromkeys(_question(i) for i in definition.items)  # in form order
    return tuple(q for q in questions if q not in answered)


def _compute(spec: ScoreSpec, items: Mapping[str, Item], given: Mapping[str, int]) -> float:
    answered = [items[i] for i in spec.items if i in given]
    points = sum(i.points(given[i.id]) for i in answered)
    n = len(answered)
    match spec.rule:
        case "sum":
            value = Fraction(points)
        case "mean":
            value = Fraction(points, n)
        case "prorated_sum":
            # The mean of the answered items stands in for each missing one.
            value = Fraction(points * len(spec.items), n)
        case "percent" | "inverted_percent":
            # Each item's distance above its floor, over what the answered items could reach.
            got = points - sum(i.low for i in answered)
            possible = sum(i.high - i.low for i in answered)
            value = Fraction(got * 100, possible)
            if spec.rule == "inverted_percent":
                value = 100 - value
        case _:
            assert_never(spec.rule)
    return round_half_up(value, spec.decimals)


def round_half_up(value: Fraction, decimals: int) -> float:
    """Round as a clinician would on paper (35.55 → 35.6), not banker's rounding."""
    with localcontext() as ctx:
        ctx.prec = 40
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        return float(exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))
