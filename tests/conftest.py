"""Shared fixtures. Tests never touch the user's store or cache: FATLIB_STORE points to a
temporary folder. Real data is used only where FATLIB_DATA holds it; everything else runs on tiny
synthetic data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FATLIB_STORE", str(tmp_path_factory.getbasetemp() / "store"))


@pytest.fixture
def real_data_dir() -> Path:
    """The folder holding cifar10.npz (FATLIB_DATA), or skip."""
    env = os.environ.get("FATLIB_DATA")
    if not env or not (Path(env) / "cifar10.npz").is_file():
        pytest.skip("real CIFAR-10 not available (set FATLIB_DATA to a folder with cifar10.npz)")
    return Path(env)


def pytest_report_header(config):
    return [
        f"fatlib tests: FATLIB_DATA={os.environ.get('FATLIB_DATA', '(unset)')}, "
        f"cuda={torch.cuda.is_available()}"
    ]
