"""The packed engine's C++: its per-step checks, and kernels for rules that inductor compiles poorly.

One module, built once per machine. Kernels: ``ndadam_rows``, ND-Adam's step on a buffer of rows,
each row in one visit (:class:`~adamlab.optim.NDAdam`), ``swats_tensors``, SWATS's step on a
buffer of tensors in one pass (:class:`~adamlab.optim.SWATS`), and ``padam``, Padam's step in one
pass with a power of its own for exponents other than 1/2, 1/4, 1/8 (:class:`~adamlab.optim.Padam`); a rule opts in with
:attr:`~adamlab.optim._base.RuleOptimizer._native_rule`. A pack that would use a kernel waits for
the build (:func:`kernels`), instead of compiling its rule; the checks only start the build in the
background. The code is built for this machine's processor (``-march=native``, 256-bit vectors on
x86: see :data:`_OPTIMIZE`; Padam's kernel prefers 512-bit ones where the processor has them: its
general power is compute-bound, 1.2 instead of 1.6 ns per float32 element on the development VM's
Xeon) with OpenMP, which loads torch's own OpenMP runtime, so the kernels use
torch's threads (``torch.set_num_threads``).

Checks:

Every packed step checks that each param still reads from its slice of the flat buffer (its data
pointer: what makes ``model.to()`` and ``p.data = ...`` safe) and that its gradient is still the view
into the flat gradient buffer (else the gradients are gathered, see ``Pack._gather_grads``). In
Python that reads every param's and gradient's tensor object, creating a Python object for each
gradient and pointer: with 500 params and caches as cold as after another optimizer's step, 0.23 ms
(a fifth of the step for 1M params); in C++ 0.1 ms param by param, and 0.06 ms going one link of the
params' object chains at a time over all params with prefetches (measured alternating with torch's
fused Adam on the development VM; 0.012 ms with warm caches): it creates no objects and keeps many
memory accesses in flight.

The module is compiled with the C++ compiler inductor uses against the installed torch's ATen and c10
headers (about 3 s on the 2-core development VM: it finds a tensor's ``TensorImpl`` in its Python
object at an offset it measures on probe tensors at load, so torch's Python-binding headers, 10 of
the 12 s a build with them took, stay out) by a background thread that the first compiled packed
step starts, so that step's own compile is not slowed, into inductor's cache directory under a name
keyed by the source, the flags, torch, Python, the compiler and the processor; later processes load it at once. The compiler
runs at idle CPU priority (``chrt --idle``): on a machine whose cores the training keeps busy,
torch's parallel loops wait for the thread a compiler displaces (fused Adam, 25M params, took 400 ms
per step instead of 13 while the old 12 s build ran at normal priority; now fewer, shorter stalls for
about 2.5 s). Until it is loaded, or where it cannot be built (no compiler or Python headers) or finds
no ``TensorImpl``, the same checks run in Python, with the same outcome, and rules run compiled.
``ADAMLAB_NATIVE=0`` never builds or loads it.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Callable
from typing import Any

_SOURCE = r"""
#include <Python.h>
#include <ATen/core/Tensor.h>
#include <algorithm>
#include <array>
#include <cstring>
#include <type_traits>
#include <cmath>
#include <limits>
#include <vector>

// A torch.Tensor's Python object (torch's THPVariable) holds its TensorImpl pointer at a fixed offset,
// which setup() finds on probe tensors whose TensorImpl addresses Python gives it (Tensor._cdata).
// Reading the pointer there keeps torch's Python-binding headers out of the build (with them it
// took 12 s and 0.9 GB of memory instead of 2.3 s and 0.3 GB).
static Py_ssize_t impl_offset = -1;
static PyTypeObject* tensor_type = nullptr;

static inline const c10::TensorImpl* impl_of(PyObject* obj) {
  return *reinterpret_cast<const c10::TensorImpl* const*>(reinterpret_cast<const char*>(obj) + impl_offset);
}

// Every param is a chain of objects (Python object -> TensorImpl -> StorageImpl, and -> autograd
// meta -> the gradient's TensorImpl -> its StorageImpl), scattered in memory and out of cache after a
// backward pass. Following each param's chain to its end before starting the next waits for one
// memory access after another; instead the loops go one link at a time over all params, prefetching
// the next link, so the processor has hundreds of accesses in flight at once. (Prefetches only hint;
// the comparisons read everything through torch's own accessors.)
static inline void fetch(const void* p) {
  __builtin_prefetch(p);
  __builtin_prefetch(static_cast<const char*>(p) + 64);
  __builtin_prefetch(static_cast<const char*>(p) + 128);
}

