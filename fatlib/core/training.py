"""Training and evaluation: standard quantization-aware training ("SAT" in FAT) and the
fault-aware schemes of FAT §IV-C (method 1, method 2) and the Dropout2D baseline (§V-D).

The paper's recipe (FAT §V, brevitas ``bnn_pynq``): Adam, learning rate 0.02 halved every 40
epochs, batch 100, squared hinge loss, no weight decay, latent weights clipped to [-1, 1] after
each step, 1000 epochs for W1A1 and 500 otherwise. :func:`cnv_config` builds that config at the
sizes of a scale profile; :func:`train` trains it (or reuses the stored artifact).

Accuracies are in percent throughout fatlib, as in the papers' tables.
"""

from __future__ import annotations

import hashlib
import os
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from fatlib.core import work
from fatlib.core.data import ArrayDataset, profile_dataset
from fatlib.core.files import check_writable, writer_lock
from fatlib.core.models import clip_weights
from fatlib.core.profiles import Profile, get_profile
from fatlib.core.schemes import CHANNEL, FAT_SCHEMES, PATTERNS, SAT, SCHEMES
from fatlib.core.store import ArtifactStore, build_from_config
from fatlib.core.torch_utils import check_images01, eval_mode, model_device, resolve_device

__all__ = [
    "Checkpointing",
    "TrainingStopped",
    "TrainConfig",
    "TrainResult",
    "cnv_config",
    "train",
    "train_cnv",
    "evaluate",
    "predict",
    "resolve_device",
    "sqr_hinge_loss",
    "SCHEMES",
    "ftd_config",
    "train_ftd",
    "FTD_ARCHS",
    "FAT_ARCHS",
    "dorefa_config",
]

#: networks with FAT activation sites (injection / dropout layers go there): CNV, DoReFa-AlexNet
FAT_ARCHS = ("cnv", "dorefa-alexnet")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model; the artifact key hashes all of it."""

    arch: str = "cnv"
    dataset: str = "cifar10"
    num_classes: int = 10
    weight_bits: int | None = 1
    act_bits: int | None = 1
    width: float = 1.0
    epochs: int = 1000
    batch_size: int = 100
    optimizer: str = "adam"
    lr: float = 0.02
    lr_step: int = 40
    lr_gamma: float = 0.5
    momentum: float = 0.9
    weight_decay: float = 0.0
    loss: str = "sqr_hinge"
    clip_weights: bool = True
    augment: bool = True
    train_size: int | None = None
    seed: int = 0
    #: "sat", "fat-m1", "fat-m2" or "dropout2d" (FAT §IV-C, §V-D)
    scheme: str = SAT
    #: injection pattern for FAT schemes: "channel", "pixel" or "element" (FAT Eq. 4–5)
    pattern: str | None = None
    #: injection (or dropout) probability in [0, 1]
    p: float = 0.0
    #: epochs at which the learning rate is multiplied by ``lr_gamma`` (instead of every
    #: ``lr_step`` epochs); None for step decay. Left out of :meth:`to_dict` when None, so the
    #: keys of configs without it are unchanged.
    lr_milestones: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme={self.scheme!r}: use one of {SCHEMES}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer={self.optimizer!r}: use 'adam' or 'sgd'")
        if self.loss not in ("sqr_hinge", "cross_entropy"):
            raise ValueError(f"loss={self.loss!r}: use 'sqr_hinge' or 'cross_entropy'")
        if self.epochs < 1 or self.batch_size < 1 or self.lr_step < 1:
            raise ValueError("epochs, batch_size and lr_step must be positive")
        if self.lr_milestones is not None:
            ms = tuple(self.lr_milestones)
            if not ms or any(not isinstance(m, int) or m < 1 for m in ms) or list(ms) != sorted(ms):
                raise ValueError(f"lr_milestones={self.lr_milestones!r}: give ascending positive epochs")
            object.__setattr__(self, "lr_milestones", ms)
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p={self.p!r} must lie in [0, 1] (a probability, not a percent)")
        if self.scheme != SAT and self.arch not in FAT_ARCHS:
            raise ValueError(
                f"scheme {self.scheme!r} puts injection or dropout layers at the activation "
                f"sites of CNV or DoReFa-AlexNet: arch must be one of {FAT_ARCHS}"
            )
        if self.scheme in FAT_SCHEMES:
            if self.pattern not in PATTERNS:
                raise ValueError(f"scheme {self.scheme!r} needs pattern 'channel', 'pixel' or 'element'")
        elif self.scheme == SAT and (self.pattern is not None or self.p != 0.0):
            raise ValueError("scheme 'sat' takes no pattern and p=0")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if out["lr_milestones"] is None:
            del out["lr_milestones"]
        else:
            out["lr_milestones"] = list(out["lr_milestones"])
        return out

    @property
    def label(self) -> str:
        """Short name as in the papers' tables, e.g. ``CNVW1A1 FAT-m1 channel p=5%``."""
        if self.arch == "cnv":
            name = f"CNVW{self.weight_bits}A{self.act_bits}"
        elif self.arch == "dorefa-alexnet":
            name = f"DoReFa-AlexNet W{self.weight_bits}A{self.act_bits}"
        else:
            name = self.arch
        if self.scheme == SAT:
            return f"{name} SAT"
        pat = f" {self.pattern}" if self.pattern else ""
        return f"{name} {self.scheme.upper()}{pat} p={100 * self.p:g}%"


