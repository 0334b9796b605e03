"""Reports: a study's claim, its setup beside the paper's, the verdict with its comparisons, figures and tables, from the store alone.

:func:`write_report` writes ``index.html`` (one static page, no scripts), the figures as PNG and SVG
beside it, and ``verdict.json`` (for tools: the outcome, the numbers behind it and every comparison
as ``{"name", "estimate", "low", "high", "margin", "direction", "n", "outcome", ...}``; a study
deciding several claims lists the others under ``"also"``). Nothing is recomputed: everything
comes from the runs of the study's sweep found in the store.
"""

from __future__ import annotations

import html
import json
import math
import os
import statistics
from typing import Any

from .errors import LabError
from .store import Store
from .studies import Study, Table, Verdict


def study_runs(store: Store, study: Study, quick: bool, data: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The stored runs of the study's sweep (full or quick, on ``data``: see :meth:`Study.spec`), in sweep order."""
    ids = [job.id for job in study.spec(quick, data).jobs()]
    by_id = {run["id"]: run for run in store.runs()}
    return [by_id[i] for i in ids if i in by_id]


def _value(v: Any) -> str:
    """A hyperparameter value without inner spaces, so a table cell wraps only between values; floats
    to 6 significant digits (a log grid's 0.000316227766017 reads 0.000316228)."""
    if isinstance(v, float):
        return f"{v:.6g}"
    return json.dumps(v, separators=(",", ":")) if isinstance(v, (list, tuple, dict)) else str(v)


def shared_hyperparameters(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The hyperparameters every finished run has with the same value, when some other one varies.

    The final table leaves these out of its rows (the report states them once); when nothing
    varies, nothing is shared and the rows keep them all.
    """
    hps = [run["hyperparameters"] for run in runs if run["status"] == "finished"]
    keys = {k for hp in hps for k in hp}
    same = {k: hps[0][k] for k in keys if all(k in hp and _value(hp[k]) == _value(hps[0][k]) for hp in hps)}
    return dict(sorted(same.items())) if len(same) < len(keys) else {}


def final_table(runs: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Rows per (optimizer, hyperparameters): each final metric as mean +- std over seeds, "—" for none.

    The hyperparameters column lists those that vary between runs (:func:`shared_hyperparameters`).
    """
    shared = shared_hyperparameters(runs)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        if run["status"] == "finished":
            hp = ", ".join(f"{k}={_value(v)}" for k, v in sorted(run["hyperparameters"].items()) if k not in shared)
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
                cells.append("—")
            elif len(values) == 1:
                cells.append(f"{values[0]:.4g}")
            else:
                cells.append(f"{statistics.fmean(values):.4g} ± {statistics.stdev(values):.2g}")
        rows.append(cells)
    return ["optimizer", "hyperparameters", "seeds", *names], rows


def make_folder(path: str, what: str) -> None:
    """Create the folder ``path`` (and its parents) if missing; LabError, one line, if it cannot be
    one (a file is there, a parent is a file, no permission...)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise LabError(f"{what} {path!r} is a file; give a folder (it is created if missing)")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise LabError(f"cannot create the {what} {path!r}: {err.strerror or err}") from None
    if not os.access(path, os.W_OK):
        raise LabError(f"{what} {path!r} is not writable")


def write_report(
    study: Study,
    db: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    quick: bool = False,
    data: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Write the study's report from ``db`` into ``out_dir``; returns the verdict as a dict.

    ``data``: the dataset options the study ran with (see :meth:`Study.spec`), to find its runs.
    """
    import matplotlib

    matplotlib.use("Agg")
    out = os.fspath(out_dir)
    make_folder(out, "report folder")
    with Store.open(db, create=False) as store:
        runs = study_runs(store, study, quick, data)
        if not runs:
            raise LabError(
                f"{db}: no runs of study {study.name!r}{' (quick)' if quick else ''}; run `adamlab study {study.name}` first"
            )
        figures = study.figures(store, runs, out)
        verdict = study.verdict(store, runs)
        tables = study.tables(store, runs) if study.tables is not None else []
    header, rows = final_table(runs)
    tables.append(Table("Final metrics", header, rows, " ".join(_table_notes(runs, header, rows))))
    result = {"study": study.name, "quick": quick, "runs": len(runs), **verdict.as_dict()}
    with open(os.path.join(out, "verdict.json"), "w") as fh:
        json.dump(result, fh, indent=1, allow_nan=False)
    setup = setup_table(study, quick, data)
    with open(os.path.join(out, "index.html"), "w", encoding="utf-8") as fh:
        fh.write(_page(study, verdict, setup, tables, figures, len(runs), quick))
    return result


def _values(values: list[Any]) -> str:
    unique = list(dict.fromkeys(_value(v) for v in values))
    return unique[0] if len(unique) == 1 else "{" + ", ".join(unique) + "}"


def setup_table(study: Study, quick: bool, data: dict[str, str] | None = None) -> Table:
    """The paper's setup (:attr:`Study.paper_setup`) beside the study's, read from its sweep: per problem the
    options, steps and evaluation interval, per optimizer the hyperparameters' values, the seeds."""
    jobs = [job.config for job in study.spec(quick, data).jobs()]
    problems = list(dict.fromkeys(c["problem"] for c in jobs))
    ours = {
        "model": "; ".join(
            f"{p} ({', '.join(f'{k}={_value(v)}' for k, v in sorted(next(c for c in jobs if c['problem'] == p)['options'].items()))})"
            for p in problems
        ),
        "steps": "; ".join(
            f"{p}: {next(c for c in jobs if c['problem'] == p)['steps']} (evaluated every "
            f"{next(c for c in jobs if c['problem'] == p)['eval_every']})"
            for p in problems
        ),
        "hyperparameters": "; ".join(
            f"{o}: "
            + ", ".join(
                f"{k}={_values([c['hyperparameters'].get(k) for c in jobs if c['optimizer'] == o])}"
                for k in sorted({k for c in jobs if c["optimizer"] == o for k in c["hyperparameters"]})
            )
            for o in dict.fromkeys(c["optimizer"] for c in jobs)
        ),
        "seeds": f"{len({c['seed'] for c in jobs})} ({', '.join(str(s) for s in sorted({c['seed'] for c in jobs}))})",
    }
    aspects = list(dict.fromkeys([*study.paper_setup, *ours]))
    rows = [[a, study.paper_setup.get(a, "not stated"), ours.get(a, "as the paper's")] for a in aspects]
    return Table(
        "Setup: the paper's and this study's",
        ["aspect", "paper", "this study" + (" (--quick)" if quick else "")],
        rows,
        "This study's column is read from the sweep that ran; a problem's options include its data (its model and dataset).",
    )


def _table_notes(runs: list[dict[str, Any]], header: list[str], rows: list[list[str]]) -> list[str]:
    """Sentences under the final table: the hyperparameters all runs share, what the target is, what "—" means."""
    notes = []
    shared = shared_hyperparameters(runs)
    if shared:
        notes.append("Every run: " + ", ".join(f"{k}={_value(v)}" for k, v in shared.items()) + ".")
    if "steps_to_target" in header:
        from .problems import problem_class

        targets = []
        for name in dict.fromkeys(run["problem"] for run in runs):
            try:
                target = problem_class(name).target
            except LabError:  # a user problem: no class to ask
                target = None
            if target is not None:
                targets.append(f"{target.describe()} ({name})")
        if targets:
            notes.append(f"steps_to_target: the first step at which {', '.join(targets)}.")
    if any("—" in row for row in rows):
        notes.append("— : no value (for steps_to_target: the target was never reached).")
    return notes


def _table(table: Table) -> str:
    e = html.escape
    # a header breaks after its underscores (steps_<wbr>to_<wbr>target) rather than widening the table
    cells = "<tr>" + "".join(f"<th>{e(h).replace('_', '_<wbr>')}</th>" for h in table.header) + "</tr>\n"
    cells += "\n".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    note = f'<p class="note">{e(table.note)}</p>' if table.note else ""
    return f'<h2>{e(table.title)}</h2>\n<div class="table"><table>\n{cells}\n</table></div>\n{note}'


def _comparisons(verdict: Verdict) -> str:
    """The verdict's comparisons as a table: estimate, 95% interval, claimed direction and margin, n, the smallest
    effect the seeds could detect, outcome."""
    e = html.escape
    if not verdict.comparisons:
        return ""
    columns = ("comparison", "estimate", "95% interval", "claimed", "n", "smallest detectable (80% power)", "outcome")
    head = "".join(f"<th>{h}</th>" for h in columns)
    rows = []
    for c in verdict.comparisons:
        cells = {k: e(v) for k, v in c.cells().items()}
        outcome = e(c.outcome) + ("" if c.decides else " (reported)") + (f": {e(c.untestable)}" if c.untestable else "")
        name = e(c.name) + (f" ({e(c.unit)})" if c.unit else "")
        rows.append(
            f"<tr><td>{name}</td><td>{cells['estimate']}</td><td>{cells['interval']}</td><td>{cells['claimed']}</td>"
            f"<td>{c.n}</td><td>{cells['detectable'] if math.isfinite(c.detectable) else ''}</td><td>{outcome}</td></tr>"
        )
    return f'<div class="table"><table>\n<tr>{head}</tr>\n' + "\n".join(rows) + "\n</table></div>"


def _colour(outcome: str) -> str:
    return {"holds": "#1a7f37", "does not hold": "#cf222e"}.get(outcome, "#9a6700")


def _verdict_block(verdict: Verdict) -> str:
    e = html.escape
    title = f"Verdict{' on ' + e(verdict.claim) if verdict.claim else ''}"
    colour = _colour(verdict.outcome)
    return (
        f'<div class="verdict" style="border-left-color: {colour}"><p class="outcome">{title}: '
        f'<b style="color: {colour}">{e(verdict.outcome)}</b></p><p>{e(verdict.because)}</p>{_comparisons(verdict)}</div>'
    )


def _page(
    study: Study, verdict: Verdict, setup: Table, tables: list[Table], figures: list[tuple[str, str]], n: int, quick: bool
) -> str:
    """The page: the claim, the setups, the verdicts, the figures (``(file stem, caption)`` pairs), then ``tables``."""
    e = html.escape
    verdicts = "\n".join(_verdict_block(v) for v in (verdict, *verdict.also))
    paraphrase = f"<p><i>Paraphrase (ours), what the verdict tests:</i> {e(study.paraphrase)}</p>" if study.paraphrase else ""
    figures_html = "\n".join(
        f'<figure><img src="{e(s)}.png" alt="{e(c)}"><figcaption>Figure {i}. {e(c)} '
        f'(<a href="{e(s)}.png">PNG</a>, <a href="{e(s)}.svg">SVG</a>)</figcaption></figure>'
        for i, (s, c) in enumerate(figures, start=1)
    )
    tables_html = "\n".join(_table(t) for t in tables)
    size = "quick size (--quick)" if quick else "full size"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>adamlab study: {e(study.name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #1f2328; }}
blockquote {{ border-left: 4px solid #d0d7de; margin: 1em 0; padding: 0.2em 1em; color: #59636e; }}
.verdict {{ padding: 0.6em 1em; border-radius: 6px; background: #f6f8fa; border-left: 6px solid #9a6700; line-height: 1.5; margin: 0.8em 0; }}
.verdict p {{ margin: 0.3em 0; }} .verdict .outcome {{ font-size: 1.3em; }}
.table {{ overflow-x: auto; }}
table {{ border-collapse: collapse; margin: 1em 0 0.5em; font-size: 0.92em; }}
th, td {{ border: 1px solid #d0d7de; padding: 4px 8px; text-align: right; vertical-align: top; }}
th {{ background: #f6f8fa; vertical-align: bottom; }} tr:nth-child(odd) td {{ background: #fbfcfd; }}
th:nth-child(-n+2), td:nth-child(-n+2) {{ text-align: left; }} td:nth-child(n+3) {{ white-space: nowrap; }}
.note {{ margin: 0.3em 0; color: #59636e; font-size: 0.92em; }}
figure {{ margin: 1.5em 0; }} img {{ display: block; max-width: 100%; height: auto; border: 1px solid #d0d7de; }}
figcaption {{ margin-top: 0.4em; color: #59636e; }}
</style></head><body>
<h1>{e(study.title)}</h1>
<p>Study <code>{e(study.name)}</code>, {e(size)}, {n} runs. Claim, quoted from {e(study.source)}:</p>
<blockquote>{e(study.claim)}</blockquote>
{paraphrase}
{_table(setup)}
<p class="note">The rule: each comparison's 95% t interval over seeds; a claim holds when the interval clears its margin in the claimed direction, does not hold when it excludes every effect in that direction, and is inconclusive otherwise (or untestable when a precondition of the setup fails).</p>
{verdicts}
{figures_html}
<p>{e(study.notes)}</p>
{tables_html}
</body></html>
"""
