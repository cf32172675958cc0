"""Assessment's public events, version 1: what plan and partners learn from an evaluation.
Codes, numbers and the patient's goals. The therapist's rationale and the plain-language
explanation of a completed evaluation travel once, restricted, in
``evaluation.clinical_notes_recorded`` (and an addendum's text in
``evaluation.addendum_text_recorded``) for the partners service alone, which discloses them
only to a partner granted ``clinical_free_text`` and named in the patient's data-sharing
consent. The history and drafts stay in assessment's own events."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from kinetic_contracts.envelope import DataClass, EventData

EpisodeType = Literal["acute_clear_driver", "chronic_multifactor"]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Goal(_Part):
    """Return to what, at what level, by when: plan turns these into discharge criteria."""

    activity: str = Field(min_length=1, max_length=200, examples=["running"])
    level: str = Field(min_length=1, max_length=200,
                       examples=["45 min at pre-injury pace, 3 times a week"])
    target_date: date | None = None


class Driver(_Part):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", examples=["hip_abductor_weakness"])
    finding_ids: list[str] = Field(default_factory=list,
                                   description="The findings that show it")


class MeasureScore(_Part):
    measure: str = Field(examples=["lefs"])
    version: str
    scores: dict[str, float] = Field(description="One score, or one per subscale (KOOS)")


class FindingIndex(_Part):
    """A computed index of an objective finding (limb symmetry, asymmetry, reps…)."""

    finding_id: str = Field(examples=["strength:hip_abduction"])
    index: str = Field(examples=["lsi_pct"])
    value: float
    unit: str = Field(examples=["%"])
    passed: bool | None = Field(default=None,
                                description="Against the organization's threshold, if any")


class MeasureChange(_Part):
    measure: str
    score: str = Field(description="The score's key (the measure, or a KOOS subscale)")
    baseline: float
    current: float
    improvement: float = Field(description="Change in the good direction (negative: worse)")
    mcid: float
    passed_mcid: bool
    possibly_noise: bool = Field(description="Below the minimal detectable change")
    deteriorated: bool


class _Evaluation(EventData):
    aggregate_id_field: ClassVar[str] = "evaluation_id"

    evaluation_id: UUID
    episode_id: UUID
    patient_id: UUID
    location_id: UUID


class EvaluationCompleted(_Evaluation):
    event_type: ClassVar[str] = "kinetic.assessment.evaluation.completed.v1"

    therapist_id: UUID | None = None
    symptom_sites: list[str] = Field(min_length=1, examples=[["knee_anterior_right"]])
    drivers: list[Driver] = Field(min_length=1)
    working_diagnosis_icd10: str | None = Field(default=None, examples=["M22.2"])
    episode_type: EpisodeType
    goals: list[Goal] = Field(min_length=1)
    baseline_measures: list[MeasureScore]
    findings: list[FindingIndex]
    ruleset_version: int = Field(default=1, ge=1,
                                 description="The organization's clinical numbers judged by")
    completed_at: datetime


class OutcomeMeasured(_Evaluation):
    event_type: ClassVar[str] = "kinetic.assessment.outcome.measured.v1"

    measure: str
    version: str
    scores: dict[str, float]
    context: Literal["initial", "reassessment"]
    measured_at: datetime


class ReassessmentCompleted(_Evaluation):
    event_type: ClassVar[str] = "kinetic.assessment.reassessment.completed.v1"

    baseline_evaluation_id: UUID
    changes: list[MeasureChange]
    findings: list[FindingIndex]
    ruleset_version: int = Field(default=1, ge=1,
                                 description="The organization's clinical numbers judged by")
    completed_at: datetime


class AddendumAdded(_Evaluation):
    """A correction to a completed evaluation; the evaluation itself never changes."""

    event_type: ClassVar[str] = "kinetic.assessment.evaluation.addendum_added.v1"

    addendum_id: UUID
    added_at: datetime


class DriverRationale(_Part):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", examples=["hip_abductor_weakness"])
    rationale: str = Field(max_length=2000, description="Why this drives the symptom")


class ClinicalNotesRecorded(_Evaluation):
    """Restricted: the free text of a completed evaluation, as the therapist signed it off.
    No partner receives this event as it is (see the module's note)."""

    event_type: ClassVar[str] = "kinetic.assessment.evaluation.clinical_notes_recorded.v1"
    data_class: ClassVar[DataClass] = "clinical_free_text"

    working_diagnosis: str = Field(default="", max_length=200)
    drivers: list[DriverRationale] = Field(default_factory=list)
    explanation: str = Field(default="", max_length=5000,
                             description="The plain-language explanation the patient took home")
    recorded_at: datetime


class AddendumTextRecorded(EventData):
    """Restricted: an addendum's reason and text, as the therapist wrote them. No partner
    receives this event as it is; the partners service discloses it like the clinical notes
    it corrects."""

    event_type: ClassVar[str] = "kinetic.assessment.evaluation.addendum_text_recorded.v1"
    # Each addendum is its own subject: one evaluation may have several, all kept.
    aggregate_id_field: ClassVar[str] = "addendum_id"
    data_class: ClassVar[DataClass] = "clinical_free_text"

    evaluation_id: UUID
    episode_id: UUID
    patient_id: UUID
    location_id: UUID
    addendum_id: UUID
    reason: str = Field(max_length=500, examples=["Corrected hip ER value"])
    text: str = Field(max_length=5000)
    recorded_at: datetime


class ReferredOut(_Evaluation):
    """Red-flag screening was positive: the patient is referred to a physician."""

    event_type: ClassVar[str] = "kinetic.assessment.evaluation.referred_out.v1"

    red_flags: list[str] = Field(min_length=1, examples=[["unexplained_weight_loss"]])
    referred_at: datetime


EVENTS: list[type[EventData]] = [EvaluationCompleted, OutcomeMeasured, ReassessmentCompleted,
                                 AddendumAdded, ClinicalNotesRecorded, AddendumTextRecorded,
                                 ReferredOut]
