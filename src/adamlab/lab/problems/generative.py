"""Generative models on digits (or MNIST with ``mnist_dir``): a GAN (as in the MAdam paper) and a VAE.

Images are in [0, 1] (digits divided by 16). Weights start from torch's default initialization
drawn from the seed; all noise (latents, reparameterization) comes from the trial's own
generators, and evaluation uses a fixed noise seed of its own, so runs are deterministic and an
evaluation changes nothing.

``gan-digits`` (the MAdam paper: "two multi-layer fully connected neural networks as generator and
discriminator ... minibatch size of 128"): generator ``z -> hidden -> hidden -> image`` (ReLU,
sigmoid output), discriminator ``image -> hidden -> hidden -> 1`` (LeakyReLU 0.2), the
non-saturating loss. Both networks are trained by *one* optimizer built over both (two param
groups): each step updates the discriminator on a real and a fake batch (generator gradients
set to None, so the generator is untouched), then the generator (discriminator gradients set to
None). Optimizers skip params whose gradient is None, state and step count included, so this is
exactly two optimizers with the same hyperparameters, one per network. Step-wise metrics:
``loss`` (the generator's), ``d_loss``, ``g_loss``. ``evaluate()`` scores 1000 samples with a
logistic-regression digit classifier fitted on the real train images: ``inception_score``
(``exp E_x KL(p(y|x) || p(y))``, 1 to 10; higher means confident and diverse digits) and
``classes_covered`` (how many of the 10 classes get at least 2% of the samples: mode collapse
shows as a low count).

``vae-digits``: encoder ``image -> hidden -> (mu, log sigma^2)`` of a ``latent``-dim Gaussian,
decoder ``z -> hidden -> image`` logits, Bernoulli likelihood; loss = negative ELBO per image
(reconstruction cross-entropy summed over pixels + KL). ``evaluate()``: ``train_loss`` (on up to
``eval_train_examples`` images), ``test_loss``, ``test_reconstruction`` (the cross-entropy part).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import data
from .base import Batches, Problem, Target, Trial, require_positive, seeded_generator

_EVAL_STREAM = 99  # the generator stream evaluation noise is drawn from, fresh at each evaluation


def _images(mnist_dir: str | None, seed: int) -> data.Split:
    return data.load_mnist_split(mnist_dir, scale="unit") if mnist_dir else data.load_digits_split(seed, 0.3, scale="unit")


def _mlp(sizes: list[int], act: type[nn.Module], **kw: Any) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act(**kw))
    return nn.Sequential(*layers)


@dataclass
class GANDigits(Problem):
    """Options: ``batch_size``, ``noise_dim``, ``hidden``, ``samples`` (for evaluation), ``mnist_dir``."""

    batch_size: int = 128
    noise_dim: int = 64
    hidden: int = 256
    samples: int = 1000
    mnist_dir: str | None = None

    name: ClassVar[str] = "gan-digits"
    description: ClassVar[str] = (
        "GAN with MLP generator and discriminator (as in the MAdam paper) on digits, or on MNIST with mnist_dir; "
        "metrics: inception score from a digits classifier, classes covered, D and G losses"
    )
    default_steps: ClassVar[int] = 2000
    default_batch_size: ClassVar[int | None] = 128
    target: ClassVar[Target | None] = Target("inception_score", 4.0, "max")  # real digit images score about 6.9
    # beta1 = 0.5 as in most GAN work: with Adam's default 0.9 this GAN collapses to one mode at lr 1e-3
    default_hyperparameters: ClassVar[dict[str, Any]] = {"lr": 1e-3, "betas": [0.5, 0.999]}

    def __post_init__(self) -> None:
        require_positive(self, "batch_size", "noise_dim", "hidden", "samples")

    def check(self) -> None:
        if self.mnist_dir:
            data.mnist_paths(self.mnist_dir)

    def build(self, seed: int) -> GANTrial:
        split = _images(self.mnist_dir, seed)
        d = split.x_train.shape[1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            generator = _mlp([self.noise_dim, self.hidden, self.hidden, d], nn.ReLU)
            discriminator = _mlp([d, self.hidden, self.hidden, 1], nn.LeakyReLU, negative_slope=0.2)
        return GANTrial(self, split, generator, discriminator, seed)


class DigitScorer:
    """A multinomial logistic regression fitted on real train images, to score generated ones."""

    def __init__(self, split: data.Split, max_examples: int = 10000) -> None:
        from sklearn.linear_model import LogisticRegression

        x = split.x_train[:max_examples].numpy().astype(np.float64)
        self.model = LogisticRegression(max_iter=300, C=1.0)
        self.model.fit(x, split.y_train[:max_examples].numpy())

    def probabilities(self, images: torch.Tensor) -> np.ndarray:
        return self.model.predict_proba(images.detach().numpy().astype(np.float64))


class GANTrial(Trial):
    def __init__(self, problem: GANDigits, split: data.Split, generator: nn.Module, discriminator: nn.Module, seed: int) -> None:
        self.problem = problem
        self.split = split
        self.generator = generator
        self.discriminator = discriminator
        self.seed = seed
        self.batches = Batches(len(split.y_train), problem.batch_size, seeded_generator(seed, 1))
        self.noise = seeded_generator(seed, 2)
        self.scorer = DigitScorer(split)

    def parameters(self) -> list[dict[str, Any]]:
        return [{"params": list(self.discriminator.parameters())}, {"params": list(self.generator.parameters())}]

    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, self.problem.noise_dim, generator=gen)
        return torch.sigmoid(self.generator(z))

    def step(self, optimizer: torch.optim.Optimizer, t: int) -> dict[str, float]:
        real = self.split.x_train[self.batches.next()]
        n = len(real)
        ones, zeros = torch.ones(n, 1), torch.zeros(n, 1)
        # discriminator: real -> 1, fake -> 0 (the fake batch is detached: no generator gradients)
        optimizer.zero_grad(set_to_none=True)
        fake = self.sample(n, self.noise)
        d_loss = F.binary_cross_entropy_with_logits(self.discriminator(real), ones) + F.binary_cross_entropy_with_logits(
            self.discriminator(fake.detach()), zeros
        )
        d_loss.backward()
        optimizer.step()
        # generator: make the discriminator call fakes real; its gradients on D are dropped
        optimizer.zero_grad(set_to_none=True)
        g_loss = F.binary_cross_entropy_with_logits(self.discriminator(fake), ones)
        g_loss.backward()
        for p in self.discriminator.parameters():
            p.grad = None
        optimizer.step()
        return {"loss": g_loss.item(), "d_loss": d_loss.item(), "g_loss": g_loss.item()}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        samples = self.sample(self.problem.samples, seeded_generator(self.seed, _EVAL_STREAM))
        p = self.scorer.probabilities(samples)
        marginal = p.mean(0, keepdims=True)
        kl = (p * (np.log(p + 1e-12) - np.log(marginal + 1e-12))).sum(1).mean()
        counts = np.bincount(p.argmax(1), minlength=p.shape[1])
        return {
            "inception_score": float(math.exp(kl)),
            "classes_covered": float((counts >= 0.02 * len(p)).sum()),
        }

    @torch.no_grad()
    def artifacts(self) -> dict[str, np.ndarray]:
        """``samples``: 64 generated images (the first 64 of the evaluation noise), ``(64, side, side)`` in [0, 1]."""
        images = self.sample(self.problem.samples, seeded_generator(self.seed, _EVAL_STREAM))[:64]
        side = math.isqrt(images.shape[1])
        return {"samples": images.reshape(-1, side, side).numpy().astype(np.float32)}


@dataclass
class VAEDigits(Problem):
    """Options: ``batch_size``, ``hidden``, ``latent``, ``mnist_dir``, ``eval_train_examples``."""

    batch_size: int = 128
    hidden: int = 200
    latent: int = 8
    mnist_dir: str | None = None
    eval_train_examples: int = 10000

    name: ClassVar[str] = "vae-digits"
    description: ClassVar[str] = (
        "variational autoencoder (MLP, Bernoulli likelihood) on digits, or on MNIST with mnist_dir; "
        "metrics: train/test negative ELBO per image, test reconstruction"
    )
    default_steps: ClassVar[int] = 1000
    default_batch_size: ClassVar[int | None] = 128
    target: ClassVar[Target | None] = Target("test_loss", 25.0, "min")
    default_hyperparameters: ClassVar[dict[str, Any]] = {}

    def __post_init__(self) -> None:
        require_positive(self, "batch_size", "hidden", "latent", "eval_train_examples")

    def check(self) -> None:
        if self.mnist_dir:
            data.mnist_paths(self.mnist_dir)

    def build(self, seed: int) -> VAETrial:
        split = _images(self.mnist_dir, seed)
        d = split.x_train.shape[1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder = _mlp([d, self.hidden, 2 * self.latent], nn.ReLU)
            decoder = _mlp([self.latent, self.hidden, d], nn.ReLU)
        return VAETrial(self, split, encoder, decoder, seed)


class VAETrial(Trial):
    def __init__(self, problem: VAEDigits, split: data.Split, encoder: nn.Module, decoder: nn.Module, seed: int) -> None:
        self.problem = problem
        self.split = split
        self.encoder = encoder
        self.decoder = decoder
        self.seed = seed
        self.batches = Batches(len(split.y_train), problem.batch_size, seeded_generator(seed, 1))
        self.noise = seeded_generator(seed, 2)

    def parameters(self) -> list[torch.Tensor]:
        return list(self.encoder.parameters()) + list(self.decoder.parameters())

    def losses(self, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(negative ELBO, reconstruction cross-entropy), each summed over pixels and averaged over images."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen)
        recon = F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="sum") / len(x)
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum() / len(x)
        return recon + kl, recon

    def step(self, optimizer: torch.optim.Optimizer, t: int) -> dict[str, float]:
        x = self.split.x_train[self.batches.next()]
        optimizer.zero_grad(set_to_none=True)
        loss, _ = self.losses(x, self.noise)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        s = self.split
        train_loss, _ = self.losses(s.x_train[: self.problem.eval_train_examples], seeded_generator(self.seed, _EVAL_STREAM))
        test_loss, test_recon = self.losses(s.x_test, seeded_generator(self.seed, _EVAL_STREAM + 1))
        return {"train_loss": train_loss.item(), "test_loss": test_loss.item(), "test_reconstruction": test_recon.item()}
