"""Plan mode and the store under concurrent writers (issue #15): what a page needs is found by
the library calls the page makes; several processes share one store safely."""

from __future__ import annotations

import functools
import json
import os
import pickle
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from helpers import tiny_config

from fatlib.core import data, training, work
from fatlib.core.files import writer_lock
from fatlib.core.store import ArtifactStore

ROOT = Path(__file__).resolve().parents[2]


def _train(store: Path, seed: int = 0) -> training.TrainResult:
    return training.train(
        tiny_config(seed=seed, epochs=1),
        data.synthetic_dataset(n=64, seed=0),
        None,
        store=store,
        progress=False,
    )


@work.unit
def _evaluate(store: str, seed: int) -> float:
    """A unit as the library's are: a training (and what follows it)."""
    return float(_train(Path(store), seed).metrics["train_accuracy"])


def _artifacts(store: Path) -> list[str]:
    return [e["key"] for e in ArtifactStore(store).entries()]


def test_outside_plan_mode_gather_is_a_plain_loop(tmp_path, monkeypatch):
    monkeypatch.delenv(work.PLAN_ENV, raising=False)
    order: list[int] = []
    out = work.gather([lambda i=i: order.append(i) or i * i for i in range(4)])
    assert out == [0, 1, 4, 9] and order == [0, 1, 2, 3] and not work.planning()
    assert _evaluate(str(tmp_path), 0) == _evaluate(str(tmp_path), 0)  # the unit is the plain call
    assert len(_artifacts(tmp_path)) == 1


def test_plan_mode_stops_for_a_missing_training_and_writes_nothing(tmp_path):
    store = tmp_path / "store"
    with work.plan_mode(tmp_path / "plan"):
        with pytest.raises(work.Planned) as info:
            _train(store)
    need = info.value.need
    assert need["kind"] == "train" and need["stored"] is False and need["network"] == "CNVW1A2"
    assert need["train_image_epochs"] == 64 and need["seed"] == 0
    assert _artifacts(store) == []  # nothing trained, nothing half-written
    trained = _train(store)  # plan mode off again
    with work.plan_mode(tmp_path / "plan"):
        again = _train(store)  # "missing": a stored training is simply reused
        assert again.reused and torch.equal(
            next(iter(again.model.state_dict().values())), next(iter(trained.model.state_dict().values()))
        )
    with work.plan_mode(tmp_path / "plan", mode="list"), pytest.raises(work.Planned) as info:
        _train(store)  # "list" (fatlib plan): every training is reported, stored or not
    assert info.value.need["stored"] is True
    assert info.value.need["train_key"] == Path(trained.path).name


def test_a_batch_is_planned_at_once_and_its_units_run_anywhere(tmp_path):
    store = tmp_path / "store"
    _train(store, seed=1)  # one of the three is in the store already
    plan = tmp_path / "plan"
    calls = [functools.partial(_evaluate, str(store), s) for s in (0, 1, 2)]
    with work.plan_mode(plan), pytest.raises(work.Planned) as info:
        work.gather(calls)
    units = work.load_units(plan)
    assert [u.kwargs or u.args for u in units] == [(str(store), 0), (str(store), 2)]
    assert [u.key for u in info.value.units] == [u.key for u in units]
    assert all(u.function.endswith(":_evaluate") for u in units)  # the outermost call, not train()
    assert units[0].need["kind"] == "train" and units[0].train_key
    assert units[0].key == pickle.loads(pickle.dumps(units[0])).key  # picklable for workers
    assert units[0].key != units[1].key
    with work.plan_mode(plan):  # a worker runs a unit with plan mode off for the call
        for u in units:
            u.run()
        assert work.gather(calls) == [_evaluate(str(store), s) for s in (0, 1, 2)]
    assert len(_artifacts(store)) == 3


def test_recording_deduplicates_and_nested_batches_record_once(tmp_path):
    store, plan = tmp_path / "store", tmp_path / "plan"
    inner = functools.partial(work.gather, [functools.partial(_evaluate, str(store), 0)])
    with work.plan_mode(plan):
        for _ in range(2):
            with pytest.raises(work.Planned):
                work.gather([inner, functools.partial(_evaluate, str(store), 0)])
    assert len(work.load_units(plan)) == 1


