"""Inductor's CPU vector-ISA probe, done once per machine instead of once per process.

Before its first C++ kernel in a process, inductor checks every vector instruction set that
``/proc/cpuinfo`` claims (AVX2, AVX-512, ...) by building a test library for each and loading it in a
child Python process: about 1 s on the 2-core development VM, a third of the first packed step with
a warm compile cache. The verdict depends on the machine, the compiler and torch, not on the process,
so :func:`vec_isa_options` records it in inductor's cache directory when the probe found *every*
claimed instruction set usable, and then (in that process and later ones) compiles adamlab's kernels
with ``cpp.vec_isa_ok=True``, which tells inductor to trust the claims: the same list without the
base probe's children (AVX-512's extra checks for bf16 and VNNI instructions run as before: they
decide compiler flags). Measured on the development VM (warm compile cache, Adam, 25M params): first
packed step 2.56-2.73 s with the probe, 1.70-1.87 s without. Where any claimed set failed, nothing
is recorded and inductor probes in every process as before; on non-x86 machines, or if inductor's
internals differ from what this expects (another torch version), it does nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import threading
from typing import Any

_OPTIONS: dict[str, bool] | None = None


def _claimed_and_record() -> tuple[list[str], str] | None:
    """(instruction sets cpuinfo claims, the record's path), or None where the shortcut does not apply."""
    if platform.machine() not in ("x86_64", "AMD64") or not sys.platform.startswith("linux"):
        return None
    import torch

    from . import _compat

    cpu_vec_isa, compiler, cache_dir = _compat.vec_isa(), _compat.cpp_compiler(), _compat.inductor_cache_dir()
    if cpu_vec_isa is None or compiler is None or cache_dir is None:
        return None
    flags = cpu_vec_isa.x86_isa_checker()
    claimed = [str(isa) for isa in cpu_vec_isa.supported_vec_isa_list if all(f in flags for f in str(isa).split())]
    key = json.dumps([torch.__version__, sys.executable, compiler, sorted(flags), claimed])
    return claimed, os.path.join(cache_dir, f"adamlab-vec-isa-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json")


def _probe_concurrently(isas: list) -> None:
    """Run inductor's probe of each instruction set in a thread of its own, not one after another.

    Each probe is a chain of compiler runs and child processes that load the result (AVX-512: the
    base set, then its bf16 and VNNI extensions), 1 to 2 s apiece; inductor caches each set's answer,
    so its own probe then finds them. Measured on the development VM with an empty cache: 7.7 s
    one after another.
    """

    def probe(isa: Any) -> None:
        try:
            bool(isa)
        except Exception:  # noqa: BLE001 - inductor's own probe, run next, decides (and raises if it must)
            pass

    threads = [threading.Thread(target=probe, args=(isa,), name=f"adamlab-isa-{isa}") for isa in isas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _decide() -> dict[str, bool]:
    found = _claimed_and_record()
    if found is None:
        return {}
    claimed, record = found
    if not os.path.isfile(record):
        from ._compat import vec_isa

        cpu_vec_isa = vec_isa()
        if not claimed:
            return {}
        _probe_concurrently([isa for isa in cpu_vec_isa.supported_vec_isa_list if str(isa) in claimed])
        if [str(isa) for isa in cpu_vec_isa.valid_vec_isa_list()] != claimed:  # the real probe (its answers cached now)
            return {}
        try:
            os.makedirs(os.path.dirname(record), exist_ok=True)
            with open(record + ".tmp", "w") as f:
                json.dump({"usable": claimed}, f)
            os.replace(record + ".tmp", record)
        except OSError:  # a read-only cache: the probe runs again in the next process, with the same verdict
            pass
    return {"cpp.vec_isa_ok": True}


def vec_isa_options() -> dict[str, bool]:
    """Inductor options for adamlab's compiles: ``{"cpp.vec_isa_ok": True}`` where this machine's
    probe found every claimed instruction set usable (recorded, or probed now and recorded), else
    ``{}``. The same answer in every process of a machine, so the option (part of inductor's cache
    key) does not make one process miss the kernels another compiled. Decided once per process."""
    global _OPTIONS
    if _OPTIONS is None:
        try:
            _OPTIONS = _decide()
        except Exception:  # noqa: BLE001 - inductor internals of another torch version: no shortcut, inductor probes
            _OPTIONS = {}
    return _OPTIONS
