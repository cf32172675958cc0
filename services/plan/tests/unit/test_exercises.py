"""The exercise library: the seed is valid and covers the §4 sites and every exercise of the
§5 worked example; an organization extends it or replaces a seeded exercise with its own;
an unknown exercise is refused; a prescription starts from the exercise's defaults, with
overrides, and is checked like any prescription."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from kinetic_contracts.problems import RuleViolationError
from plan.domain.exercises import (
    SEED,
    Exercise,
    InvalidExerciseError,
    Library,
    UnknownExerciseError,
)
from plan.domain.prescription import InvalidPrescriptionError, Prescription

TODAY = date(2025, 5, 5)
HIP_ABD = "hip_abductor_weakness"

# Assessment's driver library codes (CLINICAL.md §4), as plan receives them in the event.
DRIVER_CODES = ("hip_abductor_weakness", "quadriceps_weakness", "load_spike",
                "scapular_control_deficit", "thoracic_stiffness", "calf_endurance_deficit",
                "ankle_dorsiflexion_stiffness", "hip_mobility_deficit",
                "trunk_endurance_deficit", "fear_of_movement")

# Every exercise §5 names, with the stage it is prescribed in there.
WORKED_EXAMPLE = (("easy_run", 1), ("side_lying_hip_abduction", 1), ("wall_sit", 1),
                  ("banded_side_step", 2), ("cable_hip_abduction", 2), ("step_down", 2),
                  ("leg_press", 2), ("cable_hip_abduction", 3), ("single_leg_rdl", 3),
                  ("rear_foot_elevated_split_squat", 3), ("pogo_hops", 4),
                  ("single_leg_hops", 4), ("bounding", 4), ("tempo_run", 4), ("hill_run", 4))


def exercise(**changes) -> Exercise:
    fields = dict(code="nordic_curl", name="Nordic hamstring curl", region="knee",
                  equipment=("partner",), sets=3, reps=5, bodyweight=True, tempo="4-0-1",
                  progression="reps", instructions="Kneel, partner holds your ankles; lower "
                  "yourself forward slowly.", media_url="https://videos.clinic.example/nordic",
                  drivers=("hamstring_weakness",), stages=(3, 4))
    return Exercise(**{**fields, **changes})


# -- the seed -----------------------------------------------------------------------------------

def test_every_seeded_exercise_is_valid_and_its_defaults_make_a_prescription() -> None:
    library = Library.seeded()
    assert 30 <= len(SEED) <= 40
    assert len(set(library.codes)) == len(SEED)
    for ex in SEED:
        Exercise.model_validate(ex.model_dump())  # validated again from its data
        prescription = ex.prescription(TODAY)
        assert isinstance(prescription, Prescription)
        assert prescription.exercise == ex.code
        assert ex.instructions.strip()
        assert ex.media_url == f"https://media.kinetic.example/exercises/{ex.code}"


@pytest.mark.parametrize(("code", "stage"), WORKED_EXAMPLE)
def test_every_exercise_the_worked_example_names_is_seeded_for_its_stage(code: str,
                                                                           stage: int) -> None:
    assert Library.seeded().get(code).suits(stage)


@pytest.mark.parametrize("region", ["knee", "hip", "ankle", "shoulder", "trunk"])
def test_the_seed_has_stage_1_exercises_for_each_region_of_the_four_symptom_sites(
        region: str) -> None:
    assert Library.seeded().for_region(region, 1)


@pytest.mark.parametrize("driver", DRIVER_CODES)
def test_every_driver_of_the_driver_library_has_a_stage_1_exercise(driver: str) -> None:
    assert Library.seeded().for_driver(driver, 1)


def test_the_worked_example_defaults_match_its_prescriptions() -> None:
    library = Library.seeded()
    assert library.prescribe("side_lying_hip_abduction", TODAY).describe() == "3×15 @ BW, 2-1-2"
    assert library.prescribe("cable_hip_abduction", TODAY).describe() == "3×12 @ 4 kg, 2-0-2"
    wall_sit = library.get("wall_sit")
    assert (wall_sit.sets, wall_sit.reps, wall_sit.reps_unit) == (5, 30, "seconds")
    assert library.get("easy_run").reps_unit == "minutes"
    assert library.get("bounding").reps_unit == "metres"


# -- looking up ---------------------------------------------------------------------------------

def test_for_driver_lists_the_exercises_of_a_driver_that_suit_the_stage_in_library_order(
        ) -> None:
    library = Library.seeded()
    stage_1 = [e.code for e in library.for_driver(HIP_ABD, 1)]
    assert stage_1[:2] == ["side_lying_hip_abduction", "clamshell"]
    assert "cable_hip_abduction" not in stage_1
    stage_3 = [e.code for e in library.for_driver(HIP_ABD, 3)]
    assert "cable_hip_abduction" in stage_3 and "side_lying_hip_abduction" not in stage_3
    assert all(HIP_ABD in e.drivers for e in library.for_driver(HIP_ABD, 2))
    assert library.for_driver("no_such_driver", 1) == ()


def test_an_unknown_exercise_is_refused_naming_the_code() -> None:
    with pytest.raises(UnknownExerciseError) as caught:
        Library.seeded().get("underwater_basket_weaving")
    assert isinstance(caught.value, RuleViolationError)
    assert caught.value.type_slug == "unknown-exercise"
    assert caught.value.extensions == {"exercise": "underwater_basket_weaving"}
    with pytest.raises(UnknownExerciseError):
        Library.seeded().prescribe("underwater_basket_weaving", TODAY)


# -- an organization's library ------------------------------------------------------------------

def test_an_organization_adds_its_own_exercise_to_the_library() -> None:
    seeded = Library.seeded()
    extended = seeded.with_exercise(exercise())
    assert extended.get("nordic_curl").name == "Nordic hamstring curl"
    assert extended.codes == (*seeded.codes, "nordic_curl")
    assert [e.code for e in extended.for_driver("hamstring_weakness", 3)] == ["nordic_curl"]
    assert "nordic_curl" not in Library.seeded().codes  # the seed itself is unchanged


def test_an_organization_replaces_a_seeded_exercise_with_its_own_version_in_place() -> None:
    seeded = Library.seeded()
    own = seeded.get("side_lying_hip_abduction").model_copy(
        update={"sets": 2, "reps": 20, "media_url": "https://videos.clinic.example/sla"})
    library = seeded.with_exercise(Exercise.model_validate(own.model_dump()))
    assert library.codes == seeded.codes
    assert library.for_driver(HIP_ABD, 1)[0].media_url == "https://videos.clinic.example/sla"
    assert library.prescribe("side_lying_hip_abduction", TODAY).describe() == "2×20 @ BW, 2-1-2"


def test_a_library_refuses_two_exercises_with_one_code() -> None:
    with pytest.raises(ValidationError):
        Library(exercises=(exercise(), exercise(name="Nordic, again")))


@pytest.mark.parametrize("changes", [
    {"code": "Nordic Curl"}, {"region": "Lower leg"}, {"equipment": ("Swiss ball",)},
    {"drivers": ("Hamstring weakness",)}, {"stages": ()}, {"stages": (0, 1)},
    {"stages": (4, 5)}, {"stages": (3, 3)}, {"name": "  "}, {"instructions": ""},
    {"media_url": "ftp://videos.clinic.example/nordic"}, {"media_url": "not a link"},
])
def test_an_exercise_that_is_not_well_formed_is_refused(changes: dict) -> None:
    with pytest.raises(InvalidExerciseError) as caught:
        exercise(**changes)
    assert caught.value.extensions["field"].startswith(next(iter(changes)))


@pytest.mark.parametrize(("changes", "field"), [
    ({"load_kg": -2.0, "bodyweight": False}, "load_kg"), ({"sets": 0}, "sets"),
    ({"tempo": "slow"}, "tempo"), ({"frequency_per_week": 0}, "frequency_per_week"),
])
def test_an_exercise_whose_defaults_cannot_be_prescribed_is_refused(changes: dict,
                                                                    field: str) -> None:
    with pytest.raises(InvalidPrescriptionError) as caught:
        exercise(**changes)
    assert caught.value.extensions["field"] == field


# -- prescribing --------------------------------------------------------------------------------

def test_prescribe_builds_the_prescription_from_the_exercises_defaults() -> None:
    p = Library.seeded().prescribe("cable_hip_abduction", TODAY, driver=HIP_ABD)
    assert (p.exercise, p.sets, p.reps, p.load_kg, p.bodyweight, p.tempo) == (
        "cable_hip_abduction", 3, 12, 4, False, "2-0-2")
    assert (p.rest_seconds, p.frequency_per_week, p.progression, p.load_increment_kg) == (
        90, 3, "load", 1)
    assert (p.driver, p.changed_on) == (HIP_ABD, TODAY)


def test_prescribe_applies_the_overrides_over_the_defaults() -> None:
    p = Library.seeded().prescribe("cable_hip_abduction", TODAY, driver=HIP_ABD, sets=3, reps=8,
                                   load_kg=6, tempo="3-0-1", rest_seconds=120)
    assert p.describe() == "3×8 @ 6 kg, 3-0-1"
    assert p.rest_seconds == 120 and p.frequency_per_week == 3  # the rest stays default


def test_prescribe_without_a_driver_is_symptom_site_work() -> None:
    assert Library.seeded().prescribe("wall_sit", TODAY).driver is None


def test_a_load_given_to_a_bodyweight_exercise_makes_it_loaded() -> None:
    p = Library.seeded().prescribe("side_lying_hip_abduction", TODAY, load_kg=1.0)
    assert (p.bodyweight, p.load_kg) == (False, 1.0)
    with pytest.raises(InvalidPrescriptionError):  # unless it is said to stay bodyweight
        Library.seeded().prescribe("side_lying_hip_abduction", TODAY, load_kg=1.0,
                                   bodyweight=True)


def test_a_negative_load_override_is_refused_as_an_invalid_prescription() -> None:
    with pytest.raises(InvalidPrescriptionError) as caught:
        Library.seeded().prescribe("cable_hip_abduction", TODAY, load_kg=-4.0)
    assert caught.value.extensions["field"] == "load_kg"


@pytest.mark.parametrize("field", ["weight", "exercise", "changed_on"])
def test_an_override_that_is_not_a_prescription_parameter_is_refused(field: str) -> None:
    with pytest.raises(InvalidPrescriptionError) as caught:
        Library.seeded().prescribe("cable_hip_abduction", TODAY, **{field: 1})
    assert caught.value.extensions["field"] == field


def test_a_driver_that_is_not_a_code_is_refused() -> None:
    with pytest.raises(InvalidPrescriptionError):
        Library.seeded().prescribe("cable_hip_abduction", TODAY, driver="Hip weakness")
