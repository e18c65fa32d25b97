"""The names of FAT's training schemes and fault patterns, spelled once.

Training schemes (FAT §IV-C, §V-D): standard quantization-aware training (``SAT``), fault-aware
training method 1 (every injection layer enabled, ``FAT_M1``) and method 2 (one random injection
layer per epoch, Algorithm 2, ``FAT_M2``), and the ``DROPOUT2D`` baseline at the same sites.
These strings are part of every training config, so of every artifact's store key: never respell
them.

Fault patterns (FAT Eq. 4–5, Fig. 2): a whole ``CHANNEL`` stuck, the same ``PIXEL`` of every
channel, or single ``ELEMENT``\\ s (training only).
"""

from __future__ import annotations

__all__ = [
    "SAT",
    "FAT_M1",
    "FAT_M2",
    "DROPOUT2D",
    "SCHEMES",
    "FAT_SCHEMES",
    "CHANNEL",
    "PIXEL",
    "ELEMENT",
    "PATTERNS",
    "scheme_label",
]

SAT, FAT_M1, FAT_M2, DROPOUT2D = "sat", "fat-m1", "fat-m2", "dropout2d"
#: every training scheme (:class:`fatlib.core.training.TrainConfig`'s ``scheme``)
SCHEMES = (SAT, FAT_M1, FAT_M2, DROPOUT2D)
#: the schemes that train with FAT's error-injection layer (they need a pattern)
FAT_SCHEMES = (FAT_M1, FAT_M2)

CHANNEL, PIXEL, ELEMENT = "channel", "pixel", "element"
#: injection patterns of FAT's error-injection layer (training)
PATTERNS = (CHANNEL, PIXEL, ELEMENT)


def scheme_label(network: str, scheme: str, p: float = 0.0, pattern: str | None = None) -> str:
    """The name the book gives a trained network, e.g. ``CNVW1A1 SAT``,
    ``CNVW1A1 FAT p=5%`` (method 2, channel injection), ``CNVW1A1 FAT-m1 p=5%``,
    ``CNVW1A1 FAT pixel p=5%``, ``CNVW1A1 Dropout2D p=5%``; ``p`` is a probability in [0, 1]."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme={scheme!r}: use one of {SCHEMES}")
    if scheme == SAT:
        return f"{network} SAT"
    kind = "Dropout2D" if scheme == DROPOUT2D else ("FAT-m1" if scheme == FAT_M1 else "FAT")
    pat = f" {pattern}" if pattern and pattern != CHANNEL else ""
    return f"{network} {kind}{pat} p={100 * p:g}%"