// check(params: list[Tensor], ptrs: int64 buffer, grad_ptrs: int64 buffer) -> int
// 0: every param's data and gradient are where the buffers say (a gradient pointer of 0: any dense,
// contiguous gradient; a direct param's, read where it is); 1: a param's data moved;
// 2: the params are in place but some gradient is not (missing, or another tensor);
// 3: something this does not handle (the caller checks in Python).
static long statuses(PyObject* params, const int64_t* pp, const int64_t* gp, Py_ssize_t n) {
  thread_local std::vector<const c10::TensorImpl*> tensors;
  thread_local std::vector<const c10::AutogradMetaInterface*> metas;
  thread_local std::vector<const at::Tensor*> grads;
  tensors.resize(n);
  metas.resize(n);
  grads.resize(n);
  for (Py_ssize_t i = 0; i < n; ++i) __builtin_prefetch(PyList_GET_ITEM(params, i));
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* obj = PyList_GET_ITEM(params, i);
    if (!PyObject_TypeCheck(obj, tensor_type)) return 3;
    tensors[i] = impl_of(obj);
    fetch(tensors[i]);
  }
  for (Py_ssize_t i = 0; i < n; ++i) {
    const c10::TensorImpl* impl = tensors[i];
    __builtin_prefetch(impl->unsafe_storage().unsafeGetStorageImpl());
    metas[i] = impl->autograd_meta();
    if (metas[i] != nullptr) fetch(metas[i]);
  }
  long status = 0;
  for (Py_ssize_t i = 0; i < n; ++i) {
    if (reinterpret_cast<int64_t>(tensors[i]->data()) != pp[i]) return 1;
    if (metas[i] == nullptr) {
      status = 2;
      grads[i] = nullptr;
      continue;
    }
    grads[i] = &metas[i]->grad();
    if (grads[i]->defined()) fetch(grads[i]->unsafeGetTensorImpl());
  }
  if (status != 0) return status;
  for (Py_ssize_t i = 0; i < n; ++i) {
    const at::Tensor& g = *grads[i];
    if (g.defined() && g.layout() == at::kStrided) __builtin_prefetch(g.unsafeGetTensorImpl()->unsafe_storage().unsafeGetStorageImpl());
  }
  for (Py_ssize_t i = 0; i < n; ++i) {
    const at::Tensor& g = *grads[i];
    if (!g.defined() || g.layout() != at::kStrided) return 2;
    if (gp[i] == 0 ? !g.is_contiguous() : reinterpret_cast<int64_t>(g.data_ptr()) != gp[i]) return 2;
  }
  return 0;
}

// setup(tensor_type, probes: list[Tensor], impls: list[int]) -> bool: finds the offset at which every
// probe holds its TensorImpl pointer; check() returns 3 (not handled) until it has.
static PyObject* setup(PyObject*, PyObject* args) {
  PyObject *type, *probes, *impls;
  if (!PyArg_ParseTuple(args, "O!O!O!", &PyType_Type, &type, &PyList_Type, &probes, &PyList_Type, &impls)) return nullptr;
  const Py_ssize_t n = PyList_GET_SIZE(probes);
  if (n == 0 || PyList_GET_SIZE(impls) != n) Py_RETURN_FALSE;
  for (Py_ssize_t i = 0; i < n; ++i)
    if (!PyObject_TypeCheck(PyList_GET_ITEM(probes, i), reinterpret_cast<PyTypeObject*>(type))) Py_RETURN_FALSE;
  for (Py_ssize_t offset = sizeof(PyObject); offset + static_cast<Py_ssize_t>(sizeof(void*)) <= reinterpret_cast<PyTypeObject*>(type)->tp_basicsize;
       offset += sizeof(void*)) {
    bool all = true;
    for (Py_ssize_t i = 0; i < n && all; ++i) {
      const void* word = *reinterpret_cast<void* const*>(reinterpret_cast<const char*>(PyList_GET_ITEM(probes, i)) + offset);
      all = word == PyLong_AsVoidPtr(PyList_GET_ITEM(impls, i));
    }
    if (PyErr_Occurred()) return nullptr;
    if (all) {
      impl_offset = offset;
      Py_INCREF(type);
      Py_XDECREF(reinterpret_cast<PyObject*>(tensor_type));
      tensor_type = reinterpret_cast<PyTypeObject*>(type);
      Py_RETURN_TRUE;
    }
  }
  Py_RETURN_FALSE;
}

static PyObject* check(PyObject*, PyObject* args) {
  PyObject *params, *ptrs, *grad_ptrs;
  if (!PyArg_ParseTuple(args, "O!OO", &PyList_Type, &params, &ptrs, &grad_ptrs)) return nullptr;
  if (tensor_type == nullptr) return PyLong_FromLong(3);
  Py_buffer pb, gb;
  if (PyObject_GetBuffer(ptrs, &pb, PyBUF_SIMPLE) < 0) return nullptr;
  if (PyObject_GetBuffer(grad_ptrs, &gb, PyBUF_SIMPLE) < 0) {
    PyBuffer_Release(&pb);
    return nullptr;
  }
  const Py_ssize_t n = PyList_GET_SIZE(params);
  long status = 3;
  if (pb.len == n * 8 && gb.len == n * 8) {
    try {
      status = statuses(params, static_cast<const int64_t*>(pb.buf), static_cast<const int64_t*>(gb.buf), n);
    } catch (...) {
      status = 3;
    }
  }
  PyBuffer_Release(&pb);
  PyBuffer_Release(&gb);
  return PyLong_FromLong(status);
}

