"""The printable session report (PDF, fpdf2): patient pseudonym, session, estimate, gait features with the real
children's ranges, quality, the timeline plot, the model that ran, and the research-software notice."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
from fpdf import FPDF

from cpgait.kiosk.plots import timeline
from cpgait.kiosk.real_gait import SOURCE
from cpgait.kiosk.results import SessionResult, quality_rows

NOTICE = "Research software \u2014 not a clinical assessment; model trained on synthetic data."
RESEARCH_NOTICE = "Research software \u2014 not a clinical assessment."
_FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"  # DejaVu: Unicode notes print as typed


def notice_for(synthetic: bool) -> str:
    return NOTICE if synthetic else RESEARCH_NOTICE


def session_pdf(result: SessionResult) -> bytes:
    s = result.session
    pdf = FPDF(format="A4")
    pdf.set_title(f"cpgait session {s.id}")
    pdf.set_creator("cpgait kiosk")
    pdf.add_font("DejaVu", "", str(_FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(_FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    width = pdf.epw

    def heading(text: str) -> None:
        pdf.ln(2)
        pdf.set_font("DejaVu", "B", 12)
        pdf.cell(width, 8, text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 9)

    def table(rows: Sequence[Sequence[str]], widths: tuple[float, ...]) -> None:
        with pdf.table(col_widths=widths, text_align="LEFT", line_height=5) as t:
            for row in rows:
                r = t.row()
                for cell in row:
                    r.cell(cell)

    pdf.set_font("DejaVu", "B", 16)
    pdf.cell(width, 10, "Gait session report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_fill_color(255, 235, 205)
    pdf.set_font("DejaVu", "B", 10)
    pdf.multi_cell(width, 6, notice_for(result.synthetic), fill=True, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    heading("Session")
    table(
        [
            ("patient (pseudonym)", s.patient_id),
            ("session", f"{s.id}, {s.status}"),
            ("started / ended (UTC)", f"{s.started_at} / {s.ended_at or '-'}"),
            ("note", s.note or "-"),
            ("camera", s.camera),
        ],
        (1, 3),
    )
    heading("Estimate")
    est = result.estimate
    if est is None:
        pdf.multi_cell(width, 5, "No window was classified: not enough walking.", new_x="LMARGIN", new_y="NEXT")
    else:
        pdf.multi_cell(
            width,
            5,
            f"{est.class_name}: confidence {est.confidence:.2f}, agreement {est.agreement:.0%} over "
            f"{est.windows} windows",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        table(
            [("class", "mean probability")]
            + [(n, f"{p:.2f}") for n, p in zip(est.class_names, est.probabilities or ())],
            (1, 1),
        )
    heading("Gait features (median over windows; real children with CP for orientation)")
    table(
        [("feature", "median", "range", "real children p5-p95")]
        + [
            (
                f"{f.name} ({f.unit})",
                f.text(f.median),
                f"{f.text(f.low)} - {f.text(f.high)}",
                f"{f.real.describe()}: {f.real.comparable}" if f.real else "",
            )
            for f in result.features
        ],
        (1.3, 0.6, 0.8, 2.3),
    )
    pdf.set_font("DejaVu", "", 7)
    pdf.multi_cell(width, 4, f"Real children: {SOURCE}.", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    heading("Quality")
    table(quality_rows(result), (2, 1))
    heading("Per-window timeline")
    pdf.image(timeline(result, "png"), w=width)
    heading("Model and software")
    table(
        [
            ("model", s.model),
            ("model sha256", s.model_sha256),
            ("contract sha256", s.contract_sha256),
            ("training data", str(s.contract.get("training_data", "unknown"))),
            ("pose / backend", f"{s.pose} / {s.backend}"),
            ("cpgait", s.software_version),
        ],
        (1, 3),
    )
    return bytes(pdf.output())
