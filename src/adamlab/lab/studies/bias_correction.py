"""Study ``bias-correction`` (seed 004): Adam's bias correction matters early, and more as beta2 nears 1."""

from __future__ import annotations

import math
from typing import Any

from . import Study, Verdict
from .plots import save

BETA2 = (0.99, 0.999, 0.9999)


def losses(store: Any, runs: list[dict[str, Any]]) -> dict[tuple[float, bool, str], dict[float, float]]:
    """(beta2, bias_correction, "short"|"long") -> {lr: test loss, mean over seeds}.

    "short" is the first evaluation after step 0 (a tenth of the budget), "long" the last. A run
    that diverged counts as an infinite loss.
    """
    collected: dict[tuple[float, bool, str], dict[float, list[float]]] = {}
    for run in runs:
        if run["status"] != "finished":
            continue
        hp = run["hyperparameters"]
        steps, values = store.series(run["id"], "test_loss", kind="eval")
        points = [v if v is not None and math.isfinite(v) else math.inf for s, v in zip(steps, values) if s > 0]
        if run["final_metrics"].get("diverged") or not points:
            points = [math.inf]
        for budget, loss in (("short", points[0]), ("long", points[-1])):
            collected.setdefault((hp["betas"][1], hp["bias_correction"], budget), {}).setdefault(hp["lr"], []).append(loss)
    return {key: {lr: sum(v) / len(v) for lr, v in by_lr.items()} for key, by_lr in collected.items()}


def _gap(table: dict[tuple[float, bool, str], dict[float, float]], beta2: float, budget: str) -> float:
    """Mean over the lr grid of (loss without / loss with bias correction) - 1."""
    without, with_ = table[beta2, False, budget], table[beta2, True, budget]
    ratios = [min(without[lr] / with_[lr], 10.0) - 1 for lr in with_ if lr in without]
    return sum(ratios) / len(ratios)


def verdict(store: Any, runs: list[dict[str, Any]]) -> Verdict:
    table = losses(store, runs)
    try:
        short = {b2: _gap(table, b2, "short") for b2 in BETA2}
        long_ = {b2: _gap(table, b2, "long") for b2 in BETA2}
    except KeyError as missing:
        return Verdict("inconclusive", f"no finished runs for {missing}")
    numbers = (
        "test loss without vs with bias correction, mean over the lr grid (capped at 10x): after a tenth of the steps "
        + ", ".join(f"beta2={b2}: {100 * short[b2]:+.1f}%" for b2 in BETA2)
        + "; at the end "
        + ", ".join(f"beta2={b2}: {100 * long_[b2]:+.1f}%" for b2 in BETA2)
    )
    top = BETA2[-1]
    if short[top] > 0.05 and short[top] > short[BETA2[0]]:
        return Verdict("holds", numbers + ". Without correction the loss is worse, most for beta2 near 1.")
    if short[top] <= 0:
        return Verdict("does not hold", numbers + f". Without correction the early loss is no worse at beta2={top}.")
    return Verdict("inconclusive", numbers + ".")


def figures(store: Any, runs: list[dict[str, Any]], out_dir: str) -> list[tuple[str, str]]:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    table = losses(store, runs)
    steps = max((run["steps"] for run in runs), default=0)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    colours = dict(zip(BETA2, ("tab:blue", "tab:orange", "tab:green")))
    diverged = False
    titles = (f"after {steps // 10} steps (a tenth)", f"at the end ({steps} steps)")
    for ax, budget, title in zip(axes, ("short", "long"), titles):
        for (b2, corrected, b), by_lr in sorted(table.items()):
            if b == budget:
                lrs = sorted(by_lr)
                label = f"beta2={b2}, {'with' if corrected else 'without'} bias correction"
                ys = [by_lr[lr] if math.isfinite(by_lr[lr]) else math.nan for lr in lrs]
                ax.plot(lrs, ys, "o-" if corrected else "s--", color=colours.get(b2), label=label)
                # a diverged run (an infinite loss) is drawn as an x on the top edge
                for lr in lrs:
                    if not math.isfinite(by_lr[lr]):
                        diverged = True
                        top = ax.get_xaxis_transform()  # x in data, y in axes fractions
                        ax.plot([lr], [1.0], "x", color=colours.get(b2), markersize=10, mew=2, transform=top, clip_on=False)
        ax.set(xscale="log", xlabel="learning rate", title=f"Test loss {title}")
        finite = [v for (_, _, b), by_lr in table.items() if b == budget for v in by_lr.values() if math.isfinite(v)]
        if finite and max(finite) > 3 * min(finite):  # one blown-up run would flatten the rest on a linear scale
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 3, 5)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test loss: negative ELBO per image (nats)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    caption = (
        "The VAE's test loss (lower is better) against the learning rate, for each beta2 with bias correction "
        "(circles, solid) and without (squares, dashed), mean over seeds; left early in training, right at the end."
        + (" An x on the top edge is a run that diverged." if diverged else "")
    )
    return [save(fig, out_dir, "loss-vs-lr", caption)]


BIAS_CORRECTION = Study(
    name="bias-correction",
    title="Adam with and without bias correction (VAE on digits)",
    source="seed 004 (Kingma & Ba 2015, section 6.4)",
    claim=(
        "Without the bias-correction terms, values of beta2 close to 1 (needed for sparse gradients) make "
        "training unstable or slow early on; with bias correction Adam is robust to beta2 at the same learning rates."
    ),
    sweep={
        "problems": ["vae-digits"],
        "optimizers": ["adam"],
        "seeds": [0, 1],
        "steps": 2000,
        "eval_every": 200,
        "grid": {
            "lr": {"log": [1e-4, 1e-2], "num": 5},
            "betas": [[0.9, b2] for b2 in BETA2],
            "bias_correction": [True, False],
        },
    },
    quick={
        "seeds": [0],
        "steps": 200,
        "eval_every": 20,
        "grid": {"lr": [1e-3, 1e-2], "betas": [[0.9, b2] for b2 in BETA2], "bias_correction": [True, False]},
    },
    figures=figures,
    verdict=verdict,
    notes="Each point is the test loss at the first evaluation after step 0 (a tenth of the steps) or at the end, "
    "the mean over seeds; a diverged run counts as an infinite loss.",
)
