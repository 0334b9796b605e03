"""Study ``amsgrad-swaps`` (seed 002): how often AMSGrad's running max of v changes hands, per coordinate.

Claim (seed 002, section 3.3, about its Figure 1, a heatmap of swap counts of sampled entries of
AMSGrad's v): "we can find that (1) different entry has very different swapping counts; (2) the
swapping intervals are nonuniform." A swap at step t is :math:`v_t > \\hat v_{t-1}`: the max is taken
over by the current estimate. The seed reads this as AMSGrad's "non-alignment" and proposes AdamAL,
reported better than Adam and AMSGrad on CIFAR-10; the curves show that comparison, the verdict
tests the swap claim.

Design. Problem ``mlp-digits`` with 128 units per hidden layer: a non-convex network (the seed used
ResNet/VGG on CIFAR-10), a step costs about 1 ms of CPU (a few with the swap diagnostic), and the swap artifacts (int32
per coordinate per interval) stay small: 17k coordinates x 10 intervals (the default 1000 units
would store ~40 MB per run; ``cnn-cifar10``'s stand-in costs far more per step;
``logreg-digits`` is convex). Adam, AMSGrad and AdamAL at lr 3e-4, 1e-3, 3e-3, 3 seeds, 600 steps
(about 60 passes over digits), evaluated every 60 steps; AMSGrad runs carry the run control
``diagnostics = ["amsgrad-swaps"]``, so each stores ``amsgrad_swaps/<i>``: swaps per coordinate
per 60-step interval, shape ``(10, *param.shape)``. 27 runs: about a minute of CPU.
``--quick``: lr 1e-3, 2 seeds, 200 steps in 10 intervals of 20.

Verdict, from each AMSGrad run's artifacts, over the coordinates that swapped at least once (a
coordinate whose gradient is always zero, such as a constant input pixel, never swaps; leaving
those out keeps the test conservative):

- (1) *entries*: the dispersion index of the per-coordinate total swap counts, their variance
  across coordinates divided by the variance expected if every coordinate of a tensor swapped at
  random at the tensor's rate of each interval (a sum of binomials; pooled over tensors). About 1
  when entries differ only by chance.
- (2) *timing*: the dispersion index of each coordinate's counts across intervals, divided by the
  binomial variance at the coordinate's own average rate (pooled over coordinates). About 1 when
  a coordinate's swaps are spread uniformly over training.

The claim holds when the median over AMSGrad runs of both indices exceeds 2; it does not hold when
either median is at most 1.25 (no more spread than chance); otherwise inconclusive. No AMSGrad run
with swap artifacts, or no coordinate that swapped, is inconclusive.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from . import Study, Table, Verdict
from .plots import best_configs, curve, finished, heatmap, save, sensitivity, time_to_target

OPTIMIZERS = ["adam", "amsgrad", "adamal"]
HOLDS, NULL = 2.0, 1.25  # dispersion-index thresholds: clearly more spread than chance / indistinguishable from it
STYLES = {"adam": "-", "amsgrad": "--", "adamal": ":"}  # the three curves nearly coincide: tell them apart by style
HEATMAP_TENSOR = 2  # the hidden-to-hidden weight of the MLP (tensors: W1, b1, W2, b2, W3, b3)

Run = dict[str, Any]


def swap_counts(store: Any, run: Run) -> list[Any]:
    """The run's ``amsgrad_swaps/<i>`` arrays in tensor order, each reshaped to ``(intervals, coordinates)``."""
    names = sorted(
        (n for n in store.artifact_names(run["id"]) if n.startswith("amsgrad_swaps/")), key=lambda n: int(n.split("/")[1])
    )
    return [store.artifact(run["id"], n).reshape(store.artifact(run["id"], n).shape[0], -1) for n in names]


