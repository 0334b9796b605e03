"""Study ``adam-paper`` (seed 004): Adam converges as fast as or faster than SGD with Nesterov momentum, Adagrad and RMSprop.

Claim. Kingma & Ba's experiments (sections 6.1 and 6.2, as seed 004 presents them): logistic
regression on MNIST and on sparse IMDB bag-of-words features, and a multilayer perceptron of two
hidden layers of 1000 ReLU units, minibatch 128, where the slides conclude "Adam most Fast"; every
optimizer uses its best hyperparameters from a dense grid. The paper's own text (not in the seed):
on the sparse features Adam converges like Adagrad and much faster than SGD with Nesterov momentum;
on the MLP it is faster than the other methods.

Design. The same three experiments at CPU size:

- ``logreg-digits``: multinomial logistic regression on scikit-learn's 8x8 digits (MNIST stand-in),
  300 steps of batch 128 (about 30 epochs), evaluated every 5 steps;
- ``logreg-sparse``: binary logistic regression on generated 10,000-dimensional Zipf bag-of-words
  presence features (about 74 of 10,000 nonzero per document) with a planted sparse linear
  labeller (IMDB stand-in: the signal sits mostly on frequent words, with a tail of rare ones), 300
  steps, evaluated every 5 steps;
- ``mlp-digits``: the seed's MLP (two ReLU hidden layers, batch 128) with 500 instead of 1000 units
  per layer (4x cheaper on a CPU, and still far more than 1,257 digits need), 200 steps (about 20
  epochs; the best configurations' training loss is 2e-4 to 2e-3 by then), evaluated every 10 steps.

Optimizers: ``adam`` (default betas), ``sgd`` with Nesterov momentum 0.9, ``adagrad``, ``rmsprop``
(torch defaults), each over its own log grid of 7 learning rates half a decade apart (3 decades,
placed where that method works on these problems), 3 seeds (seed = data split or generated data,
initialization and minibatch order). The best configuration of an optimizer on a problem (the seed's
"results are reported using the best parameter") is its learning rate with the fewest median steps
to the problem's target (test accuracy >= 0.9 / 0.8 / 0.95), ties broken by the lower final training
loss; a learning rate that diverged on any seed ranks last. The default size (252 runs) took 8
minutes with 2 workers on 2 busy cores; ``--quick`` shrinks the MLP to 128 units, the budgets to 60
steps, the grid to 2 learning rates and one seed.

Verdict. The cost of an optimizer on a problem is the median over seeds of the steps its best
configuration takes to reach the target (never = inf). Adam is "as fast as" another when its cost
is within one evaluation interval of it (the measurement's resolution). The claim holds when on
every problem Adam is as fast as the fastest other optimizer; it does not hold when on some problem
Adam is more than twice as slow as the fastest (and more than an interval behind), or never reaches
the target while another does; otherwise it is inconclusive. Missing or failed runs, or every
learning rate of an optimizer diverging, make it inconclusive. The final training losses are
reported beside.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from . import Study, Table, Verdict
from .plots import configs, curve, final, performance_profile, save, sensitivity, time_to_target

PROBLEMS = ["logreg-digits", "logreg-sparse", "mlp-digits"]
OPTIMIZERS = ["adam", "sgd", "adagrad", "rmsprop"]
LABELS = {"adam": "Adam", "sgd": "SGD + Nesterov 0.9", "adagrad": "Adagrad", "rmsprop": "RMSprop"}
COLOURS = {"adam": "tab:red", "sgd": "tab:blue", "adagrad": "tab:green", "rmsprop": "tab:purple"}
TITLES = {
    "logreg-digits": "Logistic regression, digits",
    "logreg-sparse": "Logistic regression, sparse bag-of-words",
    "mlp-digits": "MLP 2x500 ReLU, digits",
}
METRIC = "train_loss"
Run = dict[str, Any]


def _steps(run: Run) -> float:
    value = run["final_metrics"].get("steps_to_target")
    return float(value) if isinstance(value, (int, float)) and not run["final_metrics"].get("diverged") else math.inf


def _diverged(run: Run) -> bool:
    return bool(run["final_metrics"].get("diverged")) or not math.isfinite(final(run, METRIC, "min"))


def best(runs: list[Run]) -> dict[tuple[str, str], list[Run]]:
    """Per (problem, optimizer), the seed runs of the learning rate with the fewest median steps to the target,
    ties broken by the lower mean final training loss; a learning rate that diverged on any seed ranks last."""
    chosen: dict[tuple[str, str], tuple[tuple[float, float], list[Run]]] = {}
    for (problem, optimizer, _), group in configs(runs).items():
        if any(_diverged(r) for r in group):
            score = (math.inf, math.inf)
        else:
            score = (statistics.median(_steps(r) for r in group), statistics.fmean(final(r, METRIC, "min") for r in group))
        if (problem, optimizer) not in chosen or score < chosen[problem, optimizer][0]:
            chosen[problem, optimizer] = (score, group)
    return {key: group for key, (_, group) in chosen.items()}


def verdict(store: Any, runs: list[Run]) -> Verdict:
    chosen = best(runs)
    missing = [f"{o} on {p}" for p in PROBLEMS for o in OPTIMIZERS if (p, o) not in chosen]
    if missing:
        return Verdict("inconclusive", f"no finished runs for {', '.join(missing)}")
    broken = [f"{o} on {p}" for (p, o), group in chosen.items() if any(_diverged(r) for r in group)]
    if broken:
        return Verdict("inconclusive", f"every learning rate diverged on some seed for {', '.join(broken)}")
    parts, fast, slower, unsolved = [], [], [], []
    for problem in PROBLEMS:
        cost = {o: statistics.median(_steps(r) for r in chosen[problem, o]) for o in OPTIMIZERS}
        loss = {o: statistics.fmean(final(r, METRIC, "min") for r in chosen[problem, o]) for o in OPTIMIZERS}
        fastest = min(OPTIMIZERS[1:], key=lambda o: cost[o])
        parts.append(f"{problem}: " + ", ".join(f"{o} {_fmt_steps(cost[o])} ({loss[o]:.3g})" for o in OPTIMIZERS))
        a, b = cost["adam"], cost[fastest]
        interval = int(chosen[problem, "adam"][0]["config"]["eval_every"])
        if math.isinf(a) and math.isinf(b):
            unsolved.append(problem)
        elif a <= b + interval:
            fast.append(problem)
        elif math.isinf(a) or a > 2 * b:
            slower.append(f"{problem} (Adam {_fmt_steps(a)} vs {fastest} {_fmt_steps(b)})")
    numbers = "median steps to the target of each optimizer's best learning rate (its mean final training loss): " + "; ".join(
        parts
    )
    if slower:
        return Verdict("does not hold", f"{numbers}. Adam is clearly slower on {', '.join(slower)}.")
    if len(fast) == len(PROBLEMS):
        return Verdict("holds", f"{numbers}. Adam is as fast as the fastest other (within one evaluation) on every problem.")
    if unsolved:
        return Verdict("inconclusive", f"{numbers}. On {', '.join(unsolved)} no optimizer reached the target.")
    behind = [p for p in PROBLEMS if p not in fast]
    return Verdict("inconclusive", f"{numbers}. Adam is slower, but less than twice as slow, on {', '.join(behind)}.")


def _fmt_steps(value: float) -> str:
    return "never" if math.isinf(value) else f"{value:g}"


CURVE_CAPTIONS = {
    "train-loss": "Training loss over steps of each optimizer at its best learning rate (fewest steps to the target), per problem (mean, band ± std over seeds).",
    "test-accuracy": "Test accuracy over steps of each optimizer at its best learning rate, per problem, with the problem's target (dotted).",
}


def figures(store: Any, runs: list[Run], out_dir: str) -> list[tuple[str, str]]:
    import matplotlib.pyplot as plt

    chosen = best(runs)
    stems = []
    for metric, ylabel, stem in (
        ("train_loss", "training loss (cross-entropy, nats)", "train-loss"),
        ("test_accuracy", "test accuracy", "test-accuracy"),
    ):
        fig, axes = plt.subplots(1, len(PROBLEMS), figsize=(15, 4.2))
        for ax, problem in zip(axes, PROBLEMS):
            for optimizer in OPTIMIZERS:
                group = chosen.get((problem, optimizer))
                if group:
                    lr = group[0]["hyperparameters"]["lr"]
                    curve(ax, store, group, metric, f"{LABELS[optimizer]}, lr={lr:.2g}", color=COLOURS[optimizer])
            if metric == "train_loss":
                ax.set_yscale("log")
            else:
                target = _target(problem)
                ax.axhline(target, color="black", linestyle=":", linewidth=1, label=f"target {target:g}")
                ax.set_ylim(max(0.0, target - 0.3), 1.0)
            ax.set(xlabel="training step (minibatch 128)", ylabel=ylabel, title=TITLES[problem])
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle("Best learning rate per optimizer (fewest steps to the target); mean over seeds, band +-1 std", fontsize=10)
        fig.tight_layout()
        stems.append(save(fig, out_dir, stem, CURVE_CAPTIONS[stem]))

    fig, axes = plt.subplots(1, len(PROBLEMS), figsize=(15, 4.2))
    for ax, problem in zip(axes, PROBLEMS):
        for optimizer in OPTIMIZERS:
            ax.set_prop_cycle(color=[COLOURS[optimizer]])
            mine = [r for r in runs if r["problem"] == problem and r["optimizer"] == optimizer]
            sensitivity(ax, mine, METRIC, "min", lambda r: LABELS[r["optimizer"]])
        ax.set_yscale("log")
        ax.set(ylabel="final training loss (nats)", title=TITLES[problem])
        ax.legend(fontsize=7)
    fig.suptitle("Learning-rate sensitivity: final training loss, mean +- std over seeds (x: diverged)", fontsize=10)
    fig.tight_layout()
    stems.append(
        save(
            fig,
            out_dir,
            "lr-sensitivity",
            "Final training loss of each optimizer against its learning rate, per problem (mean ± std over seeds; x marks a diverged setting).",
        )
    )

    costs = {LABELS[o]: [] for o in OPTIMIZERS}
    for problem in PROBLEMS:
        seeds = sorted({r["seed"] for o in OPTIMIZERS for r in chosen.get((problem, o), [])})
        for seed in seeds:
            for o in OPTIMIZERS:
                hits = [_steps(r) for r in chosen.get((problem, o), []) if r["seed"] == seed]
                costs[LABELS[o]].append(hits[0] if hits else math.inf)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.set_prop_cycle(color=[COLOURS[o] for o in OPTIMIZERS])
    performance_profile(ax, costs, "steps to target")
    ax.set_title(f"Performance profile over {len(next(iter(costs.values())))} (problem, seed) instances")
    fig.tight_layout()
    stems.append(
        save(
            fig,
            out_dir,
            "performance-profile",
            "Performance profile (Dolan & Moré): for each optimizer at its best learning rate, the share of (problem, seed) instances on which it reaches the target within tau times the fewest steps any optimizer needed; higher and further left is better.",
        )
    )
    return stems


def _target(problem: str) -> float:
    from ..problems import problem_class

    return problem_class(problem).target.value  # type: ignore[union-attr]


def tables(store: Any, runs: list[Run]) -> list[Table]:
    chosen = best(runs)
    ordered = {(p, o): chosen[p, o] for p in PROBLEMS for o in OPTIMIZERS if (p, o) in chosen}
    targets = ", ".join(f"{p}: test accuracy >= {_target(p):g}" for p in PROBLEMS)
    table = time_to_target(ordered, targets)
    every = ", ".join(f"{p}: {chosen[p, 'adam'][0]['config']['eval_every']}" for p in PROBLEMS if (p, "adam") in chosen)
    return [Table(table.title, table.header, table.rows, f"{table.note} Evaluation every N steps ({every}).")]


ADAM_PAPER = Study(
    name="adam-paper",
    title="Adam vs SGD (Nesterov), Adagrad and RMSprop: logistic regression and MLP",
    source="seed 004 (Kingma & Ba 2015, sections 6.1 and 6.2)",
    claim=(
        "Experiment(1): Logistic Regression (MNIST; IMDB dataset for sparse feature problem) and Experiment(2): "
        "MULTI-LAYER NEURAL NETWORKS (two fully connected hidden layer with 1000 hidden units, Relu activation, "
        'mini-batch 128 size): "Adam most Fast", with hyper-parameters searched over dense grid and results '
        'reported using the best parameter; Adam combines "how AdaGrad handles sparse gradients" with RMSProp. '
        "That is, Adam converges as fast as or faster than SGD with Nesterov momentum, Adagrad and RMSprop: "
        "on sparse features like Adagrad and faster than SGD, on the MLP faster than the others."
    ),
    sweep={
        "problems": PROBLEMS,
        "optimizers": OPTIMIZERS,
        "seeds": [0, 1, 2],
        "problem": {
            "logreg-digits": {"steps": 300, "eval_every": 5},
            "logreg-sparse": {"steps": 300, "eval_every": 5},
            "mlp-digits": {"steps": 200, "eval_every": 10, "hidden": 500},
        },
        "optimizer": {
            "adam": {"lr": {"log": [1e-4, 1e-1], "num": 7}},
            "sgd": {"lr": {"log": [1e-3, 1.0], "num": 7}, "momentum": [0.9], "nesterov": [True]},
            "adagrad": {"lr": {"log": [1e-3, 1.0], "num": 7}},
            "rmsprop": {"lr": {"log": [1e-5, 1e-2], "num": 7}},
        },
    },
    quick={
        "seeds": [0],
        "problem": {
            "logreg-digits": {"steps": 60, "eval_every": 10},
            "logreg-sparse": {"steps": 60, "eval_every": 10, "n_train": 1000, "n_test": 500},
            "mlp-digits": {"steps": 60, "eval_every": 10, "hidden": 128},
        },
        "optimizer": {
            "adam": {"lr": [1e-3, 1e-2]},
            "sgd": {"lr": [1e-2, 1e-1], "momentum": [0.9], "nesterov": [True]},
            "adagrad": {"lr": [1e-2, 1e-1]},
            "rmsprop": {"lr": [1e-4, 1e-3]},
        },
    },
    figures=figures,
    verdict=verdict,
    tables=tables,
    notes="Each optimizer is shown with its learning rate of lowest mean final training loss. Time to target: "
    "evaluations every 10 steps; Adam's seconds include compiling its packed update on a worker's first run. "
    "The performance profile's instances are (problem, seed) pairs, each optimizer's cost the steps to target "
    "of its best configuration on that seed.",
)
