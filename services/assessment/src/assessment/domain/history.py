"""The subjective part of an evaluation: history, red-flag screening and the patient's goals.

Red flags are asked of every patient; a positive answer means the evaluation cannot be
completed as physiotherapy: the therapist refers the patient out (a physician first).
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from kinetic_contracts.assessment.v1.events import Goal

# The screening questions every evaluation answers (DEFAULT set; an organization may add).
RED_FLAGS: dict[str, str] = {
    "unexplained_weight_loss": "Unexplained weight loss",
    "night_pain_unrelenting": "Constant night pain, not eased by position",
    "fever_or_systemically_unwell": "Fever, or feeling generally unwell",
    "history_of_cancer": "History of cancer",
    "saddle_anaesthesia": "Numbness in the saddle area",
    "bladder_or_bowel_change": "New bladder or bowel dysfunction",
    "progressive_neurological_deficit": "Progressive weakness or numbness",
    "major_trauma": "Recent major trauma",
}


class PreviousTreatment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    treatment: str = Field(min_length=1, max_length=200, examples=["massage"])
    helped: bool


class History(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    onset: date | None = None
    mechanism: str = Field(default="", max_length=2000,
                           examples=["Weekly distance from 20 to 40 km over 3 weeks"])
    aggravating: list[str] = Field(default_factory=list, max_length=20,
                                   examples=[["running over 3 km", "stairs down"]])
    easing: list[str] = Field(default_factory=list, max_length=20, examples=[["rest"]])
    previous_treatment: list[PreviousTreatment] = Field(default_factory=list, max_length=20)
    training_or_work: str = Field(default="", max_length=2000,
                                  examples=["Recreational runner, 40 km a week"])


class RedFlagScreen(BaseModel):
    """Every question answered: an unanswered question is not a negative one."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    answers: dict[str, bool]

    def missing(self) -> list[str]:
        return [q for q in RED_FLAGS if q not in self.answers]

    def positive(self) -> list[str]:
        return sorted(q for q, yes in self.answers.items() if yes)


GOALS_MAX = 10
__all__ = ["GOALS_MAX", "RED_FLAGS", "Goal", "History", "PreviousTreatment", "RedFlagScreen"]
