"""Studies ``swats`` and ``ndadam``: two fixes of Adam's generalization gap, each against Adam and SGD.

Claims. Vitaly Bushaev's "Adam — latest trends in deep learning optimization" (2018) reports that adaptive methods
generalize worse than SGD with momentum (Wilson et al. 2017) and two remedies: SWATS (Keskar &
Socher 2017) starts with Adam and switches to SGD once a criterion is met, "comparable to SGD with
momentum"; ND-Adam (Zhang et al. 2017) keeps each weight vector's update in the span of its
gradients and normalizes the vectors, to generalize like SGD.

Design. One problem where generalization matters and that a CPU affords: ``mlp-digits``, Kingma &
Ba's MLP with two ReLU layers of 500 units on scikit-learn's digits (1,257 training images, 540
test images), trained 400 steps of batch 128 (about 40 epochs: the best configurations' training loss goes to 1e-3 or below,
so what differs between optimizers is the test accuracy), evaluated every 20 steps. The papers'
CNN experiments are out of reach: ``cnn-cifar10`` needs the CIFAR-10 files, which are neither
bundled nor downloaded. Each study runs its candidate, ``adam`` and ``sgd`` (momentum 0.9), each over
4 learning rates half a decade apart where that method works (SWATS's learning rate is its Adam
phase's; after the switch it runs at its learned SGD rate), 3 seeds (data split, initialization,
minibatch order). SWATS runs with the ``swats-switches`` diagnostics, so each run stores the step
at which every parameter tensor switched (artifact ``swats_switch_steps``, -1 = never), and at two
values of its ``eps``: the paper's 1e-9, which is also its switching threshold
``|lambda_k / (1 - beta2^k) - gamma_k| < eps`` (an absolute test that minibatch noise in gamma
rarely passes: at the default size no run switches in 400 steps), and 1e-4, where some tensors do (eps
also enters the Adam phase's denominator, so this is a slightly different Adam too). The best
configuration of each optimizer is its learning rate with the highest mean final test accuracy. The
default size took 5.6 minutes (swats, 48 runs) and 2.6 minutes (ndadam, 36 runs) with 2 workers on
2 busy cores; ``--quick`` runs 2 learning rates, one seed, 100
steps and 128 units.

Verdict (the rule of :mod:`.decision`), on the final test accuracy, each difference paired by seed
(a seed is the same data split, initialization and minibatch order for every optimizer):

- the precondition, a gap to close: SGD minus Adam (their best learning rates) greater than 0. When
  its interval does not clear 0, the candidate's comparisons are "inconclusive: the setup cannot
  test this" (reported beside);
- the candidate closes it: candidate minus Adam greater than 0, and candidate minus SGD greater
  than -0.5 points ("comparable to SGD": no worse than half a point, a non-inferiority margin).

For SWATS the claim is about an optimizer that switches: its deciding configuration is the best
(eps, lr) among those where every seed switched at least one tensor to SGD; when none did within
the budget, the comparisons are untestable ("no switch happened"), not refuted. The switches of
every eps over the grid are reported beside. Missing or failed runs make it inconclusive.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any

from . import Study, Verdict
from .decision import paired
from .plots import best_configs, configs, curve, final, finished, per_seed, save, sensitivity

Run = dict[str, Any]
METRIC = "test_accuracy"
COLOURS = {"adam": "tab:red", "sgd": "tab:blue", "swats": "tab:green", "ndadam": "tab:purple"}
LABELS = {"adam": "Adam", "sgd": "SGD + momentum 0.9", "swats": "SWATS", "ndadam": "ND-Adam"}
MARGIN = 0.005  # "comparable to SGD": no worse than half a point of test accuracy


def _stats(group: list[Run]) -> tuple[float, float]:
    """Mean and std over seeds of the final test accuracy (-inf and NaN when a seed diverged)."""
    values = [final(r, METRIC, "max") for r in group]
    if not all(math.isfinite(v) for v in values):
        return -math.inf, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _switch_steps(run: Run) -> int | None:
    step = run["final_metrics"].get("first_switch_step")
    return int(step) if isinstance(step, (int, float)) and step > 0 else None


def deciding(runs: list[Run], candidate: str) -> dict[str, list[Run]]:
    """Per optimizer the seed runs that decide: the best lr by mean final test accuracy; for SWATS, the best among
    the configurations where every seed switched (none: SWATS is left out)."""
    best = {o: g for (_, o), g in best_configs([r for r in runs if r["optimizer"] != "swats"], METRIC, "max").items()}
    if candidate == "swats":
        switching = [
            r
            for group in configs(r for r in runs if r["optimizer"] == "swats").values()
            if all(_switch_steps(r) is not None for r in group)
            for r in group
        ]
        best.update({o: g for (_, o), g in best_configs(switching, METRIC, "max").items()})
    return best


def make_verdict(candidate: str) -> Any:
    def verdict(store: Any, runs: list[Run]) -> Verdict:
        ran = {r["optimizer"] for r in finished(runs)}
        missing = [o for o in (candidate, "adam", "sgd") if o not in ran]
        if missing:
            return Verdict("inconclusive", f"no finished runs for {', '.join(missing)}")
        best = deciding(runs, candidate)
        accuracy = {o: per_seed(g, METRIC) for o, g in best.items()}
        gap = paired("SGD minus Adam, final test accuracy (the gap to close)", accuracy["sgd"], accuracy["adam"], "greater", 0.0)
        untestable = ""
        if candidate not in best:
            untestable = "no switch happened: no SWATS configuration switched to SGD on every seed within the budget"
        elif gap.outcome != "holds":
            untestable = "no gap to close: SGD is not more accurate than Adam beyond the seed noise"
        mine = accuracy.get(candidate, {})
        name = LABELS[candidate]
        comparisons = [
            dataclasses.replace(gap, decides=False, unit="points"),
            paired(f"{name} minus Adam, final test accuracy", mine, accuracy["adam"], "greater", 0.0, unit="points", untestable=untestable),
            paired(f"{name} minus SGD, final test accuracy", mine, accuracy["sgd"], "greater", -MARGIN, unit="points", untestable=untestable),
        ]
        params = {
            o: ", ".join(f"{k}={v:.3g}" for k, v in best[o][0]["hyperparameters"].items() if k in ("lr", "eps")) for o in best
        }
        numbers = "deciding configurations' final test accuracy (mean ± std over seeds): " + ", ".join(
            f"{o} ({params[o]}) {_stats(best[o])[0]:.4f} ± {_stats(best[o])[1]:.4f}" for o in (candidate, "adam", "sgd") if o in best
        )
        if candidate == "swats":
            numbers += "; switches over the grid: " + _switch_summary(runs)
        return Verdict.of(comparisons, f"Paired by seed; {numbers}.")

    return verdict


def _switch_summary(runs: list[Run]) -> str:
    """Per SWATS eps: how many finished runs switched any tensor, and their median first switch step."""
    by_eps: dict[float, list[int | None]] = {}
    for run in runs:
        if run["optimizer"] == "swats" and run["status"] == "finished":
            by_eps.setdefault(float(run["hyperparameters"].get("eps", 1e-9)), []).append(_switch_steps(run))
    parts = []
    for eps, steps in sorted(by_eps.items()):
        hit = [s for s in steps if s is not None]
        median = f" (median first switch step {statistics.median(hit):g})" if hit else ""
        parts.append(f"eps={eps:g}: {len(hit)}/{len(steps)} runs switched{median}")
    return ", ".join(parts)


def _variants(runs: list[Run], optimizer: str) -> list[tuple[Any, list[Run]]]:
    """The optimizer's runs split by ``eps`` when the grid varies it (SWATS), else one variant (eps None)."""
    values = sorted({r["hyperparameters"].get("eps") for r in runs if r["optimizer"] == optimizer}, key=lambda e: (e is None, e))
    return [(eps, [r for r in runs if r["optimizer"] == optimizer and r["hyperparameters"].get("eps") == eps]) for eps in values]


