"""Compatibility of a current JSON Schema with the one released for the same event type.

An event store keeps every event ever published, and partners keep consumers built against
the released schema, so within one version (``...v1``) a schema may only grow. This module
lists what would break either side:

* a property removed (old consumers read it);
* a property's type changed, format and nullability included (both sides disagree on values);
* a property newly required, whether it existed before or is new (old events lack it);
* a property no longer required (old consumers rely on its presence);
* an enum value or a const removed or changed (old events carry it);
* a constraint narrowed: a larger minimum/minLength/minItems, a smaller maximum/maxLength/
  maxItems, a new or changed pattern or multipleOf, or an object closed to extra properties
  (old events may fall outside).

Adding an optional property is fine; so are changes to titles, descriptions and defaults.
A new version of a type (``...v2``) is a new schema file and is never compared with v1: the
comparison is by file name. ``check_released`` also reports a released schema whose current
file disappeared, since a released type keeps being readable until consumers moved on.

Run ``python -m kinetic_contracts.compat RELEASED_DIR CURRENT_DIR`` to print the report.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

Schema = dict[str, Any]

# Keywords whose larger value admits fewer instances, and those whose smaller value does.
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_EXACT_CONSTRAINTS = ("pattern", "multipleOf")


class ChangeKind(StrEnum):
    SCHEMA_REMOVED = "schema-removed"
    PROPERTY_REMOVED = "property-removed"
    TYPE_CHANGED = "type-changed"
    BECAME_REQUIRED = "became-required"
    NO_LONGER_REQUIRED = "no-longer-required"
    ENUM_VALUE_REMOVED = "enum-value-removed"
    CONSTRAINT_NARROWED = "constraint-narrowed"


@dataclass(frozen=True)
class BreakingChange:
    kind: ChangeKind
    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.kind} ({self.detail})"


def breaking_changes(released: Schema, current: Schema) -> list[BreakingChange]:
    """Every change from ``released`` to ``current`` that breaks a producer or consumer."""
    return _Comparison(released, current).run()


def check_released(released_dir: Path, current_dir: Path) -> dict[str, list[BreakingChange]]:
    """Compare every released schema file with the current file of the same name.

    Returns the breaking changes by file name, for the files that have any. Files only in
    ``current_dir`` (new types, new versions, the index) are not compared.
    """
    report: dict[str, list[BreakingChange]] = {}
    for released_path in sorted(released_dir.glob("*.json")):
        current_path = current_dir / released_path.name
        if not current_path.is_file():
            report[released_path.name] = [BreakingChange(
                ChangeKind.SCHEMA_REMOVED, "$", f"{released_path.name} has no current schema")]
            continue
        changes = breaking_changes(_load(released_path), _load(current_path))
        if changes:
            report[released_path.name] = changes
    return report


def _load(path: Path) -> Schema:
    return json.loads(path.read_text(encoding="utf-8"))


class _Comparison:
    def __init__(self, released_root: Schema, current_root: Schema) -> None:
        self._roots = (released_root, current_root)
        self._changes: list[BreakingChange] = []
        self._open: set[tuple[str, str]] = set()

    def run(self) -> list[BreakingChange]:
        self._node("$", *self._roots)
        return self._changes

    def _add(self, kind: ChangeKind, path: str, detail: str) -> None:
        self._changes.append(BreakingChange(kind, path, detail))

    def _node(self, path: str, released: Schema, current: Schema) -> None:
        refs = (released.get("$ref", ""), current.get("$ref", ""))
        if any(refs):
            # Recursive models reference themselves: stop where a pair is already open.
            if refs in self._open:
                return
            self._open.add(refs)
        try:
            self._resolved(path, _resolve(self._roots[0], released),
                           _resolve(self._roots[1], current))
        finally:
            self._open.discard(refs)

    def _resolved(self, path: str, released: Schema, current: Schema) -> None:
        released_types = _type_signature(self._roots[0], released)
        current_types = _type_signature(self._roots[1], current)
        if released_types != current_types:
            self._add(ChangeKind.TYPE_CHANGED, path,
                      f"{_show(released_types)} -> {_show(current_types)}")
            return  # the values differ in kind: finer differences would only repeat that

        self._enum(path, released, current)
        self._constraints(path, released, current)

        released_branches = _branches(released)
        current_branches = _branches(current)
        if released_branches is not None and current_branches is not None:
            # Same signature overall; pair each released branch with the current branch of
            # the same kind, so that reordering a union is not a change.
            unmatched = list(current_branches)
            for index, old in enumerate(released_branches):
                old_signature = _type_signature(self._roots[0], old)
                for new in unmatched:
                    if _type_signature(self._roots[1], new) == old_signature:
                        unmatched.remove(new)
                        self._node(f"{path}|{index}", old, new)
                        break
            return

        if "properties" in released or "properties" in current:
            self._object(path, released, current)
        if isinstance(released.get("items"), dict) and isinstance(current.get("items"), dict):
            self._node(f"{path}[]", released["items"], current["items"])

    def _object(self, path: str, released: Schema, current: Schema) -> None:
        released_props: Schema = released.get("properties", {})
        current_props: Schema = current.get("properties", {})
        released_required = set(released.get("required", ()))
        current_required = set(current.get("required", ()))

        for name in sorted(released_props):
            if name not in current_props:
                self._add(ChangeKind.PROPERTY_REMOVED, f"{path}.{name}", "property removed")
                continue
            self._node(f"{path}.{name}", released_props[name], current_props[name])

        for name in sorted(current_required - released_required):
            detail = ("required property added" if name not in released_props
                      else "optional property became required")
            self._add(ChangeKind.BECAME_REQUIRED, f"{path}.{name}", detail)
        for name in sorted((released_required - current_required) & set(current_props)):
            self._add(ChangeKind.NO_LONGER_REQUIRED, f"{path}.{name}",
                      "required property became optional")

        if released.get("additionalProperties", True) is not False and \
                current.get("additionalProperties", True) is False:
            self._add(ChangeKind.CONSTRAINT_NARROWED, path, "additional properties now forbidden")

    def _enum(self, path: str, released: Schema, current: Schema) -> None:
        old_values, new_values = _allowed_values(released), _allowed_values(current)
        if old_values is None:
            return
        if new_values is None:
            return  # the set of values was opened up: every released value is still valid
        removed = [value for value in old_values if value not in new_values]
        if removed:
            self._add(ChangeKind.ENUM_VALUE_REMOVED, path,
                      "values no longer allowed: " + ", ".join(json.dumps(v) for v in removed))

    def _constraints(self, path: str, released: Schema, current: Schema) -> None:
        for keyword in _LOWER_BOUNDS:
            if keyword in current and (keyword not in released or
                                       current[keyword] > released[keyword]):
                self._add(ChangeKind.CONSTRAINT_NARROWED, path,
                          f"{keyword} {released.get(keyword, 'unset')} -> {current[keyword]}")
        for keyword in _UPPER_BOUNDS:
            if keyword in current and (keyword not in released or
                                       current[keyword] < released[keyword]):
                self._add(ChangeKind.CONSTRAINT_NARROWED, path,
                          f"{keyword} {released.get(keyword, 'unset')} -> {current[keyword]}")
        for keyword in _EXACT_CONSTRAINTS:
            if keyword in current and current[keyword] != released.get(keyword):
                self._add(ChangeKind.CONSTRAINT_NARROWED, path,
                          f"{keyword} {released.get(keyword, 'unset')} -> {current[keyword]}")


def _resolve(root: Schema, node: Schema) -> Schema:
    """Follow local ``$ref`` chains (``#/$defs/...``) within the node's own document."""
    hops = 0
    while "$ref" in node and isinstance(node["$ref"], str) and node["$ref"].startswith("#/"):
        target: Any = root
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        # Sibling keywords of $ref (2020-12) add to the target; they are kept.
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        hops += 1
        if hops > 64:
            raise ValueError(f"$ref cycle without structure at {node!r}")
    return node


def _branches(node: Schema) -> list[Schema] | None:
    for keyword in ("anyOf", "oneOf"):
        if keyword in node:
            return [branch for branch in node[keyword] if branch.get("type") != "null"]
    return None


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string",
               type(None): "null", list: "array", dict: "object"}


