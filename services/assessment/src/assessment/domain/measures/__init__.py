"""Outcome measures (CLINICAL.md §1): the catalog as data and pure scoring.

``score`` turns a clinician's item answers into the measure's published score(s);
``change`` reads two scores against the MCID/MDC in the measure's good direction;
``raised_flags`` reports level cut-offs (TSK-17 > 37). Thresholds are defaults from the
catalog (``thresholds_for``) that an organization may replace with its own.
"""

from assessment.domain.measures.catalog import CATALOG, thresholds_for
from assessment.domain.measures.change import Change, change
from assessment.domain.measures.definition import (
    Cutoff,
    Direction,
    Item,
    MeasureDefinition,
    MeasureThresholds,
    ScoreSpec,
    ScoringRule,
)
from assessment.domain.measures.errors import (
    AnswerOutOfRangeError,
    ConflictingAnswersError,
    ItemLabelError,
    NotComparedToBaselineError,
    ScoreOutOfRangeError,
    TooManyMissingItemsError,
    UnknownItemError,
    UnknownScoreError,
)
from assessment.domain.measures.flags import raised_flags
from assessment.domain.measures.scoring import Score, score

__all__ = [
    "CATALOG",
    "AnswerOutOfRangeError",
    "Change",
    "ConflictingAnswersError",
    "Cutoff",
    "Direction",
    "Item",
    "ItemLabelError",
    "MeasureDefinition",
    "MeasureThresholds",
    "NotComparedToBaselineError",
    "Score",
    "ScoreOutOfRangeError",
    "ScoreSpec",
    "ScoringRule",
    "TooManyMissingItemsError",
    "UnknownItemError",
    "UnknownScoreError",
    "change",
    "raised_flags",
    "score",
    "thresholds_for",
]