def _style(optimizer: str, k: int) -> dict[str, Any]:
    """Colour and line style of an optimizer's k-th variant (the candidate dashed and on top, so it shows over Adam)."""
    colour = COLOURS[optimizer] if k == 0 else "tab:olive"
    return {"color": colour, "linestyle": "--" if optimizer in ("swats", "ndadam") else "-", "zorder": 3 if k == 0 else 2}


def make_figures(candidate: str) -> Any:
    order = (candidate, "adam", "sgd")

    def figures(store: Any, runs: list[Run], out_dir: str) -> list[tuple[str, str]]:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
        panels = (
            ("train_loss", "training loss (cross-entropy, nats)", "Training loss"),
            ("test_loss", "test loss (cross-entropy, nats)", "Test loss"),
            ("test_accuracy", "test accuracy", "Test accuracy"),
        )
        for ax, (metric, ylabel, title) in zip(axes, panels):
            for o in order:
                for k, (_, variant) in enumerate(_variants(runs, o)):
                    chosen = next(iter(best_configs(variant, METRIC, "max").values()), None)
                    if chosen:
                        style = _style(o, k)
                        lr = chosen[0]["hyperparameters"]["lr"]
                        curve(ax, store, chosen, metric, f"{_label(chosen[0])}, lr={lr:.2g}", **style)
                        if o == "swats":
                            _mark_switches(ax, chosen, style["color"])
            if metric != "test_accuracy":
                ax.set_yscale("log")
            else:
                ax.set_ylim(0.8, 1.0)
            ax.set(xlabel="training step (minibatch 128)", ylabel=ylabel, title=title)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        what = "each eps's best learning rate" if candidate == "swats" else "best learning rate each"
        fig.suptitle(
            f"{LABELS[candidate]} vs Adam and SGD on the digits MLP: {what} (highest final test accuracy); "
            "mean over seeds, band +-1 std",
            fontsize=10,
        )
        fig.tight_layout()
        stems = [
            save(
                fig,
                out_dir,
                "curves",
                f"{LABELS[candidate]}, Adam and SGD with momentum at their best learning rates: training loss and test accuracy over steps (mean, band ± std over seeds)"
                + ("; dotted lines: SWATS's switch steps." if candidate == "swats" else "."),
            )
        ]

        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for ax, (metric, mode, ylabel) in zip(
            axes, (("test_accuracy", "max", "final test accuracy"), ("train_loss", "min", "final training loss (nats)"))
        ):
            for o in order:
                for k, (_, variant) in enumerate(_variants(runs, o)):
                    style = _style(o, k)
                    before = len(ax.lines)
                    ax.set_prop_cycle(color=[style["color"]])
                    sensitivity(ax, variant, metric, mode, _label)
                    for line in ax.lines[before:]:
                        if not line.get_label().startswith("_"):  # the line, not its error-bar caps
                            line.set_linestyle(style["linestyle"])
            if mode == "min":
                ax.set_yscale("log")
            ax.set(ylabel=ylabel, title=f"Learning-rate sensitivity: {ylabel}")
            ax.legend(fontsize=8)
        fig.suptitle("Mean +- std over seeds; x: diverged", fontsize=10)
        fig.tight_layout()
        stems.append(
            save(
                fig,
                out_dir,
                "lr-sensitivity",
                "Final test accuracy and training loss against the learning rate for each optimizer (mean ± std over seeds; x marks a diverged setting).",
            )
        )

        if candidate == "swats":
            stems.append(_switch_figure(store, runs, out_dir))
        return stems

    return figures


