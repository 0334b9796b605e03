"""Study ``madam-lr``: is MAdam's GAN quality more robust across learning rates than its rivals'?

Claim (Miao, "MAdam: Modify Second Momentum Estimation in Adam", abstract and section 3.1): "MAdam is
stable in training GAN and robust in different learning rates" and "MAdam and SGD are only two
optimizers that can converge in different learning rates in GAN experiments" (Figures 1 to 5: MLP
GAN samples at learning rates 3e-3, 1e-3, ~3e-4 and 1e-4 for MAdam, Adam, AdaBelief, AdaBound and SGD).

Design. Problem ``gan-digits`` as in the paper: MLP generator and discriminator, noise dimension 200,
batch 128, on the 8x8 digits (1257 training images; MNIST is not available offline). The paper's
hyperparameters: MAdam's beta3 follows each learning rate by its section 2.2 rule (run control
``beta3_rescale``: 0.18, 0.54, 0.9, 5.4) with its other values at their defaults (betas 0.9,
0.999), and "other optimizers used the default hyperparameters": Adam, AdaBelief, AdaBound with
betas (0.9, 0.999) (not the problem's GAN-usual 0.5) and SGD without momentum, each over the
paper's learning rates 1e-4, 3e-4, 1e-3, 3e-3. Budget: 1200 steps (about 120 passes over the
digits; the paper trains 50 MNIST epochs, ~23k steps), 3 seeds; a GAN step costs 8 to 10 ms of CPU
here, so the 60 runs take about 12 CPU-minutes. ``--quick``: 200 steps, 2 learning rates, 1 seed.

Quality is the problem's ``inception_score`` (1 to 10; real digits score about 6.9) from an
in-process digits classifier on 1000 samples, and ``classes_covered``; an optimizer *converges*
at a learning rate when its score reaches the problem's target (``gan-digits``' target, 4.0).

Verdict (the rule of :mod:`.decision`). Per seed, an optimizer's worst score over the learning
rates; comparisons over seeds: MAdam's and SGD's worst score minus the target greater than 0 (they
converge at every learning rate), and Adam's, AdaBelief's and AdaBound's less than 0 (each fails at
some learning rate: "only two"). The precondition is a plateau: when some (optimizer, learning
rate) curve's seed-mean score over the last quarter of the evaluations differs from the quarter
before by more than 0.5, the budget cannot tell a slow optimizer from a failing one (MAdam's beta3
= 5.4 at 3e-3 shrinks its step by design) and every comparison is "inconclusive: the setup cannot
test this"; so are they when no optimizer reaches the target at any learning rate (the setup then
trains no GAN to compare). A diverged run scores as the worst value; missing runs make it inconclusive.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from . import Study, Table, Verdict
from .decision import compare
from .plots import best_configs, curve, final, finished, heatmap, image_grid, save, seed_curves, sensitivity, time_to_target

OPTIMIZERS = ["adam", "adabelief", "madam", "adabound", "sgd"]
CONVERGING = ("madam", "sgd")  # the paper's "only two optimizers that can converge in different learning rates"
METRIC = "inception_score"
REAL_SCORE = 6.9  # real digit images, for the figures
# the optimizers' defaults, over the problem's GAN-usual beta1 = 0.5; MAdam's beta3 follows the lr (section 2.2)
DEFAULTS = {o: {"betas": [[0.9, 0.999]]} for o in ("adam", "adabelief", "adabound")} | {
    "madam": {"betas": [[0.9, 0.999]], "beta3_rescale": [True]}
}
PLATEAU = 0.5  # inception-score points: the most the seed-mean score may move between the last two quarters

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


def target() -> float:
    """The score at which a GAN counts as converged: the ``gan-digits`` problem's target."""
    from ..problems import problem_class

    return problem_class("gan-digits").target.value  # type: ignore[union-attr]


def robustness(table: dict[str, dict[float, float]], lrs: list[float]) -> dict[str, tuple[int, float, float]]:
    """optimizer -> (learning rates that work, worst score, spread max - min) over ``lrs``."""
    out = {}
    for opt, by_lr in table.items():
        values = [by_lr[lr] for lr in lrs]
        out[opt] = (sum(v >= target() for v in values), min(values), max(values) - min(values))
    return out


def worst_by_seed(runs: list[Run], optimizer: str, lrs: list[float]) -> dict[int, float]:
    """Seed -> the optimizer's lowest final score over ``lrs`` on that seed (seeds with every lr only)."""
    by_seed: dict[int, dict[float, float]] = {}
    for run in finished(runs):
        if run["optimizer"] == optimizer:
            by_seed.setdefault(run["seed"], {})[float(run["hyperparameters"]["lr"])] = final(run, METRIC, "max")
    return {seed: min(scores.values()) for seed, scores in by_seed.items() if set(lrs) <= set(scores)}


def not_at_plateau(store: Any, runs: list[Run]) -> list[str]:
    """The (optimizer, lr) whose seed-mean score moved by more than :data:`PLATEAU` between the last two quarters
    of the evaluations (at least 8 evaluations after step 0 are needed: fewer, every curve is listed)."""
    groups: dict[tuple[str, float], list[Run]] = {}
    for run in finished(runs):
        groups.setdefault((run["optimizer"], float(run["hyperparameters"]["lr"])), []).append(run)
    moving = []
    for (opt, lr), group in sorted(groups.items()):
        steps, means, _ = seed_curves(store, group, METRIC)
        values = [m for s, m in zip(steps, means) if s > 0]
        quarter = len(values) // 4
        if quarter < 2 or abs(statistics.fmean(values[-quarter:]) - statistics.fmean(values[-2 * quarter : -quarter])) > PLATEAU:
            moving.append(f"{opt} at lr={lr:.2g}")
    return moving


