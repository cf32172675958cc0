"""The committed contract artefacts are exactly what regeneration produces today.

If a model changes and nobody regenerates, partners read a stale schema: this test is the
guard. It regenerates into a temporary directory with the same code as `make contracts`.
"""

from __future__ import annotations

from pathlib import Path

from kinetic_contracts import build
from kinetic_infra import contracts_build

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
HINT = "the committed contracts are out of date: run `make contracts` and commit the result"


def _tree(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.json"))}


def test_generator_targets_the_committed_directory() -> None:
    assert contracts_build.contracts_dir() == CONTRACTS
    assert build.default_out_dir() == CONTRACTS / "schemas"


def test_committed_schemas_and_asyncapi_equal_a_fresh_generation(tmp_path: Path) -> None:
    contracts_build.build(tmp_path)

    committed, fresh = _tree(CONTRACTS / "schemas"), _tree(tmp_path / "schemas")
    assert sorted(committed) == sorted(fresh), HINT
    changed = [name for name in fresh if committed[name] != fresh[name]]
    assert not changed, f"{HINT} (differs: {', '.join(changed)})"

    committed_asyncapi = (CONTRACTS / contracts_build.ASYNCAPI_FILE).read_text(encoding="utf-8")
    fresh_asyncapi = (tmp_path / contracts_build.ASYNCAPI_FILE).read_text(encoding="utf-8")
    assert committed_asyncapi == fresh_asyncapi, f"{HINT} (differs: asyncapi.json)"


def test_schema_rendering_is_deterministic_and_newline_terminated() -> None:
    first, second = build.render(), build.render()
    assert first == second
    for name, text in first.items():
        assert text.endswith("}\n"), name
        assert not text.endswith("\n\n"), name


def test_writing_removes_files_that_are_no_longer_generated(tmp_path: Path) -> None:
    stale = tmp_path / "kinetic.booking.retired.thing.v1.json"
    stale.write_text("{}\n", encoding="utf-8")

    build.write(tmp_path)

    assert not stale.exists()
    assert build.differences(tmp_path) == []
    (tmp_path / build.INDEX_FILE).write_text("{}\n", encoding="utf-8")
    assert build.differences(tmp_path) == [build.INDEX_FILE]


def test_the_changelog_names_every_published_event_type() -> None:
    from pathlib import Path

    from kinetic_contracts.registry import EVENT_MODELS

    changelog = (Path(__file__).parents[2] / "contracts" / "CHANGELOG.md").read_text()
    missing = [t for t in EVENT_MODELS if f"`{t}`" not in changelog]
    assert missing == [], f"add to contracts/CHANGELOG.md: {missing}"