def _label(run: Run) -> str:
    eps = run["hyperparameters"].get("eps")
    return LABELS[run["optimizer"]] + (f", eps={eps:g}" if eps is not None else "")


def _mark_switches(ax: Any, group: list[Run], colour: str) -> None:
    """Dotted vertical lines at each seed's first switch of a SWATS tensor to SGD (labelled once)."""
    steps = [s for s in (_switch_steps(r) for r in group) if s is not None]
    for k, step in enumerate(steps):
        label = f"{_label(group[0])}: first switch, per seed" if k == 0 else None
        ax.axvline(step, color=colour, linestyle=":", linewidth=1.2, label=label)


def _switch_figure(store: Any, runs: list[Run], out_dir: str) -> tuple[str, str]:
    """Per SWATS eps, one panel: the step at which each parameter tensor switched, per learning rate and seed."""
    import matplotlib.pyplot as plt

    variants = _variants(runs, "swats")
    budget = max((int(r["config"]["steps"]) for r in runs), default=1)
    fig, axes = plt.subplots(1, len(variants), figsize=(6.5 * len(variants), 4.4), sharey=True, squeeze=False)
    for ax, (eps, variant) in zip(axes[0], variants):
        by_lr: dict[float, list[Run]] = {}
        for run in variant:
            if run["status"] == "finished":
                by_lr.setdefault(float(run["hyperparameters"]["lr"]), []).append(run)
        names: list[str] = []
        for k, (lr, group) in enumerate(sorted(by_lr.items())):
            xs, ys, never = [], [], []
            for j, run in enumerate(group):
                switch = store.artifact(run["id"], "swats_switch_steps")
                if switch is None:
                    continue
                names = names or _tensor_names(len(switch))
                offset = (k - (len(by_lr) - 1) / 2) * 0.6 / len(by_lr) + j * 0.03
                for i, step in enumerate(switch.tolist()):
                    (xs if step > 0 else never).append(i + offset)
                    if step > 0:
                        ys.append(step)
            (dots,) = ax.plot(xs, ys, "o", markersize=5, alpha=0.8, label=f"lr={lr:.2g}")
            ax.plot(never, [1.06 * budget] * len(never), "v", markersize=4, color=dots.get_color())
        ax.axhline(budget, color="black", linestyle=":", linewidth=1)
        ax.set_xticks(range(len(names)), names)
        ax.set(
            xlabel="parameter tensor (W: weight, b: bias; layer 1 = input)",
            title=f"eps={eps:g}: {sum(_switch_steps(r) is not None for r in variant)}/{len(variant)} runs switched",
            ylim=(0, 1.12 * budget),
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, title="Adam-phase lr", loc="center left")
    axes[0][0].set_ylabel("step of the switch to SGD")
    fig.suptitle(
        f"SWATS: step at which each tensor switched to SGD, every seed (triangles above the dotted line: never in {budget} steps)",
        fontsize=10,
    )
    fig.tight_layout()
    return save(
        fig,
        out_dir,
        "swats-switch-steps",
        "The step at which each SWATS param tensor switched from Adam to SGD, per run, for each eps (a tensor that never switched is not drawn).",
    )


