"""Study ``weight-decay``: Adam with L2 regularization vs AdamW's decoupled weight decay, normalized decay, warm restarts.

Claim (Bushaev's "Adam — latest trends in deep learning optimization", on Loshchilov & Hutter's
"Fixing Weight Decay Regularization in Adam"): L2
regularization is not weight decay for Adam; decoupling the decay makes its best value largely
independent of the learning rate (the good region of the lr x decay heatmap is axis-aligned for
AdamW, diagonal for Adam + L2), and AdamW reaches a lower test error. Normalized weight decay and
warm restarts (AdamWR) improve it further.

Problem: ``mlp-digits`` with 128 hidden units per layer trained on a fifth of the digits (359
train images, 1438 test images, ``test_fraction = 0.8``). With so few examples the MLP fits the
train set exactly and overfits, so regularization has something to do at CPU size; 128 units keep
a job to about a second. 400 steps of batch 128 (~140 epochs), 3 seeds (a seed fixes the split
and the initialization).

Grid, 5 x 5 per optimizer: lr 1e-4..1e-2 (log-spaced) for both; Adam's L2 factor (``adam`` with
``weight_decay``, added to the gradient) in {0, 1e-4, 1e-3, 1e-2, 1e-1}; AdamW's decay as seed
001's normalized weight decay :math:`\\lambda_{norm}` (run control ``weight_decay_norm``) in
{0, 0.01, 0.03, 0.1, 0.3}. The control sets ``weight_decay`` to
:math:`\\lambda_{norm}/(\\alpha\\sqrt{T})`, so the fraction of the weights removed per step,
:math:`\\lambda_{norm}/\\sqrt{T}`, does not depend on the lr :math:`\\alpha`: this is the paper's
parametrization (its decay is multiplied by the schedule multiplier only), where the separability
claim is made. With torch's convention (``p *= 1 - lr * weight_decay``) the decay per step would
grow with the lr by construction. The paper's figure is a ResNet on CIFAR-10 after 100 epochs. AdamW also runs with warm restarts (run control ``schedule =
"cosine-restarts"``, periods of 1/7, 2/7 and 4/7 of the budget; the normalized decay uses the whole
budget T, not each period's) over the same grid: AdamWR.

Verdict (the rule of :mod:`.decision`), on the final test accuracy, each comparison paired by seed:

- "much lower test error": AdamW's best cell minus Adam + L2's best cell, greater than 0.5 points;
- "decoupling": the *retuning loss* of a variant on a seed is the accuracy lost, averaged over the
  learning rates whose best cell is within 5 points of the variant's best (rows where training
  worked), by keeping the decay of the variant's best cell instead of each lr's own best decay
  (both chosen on seed means). A decay that is best at every lr loses nothing; a diagonal optimum
  loses the more the lr moves. Adam + L2's retuning loss minus AdamW's is greater than 0;
- a second verdict, "much better results with restarts": AdamWR's best cell minus AdamW's, greater
  than 0.5 points.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from . import Study, Table, Verdict
from .decision import paired
from .plots import Run, best_by, curve, final, finished, heatmap, mlp_text, per_seed, save, time_to_target

METRIC = "test_accuracy"
MARGIN = 0.005  # "much lower test error", "much better results": more than half a point of accuracy
LRS = {"log": [1e-4, 1e-2], "num": 5}
L2 = [0.0, 1e-4, 1e-3, 1e-2, 1e-1]
WD_NORM = [0.0, 0.01, 0.03, 0.1, 0.3]
ADAM, ADAMW, ADAMWR = "Adam + L2", "AdamW", "AdamWR (warm restarts)"
NONE = "Adam, no decay"  # AdamW with no decay is the same algorithm
STYLE = {ADAM: "tab:red", ADAMW: "tab:blue", ADAMWR: "tab:green", NONE: "tab:gray"}


def variant(run: Run) -> str:
    if run["optimizer"] == "adam":
        return ADAM
    return ADAMWR if run["hyperparameters"].get("schedule") == "cosine-restarts" else ADAMW


def _decay(run: Run) -> float:
    hp = run["hyperparameters"]
    return float(hp["weight_decay"] if run["optimizer"] == "adam" else hp["weight_decay_norm"])


def grid(runs: list[Run], name: str) -> tuple[list[float], list[float], dict[tuple[float, float], list[Run]]]:
    """(lrs, decay values, {(lr, decay): seed runs}) of one variant's finished runs."""
    cells: dict[tuple[float, float], list[Run]] = {}
    for run in runs:
        if run["status"] == "finished" and variant(run) == name:
            cells.setdefault((float(run["hyperparameters"]["lr"]), _decay(run)), []).append(run)
    return sorted({lr for lr, _ in cells}), sorted({d for _, d in cells}), cells


