"""The patient's home program (issue #7 item 6): the current prescriptions with their
parameters and how to do them, and the next milestone, as a printable page and a PDF."""

from __future__ import annotations

from datetime import date

from kinetic_infra.http.printable import printable_html, printable_pdf
from plan.domain.exercises import Library, UnknownExerciseError
from plan.domain.plan import Plan
from plan.domain.prescription import Prescription

TITLE = "Your home program"


def _line(p: Prescription, library: Library) -> str:
    try:
        exercise = library.get(p.exercise)
    except UnknownExerciseError:
        return f"{p.exercise.replace('_', ' ')}: {p.describe()}"
    how = f" {exercise.instructions}" if exercise.instructions else ""
    media = f" (video: {exercise.media_url})" if exercise.media_url else ""
    return f"{exercise.name}: {p.describe()}, {p.frequency_per_week}× a week.{how}{media}"


def next_milestone(state: Plan, today: date) -> str:
    """The current stage's first exit criterion not yet met, with its date."""
    verdicts = state.verdicts()
    stage = state.content.stages[state.stage_position - 1]
    for c in stage.exit_criteria:
        if not verdicts.get(c.id):
            when = f" by {stage.target_date:%d %B %Y}" if stage.target_date else ""
            late = " (the date has passed: we will look at it together)" if (
                stage.target_date and stage.target_date < today) else ""
            return f"{c.label}{when}{late}"
    return f"Every goal of {stage.name.lower()} is met: we will move on together."


def _content(state: Plan, library: Library, today: date) -> tuple[str, list[tuple[str, list[str]]]]:
    stage = state.content.stages[state.stage_position - 1]
    lead = (f"You are in stage {state.stage_position} of {len(state.content.stages)}: "
            f"{stage.name}. {stage.goal}.")
    sections: list[tuple[str, list[str]]] = [
        ("Your exercises", [_line(p, library) for p in state.content.prescriptions]
         or ["No exercises are prescribed yet."]),
        ("Your next milestone", [next_milestone(state, today)]),
        ("How much pain is fine", [
            "During the exercises up to 5 out of 10 is acceptable; 0 to 2 is safe.",
            "Pain after exercising should settle by the next morning. If it has not, or your "
            "mornings are getting worse week to week, tell your therapist."])]
    return lead, sections


def home_program_html(state: Plan, library: Library, today: date) -> str:
    lead, sections = _content(state, library, today)
    return printable_html(TITLE, lead, sections, lead_id="stage")


def home_program_pdf(state: Plan, library: Library, today: date) -> bytes:
    lead, sections = _content(state, library, today)
    return printable_pdf(TITLE, lead, sections)