def _tensor_names(n: int) -> list[str]:
    return [f"{'Wb'[i % 2]}{i // 2 + 1}" for i in range(n)]


PAPER_SETUP = {
    "model": "not stated in the post (deep networks; its context: image classification on CIFAR datasets)",
    "steps": "not stated",
    "hyperparameters": "not stated",
    "seeds": "not stated",
}
SWEEP = {
    "problems": ["mlp-digits"],
    "seeds": [0, 1, 2],
    "steps": 400,
    "eval_every": 20,
    "problem": {"mlp-digits": {"hidden": 500}},
}
QUICK = {"seeds": [0], "steps": 100, "eval_every": 10, "problem": {"mlp-digits": {"hidden": 128}}}
ADAM_LRS = {"log": [1e-4, 10**-2.5], "num": 4}
SGD = {"lr": {"log": [10**-2.5, 1e-1], "num": 4}, "momentum": [0.9]}
QUICK_ADAM = {"lr": [1e-3, 3e-3]}
QUICK_SGD = {"lr": [3e-2, 1e-1], "momentum": [0.9]}
NOTES = (
    "Each optimizer is shown with its learning rate of highest mean final test accuracy; the table lists every "
    "configuration. The test set is 540 images: one image is 0.0019 of accuracy."
)

SWATS = Study(
    name="swats",
    title="SWATS (Adam switching to SGD) vs Adam and SGD: generalization on the digits MLP",
    source=(
        "Vitaly Bushaev, \"Adam — latest trends in deep learning optimization\" (2018), section on Keskar & Socher's "
        "\"Improving Generalization Performance by Switching from Adam to SGD\""
    ),
    claim=(
        "\"They’ve noticed that in earlier stages of training Adam still outperforms SGD but later the learning "
        "saturates. They proposed simple strategy which they called SWATS in which they start training deep neural "
        "network with Adam but then switch to SGD when certain criteria hits. They managed to achieve results "
        "comparable to SGD with momentum.\""
    ),
    paraphrase=(
        "SWATS, once it has switched to SGD, is more accurate than Adam and no more than half a point less accurate "
        "than SGD with momentum, where SGD is more accurate than Adam."
    ),
    paper_setup=PAPER_SETUP,
    sweep={
        **SWEEP,
        "optimizers": ["swats", "adam", "sgd"],
        "optimizer": {
            "swats": {"lr": ADAM_LRS, "eps": [1e-9, 1e-4], "diagnostics": [["swats-switches"]]},
            "adam": {"lr": ADAM_LRS},
            "sgd": SGD,
        },
    },
    quick={
        **QUICK,
        "optimizer": {
            "swats": {**QUICK_ADAM, "eps": [1e-4], "diagnostics": [["swats-switches"]]},
            "adam": QUICK_ADAM,
            "sgd": QUICK_SGD,
        },
    },
    figures=make_figures("swats"),
    verdict=make_verdict("swats"),
    notes=NOTES
    + " Dotted vertical lines mark each seed's first switch of a SWATS tensor to SGD; SWATS is shown at its best learning rate for each eps.",
)