def _mean(group: list[Run]) -> float:
    """Mean final accuracy over seeds; NaN when a seed diverged or lacks it."""
    values = [final(r, METRIC, "max") for r in group]
    return statistics.fmean(values) if values and all(math.isfinite(v) for v in values) else math.nan


def best_decay_per_lr(runs: list[Run], name: str) -> dict[float, float]:
    """For each lr whose best cell is within 5 points of the variant's best: the decay value with the best mean accuracy."""
    lrs, decays, cells = grid(runs, name)
    out: dict[float, tuple[float, float]] = {}
    for lr in lrs:
        scores = [(_mean(cells[lr, d]), d) for d in decays if (lr, d) in cells]
        scores = [(s, d) for s, d in scores if not math.isnan(s)]
        if scores:
            out[lr] = max(scores, key=lambda sd: sd[0])
    top = max((s for s, _ in out.values()), default=math.nan)
    return {lr: d for lr, (s, d) in out.items() if s >= top - 0.05}


def best(runs: list[Run]) -> dict[str, list[Run]]:
    """The best cell (seed runs) of each variant, and of Adam without decay (its best lr among the L2 factor 0 runs)."""
    found = best_by(runs, variant, METRIC, "max")
    found.update(best_by(runs, lambda r: NONE if r["optimizer"] == "adam" and _decay(r) == 0 else None, METRIC, "max"))
    return {name: found[name] for name in STYLE if name in found}


def _describe(name: str, group: list[Run]) -> str:
    hp = group[0]["hyperparameters"]
    decay = "" if name == NONE else f", {'L2' if name == ADAM else 'wd_norm'} {_decay(group[0]):g}"
    return f"{name} {100 * _mean(group):.2f}% (lr {hp['lr']:.2g}{decay})"


def retuning_loss(runs: list[Run], name: str) -> dict[int, float]:
    """Seed -> the accuracy the variant loses by keeping its best cell's decay at every good lr (module docstring)."""
    lrs, decays, cells = grid(runs, name)
    chosen = best_decay_per_lr(runs, name)
    top = max(chosen, key=lambda lr: _mean(cells[lr, chosen[lr]]))
    kept = chosen[top]
    seeds = sorted({r["seed"] for group in cells.values() for r in group})
    out = {}
    for seed in seeds:
        losses = []
        for lr, own in chosen.items():
            if (lr, kept) not in cells:
                continue
            scores = {d: per_seed(cells[lr, d], METRIC).get(seed, math.nan) for d in (own, kept)}
            losses.append(scores[own] - scores[kept])
        out[seed] = statistics.fmean(losses) if losses else math.nan
    return out