def dispersion(counts: list[Any], interval: int) -> tuple[float, float, int]:
    """``(entries index, timing index, coordinates that swapped)`` of one run's swap counts (see the module docstring).

    ``counts``: per tensor, swaps per interval per coordinate ``(intervals, coordinates)``;
    ``interval``: steps per interval. NaN indices when no coordinate swapped.
    """
    import numpy as np

    var_seen = var_null = time_seen = time_null = 0.0
    swapping = 0
    for c in counts:
        c = np.asarray(c, dtype=np.float64)[:, np.asarray(c).sum(0) > 0]
        k, n = c.shape
        if n == 0:
            continue
        swapping += n
        totals = c.sum(0)
        rates = c.mean(1) / interval  # per interval, the tensor's swap rate per coordinate-step
        var_seen += n * totals.var()
        var_null += n * float((interval * rates * (1 - rates)).sum())
        own = totals / (k * interval)  # each coordinate's average rate
        time_seen += float(((c - c.mean(0)) ** 2).sum())
        time_null += float((k * interval * own * (1 - own)).sum())
    entries = var_seen / var_null if var_null > 0 else math.nan
    timing = time_seen / time_null if time_null > 0 else math.nan
    return entries, timing, swapping


def run_indices(store: Any, runs: list[Run]) -> list[tuple[Run, float, float, int]]:
    """``(run, entries index, timing index, coordinates that swapped)`` of every finished AMSGrad run with swap artifacts."""
    out = []
    for run in finished(runs):
        if run["optimizer"] != "amsgrad":
            continue
        counts = swap_counts(store, run)
        if counts:
            out.append((run, *dispersion(counts, run["config"]["eval_every"])))
    return out


def verdict(store: Any, runs: list[Run]) -> Verdict:
    indices = [x for x in run_indices(store, runs) if x[3] > 0]
    if not indices:
        return Verdict("inconclusive", "no finished AMSGrad run with swap counts (or no coordinate ever swapped)")
    entries = statistics.median(x[1] for x in indices)
    timing = statistics.median(x[2] for x in indices)
    fractions = [x[0]["final_metrics"].get("swap_fraction") for x in indices]
    share = statistics.median(f for f in fractions if isinstance(f, (int, float))) if any(fractions) else math.nan
    numbers = (
        f"over {len(indices)} AMSGrad runs (median; {statistics.median(x[3] for x in indices):.0f} coordinates swapped at "
        f"least once, {100 * share:.1f}% of coordinate-steps were swaps): swap counts across entries are "
        f"{entries:.1f}x as dispersed as chance at the same per-interval rates, and each entry's swaps over time "
        f"{timing:.1f}x as dispersed as uniform timing (1 = chance; holds above {HOLDS}, does not hold at {NULL} or below)"
    )
    if entries > HOLDS and timing > HOLDS:
        return Verdict("holds", f"{numbers}. Entries differ widely in swap counts and swap at nonuniform intervals.")
    if entries <= NULL or timing <= NULL:
        part = "counts across entries" if entries <= NULL else "timing of swaps"
        return Verdict("does not hold", f"{numbers}. The {part} is no more spread than chance.")
    return Verdict("inconclusive", f"{numbers}.")


def _runs_of(runs: list[Run], optimizer: str, lr: float) -> list[Run]:
    return [r for r in finished(runs) if r["optimizer"] == optimizer and float(r["hyperparameters"]["lr"]) == lr]


def _heatmap_run(store: Any, runs: list[Run]) -> Run | None:
    """The AMSGrad run drawn in the heatmaps: the first seed at the lr closest to 1e-3 (Adam's default)."""
    ams = [x[0] for x in run_indices(store, runs)]
    return min(ams, key=lambda r: (abs(math.log(float(r["hyperparameters"]["lr"]) / 1e-3)), r["seed"]), default=None)


