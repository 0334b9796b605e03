"""Local dataset files: the IDX reader (MNIST) and svmlight bag-of-words, on tiny files the tests write."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from adamlab.lab import LabError
from adamlab.lab.data import MNIST_FILES, load_mnist_split, read_idx, write_idx
from adamlab.lab.runner import execute_job
from adamlab.lab.spec import Sweep


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, dtype, compress):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
    path = tmp_path / "a.idx"
    write_idx(path, array, compress=compress)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.shape == (3, 4, 5)
    np.testing.assert_array_equal(out, array)


def test_idx_reader_against_hand_written_bytes(tmp_path):
    # magic 00 00 08 (ubyte) 01 (one dimension), size 3 big-endian, then the bytes; and an int32 matrix
    (tmp_path / "labels").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 3) + bytes([7, 0, 255]))
    assert read_idx(tmp_path / "labels").tolist() == [7, 0, 255]
    raw = bytes([0, 0, 0x0C, 2]) + struct.pack(">II", 2, 2) + struct.pack(">4i", 1, -2, 70000, 4)
    (tmp_path / "m.gz").write_bytes(gzip.compress(raw))
    assert read_idx(tmp_path / "m.gz").tolist() == [[1, -2], [70000, 4]]


def test_idx_reader_rejects_bad_files(tmp_path):
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 5) + bytes([1, 2]))
    with pytest.raises(LabError, match="needs 13 bytes, the file has 10"):
        read_idx(tmp_path / "short")
    (tmp_path / "text").write_text("hello world")
    with pytest.raises(LabError, match="not an IDX file"):
        read_idx(tmp_path / "text")
    with pytest.raises(LabError, match="cannot read IDX file"):
        read_idx(tmp_path / "absent")


def tiny_mnist(folder, n_train=40, n_test=20, compress=True):
    rng = np.random.default_rng(1)
    folder.mkdir(exist_ok=True)
    for part, n in (("train", n_train), ("test", n_test)):
        labels = np.arange(n, dtype=np.uint8) % 10
        # each digit class is a bright bar in its own row block, plus noise: learnable in a few steps
        images = rng.integers(0, 40, size=(n, 28, 28), dtype=np.uint8)
        for i, k in enumerate(labels):
            images[i, 2 * k + 4 : 2 * k + 6, 4:24] = 255
        write_idx(folder / (MNIST_FILES[f"{part}_images"] + (".gz" if compress else "")), images, compress)
        write_idx(folder / (MNIST_FILES[f"{part}_labels"] + (".gz" if compress else "")), labels, compress)


def test_mnist_loader_and_mlp_on_tiny_idx_files(tmp_path):
    tiny_mnist(tmp_path / "mnist", compress=True)
    split = load_mnist_split(tmp_path / "mnist")
    assert tuple(split.x_train.shape) == (40, 784) and tuple(split.x_test.shape) == (20, 784)
    assert split.y_train[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    job = Sweep(
        problems=["mlp-digits"],
        optimizers=["adam"],
        steps=30,
        grid={"lr": [1e-3]},
        problem={"mlp-digits": {"mnist_dir": str(tmp_path / "mnist"), "hidden": 64, "batch_size": 20}},
    ).jobs()[0]
    result = execute_job(job.config, job_id=job.id)
    assert result["status"] == "finished", result["error"]
    assert result["final_metrics"]["test_accuracy"] == 1.0


def test_missing_mnist_says_what_is_expected_where(tmp_path):
    with pytest.raises(LabError, match="does not exist: expected a folder holding train-images-idx3-ubyte"):
        load_mnist_split(tmp_path / "nowhere")
    tiny_mnist(tmp_path / "m", compress=False)
    (tmp_path / "m" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(
        LabError, match=r"'t10k-labels-idx1-ubyte' \(or t10k-labels-idx1-ubyte.gz\) not found in .* download them"
    ):
        load_mnist_split(tmp_path / "m")


def test_logreg_sparse_from_an_svmlight_file(tmp_path):
    from sklearn.datasets import dump_svmlight_file

    rng = np.random.default_rng(2)
    x = (rng.random((300, 50)) < 0.1).astype(np.float32) * rng.integers(1, 4, size=(300, 50))
    ratings = np.where(x[:, 0] + x[:, 1] > x[:, 2] + x[:, 3], 9, 2)  # IMDB-style ratings: 9 positive, 2 negative
    dump_svmlight_file(x, ratings, str(tmp_path / "labeledBow.feat"), zero_based=True)
    job = Sweep(
        problems=["logreg-sparse"],
        optimizers=["adam"],
        steps=150,
        grid={"lr": [0.05]},
        problem={"logreg-sparse": {"train_file": str(tmp_path / "labeledBow.feat"), "dim": 40, "batch_size": 32}},
    ).jobs()[0]
    result = execute_job(job.config, job_id=job.id)
    assert result["status"] == "finished", result["error"]
    assert result["final_metrics"]["test_accuracy"] >= 0.9
    missing = dict(job.config, options=dict(job.config["options"], train_file=str(tmp_path / "aclImdb.feat")))
    failed = execute_job(missing, job_id="x")
    assert failed["status"] == "failed" and "svmlight file" in failed["error"] and "labeledBow.feat" in failed["error"]


def tiny_cifar(folder, binary, per_file=30):
    """Fake CIFAR-10 batches: class k is a bright square in channel k % 3 at a class-specific place."""
    import pickle

    rng = np.random.default_rng(3)
    folder.mkdir()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for j, name in enumerate(names):
        labels = (np.arange(per_file) + j) % 10
        images = rng.integers(0, 60, size=(per_file, 3, 32, 32), dtype=np.uint8)
        for i, k in enumerate(labels):
            r, c = divmod(int(k), 4)
            images[i, k % 3, 8 * r : 8 * r + 8, 8 * c : 8 * c + 8] = 250
        if binary:
            records = np.concatenate([labels.astype(np.uint8)[:, None], images.reshape(per_file, -1)], axis=1)
            (folder / f"{name}.bin").write_bytes(records.tobytes())
        else:
            with open(folder / name, "wb") as f:
                pickle.dump({b"data": images.reshape(per_file, -1), b"labels": labels.tolist()}, f)
    return images, labels


@pytest.mark.parametrize("binary", [False, True])
def test_cifar10_readers_and_the_cnn_on_tiny_files(tmp_path, binary):
    from adamlab.lab.data import load_cifar10_split

    images, labels = tiny_cifar(tmp_path / "cifar", binary)
    split = load_cifar10_split(tmp_path / "cifar")
    assert tuple(split.x_train.shape) == (150, 3, 32, 32) and tuple(split.x_test.shape) == (30, 3, 32, 32)
    assert split.y_test.tolist() == labels.tolist()
    assert split.x_train.mean(dim=(0, 2, 3)).abs().max() < 1e-5  # normalized per channel by the train set
    # the test images are the last file's, in order: class 0 is bright in channel 0, top-left
    bright = split.x_test[:, :, :8, :8].mean(dim=(2, 3))
    assert bright[labels == 0, 0].min() > bright[labels == 0, 1].max()
    if binary:
        return  # train once (python version) to keep the suite short
    job = Sweep(
        problems=["cnn-cifar10"],
        optimizers=["adam"],
        steps=30,
        grid={"lr": [3e-3]},
        problem={"cnn-cifar10": {"cifar_dir": str(tmp_path / "cifar"), "width": 8, "batch_size": 30, "augment": True}},
    ).jobs()[0]
    result = execute_job(job.config, job_id=job.id)
    assert result["status"] == "finished", result["error"]
    first = {n: v for kind, s, n, v in result["metrics"] if kind == "eval" and s == 0}
    assert result["final_metrics"]["train_loss"] < 0.5 * first["train_loss"]
    assert result["final_metrics"]["test_accuracy"] >= 0.7


def test_missing_cifar_says_what_is_expected(tmp_path):
    with pytest.raises(LabError, match="cnn-cifar10 needs cifar_dir .*data_batch_1 .*test_batch"):
        Sweep(problems=["cnn-cifar10"], optimizers=["adam"]).jobs()
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "data_batch_1").write_bytes(b"x")
    with pytest.raises(LabError, match="lacks data_batch_2, data_batch_3, data_batch_4, data_batch_5, test_batch"):
        Sweep(problems=["cnn-cifar10"], optimizers=["adam"], problem={"cnn-cifar10": {"cifar_dir": str(tmp_path / "c")}}).jobs()
