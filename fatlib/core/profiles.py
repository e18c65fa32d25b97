"""Scale profiles: one registry, the same code path at every scale.

A profile changes **sizes only** — epochs, how much of the data, number of seeds, network width,
how many faults a campaign samples, how many images a campaign evaluates. It never changes logic.

* ``smoke`` — CI: seconds per notebook on tiny data (falls back to synthetic data when the real
  data is absent, and says so).
* ``cpu`` — the default of ``make book``: the whole book on a 2-core machine in at most 120 minutes.
* ``paper`` — the papers' hyper-parameters (FAT §V: 1000 epochs for W1A1, 500 otherwise, batch
  100, full data, width 1, exhaustive campaigns; DoReFa-Net: its own ImageNet recipe); meant for
  GPUs.

The FT-DeepNets chapter's sweep sizes (test images per evaluation, error rates on the x axes,
latency budget) are part of each profile too: :class:`SweepSizes`, in :attr:`Profile.ftd_sweep`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["Profile", "PROFILES", "get_profile", "SweepSizes"]


def _count(n: int | None, when_none: str, unit: str = "") -> str:
    """``n`` with thousands separators and ``unit``, or ``when_none`` (for :meth:`Profile.describe`)."""
    return when_none if n is None else f"{n:,}{unit}"


@dataclass(frozen=True)
class SweepSizes:
    """Sizes of the FT-DeepNets sweeps at one scale profile (FTD §4: the rates and seeds of Fig. 2,
    6 and 7, the evaluation and ranking images, Table 1's timing budget); read them with
    :func:`fatlib.ftd.experiments.sweep_sizes`, which takes ``seeds`` from the profile."""

    #: test images per evaluation (None: the profile's whole test split)
    eval_images: int | None
    #: training images read by the data-driven rankings (second-order, entropy; §3.1)
    rank_images: int
    #: error seeds (FTD §4: three seeds of the error draws)
    seeds: int
    #: error rates of Fig. 2 (kernel errors, feature-map errors), 0 included
    location_rates: tuple[float, ...]
    #: feature-map error rates of Fig. 6 and Fig. 7(a) (paper: 1 % to 10 %)
    fmap_rates: tuple[float, ...]
    #: weight error rates of Fig. 7(b)
    weight_rates: tuple[float, ...]
    #: images per forward call (each call draws fresh transient errors)
    batch_size: int
    #: :func:`fatlib.ftd.overhead.measure_latency` budget per model and round, and rounds
    latency_min_run_time: float
    latency_rounds: int

    def seed_list(self, seed: int = 0) -> list[int]:
        """The error seeds ``seed, seed + 1, ...`` (``seeds`` of them)."""
        return [int(seed) + i for i in range(self.seeds)]

    def describe(self) -> str:
        """One line for the pages."""
        ev = "all" if self.eval_images is None else f"{self.eval_images:,}"
        pct = lambda rates: ", ".join(f"{100 * r:g}" for r in rates)  # noqa: E731
        return (
            f"sweeps on {ev} test images in batches of {self.batch_size} (fresh errors per "
            f"batch), {self.seeds} error seed(s); rankings read {self.rank_images:,} training "
            f"images; Fig. 2 rates {pct(self.location_rates)} %, feature-map rates "
            f"{pct(self.fmap_rates)} %, weight rates {pct(self.weight_rates)} %"
        )


@dataclass(frozen=True)
class Profile:
    """Sizes of one scale profile (see module docstring)."""

    name: str
    #: CNV channel multiplier (1.0 is the papers' CNV).
    cnv_width: float
    #: training epochs for CNV W1A1 and for every other precision (FAT §V: 1000 and 500).
    epochs_w1a1: int
    epochs_other: int
    #: training images used (None: all of them) and test images evaluated (None: all).
    train_size: int | None
    test_size: int | None
    #: mini-batch size (FAT §V: 100).
    batch_size: int
    #: repetitions with different seeds (FT-DeepNets Fig. 6: 3).
    seeds: int
    #: faults evaluated per campaign (None: exhaustive, Algorithm 1).
    campaign_faults: int | None
    #: width multiplier and epochs of the FT-DeepNets stand-ins (VGG-16, MobileNetV1).
    ftd_width: float
    ftd_epochs: int
    #: whether synthetic data may stand in when the real data is absent (smoke only).
    allow_synthetic: bool = False
    #: test images a same-pixel campaign (Table IV) evaluates: a seeded stratified subset of the
    #: test split (None: all of it). Every position of every level is still tried.
    pixel_campaign_images: int | None = None
    #: DoReFa-Net AlexNet on ImageNet (FAT Table II, Fig. 8): channel multiplier, square image
    #: side in pixels, epochs, batch size, training / test images (None: all of ImageNet's
    #: train / val), faults sampled per campaign (None: exhaustive). The paper values follow
    #: DoReFa-Net's recipe (tensorpack ``alexnet-dorefa.py``: 224×224 crops, batch 128, 100
    #: epochs of 10,000 steps ≈ 1.28 M images each, i.e. ~100 ImageNet epochs).
    dorefa_width: float = 1.0
    dorefa_image_size: int = 224
    dorefa_epochs: int = 100
    dorefa_batch_size: int = 128
    dorefa_train_size: int | None = None
    dorefa_test_size: int | None = None
    dorefa_campaign_faults: int | None = None
    #: the synthetic ImageFolder that stands in for ImageNet where that is allowed (smoke):
    #: classes and training / test images per class
    dorefa_synthetic_classes: int = 8
    dorefa_synthetic_per_class: int = 32
    dorefa_synthetic_val_per_class: int = 8
    #: sizes of the FT-DeepNets sweeps (None, for a profile built outside :data:`PROFILES`: the
    #: smoke sizes when its test split is at most 256 images, else the cpu sizes; see
    #: :func:`fatlib.ftd.experiments.sweep_sizes`)
    ftd_sweep: SweepSizes | None = None
    #: the QONNX export check (beyond the papers, :func:`fatlib.fat.experiments.export_check`):
    #: test images the exported graph and the torch model are compared on (None: all), and the
    #: faults per pattern (channel, pixel) replayed in the graph
    export_images: int | None = 64
    export_faults: int = 10
    #: trainings (seeds) behind each network of the FAT comparisons — SAT vs FAT, FAT vs
    #: Dropout2D, method 1 vs method 2 — whose spread enters the verdicts' intervals
    #: (:mod:`fatlib.core.verdicts`); the cpu profile keeps one to stay within its 120 minutes
    fat_seeds: int = 1

    def cnv_epochs(self, weight_bits: int, act_bits: int) -> int:
        """Epochs for CNV W\\ *w*\\ A\\ *a* (FAT §V: W1A1 trains twice as long)."""
        return self.epochs_w1a1 if (weight_bits, act_bits) == (1, 1) else self.epochs_other

    def describe(self) -> str:
        """One line saying what this profile changes, for the book's pages."""
        tr, te = _count(self.train_size, "all"), _count(self.test_size, "all")
        camp = _count(self.campaign_faults, "exhaustive", " sampled faults")
        pix = (
            ""
            if self.pixel_campaign_images is None
            else f" (same-pixel campaigns on {self.pixel_campaign_images:,} of the test images)"
        )
        return (
            f"profile `{self.name}`: CNV width {self.cnv_width}, {self.epochs_w1a1} epochs (W1A1) / "
            f"{self.epochs_other} (others), {tr} training and {te} test images, batch "
            f"{self.batch_size}, {self.fat_seeds} training seed(s) per FAT network, campaigns "
            f"{camp}{pix}; FT-DeepNets networks "
            f"width {self.ftd_width}, {self.ftd_epochs} epochs"
        )

    def describe_dorefa(self) -> str:
        """One line saying what this profile changes for DoReFa-Net on ImageNet (FAT Fig. 8)."""
        tr, te = _count(self.dorefa_train_size, "all"), _count(self.dorefa_test_size, "all")
        camp = _count(self.dorefa_campaign_faults, "exhaustive", " sampled faults")
        return (
            f"profile `{self.name}`: DoReFa-AlexNet width {self.dorefa_width}, "
            f"{self.dorefa_image_size}×{self.dorefa_image_size} images, {self.dorefa_epochs} "
            f"epoch(s), batch {self.dorefa_batch_size}, {tr} training and {te} validation "
            f"images, campaigns {camp}"
        )

    def to_dict(self) -> dict:
        """The profile's own sizes, one flat row (the book's table of profiles); the nested
        FT-DeepNets sweep sizes (:attr:`ftd_sweep`) are left out."""
        out = asdict(self)
        del out["ftd_sweep"]
        return out


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        "smoke",
        cnv_width=0.125,
        epochs_w1a1=1,
        epochs_other=1,
        train_size=256,
        test_size=128,
        batch_size=64,
        seeds=1,
        campaign_faults=24,
        ftd_width=0.125,
        ftd_epochs=1,
        allow_synthetic=True,
        dorefa_width=0.0625,
        dorefa_image_size=64,
        dorefa_epochs=4,
        dorefa_batch_size=16,
        dorefa_train_size=256,
        dorefa_test_size=64,
        dorefa_campaign_faults=48,
        ftd_sweep=SweepSizes(
            eval_images=None,
            rank_images=64,
            seeds=1,
            location_rates=(0.0, 0.01, 0.1),
            fmap_rates=(0.01, 0.1),
            weight_rates=(0.01, 0.1),
            batch_size=64,
            latency_min_run_time=0.02,
            latency_rounds=1,
        ),
    ),
    "cpu": Profile(
        "cpu",
        cnv_width=0.25,
        epochs_w1a1=8,
        epochs_other=6,
        train_size=10000,
        test_size=2000,
        batch_size=100,
        seeds=3,
        campaign_faults=None,
        pixel_campaign_images=500,
        export_images=300,
        export_faults=50,
        ftd_width=0.25,
        ftd_epochs=6,
        dorefa_width=0.25,
        dorefa_image_size=96,
        dorefa_epochs=2,
        dorefa_batch_size=128,
        dorefa_train_size=10000,
        dorefa_test_size=500,
        dorefa_campaign_faults=200,
        ftd_sweep=SweepSizes(
            eval_images=1000,
            rank_images=500,
            seeds=3,
            location_rates=(0.0, 0.01, 0.02, 0.05, 0.1),
            fmap_rates=(0.01, 0.05, 0.1),
            weight_rates=(0.01, 0.05, 0.1),
            batch_size=100,
            latency_min_run_time=0.5,
            latency_rounds=3,
        ),
    ),
    "paper": Profile(
        "paper",
        cnv_width=1.0,
        epochs_w1a1=1000,
        epochs_other=500,
        train_size=None,
        test_size=None,
        batch_size=100,
        seeds=3,
        campaign_faults=None,
        export_images=None,
        export_faults=200,
        fat_seeds=3,
        ftd_width=1.0,
        ftd_epochs=200,
        ftd_sweep=SweepSizes(
            eval_images=None,
            rank_images=1000,
            seeds=3,
            location_rates=(0.0, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1),
            fmap_rates=tuple(i / 100 for i in range(1, 11)),
            weight_rates=(0.01, 0.02, 0.05, 0.1),
            batch_size=100,
            latency_min_run_time=1.0,
            latency_rounds=5,
        ),
    ),
}


def get_profile(name: str | Profile) -> Profile:
    """The profile called ``name`` (``smoke``, ``cpu`` or ``paper``)."""
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}: use one of {sorted(PROFILES)}") from None