// ND-Adam's step on a flat buffer of rows (adamlab.optim.ndadam): each row in one visit, while it is in
// cache: the projected gradient's first moment and squared norm, the row's second moment and step
// factor, the moved row and its norm, the renormalized row. It reads the rows, gradients and first
// moment once and writes the rows and first moment once (five full-size streams; Adam has seven).
// Elementwise it computes what the rule's torch ops compute, in the same order and precision
// (-ffp-contract=off: no fused multiply-adds); the row sums add in another order than torch's sums.
template <typename T>
static void ndadam_rows_of(T* __restrict w, const T* __restrict g, T* __restrict m, T* __restrict v, int64_t rows,
                           int64_t cols, double beta1, double beta2, double step_size, double eps, bool negate) {
  const T b1 = beta1, c1 = 1 - beta1, b2 = beta2, c2 = 1 - beta2, size = step_size, e = eps, sign = negate ? -1 : 1;
#pragma omp parallel for schedule(static) if (rows * cols >= 65536)
  for (int64_t r = 0; r < rows; ++r) {
    T* __restrict wr = w + r * cols;
    const T* __restrict gr = g + r * cols;
    T* __restrict mr = m + r * cols;
    T dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < cols; ++j) dot += sign * gr[j] * wr[j];
    T norm_sq = 0;
#pragma omp simd reduction(+ : norm_sq)
    for (int64_t j = 0; j < cols; ++j) {
      const T projected = sign * gr[j] - dot * wr[j];
      mr[j] = mr[j] * b1 + projected * c1;
      norm_sq += projected * projected;
    }
    const T vr = v[r] * b2 + norm_sq * c2;
    v[r] = vr;
    const T rate = size / (std::sqrt(vr) + e);
    T moved_sq = 0;
#pragma omp simd reduction(+ : moved_sq)
    for (int64_t j = 0; j < cols; ++j) {
      const T moved = wr[j] - mr[j] * rate;
      wr[j] = moved;
      moved_sq += moved * moved;
    }
    const T inverse_norm = 1 / std::sqrt(moved_sq);
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) wr[j] = wr[j] * inverse_norm;
  }
}

// A kernel's arguments from Python: data pointers, the two sizes (count, length), whether the buffers
// are double (else float), float values, and flags; false (with a TypeError set) where they are not.
struct KernelArgs {
  void* ptr[8];
  int64_t size[2];
  bool is_double;
  double value[8];
  bool flag[2];
};

static bool parse_kernel_args(const char* name, PyObject* const* args, Py_ssize_t nargs, int ptrs, int values, int flags, KernelArgs& out) {
  if (nargs != ptrs + 3 + values + flags) {
    PyErr_Format(PyExc_TypeError, "%s takes %d arguments", name, ptrs + 3 + values + flags);
    return false;
  }
  for (int i = 0; i < ptrs; ++i) out.ptr[i] = PyLong_AsVoidPtr(args[i]);
  for (int i = 0; i < 2; ++i) out.size[i] = PyLong_AsLongLong(args[ptrs + i]);
  out.is_double = PyObject_IsTrue(args[ptrs + 2]) == 1;
  for (int i = 0; i < values; ++i) out.value[i] = PyFloat_AsDouble(args[ptrs + 3 + i]);
  for (int i = 0; i < flags; ++i) out.flag[i] = PyObject_IsTrue(args[ptrs + 3 + values + i]) == 1;
  return !PyErr_Occurred();
}

// ndadam_rows(w, g, m, v: data pointers, rows, cols, is_double, beta1, beta2, step_size, eps, negate) -> None
static PyObject* ndadam_rows(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  KernelArgs a;
  if (!parse_kernel_args("ndadam_rows", args, nargs, 4, 4, 1, a)) return nullptr;
  const double* x = a.value;
  Py_BEGIN_ALLOW_THREADS;
  if (a.is_double)
    ndadam_rows_of(static_cast<double*>(a.ptr[0]), static_cast<const double*>(a.ptr[1]), static_cast<double*>(a.ptr[2]),
                   static_cast<double*>(a.ptr[3]), a.size[0], a.size[1], x[0], x[1], x[2], x[3], a.flag[0]);
  else
    ndadam_rows_of(static_cast<float*>(a.ptr[0]), static_cast<const float*>(a.ptr[1]), static_cast<float*>(a.ptr[2]),
                   static_cast<float*>(a.ptr[3]), a.size[0], a.size[1], x[0], x[1], x[2], x[3], a.flag[0]);
  Py_END_ALLOW_THREADS;
  Py_RETURN_NONE;
}

