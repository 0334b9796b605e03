"""Studies and reports: the reddi study end to end, its verdict rule, and the check every study's verdict passes."""

from __future__ import annotations

import json

from adamlab.cli import main
from adamlab.lab.store import Store
from adamlab.lab.studies import get_study, studies
from adamlab.lab.studies.decision import DIRECTIONS, UNTESTABLE, combine, rule
from adamlab.lab.studies.reddi import verdict

FIELDS = {"name", "estimate", "low", "high", "margin", "direction", "n", "outcome"}


def check_verdict(result: dict) -> None:
    """A verdict (``verdict.json``, or one of its ``also``) lists every comparison with the fields of the rule, each
    comparison's outcome is the rule's on its interval, and the claim's outcome follows from the deciding ones."""
    for v in (result, *result.get("also", [])):
        for c in v["comparisons"]:
            assert FIELDS <= set(c) and c["direction"] in DIRECTIONS and c["n"] >= 0, c
            if c["low"] is not None:
                assert c["low"] <= c["estimate"] <= c["high"], c
            expected = UNTESTABLE if c.get("untestable") else rule(c["direction"], c["margin"], c["low"], c["high"])
            assert c["outcome"] == expected, c
            assert c["name"] in v["because"]
        assert v["outcome"] == combine(c["outcome"] for c in v["comparisons"] if c["decides"]), v


