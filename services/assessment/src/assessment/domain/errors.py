"""Assessment's business rejections (mapped to problem+json at the HTTP edge)."""

from kinetic_contracts.problems import ConflictError, NotFoundError, RuleViolationError


class EvaluationNotFoundError(NotFoundError):
    type_slug = "evaluation-not-found"
    title = "No such evaluation"


class EpisodeNotFoundError(NotFoundError):
    type_slug = "episode-not-found"
    title = "No such episode of care"


class EvaluationExistsError(ConflictError):
    type_slug = "evaluation-exists"
    title = "The evaluation already exists"


class EvaluationClosedError(ConflictError):
    type_slug = "evaluation-closed"
    title = "A completed evaluation never changes: add an addendum"


class EvaluationIncompleteError(RuleViolationError):
    type_slug = "evaluation-incomplete"
    title = "The evaluation is not complete"


class RedFlagsPositiveError(RuleViolationError):
    type_slug = "red-flags-positive"
    title = "Red flags are positive: refer the patient out"


class BaselineMissingError(RuleViolationError):
    type_slug = "baseline-missing"
    title = "A reassessment needs a completed initial evaluation"


class UnknownMeasureError(RuleViolationError):
    type_slug = "unknown-measure"
    title = "No such outcome measure"


class UnknownFindingError(RuleViolationError):
    type_slug = "unknown-finding"
    title = "A driver cites a finding that was not recorded"


class EvaluationChangedError(ConflictError):
    type_slug = "evaluation-changed"
    title = "The evaluation changed since you loaded it (another tab?): reload it"


class EpisodeTypeContradictedError(RuleViolationError):
    type_slug = "episode-type-contradicts-criteria"
    title = "The episode type contradicts the recorded criteria (CLINICAL.md §3.1)"


class OnsetInFutureError(RuleViolationError):
    type_slug = "onset-in-future"
    title = "The symptoms cannot begin after the evaluation"


class UnknownThresholdKeyError(RuleViolationError):
    type_slug = "unknown-threshold-key"
    title = "No score reads this threshold override"


class DuplicateThresholdError(RuleViolationError):
    type_slug = "duplicate-threshold"
    title = "Two threshold overrides set the same score"