// SWATS's step on a buffer of tensors of one length (adamlab.optim.swats), in one pass: the update of a
// tensor's params does not depend on this step's sums (a tensor switching now takes its Adam step), so
// each element is read and written once, the sums are taken on the way, and each tensor's projected
// rate and switch are decided after. A tensor in the Adam phase moves the params and both moments
// (seven full-size streams, as Adam), one in the SGD phase the params and momentum (five), whether or
// not weight decay reads the params. The tensors are cut into chunks of kChunk elements that the
// threads share; each chunk's sums are kept and added in chunk order, so the result does not depend on
// the number of threads. Elementwise it computes what the rule's torch ops compute, in the same order
// and precision; the per-tensor scalars are computed in double, as the rule computes them on 0-d
// tensors (float64 hyperparameters).
constexpr int64_t kChunk = 16384;

// One chunk of one tensor: elements [lo, hi); the Adam phase's two sums go to *pg_out, *pp_out.
template <typename T, bool Decay>
static inline void swats_chunk(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict a, T* __restrict buf,
                               int64_t lo, int64_t hi, bool sgd, double beta1, double beta2, double eps, double weight_decay,
                               double adam_factor, double sgd_lr, T sign, T* pg_out, T* pp_out) {
  const T b1 = beta1, c1 = 1 - beta1, b2 = beta2, c2 = 1 - beta2, e = eps, wd = weight_decay, factor = adam_factor;
  if (!sgd) {  // Adam phase (the momentum buffer stays as it is)
    T pg = 0, pp = 0;
#pragma omp simd reduction(+ : pg, pp)
    for (int64_t j = lo; j < hi; ++j) {
      const T gj = Decay ? sign * g[j] + wd * p[j] : sign * g[j];
      const T mj = m[j] * b1 + gj * c1, aj = a[j] * b2 + gj * gj * c2;
      m[j] = mj;
      a[j] = aj;
      const T adam_step = mj / (std::sqrt(aj) + e) * factor;
      pg += adam_step * gj;
      pp += adam_step * adam_step;
      p[j] = p[j] + adam_step;
    }
    *pg_out = pg;
    *pp_out = pp;
    return;
  }
  // SGD phase: the moments stay (the rule adds 0 * g: written only where that is NaN, g not finite)
  const T sgd_factor = -(1 - beta1) * sgd_lr;
  for (int64_t j = lo; j < hi; ++j) {
    const T gj = Decay ? sign * g[j] + wd * p[j] : sign * g[j];
    const T m_zero = gj * T(0), a_zero = gj * gj * T(0);
    if (m_zero != m_zero) m[j] = m[j] * T(1) + m_zero;
    if (a_zero != a_zero) a[j] = a[j] * T(1) + a_zero;
    const T bj = buf[j] * b1 + gj;
    buf[j] = bj;
    p[j] = p[j] + bj * sgd_factor;
  }
}

template <typename T>
static void swats_tensors_of(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict a, T* __restrict buf,
                             T* lam, T* sgd_lr, T* switch_step, int64_t count, int64_t length, const double* h, bool decay,
                             bool negate) {
  const double beta1 = h[0], beta2 = h[1], eps = h[2], weight_decay = h[3], adam_factor = h[4], bc2 = h[5], step = h[6];
  const T sign = negate ? -1 : 1;
  const int64_t chunks = (length + kChunk - 1) / kChunk;
  std::vector<T> pg_parts(count * chunks), pp_parts(count * chunks);
#pragma omp parallel for schedule(static) if (count * length >= 65536)
  for (int64_t k = 0; k < count * chunks; ++k) {
    const int64_t seg = k / chunks, lo = seg * length + (k % chunks) * kChunk, hi = std::min(lo + kChunk, (seg + 1) * length);
    const bool sgd = switch_step[seg] > 0;
    (decay ? swats_chunk<T, true> : swats_chunk<T, false>)(p, g, m, a, buf, lo, hi, sgd, beta1, beta2, eps, weight_decay, adam_factor,
                                                           static_cast<double>(sgd_lr[seg]), sign, &pg_parts[k], &pp_parts[k]);
  }
  for (int64_t seg = 0; seg < count; ++seg) {
    if (switch_step[seg] > 0) continue;
    T pg_sum = 0, pp_sum = 0;
    for (int64_t c = 0; c < chunks; ++c) {
      pg_sum += pg_parts[seg * chunks + c];
      pp_sum += pp_parts[seg * chunks + c];
    }
    if (pg_sum == 0) continue;  // (not live: lam, sgd_lr and switch_step stay)
    const T gamma = pp_sum / -pg_sum;
    const double lam_new = beta2 * static_cast<double>(lam[seg]) + (1 - beta2) * static_cast<double>(gamma);
    lam[seg] = static_cast<T>(lam_new);
    const double rate = static_cast<double>(lam[seg]) / bc2;
    if (step > 1 && std::abs(rate - static_cast<double>(gamma)) < eps) {
      sgd_lr[seg] = static_cast<T>(rate);
      switch_step[seg] = static_cast<T>(step);
    }
  }
}