def verdict(store: Any, runs: list[Run]) -> Verdict:
    table = scores(runs)
    missing = [o for o in OPTIMIZERS if o not in table]
    if missing:
        return Verdict("inconclusive", f"no finished runs for {', '.join(missing)}")
    lrs = sorted({lr for by_lr in table.values() for lr in by_lr})
    gaps = [f"{o} at lr={lr:.3g}" for o in OPTIMIZERS for lr in lrs if lr not in table[o]]
    if gaps or len(lrs) < 2:
        return Verdict("inconclusive", f"runs missing: {', '.join(gaps) or 'fewer than 2 learning rates'}")
    goal = target()
    moving = not_at_plateau(store, runs)
    untestable = f"not at a plateau: the score still moves by more than {PLATEAU} at the end for {', '.join(moving)}" if moving else ""
    if not any(score >= goal for by_lr in table.values() for score in by_lr.values()):
        untestable = f"no optimizer reaches the target {goal:g} at any learning rate: this setup trains no GAN to compare"
    comparisons = [
        compare(
            f"{o}'s worst score over the learning rates minus the target {goal:g}",
            [v - goal for v in worst_by_seed(runs, o, lrs).values()],
            "greater" if o in CONVERGING else "less",
            0.0,
            untestable=untestable,
        )
        for o in OPTIMIZERS
    ]
    rob = robustness(table, lrs)
    numbers = f"Per seed, an optimizer's worst final inception score over the {len(lrs)} learning rates ({lrs[0]:.3g} to {lrs[-1]:.3g}). "
    numbers += f"Learning rates where the seed-mean score reaches {goal:g}: " + ", ".join(
        f"{o} {rob[o][0]} (worst {_num(rob[o][1])}, spread {_num(rob[o][2])})" for o in OPTIMIZERS
    )
    return Verdict.of(comparisons, numbers + ".")


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
    ax.axhline(target(), color="grey", linestyle="--", linewidth=1, label=f"target {target():g}")
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
            f"Final sample quality against the learning rate: the inception score from an in-process digits classifier (1 to 10; real digits score about 6.9; dashed: the target {target():g}) and the number of digit classes the samples cover (mean ± std over seeds).",
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
        ax.axhline(target(), color="grey", linestyle="--", linewidth=1)
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
        ["optimizer", *[f"lr={lr:.2g}" for lr in lrs], f"lrs with score >= {target():g}", "worst", "spread"],
        rows,
        "Seed means of the final values; the verdict compares each seed's worst score over the learning rates with the target.",
    )
    return [robust, time_to_target(best_configs(runs, METRIC, "max"), f"{METRIC} >= {target():g}, best lr per optimizer")]


MADAM_LR = Study(
    name="madam-lr",
    title="MAdam vs Adam, AdaBelief, AdaBound, SGD: GAN quality across learning rates",
    source="Yanting Miao, \"MAdam: Modify Second Momentum Estimation in Adam\", abstract and section 3.1 (Figures 1 to 5)",
    claim=(
        "Further, MAdam is stable in training GAN and robust in different learning rates. [...] Meanwhile, MAdam and SGD "
        "are only two optimizers that can converge in different learning rates in GAN experiments, which indicates MAdam "
        "may have good generalization performance as SGD."
    ),
    paraphrase=(
        f"on every seed, MAdam's and SGD's worst inception score over the learning rates 1e-4 to 3e-3 is above the "
        f"target 4 (they converge at all of them), while Adam, AdaBelief and AdaBound fall below it at some learning rate."
    ),
    paper_setup={
        "model": "MLP generator (200-d noise) and MLP discriminator (784-d images)",
        "data": "MNIST",
        "steps": "50 epochs (about 23,000 steps of 128)",
        "hyperparameters": "lr in {3e-3, 1e-3, about 3.3e-4 (the one its beta3 0.6 implies), 1e-4}; MAdam's beta3 = {5.4, 0.9, 0.6, 0.18} "
        "by the section 2.2 formula; other optimizers at their default hyperparameters; minibatch 128",
        "seeds": "one run per setting (samples shown)",
    },
    sweep={
        "problems": ["gan-digits"],
        "optimizers": OPTIMIZERS,
        "seeds": [0, 1, 2],
        "steps": 1200,
        "eval_every": 100,
        "grid": {"lr": [1e-4, 3e-4, 1e-3, 3e-3]},
        "optimizer": DEFAULTS,
        "problem": {"gan-digits": {"noise_dim": 200}},
    },
    quick={
        "seeds": [0],
        "steps": 200,
        "eval_every": 25,
        "grid": {"lr": [1e-3, 3e-3]},
    },
    figures=figures,
    verdict=verdict,
    tables=tables,
    notes="Each score is the final inception score of 1000 samples (a digits classifier fitted on the real "
    "training images), the mean over seeds; a diverged run counts as the worst value. Every optimizer with betas "
    "uses the default (0.9, 0.999); SGD has no momentum (its default).",
)
