"""Domain error kinds, shared so that every service's errors map to the same documented
problem types (RFC 9457). Services subclass these in ``domain/errors.py``; the HTTP edge maps
the kind to a status once (infra/http/problems.py). No HTTP here: domain code raises these."""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """A command was refused on business grounds. ``type_slug`` names a documented problem type
    (``/problems/<slug>``); ``detail`` is safe to show to the caller."""

    type_slug: ClassVar[str] = "domain-error"
    title: ClassVar[str] = "The request was refused"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class NotFoundError(DomainError):
    type_slug = "not-found"
    title = "Not found"


class ConflictError(DomainError):
    type_slug = "conflict"
    title = "Conflict with the current state"


class RuleViolationError(DomainError):
    type_slug = "rule-violation"
    title = "A business rule was violated"


class IdempotencyKeyReusedError(RuleViolationError):
    """An Idempotency-Key (or an id the caller chose) was sent before with a different
    request: answering the first request's result would silently drop the second."""

    type_slug = "idempotency-key-reused"
    title = "The Idempotency-Key was sent before with a different request"


class PreconditionRequiredError(DomainError):
    """A change that would overwrite what others may have changed since the caller read it
    needs the version read (If-Match): sent blind, it would undo their change unseen."""

    type_slug = "if-match-required"
    title = "This change needs the version you read, in If-Match"
