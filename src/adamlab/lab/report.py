"""Reports: a study's figures, a table of final metrics per optimizer and the verdict, from the store alone.

:func:`write_report` writes ``index.html`` (one static page, no scripts), the figures as PNG and SVG
beside it, and ``verdict.json`` (the outcome and its numbers, for tools). Nothing is recomputed:
everything comes from the runs of the study's sweep found in the store.
"""

from __future__ import annotations

import html
import json
import os
import statistics
from typing import Any

from .errors import LabError
from .store import Store
from .studies import Study, Table


def study_runs(store: Store, study: Study, quick: bool) -> list[dict[str, Any]]:
    """The stored runs of the study's sweep (full or quick), in sweep order."""
    ids = [job.id for job in study.spec(quick).jobs()]
    by_id = {run["id"]: run for run in store.runs()}
    return [by_id[i] for i in ids if i in by_id]


def final_table(runs: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Rows per (optimizer, hyperparameters): each final metric as mean +- std over seeds."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        if run["status"] == "finished":
            hp = ", ".join(f"{k}={v}" for k, v in sorted(run["hyperparameters"].items()))
            groups.setdefault((run["optimizer"], hp), []).append(run["final_metrics"])
    names = sorted(
        {
            k
            for finals in groups.values()
            for f in finals
            for k, v in f.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
    )
    rows = []
    for (opt, hp), finals in groups.items():
        cells = [opt, hp, str(len(finals))]
        for name in names:
            values = [f[name] for f in finals if isinstance(f.get(name), (int, float)) and f[name] is not None]
            if not values:
                cells.append("")
            elif len(values) == 1:
                cells.append(f"{values[0]:.4g}")
            else:
                cells.append(f"{statistics.fmean(values):.4g} ± {statistics.stdev(values):.2g}")
        rows.append(cells)
    return ["optimizer", "hyperparameters", "seeds", *names], rows


def write_report(
    study: Study, db: str | os.PathLike[str], out_dir: str | os.PathLike[str], quick: bool = False
) -> dict[str, Any]:
    """Write the study's report from ``db`` into ``out_dir``; returns the verdict as a dict."""
    import matplotlib

    matplotlib.use("Agg")
    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    with Store.open(db, create=False) as store:
        runs = study_runs(store, study, quick)
        if not runs:
            raise LabError(
                f"{db}: no runs of study {study.name!r}{' (quick)' if quick else ''}; run `adamlab study {study.name}` first"
            )
        stems = study.figures(store, runs, out)
        verdict = study.verdict(store, runs)
        tables = study.tables(store, runs) if study.tables is not None else []
    header, rows = final_table(runs)
    result = {"study": study.name, "quick": quick, "outcome": verdict.outcome, "because": verdict.because, "runs": len(runs)}
    with open(os.path.join(out, "verdict.json"), "w") as fh:
        json.dump(result, fh, indent=1)
    with open(os.path.join(out, "index.html"), "w", encoding="utf-8") as fh:
        fh.write(_page(study, verdict, [*tables, Table("Final metrics", header, rows)], stems, len(runs), quick))
    return result


def _table(table: Table) -> str:
    e = html.escape
    cells = "<tr>" + "".join(f"<th>{e(h)}</th>" for h in table.header) + "</tr>\n"
    cells += "\n".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    note = f"<p>{e(table.note)}</p>" if table.note else ""
    return f"<h2>{e(table.title)}</h2>\n<table>\n{cells}\n</table>\n{note}"


def _page(study: Study, verdict: Any, tables: list[Table], stems: list[str], n: int, quick: bool) -> str:
    e = html.escape
    colour = {"holds": "#1a7f37", "does not hold": "#cf222e"}.get(verdict.outcome, "#9a6700")
    table = "\n".join(_table(t) for t in tables)
    figures = "\n".join(
        f'<figure><img src="{e(s)}.png" alt="{e(s)}"><figcaption>{e(s)} (<a href="{e(s)}.svg">SVG</a>)</figcaption></figure>'
        for s in stems
    )
    size = "quick size (--quick)" if quick else "full size"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>adamlab study: {e(study.name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #1f2328; }}
blockquote {{ border-left: 4px solid #d0d7de; margin: 1em 0; padding: 0.2em 1em; color: #59636e; }}
.verdict {{ font-size: 1.2em; padding: 0.6em 1em; border-radius: 6px; background: #f6f8fa; }}
.verdict b {{ color: {colour}; }}
table {{ border-collapse: collapse; margin: 1em 0; }} th, td {{ border: 1px solid #d0d7de; padding: 4px 10px; text-align: right; }}
th:nth-child(-n+2), td:nth-child(-n+2) {{ text-align: left; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; border: 1px solid #d0d7de; }}
</style></head><body>
<h1>{e(study.title)}</h1>
<p>Study <code>{e(study.name)}</code>, {e(size)}, {n} runs. Claim, from {e(study.source)}:</p>
<blockquote>{e(study.claim)}</blockquote>
<p class="verdict">Verdict: <b>{e(verdict.outcome)}</b>. {e(verdict.because)}</p>
{figures}
{table}
<p>{e(study.notes)}</p>
</body></html>
"""
