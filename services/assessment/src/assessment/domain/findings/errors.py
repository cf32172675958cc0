"""Why a set of objective findings is refused (each a 422 problem at the HTTP edge). Every
error names the finding and the field, so the form can point at the box to correct."""

from kinetic_contracts.problems import RuleViolationError


class ImplausibleFindingError(RuleViolationError):
    type_slug = "implausible-finding"
    title = "A finding's value is outside the range it can take"


class InvalidFindingError(RuleViolationError):
    type_slug = "invalid-finding"
    title = "A finding is incomplete or badly named"


class DuplicateFindingError(RuleViolationError):
    type_slug = "duplicate-finding"
    title = "Two findings share one finding id"


class UndefinedSymmetryIndexError(RuleViolationError):
    type_slug = "lsi-undefined"
    title = "The limb symmetry index is undefined when the reference side scores zero"