// swats_tensors(p, g, m, a, buf, lam, sgd_lr, switch_step: data pointers, count, length, is_double,
//               beta1, beta2, eps, weight_decay, adam_factor, bc2, step, decay, negate) -> None
static PyObject* swats_tensors(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  KernelArgs a;
  if (!parse_kernel_args("swats_tensors", args, nargs, 8, 7, 2, a)) return nullptr;
  Py_BEGIN_ALLOW_THREADS;
  if (a.is_double) {
    double** x = reinterpret_cast<double**>(a.ptr);
    swats_tensors_of(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], a.size[0], a.size[1], a.value, a.flag[0], a.flag[1]);
  } else {
    float** x = reinterpret_cast<float**>(a.ptr);
    swats_tensors_of(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], a.size[0], a.size[1], a.value, a.flag[0], a.flag[1]);
  }
  Py_END_ALLOW_THREADS;
  Py_RETURN_NONE;
}

// Padam's step (adamlab.optim.padam) on a flat buffer, in one pass: the params, gradients and both
// moments read once, the params, moments and max written once (nine full-size streams; Adam has seven).
// Elementwise it computes what the rule's torch ops compute, in the same order and precision, except
// for a general p (not 1/2, 1/4 or 1/8, which are 0, 1 or 2 square roots, correctly rounded as
// torch's): inductor's exp and log of every element (Sleef's, 1 ulp) cost more than the step's memory
// traffic (1.8x the time of torch's fused Adam for 25M params on 2 cores), and so does a division, so
// m / d^(2p) is m * d^(-2p), the power 2^(-2p log2 d) from a log2 and an exp2 of our own (a few
// multiply-adds each, the integer parts carried apart): within 1.7e-7 relative of the exact power in
// float32 and 4e-16 in float64, where torch's exp(2p log d) is within 3.8e-6 and 7.2e-15 (tested).
template <typename T>
struct FloatBits;
template <>
struct FloatBits<float> {
  using Int = int32_t;
  static constexpr int mantissa = 23;
  static constexpr int exp_terms = 8;  // sum of (f ln 2)^k / k! to k = 7, |f| <= 1/2: leaves 5e-9
};
template <>
struct FloatBits<double> {
  using Int = int64_t;
  static constexpr int mantissa = 52;
  static constexpr int log_terms = 11;  // to z^10/21: leaves z^11/23 = 6e-19
  static constexpr int exp_terms = 14;  // to k = 13: leaves 4e-18
};

// x's bits as another type of its size (std::bit_cast, which needs GCC 11, written with memcpy).
template <typename To, typename From>
static inline To bits_as(From x) {
  static_assert(sizeof(To) == sizeof(From));
  To y;
  std::memcpy(&y, &x, sizeof y);
  return y;
}

// The series' coefficients, rounded once from long double: 2 / ((2i + 1) ln 2) for log2 (the atanh series
// over ln 2; double only) and (ln 2)^i / i! for exp2.
constexpr long double kLn2 = 0.693147180559945309417232121458176568L;
constexpr auto log2_series = [] {
  std::array<double, FloatBits<double>::log_terms> c{};
  for (int i = 0; i < static_cast<int>(c.size()); ++i) c[i] = static_cast<double>(2 / ((2 * i + 1) * kLn2));
  return c;
}();
template <typename T>
constexpr auto exp2_series = [] {
  std::array<T, FloatBits<T>::exp_terms> c{};
  long double term = 1;
  for (int i = 0; i < static_cast<int>(c.size()); ++i) {
    c[i] = static_cast<T>(term);
    term = term * kLn2 / (i + 1);
  }
  return c;
}();

// float: log2(1 + t) = t P(t) for t = m - 1 in [sqrt(1/2) - 1, sqrt(2) - 1], P of degree 8 fitted to
// log2(1 + t) / t by least squares at 8,000 Chebyshev nodes (within 3e-8 relative: below float's rounding).
constexpr float kLog2Float[9] = {1.4426950216293335f,   -0.7213473320007324f,  0.48091059923171997f,
                                 -0.36070483922958374f, 0.2879183292388916f,   -0.23892034590244293f,
                                 0.21566985547542572f,  -0.20742103457450867f, 0.12614846229553223f};

