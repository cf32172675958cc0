"""Clinical reasoning as data: where it hurts (the symptom site) is kept apart from what
causes the load there (the driver), each driver with its rationale and the findings that
show it. The driver library (CLINICAL.md §4) seeds suggestions and the plain-language
explanation the patient takes home; the therapist edits that text before it is printed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from kinetic_contracts.assessment.v1.events import EpisodeType

CODE = r"^[a-z][a-z0-9_]*$"


class DriverReasoning(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str = Field(pattern=CODE, examples=["hip_abductor_weakness"])
    rationale: str = Field(min_length=1, max_length=2000,
                           examples=["Hip abduction 21% weaker on the right; knee drops in "
                                     "on the single-leg squat"])
    finding_ids: list[str] = Field(default_factory=list, max_length=20,
                                   examples=[["strength:hip_abduction", "movement:sls"]])


class Reasoning(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    symptom_sites: list[str] = Field(min_length=1, max_length=5,
                                     examples=[["knee_anterior_right"]])
    drivers: list[DriverReasoning] = Field(min_length=1, max_length=5)
    working_diagnosis: str = Field(default="", max_length=200,
                                   examples=["Patellofemoral pain"])
    working_diagnosis_icd10: str | None = Field(default=None, pattern=r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$",
                                                examples=["M22.2"])
    episode_type: EpisodeType


class LibraryDriver(BaseModel):
    model_config = ConfigDict(frozen=True)
    code: str
    label: str
    sites: tuple[str, ...]  # symptom-site prefixes it is typical for
    key_tests: tuple[str, ...]
    plain: str  # one sentence for the patient; {weaker} is filled from a finding if known


# CLINICAL.md §4 (MODEL): seed data for suggestions, not a diagnosis engine.
DRIVER_LIBRARY: tuple[LibraryDriver, ...] = (
    LibraryDriver(code="hip_abductor_weakness", label="Hip abductor / external rotator weakness",
                  sites=("knee_anterior",), key_tests=("strength:hip_abduction",
                                                       "strength:hip_external_rotation",
                                                       "movement:sls"),
                  plain="The muscles on the side of your hip are{weaker} weaker. When you land "
                        "on that leg, the knee drops inward and the kneecap takes extra load."),
    LibraryDriver(code="quadriceps_weakness", label="Quadriceps weakness",
                  sites=("knee_anterior",), key_tests=("strength:quadriceps",),
                  plain="The muscles at the front of your thigh are{weaker} weaker, so the knee "
                        "itself absorbs more of each step."),
    LibraryDriver(code="load_spike", label="Training-load spike",
                  sites=("knee", "achilles", "shin", "hip", "foot"), key_tests=(),
                  plain="Your training load went up faster than your tissues could adapt."),
    LibraryDriver(code="scapular_control_deficit", label="Scapular control / strength deficit",
                  sites=("shoulder",), key_tests=("strength:shoulder_external_rotation",),
                  plain="The muscles that steady your shoulder blade are not doing their share, "
                        "so the shoulder joint is crowded when you lift your arm."),
    LibraryDriver(code="thoracic_stiffness", label="Thoracic mobility deficit",
                  sites=("shoulder", "neck"), key_tests=(),
                  plain="Your upper back has stiffened, so the shoulder and neck move more to "
                        "make up for it."),
    LibraryDriver(code="calf_endurance_deficit", label="Calf strength-endurance deficit",
                  sites=("achilles",), key_tests=("heel_raise",),
                  plain="Your calf tires{weaker} sooner on the painful side, and the tendon takes "
                        "the load the muscle no longer can."),
    LibraryDriver(code="ankle_dorsiflexion_stiffness", label="Ankle dorsiflexion stiffness",
                  sites=("achilles", "knee"), key_tests=("mobility:ankle_dorsiflexion",),
                  plain="Your ankle does not bend forward as far as it should, so the tissues "
                        "above it take the strain."),
    LibraryDriver(code="hip_mobility_deficit", label="Hip rotation / extension deficit",
                  sites=("low_back",), key_tests=("mobility:hip_internal_rotation",),
                  plain="Your hips have lost some of their turn and stretch, so your lower back "
                        "moves more than it should."),
    LibraryDriver(code="trunk_endurance_deficit", label="Trunk endurance deficit",
                  sites=("low_back",), key_tests=(),
                  plain="The muscles around your trunk tire quickly, and your back carries the "
                        "load for longer than it can."),
    LibraryDriver(code="fear_of_movement", label="Fear of movement", sites=("low_back",),
                  key_tests=("tsk17",),
                  plain="Worry about hurting yourself has made you move less, and moving less "
                        "has made the back more sensitive."),
)
_BY_CODE = {d.code: d for d in DRIVER_LIBRARY}


def suggest_drivers(symptom_site: str) -> list[LibraryDriver]:
    """Library drivers typical for a symptom site (by site prefix), for the therapist to test."""
    return [d for d in DRIVER_LIBRARY if any(symptom_site.startswith(s) for s in d.sites)]


# How a symptom-site code reads to a patient; {side} is "right " or "left " when coded.
SITE_WORDS = {
    "knee_anterior": "the front of your {side}knee",
    "knee": "your {side}knee",
    "achilles": "your {side}Achilles tendon",
    "shoulder": "your {side}shoulder",
    "shoulder_lateral": "the outside of your {side}shoulder",
    "low_back": "your lower back",
    "neck": "your neck",
    "hip": "your {side}hip",
}


def site_words(site: str) -> str:
    base, side = site, ""
    for candidate in ("right", "left"):
        if site.endswith(f"_{candidate}"):
            base, side = site.removesuffix(f"_{candidate}"), f"{candidate} "
    template = SITE_WORDS.get(base, "your {side}" + base.replace("_", " "))
    return template.format(side=side)


def draft_explanation(reasoning: Reasoning, deficits: Mapping[str, float]) -> str:
    """The first draft of what the patient takes home, in the shape of CLINICAL.md §5:
    the site is where it hurts but not the cause; each driver in one plain sentence; the
    plan in one. ``deficits`` maps a finding id to how much weaker the involved side is (%),
    so the sentence can say "about 20% weaker"."""
    site = site_words(reasoning.symptom_sites[0])
    lines = [f"{site[0].upper()}{site[1:]} is the place that hurts, but it is not the cause."]
    for driver in reasoning.drivers:
        known = _BY_CODE.get(driver.code)
        if known is None:
            lines.append(driver.rationale)
            continue
        weaker = next((deficits[f] for f in driver.finding_ids if f in deficits), None)
        lines.append(known.plain.format(
            weaker=f" about {round(weaker / 5) * 5:.0f}%" if weaker else ""))
    lines.append("We will settle the pain and strengthen what loads it, then build you back "
                 "to what you want to do.")
    return " ".join(lines)


def unknown_findings(reasoning: Reasoning, finding_ids: Sequence[str]) -> list[str]:
    """Finding ids a driver cites that the evaluation has not recorded."""
    known = set(finding_ids)
    return sorted({f for d in reasoning.drivers for f in d.finding_ids if f not in known})
