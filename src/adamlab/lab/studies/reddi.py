"""Study ``reddi``: Adam converges to the worst point of Reddi et al.'s convex problem; AMSGrad and AdamAL do not.

Claim as Bushaev's "Adam — latest trends in deep learning optimization" (2018) reports Reddi, Kale
& Kumar's counterexample; AdamAL is from "A new perspective in understanding of Adam-type
algorithms and beyond" (anonymous, under review). The problem is deterministic (one seed), so each
comparison is exact: the final iterate x against a margin of 0.9 from the middle of [-1, 1]
(Adam's above +0.9, the others' below -0.9), refuted when the iterate is on the other half.
"""

from __future__ import annotations

from typing import Any

from . import Study, Verdict
from .decision import compare
from .plots import save

CLAIMED = {"adam": "greater", "amsgrad": "less", "adamal": "less"}  # towards +1 (the worst point) or -1 (the optimum)

OPTIMIZERS = ["adam", "amsgrad", "adamal"]


def _final_x(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {r["optimizer"]: r["final_metrics"]["x"] for r in runs if r["status"] == "finished"}


def verdict(store: Any, runs: list[dict[str, Any]]) -> Verdict:
    x = _final_x(runs)
    if set(OPTIMIZERS) - set(x):
        return Verdict("inconclusive", f"runs missing for {sorted(set(OPTIMIZERS) - set(x))}")
    return Verdict.of(
        [compare(f"{name}'s final iterate x", [x[name]], CLAIMED[name], 0.9, exact=True) for name in OPTIMIZERS],
        "Deterministic problem: each interval is the value itself. The worst point is x = +1, the optimum x* = -1.",
    )


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
    source=(
        "Vitaly Bushaev, \"Adam — latest trends in deep learning optimization\" (2018), on Reddi, Kale & Kumar's "
        "\"On the Convergence of Adam and Beyond\", section on AMSGrad"
    ),
    claim=(
        "f_t(x) = Cx for t mod 3 = 3, -x otherwise [...] For this sequence, it's easy to see that the optimal solution is "
        "x = -1, however, how authors show, Adam converges to highly sub-optimal value of x = 1. [...] they proposed a fix "
        "of keeping the maximum of values V and use it instead of the moving average to update parameters. The resulting "
        "algorithm is called Amsgrad."
    ),
    paraphrase=(
        "with C = 3 on X = [-1, 1], beta1 = 0, beta2 = 0.1 and step size 0.1/sqrt(t) (Reddi et al.'s setting), Adam ends "
        "near x = +1 while AMSGrad ends near the optimum -1; so does AdamAL (\"A new perspective in understanding of "
        "Adam-type algorithms and beyond\", section 3.3), whose v never decreases. The post's case condition reads "
        "\"t mod 3 = 3\", a typo for 1."
    ),
    paper_setup={
        "model": "the online problem f_t(x) = Cx / -x on [-1, 1], C = 3 (Reddi et al.)",
        "steps": "not stated (a notebook run)",
        "hyperparameters": "beta1 = 0, beta2 = 0.1 (Reddi et al.), step 0.1/sqrt(t)",
        "seeds": "deterministic",
    },
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