NDADAM = Study(
    name="ndadam",
    title="ND-Adam (normalized direction-preserving Adam) vs Adam and SGD: generalization on the digits MLP",
    source=(
        "Vitaly Bushaev, \"Adam — latest trends in deep learning optimization\" (2018), section \"ND-Adam\" on Zhang "
        "et al.'s \"Normalized Direction-preserving Adam\""
    ),
    claim=(
        "The paper notices two problems with Adam that may cause worse generalization: 1. The updates of SGD lie in the "
        "span of historical gradients, whereas it is not the case for Adam. [...] To address these problems, the authors "
        "propose the algorithm they call Normalized direction-preserving Adam. [...] the direction of the update is the "
        "negative direction of m and thus is in the span of the historical gradients of w . [...] after the update, the "
        "weights get normalized by their norm."
    ),
    paraphrase=(
        "ND-Adam (per-row normalized, direction-preserving) generalizes like SGD: more accurate than Adam and no more "
        "than half a point less accurate than SGD with momentum, where SGD is more accurate than Adam."
    ),
    paper_setup=PAPER_SETUP,
    sweep={
        **SWEEP,
        "optimizers": ["ndadam", "adam", "sgd"],
        "optimizer": {"ndadam": {"lr": {"log": [10**-2.5, 1e-1], "num": 4}}, "adam": {"lr": ADAM_LRS}, "sgd": SGD},
    },
    quick={**QUICK, "optimizer": {"ndadam": {"lr": [1e-2, 3e-2]}, "adam": QUICK_ADAM, "sgd": QUICK_SGD}},
    figures=make_figures("ndadam"),
    verdict=make_verdict("ndadam"),
    notes=NOTES + " ND-Adam normalizes every row of the weight matrices (one weight vector per unit) after each "
    "step; biases get plain Adam.",
)