@dataclass
class TrainResult:
    """A trained model with the config (including the training data's fingerprint) and metrics."""

    model: nn.Module
    config: dict[str, Any]
    metrics: dict[str, Any]
    path: Path | None = None
    reused: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def test_accuracy(self) -> float:
        return float(self.metrics["test_accuracy"])

    def __repr__(self) -> str:
        return (
            f"TrainResult({self.config.get('arch')} scheme={self.config.get('scheme')}, "
            f"test_accuracy={self.metrics.get('test_accuracy')}, reused={self.reused}, "
            f"path={str(self.path) if self.path else None!r})"
        )


def sqr_hinge_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared hinge loss of brevitas ``bnn_pynq`` (FAT §V): targets as ±1 one-hot."""
    onehot = torch.full_like(output, -1.0)
    onehot.scatter_(1, target.view(-1, 1), 1.0)
    return torch.clamp(1.0 - output * onehot, min=0).pow(2).mean()


def data_fingerprint(ds: Dataset) -> str:
    """A short fingerprint of a dataset (name, size, labels, a sample of pixels) for the store key."""
    if hasattr(ds, "fingerprint"):  # ImageFolderDataset: files and transform, no pixels read
        return f"{getattr(ds, 'name', type(ds).__name__)}:{len(ds)}:{ds.fingerprint()}"  # type: ignore[arg-type]
    h = hashlib.sha256()
    if isinstance(ds, ArrayDataset):
        h.update(ds.labels.numpy().tobytes())
        h.update(ds.images[:: max(1, len(ds) // 64)].numpy().tobytes())
        name = ds.name
    else:
        n = len(ds)  # type: ignore[arg-type]
        for i in range(0, n, max(1, n // 64)):
            x, y = ds[i]
            h.update(torch.as_tensor(x).numpy().tobytes())  # cpu-only: host-side order / fingerprint
            h.update(str(int(y)).encode())
        name = type(ds).__name__
    return f"{name}:{len(ds)}:{h.hexdigest()[:16]}"  # type: ignore[arg-type]


def _batches(
    ds: Dataset,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator | None,
    device: torch.device,
    order: torch.Tensor | None = None,
    start: int = 0,
):
    """Yield ``(images, labels)`` batches on ``device``; fast path for :class:`ArrayDataset`.
    For an ArrayDataset, ``order`` (the epoch's permutation from :func:`_epoch_order`) and
    ``start`` (a batch index) continue an epoch part-way through."""
    if isinstance(ds, ArrayDataset):
        if order is None:
            order = _epoch_order(ds, shuffle, generator)
        for first in range(start * batch_size, len(order), batch_size):
            yield ds.batch(order[first : first + batch_size], generator=generator, device=device)
    else:
        workers = int(getattr(ds, "workers", 0) or 0)
        loader = DataLoader(
            ds,
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
            num_workers=workers,
            persistent_workers=False,
        )
        for i, (x, y) in enumerate(loader):
            if i == 0:  # an ArrayDataset is in [0, 1] by construction; other datasets are checked once
                check_images01(x, f"images of {type(ds).__name__}")
            yield x.to(device), y.to(device)


def _epoch_order(ds: ArrayDataset, shuffle: bool, generator: torch.Generator | None) -> torch.Tensor:
    """The order in which one epoch visits an ArrayDataset (a draw from ``generator`` when shuffled)."""
    n = len(ds)
    # cpu-only: host-side order / fingerprint
    return torch.randperm(n, generator=generator) if shuffle else torch.arange(n)


@torch.no_grad()
def predict(
    model: nn.Module, dataset: Dataset, device: str | torch.device | None = None, batch_size: int = 500
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and true labels on ``dataset`` (model in eval mode; device follows the model
    unless given)."""
    dev = model_device(model) if device is None else resolve_device(device)
    model = model.to(dev)
    preds, labels = [], []
    with eval_mode(model):
        eval_ds = dataset
        if isinstance(dataset, ArrayDataset) and dataset.augment:
            eval_ds = replace(dataset, augment=False)
        for x, y in _batches(eval_ds, batch_size, shuffle=False, generator=None, device=dev):
            preds.append(model(x).argmax(1).cpu())
            labels.append(y.cpu())
    return torch.cat(preds), torch.cat(labels)


def evaluate(
    model: nn.Module, dataset: Dataset, device: str | torch.device | None = None, batch_size: int = 500
) -> float:
    """Top-1 accuracy in percent of ``model`` on ``dataset`` (no augmentation, eval mode)."""
    pred, true = predict(model, dataset, device=device, batch_size=batch_size)
    return 100.0 * (pred == true).double().mean().item()


@dataclass(frozen=True)
class Checkpointing:
    """When :func:`train` writes its resume state into the store (``<root>/<key>/resume.pt``), so
    that a killed, preempted or crashed training continues where it stopped: after every
    ``every_epochs`` epochs, at least every ``every_seconds`` seconds (checked after each batch),
    after every ``every_batches`` batches when set, and on SIGTERM (then the training stops after
    saving, and the signal's previous handler runs). Mid-epoch states need an
    :class:`~fatlib.core.data.ArrayDataset` (the epoch's order is saved); other datasets are
    checkpointed at epoch ends only.

    A resumed training ends with weights bit-identical to an uninterrupted one on the same device
    and thread count (the optimizer, scheduler, torch / CUDA / data random generators, FAT method
    2's draw and the position in the epoch are all restored)."""

    every_epochs: int = 5
    every_seconds: float = 300.0
    every_batches: int | None = None
    on_sigterm: bool = True

    def __post_init__(self) -> None:
        if self.every_epochs < 1 or self.every_seconds <= 0:
            raise ValueError("Checkpointing: every_epochs must be >= 1 and every_seconds > 0")
        if self.every_batches is not None and self.every_batches < 1:
            raise ValueError("Checkpointing: every_batches must be >= 1 (or None)")


class _Sigterm:
    """Inside the block, SIGTERM only sets :attr:`seen` (the training saves its state and stops at
    the next batch); afterwards the previous handler is back, and :meth:`deliver` hands it the
    signal that came (the default handler ends the process, as SIGTERM does)."""

    def __init__(self, enabled: bool) -> None:
        import threading

        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.seen = False
        self.previous: Any = None

    def __enter__(self) -> _Sigterm:
        import signal

        if self.enabled:
            self.previous = signal.getsignal(signal.SIGTERM)
            if self.previous is signal.SIG_IGN or self.previous is None:
                self.enabled = False
            else:
                signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.seen = True

    def __exit__(self, *exc: Any) -> None:
        import signal

        if self.enabled:
            signal.signal(signal.SIGTERM, self.previous)

    def deliver(self) -> None:
        """Give a SIGTERM that came inside the block to the handler that was there before."""
        import signal

        if not (self.enabled and self.seen):
            return
        if callable(self.previous):
            self.previous(signal.SIGTERM, None)
        else:  # SIG_DFL: end the process as SIGTERM does
            signal.raise_signal(signal.SIGTERM)


class TrainingStopped(RuntimeError):
    """Raised by :func:`train` after it saved its resume state on SIGTERM when the previous
    SIGTERM handler did not end the process; rerunning the same call resumes."""


def _rng_state(dev: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if dev.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(dev)
    return state


def _set_rng_state(state: dict[str, Any], dev: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if dev.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], dev)


def train(
    config: TrainConfig,
    train_data: Dataset,
    test_data: Dataset | None = None,
    *,
    device: str | torch.device | None = "auto",
    store: ArtifactStore | str | None = None,
    progress: bool = True,
    retrain: bool = False,
    profile: str | None = None,
    checkpoint: Checkpointing | None = Checkpointing(),
    deterministic: bool = True,
) -> TrainResult:
    """Train ``config`` on ``train_data`` (FAT §V recipe at the config's sizes), or reuse the
    stored artifact whose key covers the config and the training data's fingerprint.

    Seeded and repeatable: with ``deterministic`` (the default, the book's;
    :func:`!fatlib.core.torch_utils.deterministic_algorithms`) the same seed on the same kind of
    device and thread count gives the same weights. Returns the model in eval mode with its
    metrics (test accuracy in percent, learning curve, training throughput in images/s, the
    device and thread count that produced the weights, and ``deterministic``). While it runs,
    its resume state is saved in the store as ``checkpoint`` says (None: never) and a restart
    continues from it; the store is checked writable before any work."""
    from fatlib.core.torch_utils import deterministic_algorithms

    with deterministic_algorithms(deterministic) as det:
        return _train(
            config, train_data, test_data, device, store, progress, retrain, profile, checkpoint, det
        )


def _train(
    config: TrainConfig,
    train_data: Dataset,
    test_data: Dataset | None,
    device: str | torch.device | None,
    store: ArtifactStore | str | None,
    progress: bool,
    retrain: bool,
    profile: str | None,
    checkpoint: Checkpointing | None,
    deterministic: bool,
) -> TrainResult:
    if isinstance(store, (str, os.PathLike)):
        store = ArtifactStore(store)
    store = store if store is not None else ArtifactStore()
    dev = resolve_device(device)
    key_config = {**config.to_dict(), "train_data": data_fingerprint(train_data)}
    stored = store.exists(key_config) and not retrain
    if work.planning() and (work.listing() or not stored):
        raise work.Planned(_train_need(config, key_config, store, len(train_data), stored))  # type: ignore[arg-type]
    if stored:
        return _reuse(store, key_config, dev)
    check_writable(store.root, "artifact store")
    # one process trains a key; another that wants it waits, then reuses it (issue #15)
    with writer_lock(store.path(key_config)):
        if store.exists(key_config) and not retrain:
            return _reuse(store, key_config, dev)
        return _train_new(
            config,
            train_data,
            test_data,
            dev,
            store,
            key_config,
            progress,
            profile,
            checkpoint,
            retrain,
            deterministic,
        )


def _reuse(store: ArtifactStore, key_config: dict[str, Any], dev: torch.device) -> TrainResult:
    model, metrics = store.load(key_config, device=dev)
    return TrainResult(
        model,
        key_config,
        metrics,
        store.path(key_config),
        reused=True,
        history=list(metrics.get("history", [])),
    )


def _train_need(
    config: TrainConfig, key_config: dict[str, Any], store: ArtifactStore, n_train: int, stored: bool
) -> dict[str, Any]:
    """What plan mode reports of a training (:mod:`fatlib.core.work`)."""
    bits = (
        f"W{config.weight_bits}A{config.act_bits}"
        if config.weight_bits is not None and config.act_bits is not None
        else ""
    )
    return {
        "kind": "train",
        "train_key": store.path(key_config).name,
        "stored": stored,
        "network": f"{config.arch.upper()}{bits}",
        "dataset": config.dataset,
        "scheme": config.scheme if bits else "standard",  # float networks (FT-DeepNets): plain training
        "p": config.p,
        "seed": config.seed,
        "epochs": config.epochs,
        "train_image_epochs": int(n_train) * int(config.epochs),
    }


def _train_new(
    config: TrainConfig,
    train_data: Dataset,
    test_data: Dataset | None,
    dev: torch.device,
    store: ArtifactStore,
    key_config: dict[str, Any],
    progress: bool,
    profile: str | None,
    checkpoint: Checkpointing | None,
    retrain: bool,
    deterministic: bool,
) -> TrainResult:
    from tqdm import tqdm

    from fatlib.fat.injection import TrainingScheme

    torch.manual_seed(config.seed)
    model = build_from_config(key_config).to(dev)
    scheme = TrainingScheme.attach(model, config)
    gen = torch.Generator().manual_seed(config.seed)
    if config.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
    else:
        opt = torch.optim.SGD(
            model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.lr_milestones:
        sched: Any = torch.optim.lr_scheduler.MultiStepLR(
            opt, milestones=list(config.lr_milestones), gamma=config.lr_gamma
        )
    else:
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=config.lr_step, gamma=config.lr_gamma)
    loss_fn = sqr_hinge_loss if config.loss == "sqr_hinge" else nn.functional.cross_entropy
    if isinstance(train_data, ArrayDataset):
        train_data = replace(train_data, augment=config.augment)
    history: list[dict[str, Any]] = []
    seen, busy = 0, 0.0
    start_epoch, start_batch, order = 0, 0, None
    totals = (0.0, 0, 0)  # running loss sum, correct, count of the epoch in progress
    resumes: list[dict[str, Any]] = []
    resumed = store.load_resume_state(key_config) if checkpoint is not None and not retrain else None
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        opt.load_state_dict(resumed["optimizer"])
        sched.load_state_dict(resumed["scheduler"])
        gen.set_state(resumed["generator"])
        _set_rng_state(resumed["rng"], dev)
        history, seen, busy = list(resumed["history"]), int(resumed["seen"]), float(resumed["busy"])
        start_epoch, start_batch, order = int(resumed["epoch"]), int(resumed["batch"]), resumed["order"]
        totals = tuple(resumed["totals"])
        resumes = list(resumed["resumes"]) + [
            {
                "epoch": start_epoch,
                "batch": start_batch,
                "threads": torch.get_num_threads(),
                "device": str(dev),
            }
        ]

    def save_state(epoch: int, batch: int, epoch_order: torch.Tensor | None, running: tuple) -> None:
        """The resume state after ``batch`` batches of ``epoch`` (0-based; batch 0: at its start)."""
        store.save_resume_state(
            key_config,
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "generator": gen.get_state(),
                "rng": _rng_state(dev),
                "epoch": epoch,
                "batch": batch,
                "order": epoch_order,
                "active_site": scheme.active_site,
                "totals": list(running),
                "history": history,
                "seen": seen,
                "busy": busy,
                "resumes": resumes,
                "threads": torch.get_num_threads(),
                "device": str(dev),
            },
        )

    start = time.perf_counter()
    last_save = time.monotonic()
    bar = tqdm(range(start_epoch, config.epochs), desc=config.label, disable=not progress, leave=False)
    stopped = False  # by SIGTERM, after saving the resume state
    with _Sigterm(checkpoint is not None and checkpoint.on_sigterm) as sigterm:
        for epoch in bar:
            model.train()
            mid_epoch = resumed is not None and epoch == start_epoch and start_batch > 0
            scheme.on_epoch(epoch, gen, active_site=resumed["active_site"] if mid_epoch else None)
            total_loss, correct, count = totals if mid_epoch else (0.0, 0, 0)
            first = start_batch if mid_epoch else 0
            if isinstance(train_data, ArrayDataset) and not mid_epoch:
                order = _epoch_order(train_data, True, gen)
            t0 = time.perf_counter()
            batches = _batches(train_data, config.batch_size, True, gen, dev, order=order, start=first)
            for b, (x, y) in enumerate(batches, start=first):
                out = model(x)
                loss = loss_fn(out, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if config.clip_weights:
                    clip_weights(model)
                total_loss += loss.item() * len(y)
                correct += int((out.argmax(1) == y).sum())
                count += len(y)
                if checkpoint is not None and isinstance(train_data, ArrayDataset):
                    due = sigterm.seen or time.monotonic() - last_save >= checkpoint.every_seconds
                    due = due or (
                        checkpoint.every_batches is not None and (b + 1) % checkpoint.every_batches == 0
                    )
                    if due and (b + 1) * config.batch_size < len(train_data):  # mid-epoch only
                        busy += time.perf_counter() - t0
                        t0 = time.perf_counter()
                        save_state(epoch, b + 1, order, (total_loss, correct, count))
                        last_save = time.monotonic()
                        if sigterm.seen:
                            stopped = True
                            break
            if stopped:
                break  # mid-epoch, state saved
            busy += time.perf_counter() - t0
            seen += count
            lr = opt.param_groups[0]["lr"]
            sched.step()
            scheme.on_eval()
            row = {
                "epoch": epoch + 1,
                "loss": total_loss / count,
                "train_accuracy": 100.0 * correct / count,
                "lr": lr,
                "active_site": scheme.active_site,
            }
            if test_data is not None:
                row["test_accuracy"] = evaluate(model, test_data, device=dev)
            history.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", test=f"{row.get('test_accuracy', float('nan')):.1f}")
            if checkpoint is not None and epoch + 1 < config.epochs:
                due = sigterm.seen or (epoch + 1) % checkpoint.every_epochs == 0
                if due or time.monotonic() - last_save >= checkpoint.every_seconds:
                    save_state(epoch + 1, 0, None, (0.0, 0, 0))
                    last_save = time.monotonic()
                if sigterm.seen:
                    stopped = True
                    break
    if stopped:
        bar.close()
        sigterm.deliver()
        raise TrainingStopped(
            f"training of {config.label} stopped on SIGTERM; its state is saved in "
            f"{store.resume_path(key_config)}: run the same call again to resume"
        )
    scheme.on_eval()
    model.eval()
    metrics: dict[str, Any] = {
        "test_accuracy": history[-1].get("test_accuracy") if history else None,
        "train_accuracy": history[-1]["train_accuracy"],
        "history": history,
        "images_per_second": seen / busy if busy > 0 else None,
        "seconds": time.perf_counter() - start,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "deterministic": bool(deterministic),
        "torch": torch.__version__,
        "resumes": resumes,
        "profile": profile,
        "train_source": getattr(train_data, "source", type(train_data).__name__),
        "test_source": getattr(test_data, "source", None) if test_data is not None else None,
        "test_size": len(test_data) if test_data is not None else None,  # type: ignore[arg-type]
    }
    path = store.save(key_config, scheme.export(model), metrics)
    # the model and metrics as stored: a fresh training returns what a reuse returns (same key
    # order of the metrics, e.g. the columns of a learning curve, on a cold and a warm run)
    final, metrics = store.load(key_config, device=dev)
    sigterm.deliver()  # a SIGTERM during the last epoch: handed on once the artifact is saved
    return TrainResult(
        final, key_config, metrics, path, reused=False, history=list(metrics.get("history", []))
    )


def cnv_config(
    profile: str | Profile,
    weight_bits: int,
    act_bits: int,
    dataset: str = "cifar10",
    scheme: str = SAT,
    pattern: str | None = None,
    p: float = 0.0,
    seed: int = 0,
    num_classes: int | None = None,
) -> TrainConfig:
    """The FAT §V training config of CNV W\\ *w*\\ A\\ *a* at the sizes of ``profile``: the paper's
    optimizer, loss and schedule (learning rate halved every 40 epochs, so a short run trains at
    the initial rate); epochs, data and width from the profile."""
    prof = get_profile(profile)
    epochs = prof.cnv_epochs(weight_bits, act_bits)
    from fatlib.core.data import DATASETS

    if num_classes is None:
        num_classes = DATASETS[dataset][0] if dataset in DATASETS else 10
    return TrainConfig(
        arch="cnv",
        dataset=dataset,
        num_classes=num_classes,
        weight_bits=weight_bits,
        act_bits=act_bits,
        width=prof.cnv_width,
        epochs=epochs,
        batch_size=prof.batch_size,
        lr_step=40,
        train_size=prof.train_size,
        seed=seed,
        scheme=scheme,
        pattern=pattern,
        p=p,
    )


@work.unit
def train_cnv(
    profile: str | Profile,
    weight_bits: int,
    act_bits: int,
    dataset: str = "cifar10",
    scheme: str = SAT,
    pattern: str | None = None,
    p: float = 0.0,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = "auto",
    store: ArtifactStore | str | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train (or reuse) CNV W\\ *w*\\ A\\ *a* with ``scheme`` at ``profile``'s sizes on ``dataset``
    — the one call the notebooks make. The test accuracy is on the profile's test split."""
    prof = get_profile(profile)
    train_ds = profile_dataset(dataset, "train", prof, data_dir=data_dir, seed=seed)
    test_ds = profile_dataset(dataset, "test", prof, data_dir=data_dir, seed=seed)
    config = cnv_config(
        prof,
        weight_bits,
        act_bits,
        dataset=dataset,
        scheme=scheme,
        pattern=pattern,
        p=p,
        seed=seed,
        num_classes=train_ds.num_classes,
    )
    return train(config, train_ds, test_ds, device=device, store=store, progress=progress, profile=prof.name)


#: FT-DeepNets stand-ins (fatlib.core.models): the classification networks trained for its chapter
FTD_ARCHS = ("vgg16", "mobilenet_v1")


def ftd_config(
    profile: str | Profile, arch: str, dataset: str = "cifar10", seed: int = 0, num_classes: int | None = None
) -> TrainConfig:
    """Training config of an FT-DeepNets stand-in (VGG-16 or MobileNetV1, CIFAR variants) at the
    sizes of ``profile``. FT-DeepNets trained detection networks (§4.1), whose recipe does not
    carry over; this is the standard CIFAR recipe: SGD with momentum 0.9, weight decay 5e-4,
    cross-entropy, learning rate 0.05 divided by 5 at a third and two thirds of the epochs,
    crop + flip augmentation, float weights (no clipping)."""
    if arch not in FTD_ARCHS:
        raise ValueError(f"arch={arch!r}: use one of {FTD_ARCHS}")
    prof = get_profile(profile)
    from fatlib.core.data import DATASETS

    if num_classes is None:
        num_classes = DATASETS[dataset][0] if dataset in DATASETS else 10
    epochs = prof.ftd_epochs
    return TrainConfig(
        arch=arch,
        dataset=dataset,
        num_classes=num_classes,
        weight_bits=None,
        act_bits=None,
        width=prof.ftd_width,
        epochs=epochs,
        batch_size=prof.batch_size,
        optimizer="sgd",
        lr=0.05,
        lr_step=max(1, epochs // 3),
        lr_gamma=0.2,
        momentum=0.9,
        weight_decay=5e-4,
        loss="cross_entropy",
        clip_weights=False,
        train_size=prof.train_size,
        seed=seed,
    )


@work.unit
def train_ftd(
    profile: str | Profile,
    arch: str,
    dataset: str = "cifar10",
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = "auto",
    store: ArtifactStore | str | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train (or reuse) an FT-DeepNets stand-in (``"vgg16"`` or ``"mobilenet_v1"``) at
    ``profile``'s sizes — the call the FT-DeepNets notebooks make."""
    prof = get_profile(profile)
    train_ds = profile_dataset(dataset, "train", prof, data_dir=data_dir, seed=seed)
    test_ds = profile_dataset(dataset, "test", prof, data_dir=data_dir, seed=seed)
    config = ftd_config(prof, arch, dataset=dataset, seed=seed, num_classes=train_ds.num_classes)
    return train(config, train_ds, test_ds, device=device, store=store, progress=progress, profile=prof.name)


def dorefa_config(
    profile: str | Profile,
    scheme: str = SAT,
    p: float = 0.0,
    seed: int = 0,
    num_classes: int = 1000,
    dataset: str = "imagenet",
    pattern: str | None = None,
) -> TrainConfig:
    """Training config of DoReFa-Net's AlexNet W1A2 (FAT Table II, Fig. 8) at the sizes of
    ``profile``. The recipe is DoReFa-Net's own (tensorpack ``examples/DoReFa-Net/alexnet-dorefa.py``,
    which FAT used): Adam with learning rate 1e-4 (tensorpack's epsilon 1e-5 is not kept),
    cross-entropy, batch 128, 100 epochs with the rate multiplied by 0.2 at epochs 56 and 64 —
    here at the same fractions (0.56, 0.64) of the profile's epochs. Not kept: tensorpack's
    weight decay of 5e-6 on the FC weights. Latent weights are clipped to [-1, 1] as for CNV.
    FAT schemes inject with ``pattern`` (default ``"channel"``, FAT's model for Fig. 8)."""
    prof = get_profile(profile)
    if scheme in FAT_SCHEMES and pattern is None:
        pattern = CHANNEL
    epochs = prof.dorefa_epochs
    milestones = tuple(sorted({max(1, round(f * epochs)) for f in (0.56, 0.64)}))
    return TrainConfig(
        arch="dorefa-alexnet",
        dataset=dataset,
        num_classes=num_classes,
        weight_bits=1,
        act_bits=2,
        width=prof.dorefa_width,
        epochs=epochs,
        batch_size=prof.dorefa_batch_size,
        optimizer="adam",
        lr=1e-4,
        lr_step=max(1, epochs),
        lr_gamma=0.2,
        lr_milestones=milestones,
        weight_decay=0.0,
        loss="cross_entropy",
        clip_weights=True,
        augment=True,
        train_size=prof.dorefa_train_size,
        seed=seed,
        scheme=scheme,
        pattern=pattern if scheme in FAT_SCHEMES else None,
        p=p,
    )