// x rounded to the nearest integer, as a float and as an integer (|x| < 2^(mantissa - 1)): adding
// 1.5 * 2^mantissa leaves the integer in the low bits (no float-to-int conversion, which AVX2 lacks for
// 64-bit integers, so the loop vectorizes for both types).
template <typename T>
static inline T round_near(T x, typename FloatBits<T>::Int& n) {
  using B = FloatBits<T>;
  const T magic = T(1.5) * T(typename B::Int(1) << B::mantissa);
  const T shifted = x + magic;
  n = bits_as<typename B::Int>(shifted) - bits_as<typename B::Int>(magic);
  return shifted - magic;
}

// d^e for d > 0 normal or subnormal and finite, |e| <= 1: d = 2^k m with m in [sqrt(1/2), sqrt(2)),
// log2 m by the polynomial above (float) or as 2 atanh(s) / ln 2 with s = (m - 1) / (m + 1) (double);
// e log2 d = e k + e log2 m, with e k split into an
// integer and the exact rest (one fused multiply-add), so that the rounding of a large e k does not
// become the result's relative error; then 2^(integer) 2^f, |f| <= 1/2, by its Taylor series. (Selects,
// not branches: the loop is vectorized.)
template <typename T>
static inline T partial_power(T d, T e) {
  using B = FloatBits<T>;
  using Int = typename B::Int;
  using Bits = std::make_unsigned_t<Int>;  // (wrapping: any input, 0, inf or NaN too, is computed without overflow)
  const bool subnormal = d < std::numeric_limits<T>::min();
  const Bits bits = bits_as<Bits>(d * (subnormal ? T(Int(1) << B::mantissa) : T(1)));
  const Int above = static_cast<Int>(bits - bits_as<Bits>(T(0.70710678118654752440))) >> B::mantissa;
  const Int k = above - (subnormal ? Int(B::mantissa) : Int(0));
  const T m = bits_as<T>(static_cast<Bits>(bits - (static_cast<Bits>(above) << B::mantissa)));
  T log2_m;
  if constexpr (std::is_same_v<T, float>) {  // t (a polynomial in t): no division, which costs as much as the rest
    const T t = m - 1;
    T poly = kLog2Float[8];
#pragma GCC unroll 8
    for (int i = 7; i >= 0; --i) poly = std::fma(poly, t, kLog2Float[i]);
    log2_m = t * poly;
  } else {  // s (the atanh series in z = s^2)
    const T s = (m - 1) / (m + 1), z = s * s;
    T series = log2_series[B::log_terms - 1];
#pragma GCC unroll 16
    for (int i = B::log_terms - 2; i >= 0; --i) series = std::fma(series, z, log2_series[i]);
    log2_m = s * series;
  }
  Int whole, part;
  const T rounded = round_near(e * T(k), whole);  // (k is exact in T: |k| < 1100)
  const T rest = std::fma(e, T(k), -rounded) + e * log2_m;  // |rest| <= 1
  const T f = rest - round_near(rest, part);
  T power = exp2_series<T>[B::exp_terms - 1];
#pragma GCC unroll 16
  for (int i = B::exp_terms - 2; i >= 0; --i) power = std::fma(power, f, exp2_series<T>[i]);
  const Int n = whole + part, half = n >> 1;  // 2^n as two factors: n can be below the smallest normal exponent
  const T first = bits_as<T>((half + std::numeric_limits<T>::max_exponent - 1) << B::mantissa);
  const T second = bits_as<T>((n - half + std::numeric_limits<T>::max_exponent - 1) << B::mantissa);
  return power * first * second;
}

// 512-bit vectors where the processor has them (the module prefers 256: see _OPTIMIZE): the general power
// is compute-bound, 1.2 instead of 1.6 ns per float32 element in cache on the development VM's Xeon.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define ADAMLAB_WIDE_VECTORS __attribute__((target("prefer-vector-width=512")))
#else
#define ADAMLAB_WIDE_VECTORS
#endif
template <typename T, int Roots>  // Roots: 0, 1, 2 square roots, or -1: partial_power
ADAMLAB_WIDE_VECTORS static void padam_of(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v, T* __restrict vmax, int64_t n,
                     const double* h, bool negate) {
  const T b1 = h[0], c1 = 1 - h[0], b2 = h[1], c2 = 1 - h[1], e = h[2], wd = h[3], factor = h[4], two_p = h[5], sign = negate ? -1 : 1;
  const T largest = std::numeric_limits<T>::max(), infinity = std::numeric_limits<T>::infinity();
#pragma omp parallel for simd schedule(static) if (n >= 65536)
  for (int64_t j = 0; j < n; ++j) {
    const T gj = sign * g[j] + wd * p[j];
    const T mj = m[j] * b1 + gj * c1, vj = v[j] * b2 + gj * gj * c2, old = vmax[j];
    const T top = (vj > old || vj != vj) ? vj : old;  // torch.maximum: NaN if either is
    m[j] = mj;
    v[j] = vj;
    vmax[j] = top;
    T d = std::sqrt(top) + e;
    if constexpr (Roots < 0) {
      // m d^(-2p) (a multiplication; a division costs as much as the rest of the power): where d is 0 or
      // inf, inf or 0 as m / exp(2p log d); NaN stays
      const T inverse = partial_power(d, -two_p);  // (garbage where d is not finite and positive, replaced)
      p[j] = p[j] - mj * ((d > 0) & (d <= largest) ? inverse : (d == 0 ? infinity : (d > 0 ? T(0) : d))) * factor;
    } else {
#pragma GCC unroll 2
      for (int r = 0; r < Roots; ++r) d = std::sqrt(d);
      p[j] = p[j] - mj / d * factor;
    }
  }
}