def test_plan_mode_stops_for_a_missing_campaign(tmp_path):
    from fatlib.fat.campaign import stuck_at_campaign

    model = _train(tmp_path / "store").model
    images = data.synthetic_dataset(n=20, seed=1)
    batch = (images.images.float().div(255.0), images.labels)
    folder = tmp_path / "campaign"
    kw = dict(pattern="channel", layers=[0], store=folder, progress=False, outcomes=True)
    with work.plan_mode(tmp_path / "plan"), pytest.raises(work.Planned) as info:
        stuck_at_campaign(model, batch, **kw)
    assert info.value.need == {"kind": "campaign", "stored": False, "campaign": "channel", "sample": None}
    assert not folder.exists()
    done = stuck_at_campaign(model, batch, **kw)
    with work.plan_mode(tmp_path / "plan"):
        assert stuck_at_campaign(model, batch, **kw).equals(done)


def test_bad_plan_mode_is_refused(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="mode='all'"):
        with work.plan_mode(tmp_path, mode="all"):
            pass
    monkeypatch.setenv(work.PLAN_ENV, str(tmp_path))
    monkeypatch.setenv(work.PLAN_MODE_ENV, "everything")
    with pytest.raises(ValueError, match="FATLIB_PLAN_MODE='everything'"):
        work.listing()


# ------------------------------------------------------------------------------------------
# the store under concurrent writers
# ------------------------------------------------------------------------------------------

_HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from fatlib.core.files import writer_lock
    with writer_lock({path!r}):
        open({log!r}, "a").write("A in\\n")
        time.sleep({hold})
        open({log!r}, "a").write("A out\\n")
""")


def _holder(tmp_path: Path, path: Path, log: Path, hold: float) -> subprocess.Popen:
    script = tmp_path / "holder.py"
    script.write_text(_HOLDER.format(root=str(ROOT), path=str(path), log=str(log), hold=hold))
    proc = subprocess.Popen([sys.executable, str(script)])
    lock = path.parent / f".{path.name}.lock"
    deadline = time.monotonic() + 30
    while not lock.exists():
        assert time.monotonic() < deadline and proc.poll() is None, "holder did not take the lock"
        time.sleep(0.02)
    return proc


def test_a_writer_waits_for_the_holder_of_the_lock(tmp_path):
    target, log = tmp_path / "artifact", tmp_path / "log"
    proc = _holder(tmp_path, target, log, hold=1.5)
    told = []
    with writer_lock(target, log=told.append):
        log.open("a").write("B in\n")
    proc.wait(timeout=30)
    assert log.read_text().splitlines() == ["A in", "A out", "B in"]
    assert told and "waiting for" in told[0] and str(proc.pid) in told[0]
    assert not (tmp_path / ".artifact.lock").exists()


def test_a_lock_left_by_a_killed_holder_is_taken_over(tmp_path):
    target, log = tmp_path / "artifact", tmp_path / "log"
    proc = _holder(tmp_path, target, log, hold=60)
    proc.kill()
    proc.wait()
    start = time.monotonic()
    with writer_lock(target):  # dead pid on this host: no need to wait for staleness
        pass
    assert time.monotonic() - start < 5
    # a holder on another host that stopped refreshing: stale after stale_after seconds
    lock = tmp_path / ".artifact.lock"
    lock.write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    with pytest.raises(TimeoutError, match="elsewhere"):
        with writer_lock(target, timeout=0.3, poll=0.05):
            pass
    old = time.time() - 1000
    os.utime(lock, (old, old))
    with writer_lock(target, stale_after=120):
        assert json.loads(lock.read_text())["pid"] == os.getpid()


_TRAINER = textwrap.dedent("""
    import json, sys, torch
    sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
    from helpers import tiny_config
    from fatlib.core import data, training
    torch.set_num_threads(1)
    res = training.train(tiny_config(epochs=2), data.synthetic_dataset(n=96, seed=0), None,
                         store={store!r}, progress=False)
    print(json.dumps({{"reused": res.reused, "acc": res.metrics["train_accuracy"]}}))
""")


def test_two_processes_wanting_one_training_train_it_once(tmp_path):
    store = tmp_path / "store"
    script = tmp_path / "trainer.py"
    script.write_text(_TRAINER.format(root=str(ROOT), tests=str(ROOT / "tests" / "unit"), store=str(store)))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE) for _ in range(2)
    ]
    results = [json.loads(p.communicate(timeout=300)[0].decode().strip().splitlines()[-1]) for p in procs]
    assert sorted(r["reused"] for r in results) == [False, True]
    assert results[0]["acc"] == results[1]["acc"]
    assert len(_artifacts(store)) == 1
    assert not list(store.glob(".*"))  # no lock or temporary left behind
