"""Study ``trajectories``: Adam's update is invariant to rescaling the gradient, and its steps are bounded.

Kingma & Ba's "Adam: A Method for Stochastic Optimization" (ICLR 2015; here as a 2021 slide review
of it) lists among Adam's properties "Invariant to re-scaling of gradient" and that "the step size
has two upper bounds": :math:`|\\Delta_t| \\le \\alpha(1-\\beta_1)/\\sqrt{1-\\beta_2}` when
:math:`(1-\\beta_1) > \\sqrt{1-\\beta_2}`, else :math:`|\\Delta_t| \\le \\alpha` (eps = 0).

Design: the three 2-D surfaces (``rosenbrock``, ``beale``, the ill-conditioned ``quadratic``),
whose whole trajectories are stored, so the figures are contour plots with each optimizer's path.
Adam, RMSprop (also a per-coordinate normalizer), Adagrad and SGD with momentum 0.9 run at the
problems' suggested lr 0.05 (SGD at 1e-3, the largest that is stable on Rosenbrock at scale 1),
each with the gradient multiplied by c in {0.01, 1, 100} (run control ``grad_scale``: the
optimizer sees the gradient of c*f). Adam records its effective step sizes
(``diagnostics = ["effective-step"]``). 2,000 steps at full size, 300 quick; one seed (the
problems are deterministic).

Verdict (the rule of :mod:`.decision`; the problems are deterministic, so every comparison is
exact): for each problem, the largest distance between Adam's iterates at c = 0.01 or 100 and at
c = 1, at the same step (its "invariance error"), within a margin of 0.01 (the surfaces' scale is
1); and Adam's largest step over the bound minus (1 + 1e-6), below 0. SGD's errors are reported
beside Adam's for contrast (a diverged SGD run counts as infinitely far).
"""

from __future__ import annotations

import math
from typing import Any

from . import Study, Verdict
from .decision import compare
from .plots import Run, finished, save

PROBLEMS = ("rosenbrock", "beale", "quadratic")
OPTIMIZERS = ("adam", "rmsprop", "adagrad", "sgd")
SCALES = (0.01, 1.0, 100.0)
COLOURS = {"adam": "tab:blue", "rmsprop": "tab:green", "adagrad": "tab:purple", "sgd": "tab:red"}
OPTIMA = {"rosenbrock": (1.0, 1.0), "beale": (3.0, 0.5), "quadratic": (0.0, 0.0)}


def _path(store: Any, run: Run) -> list[tuple[float, float]]:
    """The iterates (x_t, y_t), t = 1.. until the run stopped (NaN/inf entries cut the path)."""
    _, xs = store.series(run["id"], "x")
    _, ys = store.series(run["id"], "y")
    path = []
    for x, y in zip(xs, ys):
        if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
            break
        path.append((x, y))
    return path


def _runs_by(runs: list[Run]) -> dict[tuple[str, str, float], Run]:
    return {(r["problem"], r["optimizer"], float(r["hyperparameters"].get("grad_scale", 1.0))): r for r in finished(runs)}


def invariance_error(store: Any, runs: dict[tuple[str, str, float], Run], problem: str, optimizer: str) -> float:
    """Largest distance, over the steps and the scales != 1, between the iterates at scale c and at 1 (inf: a run stopped early)."""
    base = runs[problem, optimizer, 1.0]
    reference = _path(store, base)
    worst = 0.0
    for scale in SCALES:
        if scale == 1.0:
            continue
        run = runs[problem, optimizer, scale]
        path = _path(store, run)
        if run["final_metrics"].get("diverged") or len(path) < len(reference):
            return math.inf
        worst = max([worst] + [math.hypot(a[0] - b[0], a[1] - b[1]) for a, b in zip(path, reference)])
    return worst