def verdict(store: Any, runs: list[Run]) -> Verdict:
    groups = best(runs)
    missing = [name for name in (ADAM, ADAMW, ADAMWR) if name not in groups]
    if missing:
        return Verdict("inconclusive", f"no finished runs for {', '.join(missing)}")
    if any(math.isnan(_mean(groups[name])) for name in (ADAM, ADAMW)):
        return Verdict("inconclusive", "the best cell of Adam + L2 or AdamW has a diverged or unscored seed")
    accuracy = {name: per_seed(group, METRIC) for name, group in groups.items()}
    chosen = {name: best_decay_per_lr(runs, name) for name in (ADAM, ADAMW)}
    numbers = (
        "best final test accuracy (mean over seeds): "
        + "; ".join(_describe(name, group) for name, group in groups.items())
        + ". Best decay per lr (lr: decay, the lrs within 5 points of the best): "
        + "; ".join(f"{name} ({', '.join(f'{lr:.2g}: {d:g}' for lr, d in by_lr.items())})" for name, by_lr in chosen.items())
        + "."
    )
    restarts = Verdict.of(
        [paired("AdamWR minus AdamW, final test accuracy", accuracy[ADAMWR], accuracy[ADAMW], "greater", MARGIN, unit="points")],
        claim="with new weight decay, Adam got much better results with restarts",
    )
    return Verdict.of(
        [
            paired("AdamW minus Adam + L2, final test accuracy", accuracy[ADAMW], accuracy[ADAM], "greater", MARGIN, unit="points"),
            paired(
                "retuning loss of Adam + L2 minus AdamW's",
                retuning_loss(runs, ADAM),
                retuning_loss(runs, ADAMW),
                "greater",
                0.0,
                unit="points",
            ),
        ],
        f"Paired by seed (same split and initialization). {numbers}",
        also=(restarts,),
    )


def _heatmap(fig: Any, ax: Any, runs: list[Run], name: str, ylabel: str) -> None:
    lrs, decays, cells = grid(runs, name)
    values = [[100 * (1 - _mean(cells[lr, d])) if (lr, d) in cells else math.nan for lr in lrs] for d in decays]
    heatmap(
        fig,
        ax,
        values,
        [f"{lr:.2g}" for lr in lrs],
        [f"{d:g}" for d in decays],
        "test error (%), colour capped at best + 5",
        fmt="{:.1f}",
    )
    finite = [v for row in values for v in row if math.isfinite(v)]
    if finite:  # colour the interesting range: the best cell to 5 points worse; the text stays readable on it
        low, high = min(finite), min(finite) + 5
        ax.images[-1].set_clim(low, high)
        for text, v in zip(ax.texts, (v for row in values for v in row)):
            text.set_color("white" if math.isfinite(v) and v < (low + high) / 2 else "black")
    chosen = best_decay_per_lr(runs, name)
    xs = [lrs.index(lr) for lr in chosen]
    ys = [decays.index(d) for d in chosen.values()]
    ax.plot(xs, ys, "s", markersize=26, markerfacecolor="none", markeredgecolor="red", markeredgewidth=2)
    ax.set(xlabel="learning rate", ylabel=ylabel, title=f"{name}: final test error (mean over seeds)")


def figures(store: Any, runs: list[Run], out_dir: str) -> list[tuple[str, str]]:
    import matplotlib.pyplot as plt

    stems = []
    fig, axes = plt.subplots(1, 3, figsize=(18, 5))
    _heatmap(fig, axes[0], runs, ADAM, "L2 factor (weight_decay of adam)")
    _heatmap(fig, axes[1], runs, ADAMW, "normalized weight decay $\\lambda_{norm}$")
    _heatmap(fig, axes[2], runs, ADAMWR, "normalized weight decay $\\lambda_{norm}$")
    model, train, _ = mlp_text(finished(runs)[0])
    fig.suptitle(f"{model} on {train}: red squares mark the best decay for each lr (lrs within 5 points of the best)")
    fig.tight_layout()
    stems.append(
        save(
            fig,
            out_dir,
            "heatmaps",
            "Final test error (mean over seeds) over the learning rate x weight decay grid for Adam + L2, AdamW (normalized decay) and AdamWR (with warm restarts); a red box marks the best decay at each learning rate: a diagonal of boxes means the best decay depends on the learning rate.",
        )
    )

    groups = best(runs)
    _, train, test = mlp_text(finished(runs)[0])
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.8))
    for name, group in groups.items():
        label = _describe(name, group).replace("% (", "% final (", 1)
        dash = "--" if name == NONE else "-"
        for ax, metric in zip(axes, ("train_loss", METRIC)):
            curve(ax, store, group, metric, label, color=STYLE[name], linestyle=dash, linewidth=1.3)
    axes[0].set(yscale="log", ylabel="train cross-entropy (nats, log scale)", title=f"Training loss ({train})")
    axes[1].set(ylabel="test accuracy", title=f"Test accuracy ({test})", ylim=(0.85, 1.0))
    for ax in axes:
        ax.set_xlabel("step (batch 128)")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle("Each variant at its best lr and decay, mean ± std over seeds")
    fig.tight_layout()
    stems.append(
        save(
            fig,
            out_dir,
            "curves",
            "Training loss and test accuracy of each variant at its best learning rate and decay (mean, band ± std over seeds); dashed: Adam without decay.",
        )
    )
    return stems


