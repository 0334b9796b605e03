"""What the studies share: grouping stored runs, seed statistics, and the figures and tables researchers expect.

- Grouping: :func:`configs` (runs of one optimizer and hyperparameters, over seeds),
  :func:`best_configs` (per optimizer, the hyperparameters with the best mean final metric).
  :func:`best_by` (the same per variant of a labelling function), :func:`per_seed` (a
  configuration's final metric by seed, for :func:`.decision.paired`).
- Figures: :func:`curve` (mean over seeds with a +-1 std band), :func:`sensitivity` (final metric
  vs learning rate), :func:`heatmap`, :func:`image_grid`, :func:`performance_profile`
  (Dolan & More 2002), and :func:`save` (PNG and SVG).
- Tables: :func:`time_to_target` (steps and seconds to the problem's target, per optimizer).
- Titles: :func:`mlp_text` (the MLP and its split, read from a run's config).

A diverged run (non-finite loss) counts as the worst value of its metric: ``+inf`` when lower is
better, ``-inf`` when higher is better, so it can never be picked as best.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..spec import short_value
from . import Table

Run = dict[str, Any]


def save(fig: Any, out_dir: str, stem: str, caption: str) -> tuple[str, str]:
    """Write ``fig`` as ``stem.png`` and ``stem.svg`` in ``out_dir``, close it; returns ``(stem, caption)``
    for the report, whose caption says what the figure shows."""
    import matplotlib.pyplot as plt

    for ext in ("png", "svg"):
        fig.savefig(f"{out_dir}/{stem}.{ext}", dpi=110)
    plt.close(fig)
    return stem, caption


DIGITS = 1797  # images in scikit-learn's digits


def mlp_text(run: Run) -> tuple[str, str, str]:
    """``("MLP (2 x 128 ReLU)", "359 train images", "1438 test images")`` of an ``mlp-digits`` run, from its config
    (the digits split rounds test_fraction x 1797 as :func:`adamlab.lab.data.random_split` does; on MNIST: "MNIST ...")."""
    options = run["config"]["options"]
    model = f"MLP ({options['layers']} x {options['hidden']} ReLU)"
    if options.get("mnist_dir"):
        return model, "MNIST train images", "MNIST test images"
    n_test = int(round(options["test_fraction"] * DIGITS))
    return model, f"{DIGITS - n_test} train images", f"{n_test} test images"


def finished(runs: Iterable[Run]) -> list[Run]:
    return [r for r in runs if r["status"] == "finished"]


def configs(runs: Iterable[Run]) -> dict[tuple[str, str, str], list[Run]]:
    """Finished runs grouped by (problem, optimizer, hyperparameters as canonical JSON), seeds together, in order."""
    out: dict[tuple[str, str, str], list[Run]] = {}
    for run in finished(runs):
        out.setdefault((run["problem"], run["optimizer"], json.dumps(run["hyperparameters"], sort_keys=True)), []).append(run)
    return out


def final(run: Run, metric: str, mode: str) -> float:
    """The run's final ``metric``; the worst value (see the module docstring) when it diverged or lacks it."""
    value = run["final_metrics"].get(metric)
    if run["final_metrics"].get("diverged") or not isinstance(value, (int, float)) or not math.isfinite(value):
        return math.inf if mode == "min" else -math.inf
    return float(value)


def mean(values: Sequence[float]) -> float:
    """The mean, or the infinite value when any is infinite (a diverged seed spoils a config)."""
    return math.fsum(values) / len(values) if all(math.isfinite(v) for v in values) else max(values, key=abs)


def best_configs(runs: Iterable[Run], metric: str, mode: str = "min") -> dict[tuple[str, str], list[Run]]:
    """Per (problem, optimizer), the seed runs of the hyperparameters with the best mean final ``metric``."""
    return best_by(runs, lambda run: (run["problem"], run["optimizer"]), metric, mode)


