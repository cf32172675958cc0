"""A page a patient takes home, as printable HTML and as a PDF (fpdf2: pure Python, no system
libraries): a title, a lead paragraph and titled lists. The services decide what it says."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from fpdf import FPDF

Sections = Sequence[tuple[str, Sequence[str]]]

# The PDF's built-in fonts are Latin-1: typographic punctuation is mapped, anything else
# beyond Latin-1 becomes "?" rather than failing the print.
_PLAIN = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-",
                        "≤": "<=", "≥": ">=", "…": "...", "×": "x", "→": "->"})


def printable_html(title: str, lead: str, sections: Sections, *, lead_id: str = "lead") -> str:
    parts = "".join(
        f"<h2>{escape(heading)}</h2><ul>{''.join(f'<li>{escape(i)}</li>' for i in items)}</ul>"
        for heading, items in sections)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} · Kinetic</title>
<style>
  body {{ font: 16px/1.5 Georgia, serif; max-width: 40rem; margin: 2rem auto; color: #1d2a33; }}
  h1 {{ font-size: 1.4rem; }} h2 {{ font-size: 1.05rem; margin-top: 1.4rem; }}
  .lead {{ font-size: 1.1rem; border-left: 4px solid #0f6c5c; padding-left: 1rem; }}
  @media print {{ .noprint {{ display: none; }} }}
</style></head>
<body>
<h1>{escape(title)}</h1>
<p class="lead" id="{escape(lead_id)}">{escape(lead)}</p>
{parts}
<p class="noprint"><button onclick="window.print()">Print</button></p>
</body></html>"""


def printable_pdf(title: str, lead: str, sections: Sections) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    pdf.set_title(title)

    def write(text: str, size: int, style: str = "", gap: float = 2) -> None:
        pdf.set_font("Helvetica", style, size)
        safe = text.translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")
        pdf.multi_cell(0, size * 0.5, safe, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    write(title, 18, "B", 4)
    write(lead, 12, "", 4)
    for heading, items in sections:
        write(heading, 13, "B", 1)
        for item in items:
            write(f"- {item}", 11, "", 0)
        pdf.ln(3)
    return bytes(pdf.output())
