"""The book's work on a Dask cluster (issue #15): a unit whose worker dies mid-training is run
again and resumes from its checkpoint, ending with the weights of an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import crash_once_training

from fatlib import cluster
from fatlib.core import work

TESTS = Path(__file__).resolve().parent


@pytest.mark.slow
def test_a_unit_whose_worker_dies_is_run_again_and_resumes(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setenv("PYTHONPATH", str(TESTS))  # the workers import the unit's module (helpers)
    store, marker = tmp_path / "store", tmp_path / "killed"
    unit = work.Unit("helpers:crash_once_training", (str(store), str(marker)), {}, {"kind": "train"})
    client, close, threads = cluster.connect(workers=1, threads=1)
    try:
        rows = cluster._run_units(client, [unit], threads, log=lambda *_: None)
        resumed = client.submit(unit.run, pure=False).result()  # now a reuse: the stored weights
    finally:
        close()
    assert marker.read_text() == "killed once" and rows[0]["key"] == unit.key
    assert resumed["resumes"] >= 1  # it continued from the state the killed worker saved
    reference = crash_once_training(str(tmp_path / "reference"), str(marker))  # uninterrupted
    assert reference["resumes"] == 0
    for name, value in reference["state"].items():
        assert torch.equal(value, resumed["state"][name]), name
    assert not list(store.glob(".*.lock"))  # the dead worker's lock was taken over and released


@pytest.mark.slow
def test_a_running_scheduler_is_used_by_its_address(tmp_path):
    """``--scheduler ADDRESS``: the runner connects to a cluster somebody else started (and leaves
    it running when done)."""
    distributed = pytest.importorskip("distributed")
    unit = work.Unit("os.path:join", (str(tmp_path), "x"), {}, {"kind": "train"})
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as running:
        client, close, _ = cluster.connect(scheduler=running.scheduler_address)
        try:
            rows = cluster._run_units(client, [unit], None, log=lambda *_: None)
        finally:
            close()
        assert rows[0]["key"] == unit.key and rows[0]["worker"] != ""
        assert running.status.name == "running"
    with pytest.raises(ValueError, match="at least 1 worker"):
        cluster.connect(workers=0)
