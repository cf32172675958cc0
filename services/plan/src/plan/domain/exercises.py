"""The exercise library: what a therapist can prescribe, each exercise with the parameters a
first prescription starts from, plain instructions for the patient, the drivers it loads and
the stages (CLINICAL.md §3.3) it suits. ``SEED`` covers the four §4 symptom sites (anterior
knee, rotator cuff, Achilles, low back) and every exercise the §5 worked example names; an
organization extends it with its own exercises or its own version of a seeded one.

The defaults are checked by building a ``Prescription`` from them, so an exercise whose
defaults could never be prescribed (a negative load, tempo "fast") is refused with the same
422 a prescription gets. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from kinetic_contracts.problems import RuleViolationError
from plan.domain.prescription import (
    CODE,
    CODE_MAX,
    DEFAULT_LOAD_INCREMENT_KG,
    InvalidPrescriptionError,
    Prescription,
    ProgressionRule,
)
from plan.domain.stages import DEFAULT_STAGES

# What one "rep" of the prescription counts. A Prescription has sets × reps only, so a hold
# (wall sit 5×30 s), a run (1×15 min) or a bound (3×20 m) keeps its unit here, where the
# patient's instructions and the screen can say it.
RepsUnit = Literal["reps", "seconds", "minutes", "metres"]

# Stage positions, from 1 (calm), as milestones and the stall rules count them.
STAGE_COUNT = len(DEFAULT_STAGES)
NAME_MAX = 100
TEXT_MAX = 2000
URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
# The placeholder links seeded exercises carry; an organization replaces them with its own.
MEDIA_BASE = "https://media.kinetic.example/exercises/"

# Parameters a prescription may change from the exercise's defaults. The exercise, the date
# and the driver are the prescribe call's own arguments, not overrides.
OVERRIDABLE = frozenset({"sets", "reps", "load_kg", "bodyweight", "tempo", "rest_seconds",
                         "frequency_per_week", "progression", "load_increment_kg"})


class InvalidExerciseError(RuleViolationError):
    type_slug = "invalid-exercise"
    title = "The exercise is not valid"


class UnknownExerciseError(RuleViolationError):
    type_slug = "unknown-exercise"
    title = "No such exercise in the organization's library"


def _refuse(field: str, message: str, value: Any) -> None:
    raise InvalidExerciseError(f"{field}: {message}", field=field, value=value)


def _check_code(field: str, value: str) -> None:
    if not CODE.match(value) or len(value) > CODE_MAX:
        _refuse(field, f"is a code in lower case with underscores (e.g. cable_hip_abduction), "
                f"not {value!r}", value)


class Exercise(BaseModel):
    """One exercise of the library with its default prescription."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str  # the Prescription.exercise it is prescribed as
    name: str
    region: str  # "hip", "knee", "ankle", "shoulder", "trunk", "whole_body"…
    equipment: tuple[str, ...] = ()  # codes ("cable", "band"); () for none
    sets: int
    reps: int
    reps_unit: RepsUnit = "reps"
    load_kg: float = 0.0
    bodyweight: bool = False
    tempo: str | None = None
    rest_seconds: int = 60
    frequency_per_week: int = 3
    progression: ProgressionRule = "load"
    load_increment_kg: float = DEFAULT_LOAD_INCREMENT_KG
    instructions: str  # plain text for the patient
    media_url: str | None = None
    drivers: tuple[str, ...] = ()  # driver codes it loads (assessment's driver library)
    stages: tuple[int, ...]  # stage positions it suits, 1–4

    @field_validator("stages")
    @classmethod
    def _sorted_stages(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(sorted(v))

    @model_validator(mode="after")
    def _validate(self) -> Self:
        _check_code("code", self.code)
        _check_code("region", self.region)
        for i, item in enumerate(self.equipment):
            _check_code(f"equipment[{i}]", item)
        for i, driver in enumerate(self.drivers):
            _check_code(f"drivers[{i}]", driver)
        for field, text, limit in (("name", self.name, NAME_MAX),
                                   ("instructions", self.instructions, TEXT_MAX)):
            if not text.strip() or len(text) > limit:
                _refuse(field, f"is 1–{limit} characters of text", text[:limit])
        if not self.stages or len(set(self.stages)) != len(self.stages) or not all(
                1 <= s <= STAGE_COUNT for s in self.stages):
            _refuse("stages", f"lists the stages it suits, each once, from 1 to {STAGE_COUNT}",
                    list(self.stages))
        if self.media_url is not None and (
                len(self.media_url) > TEXT_MAX or not URL.match(self.media_url)):
            _refuse("media_url", "is an http(s) link", self.media_url[:TEXT_MAX])
        # The defaults must make a valid prescription: otherwise prescribing the exercise
        # unchanged would fail in the therapist's hands instead of here.
        self.prescription(date.min)
        return self

    def prescription(self, on: date, driver: str | None = None, **overrides: Any
                     ) -> Prescription:
        """The default prescription with ``overrides`` applied, starting ``on``. A load given
        to a bodyweight exercise makes it loaded (an ankle weight on side-lying abduction)
        unless ``bodyweight`` is given too."""
        for field in overrides:
            if field not in OVERRIDABLE:
                raise InvalidPrescriptionError(
                    f"{field}: is not a prescription parameter; one of "
                    f"{', '.join(sorted(OVERRIDABLE))}", field=field)
        params = {field: getattr(self, field) for field in OVERRIDABLE}
        load = overrides.get("load_kg")
        if isinstance(load, int | float) and load > 0 and "bodyweight" not in overrides:
            params["bodyweight"] = False
        return Prescription(**{**params, **overrides}, exercise=self.code, driver=driver,
                            changed_on=on)

    def suits(self, stage: int) -> bool:
        return stage in self.stages


def _ex(code: str, name: str, region: str, *, stages: Iterable[int],
        drivers: Iterable[str] = (), equipment: Iterable[str] = (), **params: Any) -> Exercise:
    # Seeded exercises link to the placeholder media path of their code.
    return Exercise(code=code, name=name, region=region, stages=tuple(stages),
                    drivers=tuple(drivers), equipment=tuple(equipment),
                    media_url=f"{MEDIA_BASE}{code}", **params)


HIP_ABD = "hip_abductor_weakness"
QUADS = "quadriceps_weakness"
LOAD_SPIKE = "load_spike"
SCAPULA = "scapular_control_deficit"
THORACIC = "thoracic_stiffness"
CALF = "calf_endurance_deficit"
ANKLE_DF = "ankle_dorsiflexion_stiffness"
HIP_MOBILITY = "hip_mobility_deficit"
TRUNK = "trunk_endurance_deficit"
FEAR = "fear_of_movement"

# In the order a draft picks from: for a driver and a stage, the first suitable exercises come
# first, so the gentlest options of a site lead its section. The low-back section precedes
# the shoulder's so that "trunk" work for a sore back is not thoracic mobility.
SEED: tuple[Exercise, ...] = (
    # -- anterior knee (patellofemoral pain, §4 and §5) ---------------------------------------
    _ex("side_lying_hip_abduction", "Side-lying hip abduction", "hip", stages=(1, 2),
        drivers=(HIP_ABD,), sets=3, reps=15, bodyweight=True, tempo="2-1-2",
        progression="reps",
        instructions="Lie on your side, bottom knee bent. Keep the top leg straight and in "
                     "line with your body, toes pointing forward, and lift it slowly. Pause, "
                     "then lower slowly. Do not roll backwards."),
    _ex("clamshell", "Clamshell", "hip", stages=(1, 2), drivers=(HIP_ABD,), equipment=("band",),
        sets=3, reps=15, bodyweight=True, tempo="2-1-2", progression="complexity",
        instructions="Lie on your side, knees bent and a band round your thighs. Keep your "
                     "feet together and open the top knee without rolling your hips back."),
    _ex("glute_bridge", "Glute bridge", "hip", stages=(1, 2), drivers=(HIP_ABD, TRUNK),
        sets=3, reps=12, bodyweight=True, tempo="2-1-2", progression="complexity",
        instructions="Lie on your back, knees bent, feet flat. Squeeze your buttocks and lift "
                     "your hips until your body is straight from knees to shoulders, then "
                     "lower slowly."),
    _ex("wall_sit", "Wall sit (60°)", "knee", stages=(1, 2), drivers=(QUADS,),
        equipment=("wall",), sets=5, reps=30, reps_unit="seconds", bodyweight=True,
        rest_seconds=60, progression="reps",
        instructions="Stand with your back against a wall and slide down until your knees are "
                     "bent about 60° (not a full right angle). Hold, breathing normally. Pain "
                     "up to 3/10 is fine if it settles by the next morning."),
    _ex("banded_side_step", "Banded side steps", "hip", stages=(2, 3), drivers=(HIP_ABD,),
        equipment=("band",), sets=3, reps=12, bodyweight=True, progression="complexity",
        instructions="Band round your knees (medium), knees slightly bent. Step sideways, "
                     "keeping your knees over your toes and tension in the band. Each step "
                     "counts as one; go both ways."),
    _ex("cable_hip_abduction", "Cable hip abduction", "hip", stages=(2, 3), drivers=(HIP_ABD,),
        equipment=("cable",), sets=3, reps=12, load_kg=4, tempo="2-0-2", rest_seconds=90,
        load_increment_kg=1,
        instructions="Cuff on the ankle furthest from the cable, stand tall holding on. Lift "
                     "the leg out to the side without leaning, then return slowly."),
    _ex("step_down", "Step-down", "knee", stages=(2, 3), drivers=(HIP_ABD, QUADS),
        equipment=("step",), sets=3, reps=10, bodyweight=True, tempo="3-0-1",
        progression="complexity",
        instructions="Stand on a 15 cm step on the sore leg. Slowly lower the other heel to "
                     "the floor, keeping your knee in line with your second toe and your "
                     "pelvis level, then push back up. Raise the step as it gets easy."),
    _ex("leg_press", "Leg press", "knee", stages=(2, 3), drivers=(QUADS,),
        equipment=("leg_press",), sets=3, reps=12, load_kg=40, tempo="2-0-2",
        rest_seconds=90, load_increment_kg=5,
        instructions="Feet hip-width on the plate. Lower until your knees are bent to about a "
                     "right angle and press back up. Pick a load that feels moderate (about "
                     "6 out of 10 effort)."),
    _ex("leg_extension", "Leg extension (90–45°)", "knee", stages=(2, 3), drivers=(QUADS,),
        equipment=("leg_extension_machine",), sets=3, reps=12, load_kg=10, tempo="3-0-2",
        rest_seconds=90, load_increment_kg=2.5,
        instructions="Straighten the knee only from 90° to 45° bend, where the kneecap is "
                     "loaded least, then lower slowly."),
    _ex("single_leg_rdl", "Single-leg Romanian deadlift", "hip", stages=(3, 4),
        drivers=(HIP_ABD,), equipment=("dumbbell",), sets=3, reps=8, load_kg=12,
        tempo="3-0-1", rest_seconds=120, load_increment_kg=2,
        instructions="Stand on one leg, weight in the opposite hand. Hinge at the hip, the "
                     "free leg going back, until your body is nearly level, hips square. "
                     "Stand up by squeezing your buttock."),
    _ex("rear_foot_elevated_split_squat", "Rear-foot-elevated split squat", "knee",
        stages=(3, 4), drivers=(QUADS, HIP_ABD), equipment=("dumbbell", "bench"), sets=3,
        reps=8, load_kg=20, tempo="3-0-1", rest_seconds=120, load_increment_kg=2,
        instructions="Back foot on a bench, a dumbbell in each hand. Lower straight down "
                     "until the back knee nearly touches the floor, front knee over the toes, "
                     "and drive back up. The load is both dumbbells together."),
    _ex("easy_run", "Easy run", "whole_body", stages=(1, 2, 3), drivers=(LOAD_SPIKE,),
        sets=1, reps=15, reps_unit="minutes", bodyweight=True, rest_seconds=0,
        progression="reps",
        instructions="Run easy on flat ground, at a pace you can talk at. Pain up to 3/10 is "
                     "fine if it settles by the next morning; if not, cut the time."),
    _ex("tempo_run", "Tempo run", "whole_body", stages=(4,), drivers=(LOAD_SPIKE,), sets=1,
        reps=20, reps_unit="minutes", bodyweight=True, rest_seconds=0, frequency_per_week=1,
        progression="reps",
        instructions="Warm up 10 minutes easy, then run at a comfortably hard pace you could "
                     "hold for about an hour. Cool down easy."),
    _ex("hill_run", "Hill repeats", "whole_body", stages=(4,), drivers=(LOAD_SPIKE,), sets=6,
        reps=60, reps_unit="seconds", bodyweight=True, rest_seconds=120, frequency_per_week=1,
        progression="reps",
        instructions="After an easy warm-up, run up a moderate hill hard but controlled, then "
                     "walk or jog down to recover."),
    _ex("pogo_hops", "Pogo hops", "ankle", stages=(4,), drivers=(CALF,), sets=3, reps=20,
        bodyweight=True, rest_seconds=60, frequency_per_week=2, progression="complexity",
        instructions="Small, quick, springy hops on both feet, knees almost straight, landing "
                     "softly on the balls of your feet."),
    _ex("single_leg_hops", "Single-leg hops", "knee", stages=(4,), drivers=(HIP_ABD, QUADS),
        sets=3, reps=10, bodyweight=True, rest_seconds=90, frequency_per_week=2,
        progression="complexity",
        instructions="Hop forward on one leg and stick the landing for two seconds: knee over "
                     "the second toe, pelvis level. Each leg."),
    _ex("bounding", "Bounding", "whole_body", stages=(4,), drivers=(LOAD_SPIKE,), sets=3,
        reps=20, reps_unit="metres", bodyweight=True, rest_seconds=120, frequency_per_week=2,
        progression="complexity",
        instructions="Exaggerated running strides: push off hard, drive the knee up, land "
                     "softly under your hips. Walk back to recover."),
    # -- Achilles (§4: calf strength-endurance, ankle dorsiflexion) ---------------------------
    _ex("isometric_heel_raise_hold", "Isometric heel-raise hold", "ankle", stages=(1, 2),
        drivers=(CALF,), equipment=("step",), sets=5, reps=45, reps_unit="seconds",
        bodyweight=True, rest_seconds=120, progression="reps",
        instructions="Rise onto the balls of both feet and hold halfway up, as still as you "
                     "can. Pain up to 3/10 is fine if it settles by the next morning."),
    _ex("double_leg_heel_raise", "Double-leg heel raise", "ankle", stages=(1, 2),
        drivers=(CALF,), equipment=("step",), sets=3, reps=15, bodyweight=True, tempo="3-0-3",
        progression="reps",
        instructions="Stand on the edge of a step, heels free. Rise up on both feet, then "
                     "lower slowly below the step edge."),
    _ex("single_leg_heel_raise", "Single-leg heel raise", "ankle", stages=(2, 3),
        drivers=(CALF,), equipment=("step",), sets=3, reps=15, bodyweight=True, tempo="3-0-2",
        progression="reps",
        instructions="On one foot on the edge of a step, rise as high as you can, then lower "
                     "slowly below the step edge. Full height on every rep."),
    _ex("seated_calf_raise", "Seated calf raise", "ankle", stages=(2, 3), drivers=(CALF,),
        equipment=("seated_calf_machine",), sets=3, reps=12, load_kg=20, tempo="3-0-2",
        rest_seconds=90, load_increment_kg=2.5,
        instructions="Seated, knees bent, load on your thighs. Rise up on the balls of your "
                     "feet and lower slowly. This loads the deep calf muscle (soleus)."),
    _ex("weighted_single_leg_heel_raise", "Weighted single-leg heel raise", "ankle",
        stages=(3, 4), drivers=(CALF,), equipment=("smith_machine", "step"), sets=3, reps=8,
        load_kg=20, tempo="3-0-1", rest_seconds=120, load_increment_kg=2.5,
        instructions="As the single-leg heel raise, with the bar on your shoulders. Rise fast, "
                     "lower slowly."),
    _ex("knee_to_wall_mobilisation", "Knee-to-wall ankle mobilisation", "ankle",
        stages=(1, 2, 3), drivers=(ANKLE_DF,), equipment=("wall",), sets=3, reps=10,
        bodyweight=True, progression="complexity",
        instructions="Foot a few centimetres from the wall, heel down. Bend the knee to touch "
                     "the wall without lifting the heel; move the foot back as it gets easy."),
    _ex("soleus_stretch", "Bent-knee calf stretch", "ankle", stages=(1, 2), drivers=(ANKLE_DF,),
        equipment=("wall",), sets=3, reps=30, reps_unit="seconds", bodyweight=True,
        rest_seconds=15, frequency_per_week=7, progression="reps",
        instructions="Hands on a wall, the leg to stretch behind with the knee bent and the "
                     "heel down. Lean in until you feel a stretch low in the calf, and hold."),
    # -- low back (§4: hip mobility, trunk endurance, fear of movement) -----------------------
    _ex("cat_camel", "Cat-camel", "trunk", stages=(1, 2), drivers=(FEAR,), sets=2, reps=10,
        bodyweight=True, rest_seconds=30, frequency_per_week=7, progression="reps",
        instructions="On hands and knees, slowly round your back up, then let it sag gently. "
                     "Move within what feels comfortable; the aim is easy movement."),
    _ex("bird_dog", "Bird dog", "trunk", stages=(1, 2), drivers=(TRUNK,), sets=3, reps=8,
        bodyweight=True, tempo="2-5-2", progression="reps",
        instructions="On hands and knees, reach one arm forward and the opposite leg back "
                     "without your back sagging or twisting. Hold five seconds and return. "
                     "Alternate sides."),
    _ex("side_plank", "Side plank", "trunk", stages=(1, 2, 3), drivers=(TRUNK,), sets=3,
        reps=20, reps_unit="seconds", bodyweight=True, rest_seconds=45, progression="reps",
        instructions="On your side, on your elbow and knees (or feet as it gets easy). Lift "
                     "your hips so your body is straight, and hold."),
    _ex("walking_program", "Walking program", "whole_body", stages=(1, 2), drivers=(FEAR,),
        sets=1, reps=20, reps_unit="minutes", bodyweight=True, rest_seconds=0,
        frequency_per_week=5, progression="reps",
        instructions="Walk at a comfortable pace. Some discomfort is safe and expected; add "
                     "time each week as planned, not by how the day feels."),
    _ex("half_kneeling_hip_flexor_stretch", "Half-kneeling hip flexor stretch", "hip",
        stages=(1, 2, 3), drivers=(HIP_MOBILITY,), sets=3, reps=30, reps_unit="seconds",
        bodyweight=True, rest_seconds=15, frequency_per_week=7, progression="reps",
        instructions="Kneel on one knee, the other foot in front. Tuck your tailbone under and "
                     "shift forward until you feel a stretch at the front of the hip."),
    _ex("hip_90_90_rotation", "90/90 hip rotation", "hip", stages=(1, 2, 3),
        drivers=(HIP_MOBILITY,), sets=2, reps=10, bodyweight=True, rest_seconds=30,
        frequency_per_week=5, progression="complexity",
        instructions="Sit with both knees bent to a right angle, one leg in front and one to "
                     "the side. Turn both knees to the other side and back, sitting tall."),
    _ex("trap_bar_deadlift", "Trap-bar deadlift", "whole_body", stages=(3, 4),
        drivers=(TRUNK, FEAR), equipment=("trap_bar",), sets=3, reps=6, load_kg=40,
        tempo="3-0-1", rest_seconds=150, load_increment_kg=2.5,
        instructions="Stand inside the bar, hinge and grip the handles. Brace, push the floor "
                     "away and stand tall, then lower under control. A strong back is built "
                     "by loading it."),
    # -- rotator cuff / lateral shoulder (§4: scapular control, thoracic mobility) ------------
    _ex("isometric_shoulder_external_rotation", "Isometric shoulder external rotation",
        "shoulder", stages=(1,), equipment=("wall",), sets=5, reps=30, reps_unit="seconds",
        bodyweight=True, rest_seconds=60, progression="reps",
        instructions="Stand side-on to a wall, elbow bent at your side, the back of the wrist "
                     "against the wall. Push outwards gently (about half effort) and hold."),
    _ex("side_lying_external_rotation", "Side-lying shoulder external rotation", "shoulder",
        stages=(1, 2), drivers=(SCAPULA,), equipment=("dumbbell",), sets=3, reps=15,
        load_kg=1, tempo="2-1-2", load_increment_kg=0.5,
        instructions="Lie on your side, a folded towel under the top elbow, elbow bent. Rotate "
                     "the forearm up, keeping the elbow on the towel, then lower slowly."),
    _ex("prone_y_raise", "Prone Y raise", "shoulder", stages=(1, 2), drivers=(SCAPULA,),
        sets=3, reps=10, bodyweight=True, tempo="2-2-2", progression="reps",
        instructions="Lie face down, arms overhead in a Y, thumbs up. Draw the shoulder blades "
                     "down and lift both arms a few centimetres. Hold, then lower."),
    _ex("wall_slide", "Wall slide", "shoulder", stages=(1, 2), drivers=(SCAPULA,),
        equipment=("wall",), sets=3, reps=10, bodyweight=True, tempo="2-1-2",
        progression="complexity",
        instructions="Forearms on the wall, slide them up while keeping gentle pressure and "
                     "the shoulder blades wrapping round the ribs. Slide down slowly."),
    _ex("banded_external_rotation", "Banded external rotation", "shoulder", stages=(2, 3),
        drivers=(SCAPULA,), equipment=("band",), sets=3, reps=15, tempo="2-1-2",
        progression="complexity",
        instructions="Elbow at your side, bent to a right angle, band in the hand. Rotate the "
                     "forearm out without the elbow leaving your side, then return slowly."),
    _ex("seated_cable_row", "Seated cable row", "shoulder", stages=(2, 3), drivers=(SCAPULA,),
        equipment=("cable",), sets=3, reps=12, load_kg=15, tempo="2-1-2", rest_seconds=90,
        load_increment_kg=2.5,
        instructions="Sit tall, pull the handle to your lower ribs, squeezing the shoulder "
                     "blades back and down. Return slowly without slumping."),
    _ex("half_kneeling_landmine_press", "Half-kneeling landmine press", "shoulder",
        stages=(3, 4), drivers=(SCAPULA,), equipment=("landmine", "barbell"), sets=3, reps=8,
        load_kg=10, tempo="2-0-1", rest_seconds=120, load_increment_kg=2.5,
        instructions="Kneel on the same-side knee as the pressing arm. Press the bar up and "
                     "forward, letting the shoulder blade move round, then lower slowly."),
    _ex("thoracic_extension_foam_roller", "Thoracic extension over a foam roller", "trunk",
        stages=(1, 2, 3), drivers=(THORACIC,), equipment=("foam_roller",), sets=2, reps=10,
        bodyweight=True, rest_seconds=30, frequency_per_week=5, progression="complexity",
        instructions="Lie with the roller across your upper back, hands supporting your head. "
                     "Extend back over it, then move the roller a few centimetres and repeat."),
    _ex("open_book_rotation", "Open-book rotation", "trunk", stages=(1, 2, 3),
        drivers=(THORACIC,), sets=2, reps=10, bodyweight=True, tempo="2-2-2",
        rest_seconds=30, frequency_per_week=5, progression="reps",
        instructions="Lie on your side, knees bent and together. Open the top arm across to "
                     "the other side, following it with your eyes, and return."),
)


class Library(BaseModel):
    """An organization's exercises, by code, in the order a draft picks from."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    exercises: tuple[Exercise, ...] = ()

    @field_validator("exercises")
    @classmethod
    def _unique(cls, v: tuple[Exercise, ...]) -> tuple[Exercise, ...]:
        codes = [e.code for e in v]
        if len(set(codes)) != len(codes):
            raise ValueError("two exercises share a code")
        return v

    @classmethod
    def seeded(cls) -> Library:
        return cls(exercises=SEED)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(e.code for e in self.exercises)

    def with_exercise(self, exercise: Exercise) -> Library:
        """The library with the organization's exercise added; an existing code is replaced
        by it in place (the organization's own version of a seeded exercise), so what a draft
        picks first does not change with the edit."""
        if exercise.code in self.codes:
            replaced = tuple(exercise if e.code == exercise.code else e
                             for e in self.exercises)
            return self.model_copy(update={"exercises": replaced})
        return self.model_copy(update={"exercises": (*self.exercises, exercise)})

    def get(self, code: str) -> Exercise:
        for e in self.exercises:
            if e.code == code:
                return e
        raise UnknownExerciseError(f"the library has no exercise {code!r}", exercise=code)

    def for_driver(self, driver_code: str, stage: int) -> tuple[Exercise, ...]:
        """The exercises that load a driver and suit a stage position, in library order."""
        return tuple(e for e in self.exercises if driver_code in e.drivers and e.suits(stage))

    def for_region(self, region: str, stage: int) -> tuple[Exercise, ...]:
        """The exercises for a body region that suit a stage position, in library order."""
        return tuple(e for e in self.exercises if e.region == region and e.suits(stage))

    def prescribe(self, code: str, on: date, driver: str | None = None, **overrides: Any
                  ) -> Prescription:
        """A prescription of the exercise from its defaults, ``overrides`` applied, changed
        ``on`` that date, for ``driver`` (None: symptom-site work)."""
        return self.get(code).prescription(on, driver, **overrides)