def _type_signature(root: Schema, node: Schema) -> frozenset[str]:
    """The kinds of value a node admits, as ``type`` or ``type:format`` names.

    Unions are flattened, so ``X | None`` and ``X`` differ (nullability is part of the type)
    while a reordering of union branches does not.
    """
    node = _resolve(root, node)
    for keyword in ("anyOf", "oneOf"):
        if keyword in node:
            return frozenset().union(*(_type_signature(root, b) for b in node[keyword]))
    declared = node.get("type")
    if declared is None:
        values = _allowed_values(node)
        if values is None:
            return frozenset({"any"})
        declared = sorted({_JSON_TYPES[type(v)] for v in values})
    names = declared if isinstance(declared, list) else [declared]
    fmt = node.get("format")
    return frozenset(f"{name}:{fmt}" if fmt and name != "null" else name for name in names)


def _allowed_values(node: Schema) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    if "enum" in node:
        return list(node["enum"])
    return None


def _show(signature: frozenset[str]) -> str:
    return " | ".join(sorted(signature))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kinetic_contracts.compat",
                                     description="List breaking changes since the release.")
    parser.add_argument("released", type=Path, help="directory of released schemas")
    parser.add_argument("current", type=Path, help="directory of current schemas")
    args = parser.parse_args(argv)
    report = check_released(args.released, args.current)
    for name, changes in report.items():
        for change in changes:
            print(f"{name} {change}")
    return 1 if report else 0


if __name__ == "__main__":
    sys.exit(main())
