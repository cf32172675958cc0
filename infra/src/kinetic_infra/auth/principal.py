"""Who is calling: a staff member of one organization, with roles per location.

``operator`` is organization-wide (it runs every location); the other roles are held at
named locations. Authorization reads this object only; it never trusts a tenant or a
location named by the request itself.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


class Role(enum.StrEnum):
    OPERATOR = "operator"
    FRONT_DESK = "front_desk"
    THERAPIST = "therapist"
    BILLING = "billing"


ORG_WIDE = frozenset({Role.OPERATOR})


@dataclass(frozen=True)
class Principal:
    staff_id: str
    name: str
    tenant_id: UUID
    org_roles: frozenset[Role] = frozenset()
    location_roles: Mapping[UUID, frozenset[Role]] = field(default_factory=dict)

    @property
    def roles(self) -> frozenset[Role]:
        every = set(self.org_roles)
        for roles in self.location_roles.values():
            every |= roles
        return frozenset(every)

    def has_any(self, roles: Iterable[Role]) -> bool:
        return bool(self.roles & set(roles))

    def can_at(self, location_id: UUID | None, roles: Iterable[Role]) -> bool:
        """Holds one of ``roles`` at this location (an operator holds them everywhere)."""
        wanted = set(roles)
        if self.org_roles & wanted:
            return True
        return location_id is not None and bool(self.location_roles.get(location_id, set())
                                                & wanted)

    def locations_for(self, roles: Iterable[Role]) -> frozenset[UUID] | None:
        """The locations where one of ``roles`` is held; None means every location."""
        wanted = set(roles)
        if self.org_roles & wanted:
            return None
        return frozenset(loc for loc, held in self.location_roles.items() if held & wanted)

    def role_label(self) -> str:
        return ",".join(sorted(r.value for r in self.roles)) or "none"

    # -- token claims --------------------------------------------------------------------
    def claims(self) -> dict[str, Any]:
        return {
            "sub": self.staff_id,
            "name": self.name,
            "tenant": str(self.tenant_id),
            "roles": [{"role": r.value} for r in sorted(self.org_roles)]
            + [{"role": r.value, "location": str(loc)}
               for loc, held in self.location_roles.items() for r in sorted(held)],
        }

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Principal:
        org: set[Role] = set()
        by_location: dict[UUID, set[Role]] = {}
        for grant in claims.get("roles", []):
            role = Role(grant["role"])
            location = grant.get("location")
            if location is None:
                if role not in ORG_WIDE:
                    raise ValueError(f"role {role} must name a location")
                org.add(role)
            else:
                by_location.setdefault(UUID(location), set()).add(role)
        return cls(staff_id=str(claims["sub"]), name=str(claims.get("name", claims["sub"])),
                   tenant_id=UUID(claims["tenant"]), org_roles=frozenset(org),
                   location_roles={k: frozenset(v) for k, v in by_location.items()})