def verdict(store: Any, runs: list[Run]) -> Verdict:
    by = _runs_by(runs)
    missing = sorted(
        {f"{p}/{o}/{c:g}" for p in PROBLEMS for o in ("adam", "sgd") for c in SCALES} - {f"{p}/{o}/{c:g}" for p, o, c in by}
    )
    if missing:
        return Verdict("inconclusive", f"runs missing or failed: {', '.join(missing)}")
    adam = {p: invariance_error(store, by, p, "adam") for p in PROBLEMS}
    sgd = {p: invariance_error(store, by, p, "sgd") for p in PROBLEMS}
    ratios = [r["final_metrics"].get("max_step_ratio_to_bound") for r in finished(runs) if r["optimizer"] == "adam"]
    if any(v is None for v in ratios):
        return Verdict("inconclusive", "an Adam run has no effective-step diagnostics")
    worst_ratio = max(ratios)
    comparisons = [
        compare(f"Adam's invariance error on {p}", [adam[p]], "within", 0.01, exact=True) for p in PROBLEMS
    ] + [compare("Adam's largest step / bound - (1 + 1e-6)", [worst_ratio - (1 + 1e-6)], "less", 0.0, exact=True)]
    return Verdict.of(
        comparisons,
        "Invariance error: the largest distance between the iterates with the gradient scaled by 0.01 or 100 and "
        "unscaled; SGD with momentum for contrast: "
        + ", ".join(f"{p} {sgd[p]:.2g}" for p in PROBLEMS)
        + f" (inf: diverged). Adam's largest step is {worst_ratio:.3f} of the paper's bound lr*(1-b1)/sqrt(1-b2).",
    )


def _surface(problem: str) -> Any:
    from ..problems import get_problem

    return get_problem(problem)


def _contours(ax: Any, problem: str, paths: list[list[tuple[float, float]]]) -> None:
    import numpy as np
    import torch

    points = [xy for path in paths for xy in path] + [OPTIMA[problem], tuple(_surface(problem).start)]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    # the window: every path point, clipped to a few units around the start and optimum
    lo_x, hi_x = max(min(xs), -4.0), min(max(xs), 5.0)
    lo_y, hi_y = max(min(ys), -3.0), min(max(ys), 4.0)
    pad_x, pad_y = 0.15 * (hi_x - lo_x) + 0.2, 0.15 * (hi_y - lo_y) + 0.2
    gx, gy = np.meshgrid(np.linspace(lo_x - pad_x, hi_x + pad_x, 300), np.linspace(lo_y - pad_y, hi_y + pad_y, 300))
    values = _surface(problem).value(torch.from_numpy(gx), torch.from_numpy(gy)).numpy()
    ax.contour(gx, gy, np.log10(values + 1e-3), levels=20, cmap="Greys", linewidths=0.6)
    ax.set_xlim(lo_x - pad_x, hi_x + pad_x)
    ax.set_ylim(lo_y - pad_y, hi_y + pad_y)


