"""Study ``madam-lr`` (seed 000): is MAdam's GAN quality more robust across learning rates than its rivals'?

Claim (seed 000, abstract and section 3.1): "MAdam is stable in training GAN and robust in different
learning rates" and "MAdam and SGD are only two optimizers that can converge in different learning
rates in GAN experiments" (Figures 1 to 5: MLP GAN samples at learning rates 3e-3, 1e-3, ~3e-4 and
1e-4 for MAdam, Adam, AdaBelief, AdaBound and SGD).

Design. Problem ``gan-digits`` as in the seed: MLP generator and discriminator, noise dimension 200
(the seed's; the same cost as the problem's default 64 here), batch 128, on the 8x8 digits
(1257 training images; MNIST is not available offline). Optimizers Adam, AdaBelief, MAdam,
AdaBound, SGD (momentum 0.9, the seed's only stated SGD setting), each over the seed's learning
rates 1e-4, 3e-4, 1e-3, 3e-3. MAdam's beta3 follows each learning rate by the seed's rule (run
control ``beta3_rescale``: 0.18, 0.54, 0.9, 5.4); every other hyperparameter is the optimizer's default, except beta1 = 0.5 for every
optimizer that has betas (the problem's suggestion, usual for GANs; the seed does not say). Budget:
1200 steps (about 120 passes over digits; the seed trains 50 MNIST epochs, ~23k steps) and 2 seeds:
a GAN step costs 8 to 10 ms of CPU here, so the 40 runs take about 8 CPU-minutes (about 4 minutes
on 2 idle cores; 12m47s measured with ``--workers 2`` on 2 cores shared with other jobs, load ~9). ``--quick``: 200 steps, 2 learning rates, 1 seed (10 runs).

Quality is the problem's ``inception_score`` (1 to 10; real digits score about 6.9) from an
in-process digits classifier on 1000 samples, and ``classes_covered``.

Verdict. A learning rate *works* for an optimizer when its seed-mean final inception score reaches
the problem's target, 4.0. The claim holds when MAdam works at more grid learning rates than every
other optimizer; it does not hold when another optimizer works at more; a tie at the top (none
working at all included) is inconclusive. The worst case and spread (max - min) of the score over
the grid are reported beside, not decisive: an optimizer that fails everywhere has the smallest
spread. Missing runs (an optimizer or learning rate without a finished run) make it inconclusive;
a diverged run scores as the worst value.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from . import Study, Table, Verdict
from .plots import best_configs, curve, final, finished, heatmap, image_grid, save, sensitivity, time_to_target

OPTIMIZERS = ["adam", "adabelief", "madam", "adabound", "sgd"]
METRIC = "inception_score"
TARGET = 4.0  # the problem's target: a learning rate "works" when the seed-mean score reaches it
REAL_SCORE = 6.9  # real digit images, for the figures

Run = dict[str, Any]


def scores(runs: list[Run], metric: str = METRIC) -> dict[str, dict[float, float]]:
    """optimizer -> {lr: mean final ``metric`` over seeds}; a diverged seed makes the mean ``-inf``."""
    collected: dict[str, dict[float, list[float]]] = {}
    for run in finished(runs):
        collected.setdefault(run["optimizer"], {}).setdefault(float(run["hyperparameters"]["lr"]), []).append(
            final(run, metric, "max")
        )
    return {
        opt: {lr: statistics.fmean(v) if all(math.isfinite(x) for x in v) else -math.inf for lr, v in by_lr.items()}
        for opt, by_lr in collected.items()
    }


def _num(v: float) -> str:
    return f"{v:.2f}" if math.isfinite(v) else "diverged"


def robustness(table: dict[str, dict[float, float]], lrs: list[float]) -> dict[str, tuple[int, float, float]]:
    """optimizer -> (learning rates that work, worst score, spread max - min) over ``lrs``."""
    out = {}
    for opt, by_lr in table.items():
        values = [by_lr[lr] for lr in lrs]
        out[opt] = (sum(v >= TARGET for v in values), min(values), max(values) - min(values))
    return out


def verdict(store: Any, runs: list[Run]) -> Verdict:
    table = scores(runs)
    missing = [o for o in OPTIMIZERS if o not in table]
    if missing:
        return Verdict("inconclusive", f"no finished runs for {', '.join(missing)}")
    lrs = sorted({lr for by_lr in table.values() for lr in by_lr})
    gaps = [f"{o} at lr={lr:.3g}" for o in OPTIMIZERS for lr in lrs if lr not in table[o]]
    if gaps or len(lrs) < 2:
        return Verdict("inconclusive", f"runs missing: {', '.join(gaps) or 'fewer than 2 learning rates'}")
    rob = robustness(table, lrs)
    numbers = (
        f"learning rates (of {len(lrs)}, {lrs[0]:.3g} to {lrs[-1]:.3g}) where the seed-mean final inception score "
        f"reaches {TARGET}: "
        + ", ".join(f"{o} {rob[o][0]} (worst {_num(rob[o][1])}, spread {_num(rob[o][2])})" for o in OPTIMIZERS)
    )
    works = rob["madam"][0]
    rival = max((o for o in OPTIMIZERS if o != "madam"), key=lambda o: rob[o][0])
    if works == rob[rival][0] == 0:
        return Verdict("inconclusive", f"{numbers}. No optimizer reaches the target: the budget is too small to compare.")
    if works > rob[rival][0]:
        return Verdict("holds", f"{numbers}. MAdam works over the widest range of learning rates.")
    if works < rob[rival][0]:
        wider = ", ".join(o for o in OPTIMIZERS if rob[o][0] > works)
        return Verdict("does not hold", f"{numbers}. {wider} work(s) at more learning rates than MAdam.")
    return Verdict("inconclusive", f"{numbers}. MAdam ties with {rival} for the widest range.")


def _label(opt: str) -> str:
    return "madam (beta3 rescaled)" if opt == "madam" else opt


def _lr_text(opt: str, lr: float) -> str:
    if opt != "madam":
        return f"lr={lr:.2g}"
    from adamlab.schedules import madam_beta3

    return f"lr={lr:.2g}, b3={madam_beta3(lr):.2g}"


def figures(store: Any, runs: list[Run], out_dir: str) -> list[tuple[str, str]]:
    import matplotlib.pyplot as plt

    stems = []
    order = {o: i for i, o in enumerate(OPTIMIZERS)}
    done = sorted(finished(runs), key=lambda r: order.get(r["optimizer"], len(order)))
    table = scores(done)
    lrs = sorted({lr for by_lr in table.values() for lr in by_lr})
    opts = [o for o in OPTIMIZERS if o in table]

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    sensitivity(ax, done, METRIC, "max", lambda r: _label(r["optimizer"]))
    ax.axhline(TARGET, color="grey", linestyle="--", linewidth=1, label=f"target {TARGET}")
    ax.axhline(REAL_SCORE, color="black", linestyle=":", linewidth=1, label=f"real digits ~{REAL_SCORE}")
    ax.set(ylabel="final inception score (1 to 10)", title="GAN quality vs learning rate (mean ± std over seeds)")
    ax.legend(fontsize=8)
    sensitivity(ax2, done, "classes_covered", "max", lambda r: _label(r["optimizer"]))
    ax2.set(ylabel="digit classes with >= 2% of samples", title="Classes covered vs learning rate", ylim=(0, 10.5))
    fig.tight_layout()
    stems.append(
        save(
            fig,
            out_dir,
            "score-vs-lr",
            "Final sample quality against the learning rate: the inception score from an in-process digits classifier (1 to 10; real digits score about 6.9; dashed: the target 4.0) and the number of digit classes the samples cover (mean ± std over seeds).",
        )
    )

    fig, ax = plt.subplots(figsize=(1.4 * len(lrs) + 3, 0.6 * len(opts) + 1.6))
    rows = opts[::-1]  # the first optimizer on top
    values = [[table[o].get(lr, math.nan) for lr in lrs] for o in rows]
    heatmap(
        fig, ax, values, [f"{lr:.2g}" for lr in lrs], [_label(o) for o in rows], "final inception score (seed mean)", "{:.2f}"
    )
    ax.set(xlabel="learning rate", title="Inception score per optimizer and learning rate")
    fig.tight_layout()
    stems.append(
        save(fig, out_dir, "score-heatmap", "Final inception score (seed mean) of each optimizer at each learning rate.")
    )

    fig, axes = plt.subplots(1, len(lrs), figsize=(3.4 * len(lrs), 3.8), sharey=True, squeeze=False)
    for ax, lr in zip(axes[0], lrs):
        for opt in opts:
            group = [r for r in done if r["optimizer"] == opt and float(r["hyperparameters"]["lr"]) == lr]
            if group:
                curve(ax, store, group, METRIC, _label(opt), kind="eval", color=f"C{OPTIMIZERS.index(opt)}")
        ax.axhline(TARGET, color="grey", linestyle="--", linewidth=1)
        ax.set(title=f"lr = {lr:.2g}", xlabel="step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("inception score (mean ± std over seeds)")
    handles = {}
    for ax in axes[0]:
        handles.update(zip(*reversed(ax.get_legend_handles_labels())))
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8)
    fig.suptitle("Inception score during training, per learning rate (dashed: target)", fontsize=11)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    stems.append(
        save(
            fig,
            out_dir,
            "score-curves",
            "Inception score during training at each learning rate (mean, band ± std over seeds; dashed: the target).",
        )
    )

    first_seed = min((r["seed"] for r in done), default=0)
    fig, axes = plt.subplots(len(opts), len(lrs), figsize=(2.1 * len(lrs), 2.3 * len(opts)), squeeze=False)
    for i, opt in enumerate(opts):
        for j, lr in enumerate(lrs):
            ax = axes[i][j]
            run = next(
                (
                    r
                    for r in done
                    if r["optimizer"] == opt and float(r["hyperparameters"]["lr"]) == lr and r["seed"] == first_seed
                ),
                None,
            )
            images = store.artifact(run["id"], "samples") if run is not None else None
            if images is None:
                ax.axis("off")
                continue
            image_grid(ax, images, title=f"{_lr_text(opt, lr)}\nIS {_num(final(run, METRIC, 'max'))}")
            if j == 0:
                ax.set_ylabel(_label(opt), fontsize=9)
    fig.suptitle(f"64 samples after training (seed {first_seed})\nrows: optimizer, columns: learning rate", fontsize=10)
    fig.tight_layout()
    stems.append(
        save(
            fig,
            out_dir,
            "samples",
            "64 generated digits after training for each optimizer (rows) and learning rate (columns), with the run's inception score; MAdam's panels give the rescaled beta3.",
        )
    )
    return stems


def tables(store: Any, runs: list[Run]) -> list[Table]:
    table = scores(runs)
    classes = scores(runs, "classes_covered")
    lrs = sorted({lr for by_lr in table.values() for lr in by_lr})
    rows = []
    for opt in (o for o in OPTIMIZERS if o in table):
        if set(lrs) <= set(table[opt]):
            works, worst, spread = robustness({opt: table[opt]}, lrs)[opt]
            summary = [f"{works}/{len(lrs)}", _num(worst), _num(spread)]
        else:
            summary = ["", "", ""]
        cells = [f"{_num(table[opt][lr])} ({classes[opt][lr]:.0f})" if lr in table[opt] else "" for lr in lrs]
        rows.append([_label(opt), *cells, *summary])
    robust = Table(
        "Inception score (classes covered) per learning rate",
        ["optimizer", *[f"lr={lr:.2g}" for lr in lrs], f"lrs with score >= {TARGET}", "worst", "spread"],
        rows,
        "Seed means of the final values; the verdict counts the learning rates whose score reaches the target.",
    )
    return [robust, time_to_target(best_configs(runs, METRIC, "max"), f"{METRIC} >= {TARGET}, best lr per optimizer")]


MADAM_LR = Study(
    name="madam-lr",
    title="MAdam vs Adam, AdaBelief, AdaBound, SGD: GAN quality across learning rates",
    source="seed 000 (Miao, MAdam, sections 2.2 and 3.1, Figures 1-5)",
    claim=(
        'Abstract: "MAdam is stable in training GAN and robust in different learning rates." Section 3.1 (MLP GAN, '
        "learning rates 1e-4 to 3e-3, beta3 rescaled per learning rate by the section 2.2 formula): "
        '"MAdam and SGD are only two optimizers that can converge in different learning rates in GAN experiments."'
    ),
    sweep={
        "problems": ["gan-digits"],
        "optimizers": OPTIMIZERS,
        "seeds": [0, 1],
        "steps": 1200,
        "eval_every": 100,
        "grid": {"lr": [1e-4, 3e-4, 1e-3, 3e-3]},
        "optimizer": {"madam": {"beta3_rescale": [True]}, "sgd": {"momentum": [0.9]}},
        "problem": {"gan-digits": {"noise_dim": 200}},
    },
    quick={"seeds": [0], "steps": 200, "eval_every": 50, "grid": {"lr": [1e-3, 3e-3]}},
    figures=figures,
    verdict=verdict,
    tables=tables,
    notes="Each score is the final inception score of 1000 samples (a digits classifier fitted on the real "
    "training images), the mean over seeds; a diverged run counts as the worst value. beta1 = 0.5 for every "
    "optimizer with betas; SGD uses momentum 0.9.",
)