def test_reddi_study_quick_writes_report_with_verdict_from_the_store(tmp_path, capsys):
    db, out = tmp_path / "r.sqlite", tmp_path / "report"
    assert main(["study", "reddi", "--quick", "--db", str(db), "--out", str(out), "--workers", "0", "--progress", "none"]) == 0
    assert "reddi: holds." in capsys.readouterr().out
    result = json.loads((out / "verdict.json").read_text())
    assert result["outcome"] == "holds" and result["runs"] == 3
    check_verdict(result)
    # every comparison is exact (a deterministic problem): Adam's final iterate above +0.9, the others' below -0.9
    adam, amsgrad, adamal = result["comparisons"]
    assert adam["name"] == "adam's final iterate x" and adam["low"] == adam["high"] == adam["estimate"] > 0.9
    assert (adam["direction"], adam["margin"], adam["n"], adam["outcome"]) == ("greater", 0.9, 1, "holds")
    assert amsgrad["direction"] == adamal["direction"] == "less" and amsgrad["high"] < -0.9 and adamal["high"] < -0.9
    page = (out / "index.html").read_text()
    assert 'Verdict: <b style="color: #1a7f37">holds</b>' in page and "Reddi, Kale &amp; Kumar" in page
    # the claim as the post writes it, our paraphrase labelled, the setups side by side
    assert "Adam converges to highly sub-optimal value of x = 1" in page and "Paraphrase (ours)" in page
    assert "<td>seeds</td><td>deterministic</td><td>1 (0)</td>" in page
    assert (out / "iterates.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / "iterates.svg").stat().st_size > 1000
    # the final iterates in the table: Adam at +1, AMSGrad and AdamAL near -1
    rows = {r.split("</td><td>")[0][8:]: r for r in page.splitlines() if r.startswith("<tr><td>")}
    assert rows["adam"].endswith("<td>1</td></tr>") and "-0.99" in rows["amsgrad"] and "-0.99" in rows["adamal"]
    # the figure has a caption saying what it shows; Adam never reaches the target: a dash, explained under the table
    assert "<figcaption>Figure 1. Left: the iterate x_t" in page and 'alt="Left: the iterate' in page
    assert "<td>—</td>" in rows["adam"] and "steps_to_target: the first step at which average_regret &lt;= 0.1 (reddi)." in page

    # the report alone, from the store: same verdict; a second study run reuses every job
    assert main(["report", "--db", str(db), "--out", str(tmp_path / "again")]) == 0
    assert json.loads((tmp_path / "again" / "verdict.json").read_text())["because"] == result["because"]
    assert main(["study", "reddi", "--quick", "--db", str(db), "--out", str(out), "--workers", "0", "--progress", "plain"]) == 0
    assert "3 jobs: all 3 already finished" in capsys.readouterr().out


def test_unknown_study_and_empty_store_are_one_line_errors(tmp_path, capsys):
    assert main(["study", "nope", "--db", str(tmp_path / "x.sqlite")]) == 2
    names = ", ".join(sorted(studies()))
    assert capsys.readouterr().err.strip() == f"error: unknown study 'nope'; available: {names}"
    with Store.open(tmp_path / "empty.sqlite", create=True):
        pass
    assert main(["report", "--db", str(tmp_path / "empty.sqlite"), "--out", str(tmp_path / "out")]) == 2
    assert f"holds no runs of any study ({names})" in capsys.readouterr().err


def _runs(**x):
    return [{"optimizer": k, "status": "finished", "final_metrics": {"x": v}} for k, v in x.items()]


def test_reddi_verdict_rule():
    assert verdict(None, _runs(adam=0.99, amsgrad=-0.99, adamal=-0.95)).outcome == "holds"
    assert verdict(None, _runs(adam=-0.99, amsgrad=-0.99, adamal=-0.99)).outcome == "does not hold"
    assert verdict(None, _runs(adam=0.99, amsgrad=0.2, adamal=-0.99)).outcome == "does not hold"
    assert verdict(None, _runs(adam=0.5, amsgrad=-0.99, adamal=-0.99)).outcome == "inconclusive"
    missing = verdict(None, _runs(adam=0.99, amsgrad=-0.99))
    assert missing.outcome == "inconclusive" and "adamal" in missing.because
    assert get_study("reddi").spec(quick=True).jobs()[0].config["steps"] == 3000


def test_bias_correction_study_quick(tmp_path, capsys):
    """12 VAE jobs of 200 steps: without bias correction, beta2 = 0.9999 is worse early (Kingma & Ba, section 6.4)."""
    out = tmp_path / "report"
    assert main(["study", "bias-correction", "--quick", "--db", str(tmp_path / "b.sqlite"), "--out", str(out), "--progress", "none"]) == 0
    result = json.loads((out / "verdict.json").read_text())
    check_verdict(result)
    early = result["comparisons"][0]
    assert result["runs"] == 12 and early["name"] == "early excess loss without correction at beta2=0.9999"
    # one seed x 2 learning rates: 2 (lr, seed) pairs, a t interval with 1 degree of freedom
    assert early["n"] == 2 and early["estimate"] > 0.05 and (early["direction"], early["margin"]) == ("greater", 0.05)
    assert (out / "loss-vs-lr.png").stat().st_size > 10_000 and "<b style" in (out / "index.html").read_text()


def test_bias_correction_excess_is_per_lr_and_seed():
    from adamlab.lab.studies.bias_correction import excess

    table = {
        (0.9999, False, "short"): {(1e-3, 0): 30.0, (1e-2, 0): 120.0},
        (0.9999, True, "short"): {(1e-3, 0): 30.0, (1e-2, 0): 10.0},
    }
    assert excess(table, 0.9999, "short") == {(1e-3, 0): 0.0, (1e-2, 0): 9.0}  # the 12x ratio is capped at 10x


def test_final_table_lists_only_the_hyperparameters_that_vary():
    from adamlab.lab.report import final_table, shared_hyperparameters

    def run(lr, seed, loss):
        hp = {"lr": lr, "betas": [0.9, 0.999]}
        return {"optimizer": "adam", "status": "finished", "hyperparameters": hp, "seed": seed, "final_metrics": {"loss": loss}}

    runs = [run(0.1, 0, 1.0), run(0.1, 1, 3.0), run(0.01, 0, None)]
    assert shared_hyperparameters(runs) == {"betas": [0.9, 0.999]}
    header, rows = final_table(runs)
    assert header == ["optimizer", "hyperparameters", "seeds", "loss"]
    assert rows == [["adam", "lr=0.1", "2", "2 ± 1.4"], ["adam", "lr=0.01", "1", "—"]]
    # nothing varies: nothing is shared, the rows keep every hyperparameter (without inner spaces)
    assert shared_hyperparameters(runs[:2]) == {} and final_table(runs[:2])[1][0][1] == "betas=[0.9,0.999], lr=0.1"


def test_studies_run_on_real_mnist_files_when_pointed_at_them(tmp_path, capsys):
    from test_lab_data import tiny_mnist

    tiny_mnist(tmp_path / "mnist")
    study = get_study("amsgrad-swaps")
    jobs = study.spec(quick=True, data={"mnist_dir": str(tmp_path / "mnist")}).jobs()
    assert jobs and all(j.config["options"]["mnist_dir"] == str(tmp_path / "mnist") for j in jobs)
    # other job ids than the bundled digits' runs, so the two never mix in one store
    assert not {j.id for j in jobs} & {j.id for j in study.spec(quick=True).jobs()}
    # a missing folder, or a study without a problem reading the option: one-line errors before anything runs
    db = tmp_path / "x.sqlite"
    assert main(["study", "amsgrad-swaps", "--quick", "--db", str(db), "--mnist-dir", str(tmp_path / "nope")]) == 2
    assert "MNIST directory" in capsys.readouterr().err and not db.exists()
    assert main(["study", "reddi", "--quick", "--db", str(db), "--cifar-dir", str(tmp_path)]) == 2
    assert "study reddi: none of its problems (reddi) reads cifar_dir" in capsys.readouterr().err
