"""The HTML report of a pipeline run: ``<run>/report.html``, written by :func:`battlab.pipeline.run_pipeline`.

One page to open in a browser after ``battlab run``: the run's settings, the final table (step, what it
does, its key figure, time), every step's figures and output files, and a link to each executed notebook
exported to HTML with its figures (``<run>/html/<step>.html``, nbconvert; offline). A notebook that cannot
be exported is listed with the reason, and the report is still written.

Example
-------
>>> from battlab.report import write_report
>>> path = write_report("runs/latest")  # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

__all__ = ["export_notebook_html", "write_report"]

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 70em; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.4; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.8em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.failed { color: #b00020; font-weight: bold; }
.note { color: #555; font-size: 0.9em; }
code { background: #f5f5f5; padding: 0 0.2em; }
"""


def export_notebook_html(notebook: str | Path, html_path: str | Path) -> Path:
    """Export an executed notebook to a standalone HTML page (figures embedded), with nbconvert.

    Raises ``OSError`` or nbconvert's errors when the notebook cannot be read or exported.
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    body, _ = HTMLExporter().from_notebook_node(nb)
    out = Path(html_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body, encoding="utf-8")
    return out


def _value(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list, tuple)):
        text = json.dumps(v, default=str)
        return text if len(text) <= 200 else text[:197] + "..."
    return str(v)


def _link(path: str | Path, out: Path) -> str:
    """A relative link when the file is inside the run's folder, else the path as text."""
    p = Path(path)
    try:
        rel = p.resolve().relative_to(out)
    except (ValueError, OSError):
        return f"<code>{html.escape(str(p))}</code>"
    return f'<a href="{html.escape(rel.as_posix())}">{html.escape(rel.as_posix())}</a>'


def write_report(out_dir: str | Path, summary: dict[str, Any] | None = None, steps: Any = None) -> Path:
    """Write ``out_dir/report.html`` for a run (and ``out_dir/html/<step>.html`` for each executed notebook).

    Parameters
    ----------
    out_dir
        The run's folder (``battlab run --out``).
    summary
        The run's summary (default: ``out_dir/summary.json``).
    steps
        The pipeline's :class:`~battlab.pipeline.Step` list, for each step's title and key figure
        (default: :data:`battlab.pipeline.STEPS`).

    Returns the report's path.
    """
    from battlab.pipeline import STEPS, key_figure

    out = Path(out_dir).resolve()
    if summary is None:
        summary = json.loads((out / "summary.json").read_text())
    by_name = {s.name: s for s in (STEPS if steps is None else steps)}
    esc = html.escape
    rows, sections = [], []
    for name, record in summary.get("steps", {}).items():
        step = by_name.get(name)
        title = step.title if step is not None else ""
        figures = record.get("summary", {})
        status = record.get("status", "")
        own = out / f"{name}.ipynb"  # the run folder's copy wins: the folder may have moved since the run
        notebook = own if own.is_file() else Path(record.get("notebook") or own)
        page, export_note = None, ""
        if notebook.is_file():
            try:
                page = export_notebook_html(notebook, out / "html" / f"{name}.html")
            except Exception as exc:  # the report still lists the step; the reason stands in for the page
                export_note = f"the notebook could not be exported to HTML ({type(exc).__name__}: {exc})"
        else:
            export_note = f"no executed notebook at {notebook}"
        key, value = key_figure(figures, step.key if step is not None else "")
        shown = "failed" if status == "failed" else (f"{key} = {_value(value)}" if key else "")
        seconds = "kept from an earlier run" if record.get("resumed") else f"{record.get('seconds', 0):.1f}"
        links = []
        if page is not None:
            links.append(f'<a href="html/{esc(page.name)}">notebook (HTML)</a>')
        if notebook.is_file():
            links.append(_link(notebook, out))
        rows.append(f'<tr><td><a href="#{esc(name)}">{esc(name)}</a></td><td>{esc(title)}</td>'
                    f'<td class="{"failed" if status == "failed" else ""}">{esc(shown)}</td>'
                    f'<td class="num">{esc(seconds)}</td><td>{" · ".join(links)}</td></tr>')
        parts = [f'<h2 id="{esc(name)}">{esc(name)}</h2>']
        if title:
            parts.append(f"<p>{esc(title)}</p>")
        if status == "failed":
            parts.append(f'<p class="failed">failed: {esc(str(record.get("error", "")))}</p>')
        if figures:
            parts.append("<table><tr><th>figure</th><th>value</th></tr>" + "".join(
                f"<tr><td>{esc(str(k))}</td><td>{esc(_value(v))}</td></tr>" for k, v in figures.items()) + "</table>")
        outputs = record.get("outputs", {})
        if outputs:
            parts.append("<p>outputs: " + "; ".join(f"{esc(k)}: {_link(v, out)}" for k, v in outputs.items())
                         + "</p>")
        parts.append("<p>" + (" · ".join(links) if links else "") +
                     (f' <span class="note">{esc(export_note)}</span>' if export_note else "") + "</p>")
        sections.append("\n".join(parts))
    params = summary.get("parameters") or {}
    settings = [f"battlab {summary.get('battlab_version', '?')}, Python {summary.get('python', '?')}",
                f"started {summary.get('started', '?')}",
                "quick run (small parameters)" if summary.get("quick") else "full run",
                "parameters: " + (", ".join(f"{k} = {_value(v)}" for k, v in params.items()) if params else "none")]
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in summary.get("parameter_notes", []))
    page_html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>battlab run: {esc(out.name)}</title>
<style>{_STYLE}</style></head>
<body>
<h1>battlab run: {esc(out.name)}</h1>
<p>{esc("; ".join(settings))}</p>{notes}
<p>Figures of every step: <a href="summary.json">summary.json</a>.</p>
<table><tr><th>step</th><th>what it does</th><th>key figure</th><th>seconds</th><th>notebook</th></tr>
{chr(10).join(rows)}
</table>
{chr(10).join(sections)}
</body></html>
"""
    path = out / "report.html"
    path.write_text(page_html, encoding="utf-8")
    return path
