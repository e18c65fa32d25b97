"""Exhaustive stuck-at campaigns on CNV — FAT Algorithm 1 (§III), Tables I–IV.

Algorithm 1 sticks, for every error value, every layer and every channel, one channel of one
activation layer at that value and measures the test accuracy; Table I lists the min / max per
layer, Tables II–IV the error-free accuracy, the overall minimum and the variance. The same-pixel
model (Fig. 2 right, Table IV) sticks one (row, col) position of all channels instead.

One module per part; everything public is importable from here:

* :mod:`~fatlib.fat.campaign.faults` — what a fault is, the fault space in canonical order
  (:func:`enumerate_faults`, :func:`default_layers`).
* :mod:`~fatlib.fat.campaign.run` — :func:`stuck_at_campaign`: exact, fast and resumable.
* :mod:`~fatlib.fat.campaign.engine` — the fast engine: CNV frozen into integers, and why it
  stays exact (:func:`suffix_macs`).
* :mod:`~fatlib.fat.campaign.generic` — the generic runner (DoReFa-AlexNet; CNV on request).
* :mod:`~fatlib.fat.campaign.reference` — :func:`naive_campaign` (per-fault re-execution) and
  :func:`golden_accuracy`.
* :mod:`~fatlib.fat.campaign.results` — result tables (:func:`save_results`,
  :func:`load_results`); :mod:`~fatlib.fat.campaign.store` — the store that never loses work.
* :mod:`~fatlib.fat.campaign.stats` — Tables I–IV (:func:`summarize`, :func:`overall`) and
  estimates from samples (:func:`estimate`, :func:`wilson_interval`).
* :mod:`~fatlib.fat.campaign.outcomes` — per-image outcomes (:func:`load_outcomes`) for the
  paired bootstrap of :mod:`fatlib.core.verdicts`.
* :mod:`~fatlib.fat.campaign.shards` — :func:`merge` of sharded runs.
* :mod:`~fatlib.fat.campaign.data` — images, model, fingerprints (:data:`DEFAULT_BATCH_SIZE`).
"""

from __future__ import annotations

from fatlib.fat.campaign.data import DEFAULT_BATCH_SIZE
from fatlib.fat.campaign.engine import suffix_macs
from fatlib.fat.campaign.faults import PATTERNS, default_layers, enumerate_faults
from fatlib.fat.campaign.outcomes import Outcomes, load_outcomes
from fatlib.fat.campaign.reference import golden_accuracy, naive_campaign
from fatlib.fat.campaign.results import PARQUET_META_KEY as PARQUET_META_KEY
from fatlib.fat.campaign.results import load_results, save_results
from fatlib.fat.campaign.run import stuck_at_campaign
from fatlib.fat.campaign.shards import merge
from fatlib.fat.campaign.stats import estimate, layer_statistics, overall, summarize, wilson_interval
from fatlib.fat.campaign.store import LOCK_FILE as LOCK_FILE
from fatlib.fat.campaign.store import MANIFEST_FILE as MANIFEST_FILE
from fatlib.fat.campaign.store import RECORDS_FILE as RECORDS_FILE
from fatlib.fat.campaign.store import RESULTS_FILE as RESULTS_FILE
from fatlib.fat.campaign.store import STORE_FORMAT as STORE_FORMAT

__all__ = [
    "PATTERNS",
    "stuck_at_campaign",
    "naive_campaign",
    "enumerate_faults",
    "default_layers",
    "golden_accuracy",
    "summarize",
    "layer_statistics",
    "overall",
    "estimate",
    "wilson_interval",
    "merge",
    "save_results",
    "load_results",
    "Outcomes",
    "load_outcomes",
    "suffix_macs",
    "DEFAULT_BATCH_SIZE",
]


def __getattr__(name: str) -> object:
    """``fatlib.fat.campaign.main`` of fatlib 0.1 is now :func:`fatlib.cli.campaign_main`."""
    if name == "main":
        from fatlib.cli import campaign_main

        return campaign_main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
