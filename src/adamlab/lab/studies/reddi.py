"""Study ``reddi`` (seeds 001, 002): Adam converges to the worst point of a convex problem; AMSGrad and AdamAL do not."""

from __future__ import annotations

from typing import Any

from . import Study, Verdict
from .plots import save

OPTIMIZERS = ["adam", "amsgrad", "adamal"]


def _final_x(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {r["optimizer"]: r["final_metrics"]["x"] for r in runs if r["status"] == "finished"}


def verdict(store: Any, runs: list[dict[str, Any]]) -> Verdict:
    x = _final_x(runs)
    if set(OPTIMIZERS) - set(x):
        return Verdict("inconclusive", f"runs missing for {sorted(set(OPTIMIZERS) - set(x))}")
    numbers = ", ".join(f"{name} ends at x = {x[name]:+.4f}" for name in OPTIMIZERS)
    if x["adam"] > 0.9 and x["amsgrad"] < -0.9 and x["adamal"] < -0.9:
        return Verdict("holds", f"{numbers}: Adam near +1 (the worst point), AMSGrad and AdamAL near the optimum -1.")
    if x["adam"] < 0:
        return Verdict("does not hold", f"{numbers}: Adam reaches the optimum's side.")
    return Verdict("inconclusive", f"{numbers}: not all iterates are within 0.1 of an end of [-1, 1].")


def figures(store: Any, runs: list[dict[str, Any]], out_dir: str) -> list[tuple[str, str]]:
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for run in runs:
        steps, xs = store.series(run["id"], "x")
        ax.plot(steps, xs, label=run["optimizer"], linewidth=1.2)
        _, losses = store.series(run["id"], "loss")
        total, regret = 0.0, []
        for t, loss in enumerate(losses, start=1):
            total += loss
            regret.append(total / t)
        ax2.plot(steps, regret, label=run["optimizer"], linewidth=1.2)
    # the optimum x* = -1 plays f_t(-1) = -3, 1, 1, ...: an average loss of -1/3
    ax.axhline(-1, color="0.4", linestyle=":", linewidth=1, label="optimum $x^* = -1$")
    ax2.axhline(-1 / 3, color="0.4", linestyle=":", linewidth=1, label="loss of the optimum, $-1/3$")
    ax.set(xlabel="step t", ylabel="iterate $x_t$", title="Iterate $x_t$ on $[-1, 1]$", ylim=(-1.1, 1.1))
    ax2.set(xlabel="step t", ylabel="average online loss", title="Average online loss $\\frac{1}{t}\\sum_{s \\leq t} f_s(x_s)$")
    for a in (ax, ax2):
        a.grid(alpha=0.3)
        a.legend(loc="center right")
    fig.tight_layout()
    caption = (
        "Left: the iterate x_t of each optimizer after each step; the worst point is x = +1, the optimum x* = -1 (dotted). "
        "Right: the running average of the loss each optimizer suffered, (1/t) sum f_s(x_s); its gap to the optimum's "
        "average loss, -1/3 (dotted), is the average regret, which goes to 0 only for an optimizer that converges to x*."
    )
    return [save(fig, out_dir, "iterates", caption)]


REDDI = Study(
    name="reddi",
    title="Adam on Reddi et al.'s online convex counterexample",
    source="seeds 001 and 002 (Reddi, Kale & Kumar 2018)",
    claim=(
        "For f_t(x) = 3x when t mod 3 = 1 and -x otherwise, on X = [-1, 1], with beta1 = 0, beta2 = 0.1 and "
        "step size 0.1/sqrt(t), Adam converges to the worst point x = +1 while AMSGrad converges to the "
        "optimum x = -1; AdamAL, whose v never decreases, also converges to -1."
    ),
    sweep={
        "problems": ["reddi"],
        "optimizers": OPTIMIZERS,
        "seeds": [0],
        "steps": 10000,
        "eval_every": 1000,
        "grid": {"lr": [0.1], "betas": [[0.0, 0.1]]},
    },
    quick={"steps": 3000, "eval_every": 500},
    figures=figures,
    verdict=verdict,
    notes="The problem is deterministic: one seed. x is the iterate after each step; the loss is f_t at the point played.",
)
