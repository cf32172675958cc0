"""The patient's take-home explanation, as a printable page and as a PDF (fpdf2: pure
Python, no system libraries). What it says is the therapist's edited text; around it, the
symptom site, the driver(s) and the goals, in plain words."""

from __future__ import annotations

from assessment.domain.evaluation import Evaluation
from kinetic_infra.http.printable import printable_html, printable_pdf

TITLE = "Your assessment"
NOT_WRITTEN = "The explanation has not been written yet."

def _words(code: str) -> str:
    return code.replace("_", " ")


def _sections(state: Evaluation) -> list[tuple[str, list[str]]]:
    r = state.reasoning
    sections: list[tuple[str, list[str]]] = []
    if r is not None:
        sections.append(("Where it hurts", [_words(s) for s in r.symptom_sites]))
        sections.append(("What is driving it", [_words(d.code) for d in r.drivers]))
    if state.goals:
        sections.append(("Your goals", [
            f"{g.activity}: {g.level}" + (f" (by {g.target_date:%d %B %Y})" if g.target_date
                                          else "") for g in state.goals]))
    return sections


def explanation_html(state: Evaluation) -> str:
    return printable_html(TITLE, state.explanation or NOT_WRITTEN, _sections(state),
                          lead_id="explanation")


def explanation_pdf(state: Evaluation) -> bytes:
    return printable_pdf(TITLE, state.explanation or NOT_WRITTEN, _sections(state))