template <typename T>
static void padam_dispatch(T* const* x, int64_t n, const double* h, int roots, bool negate) {
  auto kernel = roots == 0 ? padam_of<T, 0> : roots == 1 ? padam_of<T, 1> : roots == 2 ? padam_of<T, 2> : padam_of<T, -1>;
  kernel(x[0], x[1], x[2], x[3], x[4], n, h, negate);
}

// padam(p, g, m, v, vmax: data pointers, numel, 0, is_double, beta1, beta2, eps, weight_decay, factor,
//       two_p, roots (0, 1, 2; -1: the general power), negate) -> None
static PyObject* padam(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  KernelArgs a;
  if (!parse_kernel_args("padam", args, nargs, 5, 7, 1, a)) return nullptr;
  const int roots = static_cast<int>(a.value[6]);
  Py_BEGIN_ALLOW_THREADS;
  if (a.is_double)
    padam_dispatch(reinterpret_cast<double**>(a.ptr), a.size[0], a.value, roots, a.flag[0]);
  else
    padam_dispatch(reinterpret_cast<float**>(a.ptr), a.size[0], a.value, roots, a.flag[0]);
  Py_END_ALLOW_THREADS;
  Py_RETURN_NONE;
}

static PyMethodDef methods[] = {{"setup", setup, METH_VARARGS, nullptr},
                                {"check", check, METH_VARARGS, nullptr},
                                {"ndadam_rows", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(ndadam_rows)), METH_FASTCALL, nullptr},
                                {"swats_tensors", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(swats_tensors)), METH_FASTCALL, nullptr},
                                {"padam", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(padam)), METH_FASTCALL, nullptr},
                                {nullptr, nullptr, 0, nullptr}};
static PyModuleDef module = {PyModuleDef_HEAD_INIT, "adamlab_native", nullptr, -1, methods};
PyMODINIT_FUNC PyInit_adamlab_native() { return PyModule_Create(&module); }
"""

check: Callable[[list, Any, Any], int] | None = None
"""The loaded module's ``check``, or None (not built yet, disabled, or unavailable here)."""
module: Any = None
"""The loaded module (``setup``, ``check``), or None."""

STARTED = False
_LOCK = threading.Lock()
_THREAD: threading.Thread | None = None
_PROCESS: subprocess.Popen | None = None


def _compiler() -> str | None:
    """The C++ compiler inductor compiles with (``CXX``, else its default), where it exists."""
    from ._compat import cpp_compiler

    name = cpp_compiler()
    return None if name is None else shutil.which(name)


