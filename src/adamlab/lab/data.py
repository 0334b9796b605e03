"""Offline datasets: scikit-learn's bundled digits, generated sparse bag-of-words, and readers for
local files the user points at (MNIST as IDX files, svmlight/libsvm text such as IMDB's ``labeledBow.feat``).

Nothing here downloads anything. A missing file raises :class:`~adamlab.lab.errors.LabError`
saying which file is expected where and how to get it. scikit-learn and scipy are imported by the
functions that use them.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import LabError


@dataclass
class Split:
    """A train/test split: float32 features, int64 labels (features may be a scipy CSR matrix)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max().item(), self.y_test.max().item())) + 1


def standardize(split: Split) -> Split:
    """Features shifted and scaled by the train set's per-feature mean and std (std 0 counts as 1)."""
    mean = split.x_train.mean(0)
    std = split.x_train.std(0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return Split((split.x_train - mean) / std, split.y_train, (split.x_test - mean) / std, split.y_test)


def random_split(x: torch.Tensor, y: torch.Tensor, test_fraction: float, seed: int) -> Split:
    """A random train/test split drawn from ``seed`` (the same seed gives the same split)."""
    gen = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(len(y), generator=gen)
    n_test = int(round(test_fraction * len(y)))
    test, train = perm[:n_test], perm[n_test:]
    return Split(x[train], y[train], x[test], y[test])


# -- scikit-learn's digits (bundled with the package: 1797 8x8 images) ------------------------------


def load_digits_split(seed: int, test_fraction: float = 0.3, scale: str = "standardize") -> Split:
    """scikit-learn's ``load_digits`` (64 features in 0..16), split by ``seed``; ``scale``:
    ``"standardize"`` (by the train set's mean and std) or ``"unit"`` (divided by 16, into [0, 1])."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - depends on the environment
        raise LabError("the digits problems need scikit-learn (pip install 'adamlab[lab]' or pip install scikit-learn)") from None
    data = load_digits()
    x = torch.as_tensor(data.data, dtype=torch.float32)
    y = torch.as_tensor(data.target, dtype=torch.int64)
    if scale == "unit":
        return random_split(x / 16.0, y, test_fraction, seed)
    return standardize(random_split(x, y, test_fraction, seed))


# -- IDX files (MNIST) ------------------------------------------------------------------------------

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (gzipped or raw, told apart by the gzip magic bytes, not the name).

    The format: two zero bytes, a type byte (0x08 ubyte, 0x09 byte, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, each dimension as a big-endian uint32,
    then the data, big-endian, row-major. A file that is not IDX or is cut short raises LabError.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise LabError(f"cannot read IDX file {str(path)!r}: {err.strerror or err}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise LabError(f"{str(path)!r} is a damaged gzip file: {err}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise LabError(f"{str(path)!r} is not an IDX file (expected the magic bytes 00 00 <type> <ndim>)")
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise LabError(f"{str(path)!r}: IDX header cut short ({len(raw)} bytes, {ndim} dimensions need {header})")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    count = int(np.prod(shape, dtype=np.int64))
    need = header + count * dtype.itemsize
    if len(raw) != need:
        raise LabError(f"{str(path)!r}: IDX data of shape {shape} needs {need} bytes, the file has {len(raw)}")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _find_idx(directory: Path, stem: str) -> Path | None:
    dotted = stem[::-1].replace("-", ".", 1)[::-1]  # train-images.idx3-ubyte, as some mirrors name it
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def mnist_paths(directory: str | Path) -> dict[str, Path]:
    """The four MNIST IDX files in ``directory``; LabError says which is missing and how to get it."""
    directory = Path(directory)
    if not directory.is_dir():
        raise LabError(
            f"MNIST directory {str(directory)!r} does not exist: expected a folder holding {', '.join(MNIST_FILES.values())} "
            "(each gzipped or not), the files of the MNIST database (Yann LeCun's MNIST page or a mirror)"
        )
    paths = {}
    for key, stem in MNIST_FILES.items():
        path = _find_idx(directory, stem)
        if path is None:
            raise LabError(
                f"MNIST file {stem!r} (or {stem}.gz) not found in {str(directory)!r}: expected the four IDX files "
                f"{', '.join(MNIST_FILES.values())} of the MNIST database there; download them (Yann LeCun's MNIST page "
                "or a mirror) and point mnist_dir at the folder"
            )
        paths[key] = path
    return paths


def load_mnist_split(directory: str | Path, scale: str = "standardize") -> Split:
    """MNIST from the four IDX files in ``directory``: images flattened to 784 floats in [0, 1],
    then standardized (``scale="standardize"``) or left in [0, 1] (``scale="unit"``).

    The split is MNIST's own (60,000 train, 10,000 test); the seed does not change it.
    """
    directory = Path(directory)
    arrays = {key: read_idx(path) for key, path in mnist_paths(directory).items()}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise LabError(
                f"MNIST {part} files in {str(directory)!r} disagree: images of shape {images.shape}, labels of shape {labels.shape}"
            )

    def images(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a.reshape(len(a), -1).astype(np.float32) / 255.0)

    split = Split(
        images(arrays["train_images"]),
        torch.as_tensor(arrays["train_labels"].astype(np.int64)),
        images(arrays["test_images"]),
        torch.as_tensor(arrays["test_labels"].astype(np.int64)),
    )
    return split if scale == "unit" else standardize(split)


def write_idx(path: str | Path, array: np.ndarray, compress: bool = False) -> None:
    """Write ``array`` as an IDX file (for tests and small fixtures); ``compress`` gzips it."""
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_TYPES.items()}
    array = np.asarray(array)
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot hold dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.dtype(_IDX_TYPES[code])).tobytes()
    Path(path).write_bytes(gzip.compress(data) if compress else data)


# -- sparse bag-of-words --------------------------------------------------------------------------


@dataclass
class SparseSplit:
    """Binary bag-of-words features as scipy CSR float32 matrices, labels as float32 0/1 tensors."""

    x_train: object
    y_train: torch.Tensor
    x_test: object
    y_test: torch.Tensor


def zipf_bag_of_words(
    seed: int,
    n_train: int,
    n_test: int,
    dim: int,
    doc_length: int,
    exponent: float,
    planted: int,
) -> SparseSplit:
    """Documents of Zipf-distributed words, labelled by a planted sparse linear model.

    Word ``k`` (1-based rank) has probability proportional to ``k^-exponent``; each document has
    ``Poisson(doc_length)`` tokens (at least one). Features are word presence (0/1). A weight vector
    with ``planted`` nonzero N(0, 1) entries scores each document, at words drawn without
    replacement with probability proportional to ``sqrt(frequency)`` (so the signal sits mostly on
    words that occur often enough to be learnt, with a tail of rare ones); the label is 1
    when score + N(0, 0.1^2) noise exceeds the median, so the classes are balanced and the Bayes
    classifier is linear. Everything is drawn from ``seed``.
    """
    from scipy import sparse

    rng = np.random.default_rng(seed)
    n = n_train + n_test
    p = np.arange(1, dim + 1, dtype=np.float64) ** -exponent
    p /= p.sum()
    lengths = np.maximum(rng.poisson(doc_length, size=n), 1)
    tokens = rng.choice(dim, size=int(lengths.sum()), p=p)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    x = sparse.csr_matrix((np.ones(len(tokens), dtype=np.float32), tokens, indptr), shape=(n, dim))
    x.sum_duplicates()
    x.data[:] = 1.0
    w = np.zeros(dim)
    q = np.sqrt(p)
    w[rng.choice(dim, size=planted, replace=False, p=q / q.sum())] = rng.standard_normal(planted)
    score = x @ w + 0.1 * rng.standard_normal(n)
    y = torch.as_tensor((score > np.median(score)).astype(np.float32))
    return SparseSplit(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def _binary_labels(y: np.ndarray, path: str) -> np.ndarray:
    values = np.unique(y)
    if set(values.tolist()) <= {0.0, 1.0}:
        return y.astype(np.float32)
    if set(values.tolist()) <= {-1.0, 1.0}:
        return (y > 0).astype(np.float32)
    if len(values) < 2:
        raise LabError(f"{path!r}: all labels are {values[0]!r}; binary classification needs two classes")
    return (y > (values.min() + values.max()) / 2).astype(np.float32)


def check_svmlight_file(path: str) -> None:
    """LabError, saying what is expected there and how to get it, unless ``path`` is a file."""
    if not Path(path).is_file():
        raise LabError(
            f"svmlight file {path!r} not found: expected a bag-of-words file in svmlight/libsvm format there, e.g. "
            "aclImdb/train/labeledBow.feat from the Large Movie Review Dataset (ai.stanford.edu/~amaas/data/sentiment, "
            "unpack aclImdb_v1.tar.gz); or leave train_file unset for the generated Zipf data"
        )


def load_svmlight_split(train_file: str, test_file: str | None, dim: int, seed: int, test_fraction: float = 0.2) -> SparseSplit:
    """Bag-of-words from svmlight/libsvm text files (e.g. IMDB's ``aclImdb/train/labeledBow.feat``).

    Only features with index < ``dim`` are kept (IMDB numbers words by frequency rank, so this keeps
    the ``dim`` most frequent), as presence (0/1). Labels: {0, 1} and {-1, 1} are used as they are;
    other values (IMDB's ratings 1-10) count as positive above the midpoint of their range (7-10
    positive, 1-4 negative). Without ``test_file`` the train file is split by ``seed``.
    """
    from scipy import sparse
    from sklearn.datasets import load_svmlight_file

    def load(path: str) -> tuple[object, np.ndarray]:
        check_svmlight_file(path)
        try:
            x, y = load_svmlight_file(path, dtype=np.float32, zero_based=True)
        except ValueError as err:
            raise LabError(f"{path!r} is not a valid svmlight/libsvm file: {err}") from None
        x = sparse.csr_matrix(x)
        if x.shape[1] < dim:
            x.resize((x.shape[0], dim))
        x = x[:, :dim].tocsr()
        x.data[:] = 1.0
        x.eliminate_zeros()
        return x, _binary_labels(y, path)

    x_train, y_train = load(train_file)
    if test_file:
        x_test, y_test = load(test_file)
    else:
        gen = torch.Generator().manual_seed(int(seed))
        perm = torch.randperm(x_train.shape[0], generator=gen).numpy()
        n_test = int(round(test_fraction * len(perm)))
        test, train = perm[:n_test], perm[n_test:]
        x_train, y_train, x_test, y_test = x_train[train], y_train[train], x_train[test], y_train[test]
    return SparseSplit(x_train, torch.as_tensor(y_train), x_test, torch.as_tensor(y_test))


# -- CIFAR-10 -------------------------------------------------------------------------------------

CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST = "test_batch"
CIFAR_HELP = (
    "the CIFAR-10 files: data_batch_1 ... data_batch_5 and test_batch (the 'python version', folder "
    "cifar-10-batches-py) or data_batch_1.bin ... data_batch_5.bin and test_batch.bin (the 'binary version', "
    "cifar-10-batches-bin), from Alex Krizhevsky's CIFAR page (www.cs.toronto.edu/~kriz/cifar.html); unpack the "
    "archive and point cifar_dir at the folder holding them"
)


def cifar10_paths(directory: str | Path | None) -> tuple[str, list[Path], Path]:
    """``(format, train files, test file)`` in ``directory``; LabError says what is expected and how to get it."""
    if not directory:
        raise LabError(
            f'cnn-cifar10 needs cifar_dir (e.g. [sweep.problem.cnn-cifar10] cifar_dir = "data/cifar-10-batches-py"): {CIFAR_HELP}'
        )
    directory = Path(directory)
    if not directory.is_dir():
        raise LabError(f"CIFAR-10 directory {str(directory)!r} does not exist: expected {CIFAR_HELP}")
    for fmt, suffix in (("python", ""), ("binary", ".bin")):
        train = [directory / (name + suffix) for name in CIFAR_TRAIN]
        test = directory / (CIFAR_TEST + suffix)
        present = [p for p in [*train, test] if p.is_file()]
        if len(present) == 6:
            return fmt, train, test
        if present:
            missing = [p.name for p in [*train, test] if not p.is_file()]
            raise LabError(f"CIFAR-10 directory {str(directory)!r} lacks {', '.join(missing)}: expected {CIFAR_HELP}")
    raise LabError(f"no CIFAR-10 files in {str(directory)!r}: expected {CIFAR_HELP}")


def _read_cifar_file(path: Path, fmt: str) -> tuple[np.ndarray, np.ndarray]:
    if fmt == "binary":
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size % 3073:
            raise LabError(f"{str(path)!r} is not a CIFAR-10 binary batch (its size is not a multiple of 3073 bytes)")
        records = raw.reshape(-1, 3073)
        return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0].astype(np.int64)
    import pickle

    # The python version is a pickle of {b"data": uint8 (N, 3072), b"labels": [N ints]}. Unpickling
    # runs code from the file: only point cifar_dir at files you trust (the official archive).
    with open(path, "rb") as f:
        try:
            batch = pickle.load(f, encoding="bytes")
        except Exception as err:
            raise LabError(f"{str(path)!r} is not a CIFAR-10 python batch: {err}") from None
    try:
        images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as err:
        raise LabError(f"{str(path)!r} is not a CIFAR-10 python batch (expected b'data' and b'labels'): {err}") from None
    return images, labels


def load_cifar10_split(directory: str | Path) -> Split:
    """CIFAR-10 as float32 ``(N, 3, 32, 32)`` images normalized per channel by the train set; int64 labels."""
    fmt, train_files, test_file = cifar10_paths(directory)
    parts = [_read_cifar_file(p, fmt) for p in train_files]
    x_train = torch.as_tensor(np.concatenate([p[0] for p in parts])).float() / 255.0
    y_train = torch.as_tensor(np.concatenate([p[1] for p in parts]))
    images, labels = _read_cifar_file(test_file, fmt)
    x_test = torch.as_tensor(images).float() / 255.0
    mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
    std = x_train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return Split((x_train - mean) / std, y_train, (x_test - mean) / std, torch.as_tensor(labels))
