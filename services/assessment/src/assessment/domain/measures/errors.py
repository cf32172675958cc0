"""Why a set of answers, or a comparison of scores, is refused (each a 422 problem).

An unknown measure code is refused by the caller (``assessment.domain.errors``): this package
only ever receives a definition it already holds.
"""

from kinetic_contracts.problems import RuleViolationError


class UnknownItemError(RuleViolationError):
    type_slug = "unknown-measure-item"
    title = "The measure has no such item"


class AnswerOutOfRangeError(RuleViolationError):
    type_slug = "answer-out-of-range"
    title = "An answer is outside the item's allowed values"


class TooManyMissingItemsError(RuleViolationError):
    type_slug = "too-many-missing-items"
    title = "Too many items are unanswered for the measure to be scored"


class ConflictingAnswersError(RuleViolationError):
    type_slug = "conflicting-answers"
    title = "Only one part of the question may be answered"


class ItemLabelError(RuleViolationError):
    type_slug = "item-label"
    title = "Patient-named items need a label; other items take none"


class UnknownScoreError(RuleViolationError):
    type_slug = "unknown-score"
    title = "The measure reports no such score"


class ScoreOutOfRangeError(RuleViolationError):
    type_slug = "score-out-of-range"
    title = "A score is outside the measure's range"


class NotComparedToBaselineError(RuleViolationError):
    type_slug = "not-compared-to-baseline"
    title = "This measure already rates change; it is not compared with a baseline"