def seed_curves(store: Any, runs: Sequence[Run], metric: str, kind: str = "eval") -> tuple[list[int], list[float], list[float]]:
    """``(steps, mean, std)`` of ``metric`` over the seed runs, at the steps every run has (NaN/None dropped per step)."""
    series = [dict(zip(*store.series(r["id"], metric, kind=kind))) for r in runs]
    steps = sorted(set.intersection(*(set(s) for s in series))) if series else []
    means, stds = [], []
    for step in steps:
        values = [s[step] for s in series if s[step] is not None and math.isfinite(s[step])]
        means.append(statistics.fmean(values) if values else math.nan)
        stds.append(statistics.stdev(values) if len(values) > 1 else 0.0)
    return steps, means, stds


def curve(ax: Any, store: Any, runs: Sequence[Run], metric: str, label: str, kind: str = "eval", **style: Any) -> Any:
    """Plot the seed mean of ``metric`` with a +-1 std band; returns the line."""
    steps, means, stds = seed_curves(store, runs, metric, kind)
    (line,) = ax.plot(steps, means, label=f"{label} (n={len(runs)})" if len(runs) > 1 else label, **style)
    if len(runs) > 1:
        ax.fill_between(
            steps,
            [m - s for m, s in zip(means, stds)],
            [m + s for m, s in zip(means, stds)],
            color=line.get_color(),
            alpha=0.2,
            linewidth=0,
        )
    return line


def sensitivity(ax: Any, runs: Iterable[Run], metric: str, mode: str, label: Callable[[Run], str], key: str = "lr") -> None:
    """Final ``metric`` (mean +- std over seeds) against hyperparameter ``key`` (log x), one line per label.

    Diverged configurations are drawn as crosses at the top (``mode="min"``) or bottom of the axes.
    """
    lines: dict[str, dict[float, list[float]]] = {}
    for run in finished(runs):
        lines.setdefault(label(run), {}).setdefault(float(run["hyperparameters"][key]), []).append(final(run, metric, mode))
    for name, by_x in lines.items():
        xs = sorted(by_x)
        ok = [x for x in xs if all(math.isfinite(v) for v in by_x[x])]
        means = [statistics.fmean(by_x[x]) for x in ok]
        stds = [statistics.stdev(by_x[x]) if len(by_x[x]) > 1 else 0.0 for x in ok]
        (line,) = ax.plot(ok, means, "o-", label=name)
        ax.errorbar(ok, means, yerr=stds, fmt="none", ecolor=line.get_color(), capsize=3)
        bad = [x for x in xs if x not in ok]
        if bad:
            edge = 1.0 if mode == "min" else 0.0
            ax.plot(
                bad,
                [edge] * len(bad),
                "x",
                color=line.get_color(),
                transform=ax.get_xaxis_transform(),
                markersize=9,
                clip_on=False,
            )
    ax.set_xscale("log")
    ax.set_xlabel(key if key != "lr" else "learning rate")
    ax.grid(alpha=0.3)