def figures(store: Any, runs: list[Run], out_dir: str) -> list[tuple[str, str]]:
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import NullFormatter

    stems = []
    run = _heatmap_run(store, runs)
    if run is not None:
        interval = run["config"]["eval_every"]
        tensor = store.artifact(run["id"], f"amsgrad_swaps/{HEATMAP_TENSOR}")
        totals = tensor.sum(0)
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [1, 1.3]})
        block = totals[:12, :12]
        heatmap(
            fig,
            ax,
            block,
            [str(j) for j in range(block.shape[1])],
            [str(i) for i in range(block.shape[0])],
            "total swaps",
            "{:.0f}",
        )
        ax.set(
            xlabel="input unit j",
            ylabel="output unit i",
            title=f"Swaps of v[i, j] over {run['config']['steps']} steps\n(hidden-to-hidden weight, 12x12 corner)",
        )
        flat = tensor.reshape(tensor.shape[0], -1)
        rng = np.random.default_rng(0)
        picked = rng.choice(flat.shape[1], size=min(48, flat.shape[1]), replace=False)
        picked = picked[np.argsort(flat[:, picked].sum(0))]
        image = ax2.imshow(flat[:, picked].T, aspect="auto", cmap="magma", origin="lower", interpolation="nearest")
        k = flat.shape[0]
        ax2.set_xticks(range(k), [f"{i * interval}" for i in range(k)], fontsize=8)
        ax2.set(
            xlabel=f"interval start (step); intervals of {interval} steps",
            ylabel="48 random coordinates, sorted by total swaps",
            title="Swaps per coordinate per interval",
        )
        fig.colorbar(image, ax=ax2, label=f"swaps in the interval (of {interval} steps)")
        lr = float(run["hyperparameters"]["lr"])
        fig.suptitle(f"AMSGrad on mlp-digits (128 hidden units), lr = {lr:.2g}, seed {run['seed']}", fontsize=11)
        fig.tight_layout()
        stems.append(
            save(
                fig,
                out_dir,
                "swap-heatmap",
                "How often AMSGrad's running max of v changed hands: swaps of each coordinate of a weight matrix over training (left), and per coordinate per interval of eval_every steps (right); one run.",
            )
        )

        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
        counts = flat[:, flat.sum(0) > 0]
        rates = counts.mean(1) / interval
        null = rng.binomial(interval, rates[:, None], size=(len(rates), counts.shape[1])).sum(0)
        bins = np.arange(0, max(counts.sum(0).max(), null.max()) + 2) - 0.5
        ax.hist(counts.sum(0), bins=bins, alpha=0.6, label="AMSGrad (observed)")
        ax.hist(null, bins=bins, alpha=0.6, label="chance: same rate per interval")
        ax.set(
            xlabel="total swaps of a coordinate over the run",
            ylabel="coordinates",
            title="Hidden-to-hidden weight: swaps per coordinate (swapped >= 1)",
        )
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        for lr in sorted({float(r["hyperparameters"]["lr"]) for r in finished(runs) if r["optimizer"] == "amsgrad"}):
            curve(ax2, store, _runs_of(runs, "amsgrad", lr), "swap_fraction", f"lr={lr:.2g}")
        ax2.set(
            xlabel="step",
            ylabel="share of coordinates swapping per step",
            yscale="symlog",
            title=f"AMSGrad swap rate over training (mean over the last {interval} steps)",
        )
        ax2.set_yscale("symlog", linthresh=1e-4)
        ax2.legend(fontsize=8)
        ax2.grid(alpha=0.3)
        fig.tight_layout()
        stems.append(
            save(
                fig,
                out_dir,
                "swap-dispersion",
                "Left: the distribution of swap counts over the coordinates that swapped at least once, against what random swapping at the same rates would give. Right: the share of coordinates swapping per step over training.",
            )
        )

    best = best_configs(runs, "test_accuracy", "max")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    for (_, opt), group in sorted(best.items(), key=lambda kv: OPTIMIZERS.index(kv[0][1]) if kv[0][1] in OPTIMIZERS else 9):
        label = f"{opt}, lr={float(group[0]['hyperparameters']['lr']):.2g}"
        style = {"linestyle": STYLES.get(opt, "-")}
        curve(axes[0], store, group, "train_loss", label, **style)
        curve(axes[1], store, group, "test_accuracy", label, **style)
    axes[0].set(xlabel="step", ylabel="train cross-entropy", yscale="log", title="Training loss (best lr per optimizer)")
    axes[1].set(xlabel="step", ylabel="test accuracy", title="Test accuracy (best lr per optimizer; 0.9 to 1)", ylim=(0.9, 1.0))
    sensitivity(axes[2], runs, "test_accuracy", "max", lambda r: r["optimizer"])
    lrs = sorted({float(r["hyperparameters"]["lr"]) for r in finished(runs)})
    axes[2].set_xticks(lrs, [f"{lr:.2g}" for lr in lrs])
    axes[2].xaxis.set_minor_formatter(NullFormatter())
    axes[2].set(ylabel="final test accuracy (mean ± std over seeds)", title="Final test accuracy vs learning rate")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    stems.append(
        save(
            fig,
            out_dir,
            "curves",
            "Adam, AMSGrad and AdamAL at their best learning rates: training loss and test accuracy over steps (mean ± std over seeds), and final test accuracy against the learning rate.",
        )
    )
    return stems


