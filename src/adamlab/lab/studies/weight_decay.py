"""Study ``weight-decay`` (seed 001): Adam with L2 regularization vs AdamW's decoupled weight decay, normalized decay, warm restarts.

Claim (seed 001, on Loshchilov & Hutter's "Fixing Weight Decay Regularization in Adam"): L2
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
grow with the lr by construction. AdamW also runs with warm restarts (run control ``schedule =
"cosine-restarts"``, periods of 1/7, 2/7 and 4/7 of the budget; the normalized decay uses the whole
budget T, not each period's) over the same grid: AdamWR.

Verdict, on the final test accuracy (mean over seeds): (1) decoupling: for each lr whose best cell
is within 5 points of the grid's best (rows where training worked), take the index of the best
decay value; the Spearman correlation of that index with the lr index should be strongly negative
or positive for Adam + L2 (|r| >= 0.5) and weaker for AdamW (|r| < 0.5); (2) generalization:
AdamW's best cell against Adam + L2's best cell, paired by seed, better by more than twice the
standard error of the per-seed differences. "holds" when both hold, "does not hold" when AdamW's
correlation is at least Adam's or AdamW is not better, "inconclusive" otherwise or when runs are
missing or diverged. AdamWR's best against AdamW's best is quoted beside it, and so are AdamW's best
decays converted to torch's convention (``weight_decay`` = decay per step / lr), with their own
rank correlation: information on how the answer depends on the parametrization, not part of the rule.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from . import Study, Table, Verdict
from .plots import Run, best_by, curve, final, heatmap, paired_difference, save, time_to_target

METRIC = "test_accuracy"
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


def _ranks(xs: list[float]) -> list[float]:
    order = sorted(range(len(xs)), key=xs.__getitem__)
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(xs: list[float], ys: list[float]) -> float:
    """Spearman's rank correlation (ties get mean ranks); 0 when either side is constant."""
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else 0.0


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


def verdict(store: Any, runs: list[Run]) -> Verdict:
    groups = best(runs)
    missing = [name for name in (ADAM, ADAMW, ADAMWR) if name not in groups]
    if missing:
        return Verdict("inconclusive", f"no finished runs for {', '.join(missing)}")
    if any(math.isnan(_mean(groups[name])) for name in (ADAM, ADAMW)):
        return Verdict("inconclusive", "the best cell of Adam + L2 or AdamW has a diverged or unscored seed")
    corr = {}
    for name in (ADAM, ADAMW):
        by_lr = best_decay_per_lr(runs, name)
        if len(by_lr) < 3:
            return Verdict("inconclusive", f"{name}: fewer than 3 learning rates within 5 points of its best accuracy")
        corr[name] = (spearman(list(by_lr), list(by_lr.values())), by_lr)
    as_torch = {lr: d / (lr * math.sqrt(groups[ADAMW][0]["steps"])) for lr, d in corr[ADAMW][1].items()}
    diff, se, n = paired_difference(groups[ADAMW], groups[ADAM], METRIC, "max")
    wr, wr_se, _ = paired_difference(groups[ADAMWR], groups[ADAMW], METRIC, "max")
    numbers = (
        "best final test accuracy (mean over seeds): "
        + "; ".join(_describe(name, group) for name, group in groups.items())
        + ". Best decay per lr (lr: decay), rank correlation with the lr: "
        + "; ".join(
            f"{name} r = {r:+.2f} ({', '.join(f'{lr:.2g}: {d:g}' for lr, d in by_lr.items())})"
            for name, (r, by_lr) in corr.items()
        )
        + ". AdamW's best decays in torch's convention (weight_decay = decay per step / lr): "
        + f"r = {spearman(list(as_torch), list(as_torch.values())):+.2f} ("
        + ", ".join(f"{lr:.2g}: {wd:.2g}" for lr, wd in as_torch.items())
        + ")"
    )
    if math.isnan(diff):
        return Verdict("inconclusive", f"{numbers}. Fewer than two seeds with both optimizers: no noise estimate.")
    numbers += (
        f". AdamW minus Adam + L2, paired by seed: {100 * diff:+.2f} points over {n} seeds (2 standard errors: {200 * se:.2f})"
        + (f"; AdamWR minus AdamW: {100 * wr:+.2f} (2 standard errors: {200 * wr_se:.2f})" if not math.isnan(wr) else "")
    )
    r_adam, r_adamw = abs(corr[ADAM][0]), abs(corr[ADAMW][0])
    decoupled = r_adam >= 0.5 and r_adamw < 0.5
    better = diff > 2 * se and diff > 0
    if decoupled and better:
        return Verdict("holds", f"{numbers}. AdamW's best decay moves less with the lr, and AdamW generalizes better.")
    if r_adamw >= r_adam or diff <= 0:
        why = [
            *(["AdamW's best decay depends on the lr at least as much as Adam's L2 factor"] if r_adamw >= r_adam else []),
            *(["AdamW is not more accurate than Adam + L2"] if diff <= 0 else []),
        ]
        return Verdict("does not hold", f"{numbers}. {'; '.join(why)}.")
    return Verdict(
        "inconclusive", f"{numbers}. Not both of: |r| >= 0.5 for Adam + L2 and < 0.5 for AdamW; a gain above 2 standard errors."
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
    fig.suptitle(
        "MLP (2 x 128 ReLU) on 359 digits: red squares mark the best decay for each lr (lrs within 5 points of the best)"
    )
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
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.8))
    for name, group in groups.items():
        label = _describe(name, group).replace("% (", "% final (", 1)
        dash = "--" if name == NONE else "-"
        for ax, metric in zip(axes, ("train_loss", METRIC)):
            curve(ax, store, group, metric, label, color=STYLE[name], linestyle=dash, linewidth=1.3)
    axes[0].set(yscale="log", ylabel="train cross-entropy (nats, log scale)", title="Training loss (359 train images)")
    axes[1].set(ylabel="test accuracy", title="Test accuracy (1438 test images)", ylim=(0.85, 1.0))
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
    title="Adam + L2 vs AdamW (decoupled, normalized weight decay) and AdamWR (MLP on 359 digits)",
    source="seed 001 (Bushaev on Loshchilov & Hutter, Fixing Weight Decay Regularization in Adam)",
    claim=(
        "As we can see above, not only Adam with weight decay gets much lower test error, it actually helps in decoupling "
        "learning rate and regularization hyperparameters. On the left picture, we can see that if we change the parameters, "
        "say learning rate, then in order to achieve optimal point again we'd need to change L2 factor as well [...]. On the "
        "right picture, we can see that as long as we stay in some range of optimal values for one parameter, we can change "
        "another one independently. [...] With new weight decay, Adam got much better results with restarts."
    ),
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