_OPTIMIZE = [
    *("-O3", "-march=native", "-funroll-loops", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"),  # (-march: see _cpu)
    *(["-mprefer-vector-width=256"] if platform.machine() in ("x86_64", "AMD64") else []),
]
"""The code generation flags (``-fno-math-errno`` lets the compiler vectorize ``sqrt``: SWATS's kernel
took 3.8x the time without it; ``-fno-trapping-math`` lets it compute both sides of a select (arithmetic
that might raise a floating-point exception flag), which Padam's general power needs to be vectorized at all; neither changes a result:
they give up ``errno`` and floating-point exception flags, which nothing reads). 256-bit vectors: rows of ND-Adam's kernel as short as 27 or 125 elements
take 0.6-0.8x the time they take with AVX-512's 512 bits (its vector loops and sums cover less of a
short row), and rows of 500 no longer (measured on the development VM)."""


def _cpu() -> str:
    """What the build's ``-march=native`` depends on: the processor's model and feature flags (Linux),
    so that a cache directory shared between machines never hands one a module built for another."""
    try:
        with open("/proc/cpuinfo") as f:
            first = f.read().split("\n\n", 1)[0]  # (the first processor's block)
    except OSError:
        first = ""
    return "\n".join([platform.machine(), *(line for line in first.splitlines() if line.startswith(("model name", "flags", "Features", "CPU part")))])


def _library_path(compiler: str) -> str:
    import torch

    from ._compat import inductor_cache_dir

    key = json.dumps([_SOURCE, _OPTIMIZE, torch.__version__, sys.version, sys.executable, compiler, _cpu()])
    return os.path.join(inductor_cache_dir(), f"adamlab-native-{hashlib.sha256(key.encode()).hexdigest()[:16]}.so")


_IDLE = ["chrt", "--idle", "0"]


def _idle_prefix() -> list[str]:
    """``chrt --idle 0`` where it works: the compiler then runs only on otherwise idle CPUs (Linux's
    SCHED_IDLE, see the module's docstring); nothing where it does not (another system, no util-linux)."""
    try:
        return _IDLE if subprocess.run([*_IDLE, "true"], capture_output=True, timeout=10).returncode == 0 else []
    except (OSError, subprocess.SubprocessError):
        return []


def _build(compiler: str, path: str) -> None:
    """Compile the module to ``path`` (through a temporary file, so a process never loads half a file)."""
    import torch
    from torch.utils.cpp_extension import include_paths, library_paths

    tmp = f"{path}.{os.getpid()}.tmp"
    lib = library_paths()[0]
    command = [
        compiler,
        *("-x", "c++", "-", "-o", tmp),
        *_OPTIMIZE,
        *("-shared", "-fPIC", "-std=c++20", "-w", f"-D_GLIBCXX_USE_CXX11_ABI={int(torch.compiled_with_cxx11_abi())}"),
        f"-I{sysconfig.get_paths()['include']}",
        *(f"-I{p}" for p in include_paths()),
        *(f"-L{lib}", "-lc10", "-ltorch_cpu", f"-Wl,-rpath,{lib}"),
    ]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    global _PROCESS
    try:
        _PROCESS = subprocess.Popen(  # (a session of its own: at exit, the compiler's own children are stopped too)
            _idle_prefix() + command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        _, err = _PROCESS.communicate(_SOURCE, timeout=600)
        if _PROCESS.returncode != 0:
            raise RuntimeError(f"adamlab: building the C++ checks failed: {err[-500:]}")
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def _remove(tmp: str) -> None:
    try:
        os.remove(tmp)
    except OSError:
        pass


def _stop_build() -> None:
    """At exit: a build still running is stopped (it starts again in the next process that needs it)."""
    if _PROCESS is not None and _PROCESS.poll() is None:
        try:
            os.killpg(_PROCESS.pid, signal.SIGKILL)  # the driver and the cc1plus/as/ld it started
        except (AttributeError, OSError):
            _PROCESS.kill()
        _PROCESS.wait()
        _remove(_PROCESS.args[_PROCESS.args.index("-o") + 1])


def _load(path: str) -> None:
    global check, module
    spec = importlib.util.spec_from_file_location("adamlab_native", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import torch

    probes = [torch.zeros(1), torch.nn.Parameter(torch.zeros(2)), torch.zeros(3).requires_grad_()]
    from ._compat import tensor_impl_addresses

    addresses = tensor_impl_addresses(probes)
    if addresses is not None and module.setup(torch.Tensor, probes, addresses):
        check = module.check  # (else a torch that keeps tensors otherwise: the checks stay in Python)


def _build_and_load(compiler: str, path: str) -> None:
    try:
        _build(compiler, path)
        _load(path)
    except Exception:  # noqa: BLE001 - no compiler, no headers, another platform: the checks stay in Python
        pass


def prepare() -> None:
    """Load the module if this machine has it; else start building it in the background. Once per
    process, and only once inductor is imported (its cache directory holds the module)."""
    global STARTED, _THREAD
    if STARTED or "torch._inductor" not in sys.modules:
        return
    with _LOCK:
        if STARTED:
            return
        STARTED = True
        if os.environ.get("ADAMLAB_NATIVE", "1") == "0":
            return
        try:
            compiler = _compiler()
            if compiler is None:
                return
            path = _library_path(compiler)
        except Exception:  # noqa: BLE001 - inductor internals of another torch version: the checks stay in Python
            return
        if os.path.isfile(path):
            try:
                _load(path)
                return
            except Exception:  # noqa: BLE001 - an unloadable file (truncated by a full disk...): built again
                pass
        atexit.register(_stop_build)
        _THREAD = threading.Thread(target=_build_and_load, args=(compiler, path), name="adamlab-native-build", daemon=True)
        _THREAD.start()


def kernels() -> Any:
    """The module, for its compute kernels (``ndadam_rows``...), or None where it cannot be had
    (``ADAMLAB_NATIVE=0``, no compiler): loaded at once where this machine has it, else built now
    (about 3 s on the development VM, once per machine; a build already running is waited for)."""
    from ._compat import import_inductor

    import_inductor()  # (its cache directory holds the module; prepare() waits for this import)

    wait()
    return module


def wait() -> bool:
    """Prepare, wait for a build in progress; whether the C++ checks are in use (for benchmarks and tests)."""
    prepare()
    if _THREAD is not None:
        _THREAD.join()
    return check is not None