def tables(store: Any, runs: list[Run]) -> list[Table]:
    groups = {("mlp-digits", name): group for name, group in best(runs).items()}
    return [time_to_target(groups, "test_accuracy >= 0.95")]


WEIGHT_DECAY = Study(
    name="weight-decay",
    title="Adam + L2 vs AdamW (decoupled, normalized weight decay) and AdamWR (MLP on a fifth of the digits)",
    source=(
        "Vitaly Bushaev, \"Adam — latest trends in deep learning optimization\" (2018), section on Loshchilov & Hutter's "
        "\"Fixing Weight Decay Regularization in Adam\" (under its figure of test error over lr x decay)"
    ),
    claim=(
        "As we can see above, not only Adam with weight decay gets much lower test error, it actually helps in decoupling "
        "learning rate and regularization hyperparameters. On the left picture, we can see that if we change the parameters, "
        "say learning rate, then in order to achieve optimal point again we'd need to change L2 factor as well [...]. On the "
        "right picture, we can see that as long as we stay in some range of optimal values for one parameter, we can change "
        "another one independently. [...] With new weight decay, Adam got much better results with restarts, but it's "
        "still not as good as SGDR."
    ),
    paraphrase=(
        "AdamW's best test accuracy is more than 0.5 points above Adam + L2's; keeping AdamW's best decay while the lr "
        "moves costs less accuracy than keeping Adam's best L2 factor; AdamWR beats AdamW by more than 0.5 points."
    ),
    paper_setup={
        "model": "ResNet on CIFAR-10 (its top-1 test error after 100 epochs)",
        "steps": "100 epochs (the figure)",
        "hyperparameters": "a grid of lr x L2 factor / normalized decay; cosine annealing, warm restarts for AdamWR",
        "seeds": "not stated (one value per cell)",
    },
    sweep={
        "problems": ["mlp-digits"],
        "optimizers": ["adam", "adamw"],
        "seeds": [0, 1, 2],
        "steps": 400,
        "eval_every": 20,
        "problem": {"mlp-digits": {"hidden": 128, "test_fraction": 0.8}},
        "grid": {"lr": LRS},
        "optimizer": {
            "adam": {"weight_decay": L2},
            "adamw": {"weight_decay_norm": WD_NORM, "schedule": ["constant", "cosine-restarts"]},
        },
    },
    quick={
        "seeds": [0],
        "steps": 80,
        "eval_every": 10,
        "problem": {"mlp-digits": {"hidden": 64, "test_fraction": 0.8}},
        "grid": {"lr": [1e-3, 3e-3, 1e-2]},
        "optimizer": {
            "adam": {"weight_decay": [0.0, 1e-3, 1e-2]},
            "adamw": {"weight_decay_norm": [0.0, 0.03, 0.3], "schedule": ["constant", "cosine-restarts"]},
        },
    },
    figures=figures,
    verdict=verdict,
    tables=tables,
    notes="Heatmap cells: final test error, mean over seeds (div.: a seed diverged). Best cells are chosen on the test set, "
    "as in Loshchilov & Hutter's heatmaps. AdamW's weight_decay in the final-metrics table is the normalized value's "
    "resolved form lambda_norm / (lr sqrt(steps)).",
)
