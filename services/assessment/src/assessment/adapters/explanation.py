"""The patient's take-home explanation, as a printable page and as a PDF (fpdf2: pure
Python, no system libraries). What it says is the therapist's edited text; around it, the
symptom site, the driver(s) and the goals, in plain words."""

from __future__ import annotations

from html import escape

from fpdf import FPDF

from assessment.domain.evaluation import Evaluation

# The PDF's built-in fonts are Latin-1: typographic punctuation is mapped, anything else
# beyond Latin-1 becomes "?" rather than failing the print.
_PLAIN = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-",
                        "≤": "<=", "≥": ">=", "…": "..."})


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
    text = escape(state.explanation or "The explanation has not been written yet.")
    parts = "".join(f"<h2>{escape(title)}</h2><ul>{''.join(f'<li>{escape(i)}</li>' for i in items)}</ul>"
                    for title, items in _sections(state))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Your assessment · Kinetic</title>
<style>
  body {{ font: 16px/1.5 Georgia, serif; max-width: 40rem; margin: 2rem auto; color: #1d2a33; }}
  h1 {{ font-size: 1.4rem; }} h2 {{ font-size: 1.05rem; margin-top: 1.4rem; }}
  .explanation {{ font-size: 1.1rem; border-left: 4px solid #0f6c5c; padding-left: 1rem; }}
  @media print {{ .noprint {{ display: none; }} }}
</style></head>
<body>
<h1>Your assessment</h1>
<p class="explanation" id="explanation">{text}</p>
{parts}
<p class="noprint"><button onclick="window.print()">Print</button></p>
</body></html>"""


def explanation_pdf(state: Evaluation) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    pdf.set_title("Your assessment")

    def write(text: str, size: int, style: str = "", gap: float = 2) -> None:
        pdf.set_font("Helvetica", style, size)
        safe = text.translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")
        pdf.multi_cell(0, size * 0.5, safe, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    write("Your assessment", 18, "B", 4)
    write(state.explanation or "The explanation has not been written yet.", 12, "", 4)
    for title, items in _sections(state):
        write(title, 13, "B", 1)
        for item in items:
            write(f"- {item}", 11, "", 0)
        pdf.ln(3)
    return bytes(pdf.output())