def tables(store: Any, runs: list[Run]) -> list[Table]:
    rows = []
    by_lr: dict[float, list[tuple[float, float, int, float]]] = {}
    for run, entries, timing, n in run_indices(store, runs):
        counts = swap_counts(store, run)
        per_interval = sum(c.sum(1) for c in counts)
        early = float(per_interval[0] / per_interval.sum()) if per_interval.sum() else math.nan
        by_lr.setdefault(float(run["hyperparameters"]["lr"]), []).append((entries, timing, n, early))
    for lr, values in sorted(by_lr.items()):
        rows.append(
            [f"{lr:.2g}", str(len(values))]
            + [f"{statistics.median(v[i] for v in values):.3g}" for i in range(2)]
            + [f"{statistics.median(v[2] for v in values):.0f}"]
            + [f"{100 * statistics.median(v[3] for v in values):.0f}%"]
        )
    swaps = Table(
        "AMSGrad swap statistics (median over seeds)",
        ["lr", "seeds", "entries dispersion index", "timing dispersion index", "coordinates swapped", "swaps in first interval"],
        rows,
        "Dispersion indices: observed variance over the variance of random swapping at the same rates (1 = chance).",
    )
    return [swaps, time_to_target(best_configs(runs, "test_accuracy", "max"), "test_accuracy >= 0.95, best lr per optimizer")]


AMSGRAD_SWAPS = Study(
    name="amsgrad-swaps",
    title="AMSGrad's max(v) swaps per coordinate, and AdamAL vs AMSGrad vs Adam",
    source="seed 002 (A new perspective in understanding of Adam-type algorithms, section 3.3, Figure 1)",
    claim=(
        "Tracing AMSGrad's v and counting, per entry, the times its max is swapped: "
        '"(1) different entry has very different swapping counts; (2) the swapping intervals are nonuniform."'
    ),
    sweep={
        "problems": ["mlp-digits"],
        "optimizers": OPTIMIZERS,
        "seeds": [0, 1, 2],
        "steps": 600,
        "eval_every": 60,
        "grid": {"lr": [3e-4, 1e-3, 3e-3]},
        "optimizer": {"amsgrad": {"diagnostics": [["amsgrad-swaps"]]}},
        "problem": {"mlp-digits": {"hidden": 128}},
    },
    quick={"seeds": [0, 1], "steps": 200, "eval_every": 20, "grid": {"lr": [1e-3]}},
    figures=figures,
    verdict=verdict,
    tables=tables,
    notes="Swaps are counted by the amsgrad-swaps diagnostic in intervals of eval_every steps; curves are means "
    "over seeds with +-1 std bands, at each optimizer's best learning rate by final test accuracy. The verdict tests "
    "the swap claim only; the seed's other claim here (AdamAL above Adam and AMSGrad, AMSGrad below Adam) is shown by "
    "the curves and the final metrics table.",
)