def heatmap(
    fig: Any,
    ax: Any,
    values: Sequence[Sequence[float]],
    xticks: Sequence[str],
    yticks: Sequence[str],
    colorbar: str,
    fmt: str = "{:.3g}",
    cmap: str = "viridis",
) -> None:
    """A matrix as coloured cells with the value written in each (NaN cells blank, labelled "div.")."""
    import numpy as np

    data = np.array(values, dtype=float)
    shown = np.ma.masked_invalid(data)
    image = ax.imshow(shown, cmap=cmap, aspect="auto", origin="lower")
    ax.set_xticks(range(len(xticks)), xticks)
    ax.set_yticks(range(len(yticks)), yticks)
    finite = data[np.isfinite(data)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            v = data[i, j]
            text = fmt.format(v) if math.isfinite(v) else "div."
            ax.text(
                j, i, text, ha="center", va="center", fontsize=8, color="white" if math.isfinite(v) and v < middle else "black"
            )
    fig.colorbar(image, ax=ax, label=colorbar)


def image_grid(ax: Any, images: Any, columns: int = 8, title: str = "") -> None:
    """Grey images ``(n, h, w)`` in [0, 1] tiled into one picture with 1-pixel gaps."""
    import numpy as np

    images = np.asarray(images)
    n, h, w = images.shape
    rows = math.ceil(n / columns)
    canvas = np.ones((rows * (h + 1) - 1, columns * (w + 1) - 1))
    for k in range(n):
        r, c = divmod(k, columns)
        canvas[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = images[k]
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def performance_profile(ax: Any, costs: dict[str, list[float]], what: str = "steps to target") -> dict[str, float]:
    """Dolan & More's performance profile: for each solver, the share of instances it solves within tau times the best cost.

    ``costs[solver][k]`` is the cost on instance k (``inf`` when unsolved); every solver lists the
    same instances. Instances no solver solved are left out of the ratios but counted in the
    denominator. Returns each solver's share of instances solved (at any tau).
    """
    solvers = list(costs)
    n = len(next(iter(costs.values()))) if costs else 0
    best = [min(costs[s][k] for s in solvers) for k in range(n)]
    ratios = {s: sorted(costs[s][k] / best[k] for k in range(n) if math.isfinite(best[k]) and best[k] > 0) for s in solvers}
    top = max([r for rs in ratios.values() for r in rs if math.isfinite(r)] + [1.0]) * 1.5
    solved = {}
    for s in solvers:
        finite = [r for r in ratios[s] if math.isfinite(r)]
        xs = [1.0] + finite + [top]
        ys = [sum(r <= x for r in finite) / n if n else 0.0 for x in xs]
        ax.step(xs, ys, where="post", label=s)
        solved[s] = len(finite) / n if n else 0.0
    ax.set_xscale("log", base=2)
    ax.set(
        xlabel=f"tau: within tau x the best {what}", ylabel="share of instances", ylim=(-0.02, 1.02), title="Performance profile"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return solved


def time_to_target(groups: dict[tuple[str, str], list[Run]], target: str) -> Table:
    """Per (problem, optimizer) group: the share of seeds that reached ``target``, median steps and seconds to it."""
    rows = []
    for (problem, optimizer), group in groups.items():
        steps = [r["final_metrics"].get("steps_to_target") for r in group]
        seconds = [(r.get("timings") or {}).get("seconds_to_target") for r in group]
        reached = [s for s in steps if s is not None]
        secs = [s for s in seconds if s is not None]
        hp = ", ".join(f"{k}={short_value(v)}" for k, v in sorted(group[0]["hyperparameters"].items()))
        rows.append(
            [
                problem,
                optimizer,
                hp,
                f"{len(reached)}/{len(group)}",
                f"{statistics.median(reached):g}" if reached else "never",
                f"{statistics.median(secs):.2f}" if secs else "",
            ]
        )
    return Table(
        f"Time to target ({target})",
        ["problem", "optimizer", "hyperparameters", "seeds reaching", "median steps", "median seconds"],
        rows,
        "Steps: the first logged or evaluated step at which the target held; seconds: training time to that step.",
    )


def best_by(runs: Iterable[Run], label: Callable[[Run], Any], metric: str, mode: str = "min") -> dict[Any, list[Run]]:
    """Per variant ``label(run)`` (e.g. "padam p=1/4", or (problem, optimizer) for :func:`best_configs`),
    the seed runs of the hyperparameters with the best mean final ``metric``.

    For studies that compare settings of one optimizer (an exponent, a schedule) each at its own
    best learning rate. Runs whose label is ``None`` are left out. Variants keep the order in which
    they first appear in ``runs``.
    """
    best: dict[Any, tuple[float, list[Run]]] = {}
    sign = 1 if mode == "min" else -1
    for group in configs(runs).values():
        name = label(group[0])
        if name is None:
            continue
        score = sign * mean([final(r, metric, mode) for r in group])
        if name not in best or score < best[name][0]:
            best[name] = (score, group)
    return {name: group for name, (_, group) in best.items()}


def per_seed(group: Iterable[Run], metric: str, mode: str = "max") -> dict[int, float]:
    """Seed -> the run's final ``metric`` (:func:`final`: a diverged run is the infinite worst value, which leaves a
    comparison of it without an interval)."""
    return {r["seed"]: final(r, metric, mode) for r in group}
