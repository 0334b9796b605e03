"""The CPU vector-ISA probe is recorded once per machine and skipped in later processes."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64") or not sys.platform.startswith("linux"), reason="x86-64 Linux only"
)

_PROBE = """
import json, subprocess, sys
from torch._inductor import cpu_vec_isa
from torch._inductor import config
from adamlab.optim._isa import vec_isa_options
children = []
run = subprocess.run
def counting(cmd, *a, **k):
    if "LoadLibrary" in str(cmd):
        children.append(cmd)
    return run(cmd, *a, **k)
subprocess.run = counting
if sys.argv[1] == "fail-avx2":
    ok = cpu_vec_isa.VecISA.check_build
    cpu_vec_isa.VecISA.check_build = lambda self, code: False if str(self) == "avx2" else ok(self, code)
options = vec_isa_options()
with config.patch(options):  # as adamlab's compiles run
    found = [str(isa) for isa in cpu_vec_isa.valid_vec_isa_list()]
print(json.dumps({"found": found, "children": len(children), "options": options}))
"""


def _probe(cache: str, mode: str = "") -> dict:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _records(cache: str) -> list[str]:
    return [f for f in os.listdir(cache) if f.startswith("adamlab-vec-isa-")] if os.path.isdir(cache) else []


def test_probe_recorded_once_then_skipped_with_the_same_result(tmp_path):
    cache = str(tmp_path / "inductor")
    first = _probe(cache)
    if not first["found"]:
        pytest.skip("no vector ISA usable here")
    assert first["children"] >= 1  # inductor's own probe ran
    assert first["options"] == {"cpp.vec_isa_ok": True}
    [record] = _records(cache)
    assert json.load(open(os.path.join(cache, record))) == {"usable": first["found"]}
    second = _probe(cache)
    assert second["found"] == first["found"] and second["options"] == first["options"]
    # the base probe of each claimed set is skipped (AVX-512's own bf16/VNNI checks still run)
    assert second["children"] <= first["children"] - len(first["found"])


def test_nothing_recorded_when_a_claimed_isa_fails(tmp_path):
    cache = str(tmp_path / "inductor")
    first = _probe(cache, "fail-avx2")
    assert "avx2" not in first["found"]
    assert _records(cache) == [] and first["options"] == {}
    again = _probe(cache, "fail-avx2")
    assert again["found"] == first["found"]  # probed again, same verdict


def test_an_unwritable_cache_costs_the_shortcut_not_the_step(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = "from adamlab.optim._isa import vec_isa_options; print(vec_isa_options())"
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(blocker / "inductor")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() in ("{}", "{'cpp.vec_isa_ok': True}")