def figures(store: Any, runs: list[Run], out_dir: str) -> list[tuple[str, str]]:
    import matplotlib.pyplot as plt

    by = _runs_by(runs)
    fig, axes = plt.subplots(1, len(PROBLEMS), figsize=(15, 4.8))
    for ax, problem in zip(axes, PROBLEMS):
        paths = {o: _path(store, by[problem, o, 1.0]) for o in OPTIMIZERS if (problem, o, 1.0) in by}
        _contours(ax, problem, list(paths.values()))
        for name, path in paths.items():
            if path:
                ax.plot([p[0] for p in path], [p[1] for p in path], color=COLOURS[name], linewidth=1.2, label=name)
        start = _surface(problem).start
        ax.plot(*start, "ko", markersize=5, label="start")
        ax.plot(*OPTIMA[problem], "*", color="gold", markeredgecolor="black", markersize=13, label="minimum")
        ax.set(xlabel="x", ylabel="y", title=f"{problem}: iterates of each optimizer")
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle("Trajectories on log-spaced contours of f (unscaled gradient)", fontsize=11)
    fig.tight_layout()
    contours = save(
        fig,
        out_dir,
        "contours",
        "The path of each optimizer's iterates from the start (black dot) toward the minimum (star) on "
        "contours of log10 f, with the gradient unscaled; a path that leaves the window ran off.",
    )

    fig, axes = plt.subplots(2, len(PROBLEMS), figsize=(15, 7), sharex=True)
    styles = {0.01: ":", 1.0: "-", 100.0: "--"}
    for col, problem in enumerate(PROBLEMS):
        for row, name in enumerate(("adam", "sgd")):
            ax = axes[row, col]
            for scale in SCALES:
                run = by.get((problem, name, scale))
                if run is None:
                    continue
                path = _path(store, run)
                ox, oy = OPTIMA[problem]
                dist = [max(math.hypot(x - ox, y - oy), 1e-12) for x, y in path]
                # a run that blows up is drawn until it leaves the window (1e3), then marked with an x
                kept = next((i for i, d in enumerate(dist) if d > 1e3), len(dist))
                (line,) = ax.plot(
                    range(1, kept + 1), dist[:kept], styles[scale], color=COLOURS[name], label=f"gradient x {scale:g}"
                )
                if kept < len(dist) or run["final_metrics"].get("diverged"):
                    ax.plot([kept], [1e3 if kept < len(dist) else dist[kept - 1]], "x", color=line.get_color(), markersize=9)
                    line.set_label(f"gradient x {scale:g} (diverged at step {kept})")
            ax.set(yscale="log", title=f"{problem}, {'Adam' if name == 'adam' else 'SGD momentum 0.9'}")
            if name == "sgd":
                ax.set_ylim(top=2e3)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        axes[1, col].set_xlabel("step")
    for row in range(2):
        axes[row, 0].set_ylabel("distance to the minimum")
    fig.tight_layout()
    scaled = save(
        fig,
        out_dir,
        "gradient-scale",
        "Distance to the minimum over the steps with the gradient multiplied by 0.01 (dotted), 1 (solid) "
        "and 100 (dashed): Adam's three lines lie on top of each other; SGD's crawl, or end where the run diverged.",
    )
    return [contours, scaled]


TRAJECTORIES = Study(
    name="trajectories",
    title="Adam on 2-D surfaces: invariance to the gradient's scale, bounded steps",
    source=(
        "Kingma & Ba, \"Adam: A Method for Stochastic Optimization\" (ICLR 2015), sections 2 and 2.1, as a 2021 slide "
        "review of it presents them (slides \"Proposed Method: ADAM\" and \"Update Rule\")"
    ),
    claim=(
        "Adam: \"Efficient\" optimization method [...] Invariant to re-scaling of gradient [...] The step size has two "
        "upper bounds [...] (i) First Case (1 - beta_1) > sqrt(1 - beta_2) => |Delta_t| <= alpha * (1 - beta_1) / "
        "sqrt(1 - beta_2) (ii) Second Case (1 - beta_1) <= sqrt(1 - beta_2) => |Delta_t| <= alpha"
    ),
    paraphrase="Adam's path is the same (within 0.01) when the gradient is multiplied by 0.01 or 100, and no step exceeds the bound.",
    paper_setup={"model": "none (properties of the update rule)", "seeds": "none"},
    sweep={
        "problems": list(PROBLEMS),
        "optimizers": list(OPTIMIZERS),
        "seeds": [0],
        "steps": 2000,
        "eval_every": 200,
        "grid": {"lr": [0.05], "grad_scale": list(SCALES)},
        "optimizer": {
            "adam": {"diagnostics": [["effective-step"]]},
            "sgd": {"lr": [1e-3], "momentum": [0.9]},
        },
    },
    quick={"steps": 300, "eval_every": 50},
    figures=figures,
    verdict=verdict,
    notes="Deterministic problems (one seed). The gradient scale is applied to the gradient each optimizer sees; "
    "the stored losses are the unscaled f. eps (1e-8 for Adam) breaks exact invariance only where sqrt(v) is near eps.",
)
