"""Long runs never lose work (issue #14): training saves its resume state while it runs and a
restart continues bit-identically, also after kill -9 and SIGTERM; the store refuses corrupt or
NaN artifacts, cleans up after a killed save, and is checked writable before any work."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from helpers import tiny_config

from fatlib.core import data, store, training
from fatlib.core.training import Checkpointing, TrainConfig

ROOT = Path(__file__).resolve().parents[2]
EVERY_BATCH = Checkpointing(every_batches=1, every_seconds=1e9, every_epochs=1, on_sigterm=True)


def _config(scheme: str = "fat-m2", epochs: int = 3) -> TrainConfig:
    pattern, p = (None, 0.0) if scheme == "sat" else ("channel", 0.2)
    return tiny_config(epochs=epochs, augment=True, seed=3, scheme=scheme, pattern=pattern, p=p)


@pytest.fixture(scope="module")
def toy():
    return data.synthetic_dataset(n=160, seed=0), data.synthetic_dataset(n=64, seed=1, split="test")


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ------------------------------------------------------------------------------------------
# in-process crashes: every batch, and at epoch ends for datasets without a saved order
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("crash_at", [3, 7, 11])  # mid-epoch 1, mid-epoch 2, mid-epoch 3 (5 batches/epoch)
def test_resume_after_a_crash_is_bit_identical(toy, tmp_path, monkeypatch, crash_at):
    train_ds, test_ds = toy
    reference = training.train(
        _config(), train_ds, test_ds, store=tmp_path / "ref", progress=False, checkpoint=None
    )
    steps = {"n": 0}
    clip = training.clip_weights

    def crashing_clip(model):
        clip(model)
        steps["n"] += 1
        if steps["n"] == crash_at:
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(training, "clip_weights", crashing_clip)
    with pytest.raises(RuntimeError, match="simulated crash"):
        training.train(
            _config(), train_ds, test_ds, store=tmp_path / "s", progress=False, checkpoint=EVERY_BATCH
        )
    monkeypatch.setattr(training, "clip_weights", clip)
    key = {**_config().to_dict(), "train_data": training.data_fingerprint(train_ds)}
    state = store.ArtifactStore(tmp_path / "s").load_resume_state(key)
    assert state is not None and (state["epoch"], state["batch"]) == divmod(crash_at - 1, 5)
    resumed = training.train(
        _config(), train_ds, test_ds, store=tmp_path / "s", progress=False, checkpoint=EVERY_BATCH
    )
    _same_weights(resumed.model, reference.model)
    assert resumed.history == reference.history
    assert resumed.metrics["resumes"][0]["epoch"] == state["epoch"]
    assert not store.ArtifactStore(tmp_path / "s").resume_path(key).exists()  # the artifact replaced it


def test_checkpoints_change_nothing_in_an_uninterrupted_run(toy, tmp_path):
    train_ds, test_ds = toy
    plain = training.train(
        _config("sat"), train_ds, test_ds, store=tmp_path / "a", progress=False, checkpoint=None
    )
    saving = training.train(
        _config("sat"), train_ds, test_ds, store=tmp_path / "b", progress=False, checkpoint=EVERY_BATCH
    )
    _same_weights(plain.model, saving.model)
    assert plain.path.name == saving.path.name  # the same store key


def test_epoch_level_resume_for_other_datasets(toy, tmp_path, monkeypatch):
    """A Dataset that is not an ArrayDataset (e.g. ImageNet's ImageFolder) is checkpointed at
    epoch ends; a crash in the next epoch resumes from there, bit-identically."""
    train_ds, _ = toy
    plain = torch.utils.data.TensorDataset(train_ds.images.float() / 255, train_ds.labels)
    cfg = _config("fat-m1", epochs=3)
    reference = training.train(cfg, plain, None, store=tmp_path / "ref", progress=False, checkpoint=None)
    calls = {"n": 0}
    clip = training.clip_weights

    def crash_in_epoch_3(model):
        clip(model)
        calls["n"] += 1
        if calls["n"] == 12:  # 5 batches an epoch: the second batch of epoch 3
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(training, "clip_weights", crash_in_epoch_3)
    with pytest.raises(RuntimeError):
        training.train(cfg, plain, None, store=tmp_path / "s", progress=False, checkpoint=EVERY_BATCH)
    monkeypatch.setattr(training, "clip_weights", clip)
    resumed = training.train(cfg, plain, None, store=tmp_path / "s", progress=False, checkpoint=EVERY_BATCH)
    assert resumed.metrics["resumes"][0]["epoch"] == 2 and resumed.metrics["resumes"][0]["batch"] == 0
    _same_weights(resumed.model, reference.model)


def test_a_resume_state_of_another_config_is_refused(toy, tmp_path):
    train_ds, _ = toy
    st = store.ArtifactStore(tmp_path)
    key = {**_config().to_dict(), "train_data": training.data_fingerprint(train_ds)}
    other = {**_config("sat").to_dict(), "train_data": training.data_fingerprint(train_ds)}
    st.resume_path(key).parent.mkdir(parents=True)
    torch.save({"format": store.RESUME_FORMAT, "key": store.config_key(other)}, st.resume_path(key))
    with pytest.raises(ValueError, match="not written for this training config"):
        training.train(_config(), train_ds, None, store=tmp_path, progress=False)
    st.resume_path(key).write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"resume state .*resume.pt is unreadable"):
        training.train(_config(), train_ds, None, store=tmp_path, progress=False)


# ------------------------------------------------------------------------------------------
# real processes: kill -9 and SIGTERM
# ------------------------------------------------------------------------------------------

_CHILD = textwrap.dedent("""
    import sys, time, torch
    sys.path.insert(0, {root!r})
    from fatlib.core import data, training
    torch.set_num_threads(1)
    if {slow!r}:  # test only: slow each step down so that the parent can interrupt it
        clip = training.clip_weights
        training.clip_weights = lambda m: (clip(m), time.sleep(0.05))
    cfg = training.TrainConfig(arch="cnv", weight_bits=1, act_bits=2, width=0.125, epochs=3, batch_size=32,
                               lr=0.02, lr_step=2, augment=True, seed=3, scheme="fat-m2", pattern="channel",
                               p=0.2)
    every_batch = training.Checkpointing(every_batches=1, every_seconds=1e9, every_epochs=1)
    res = training.train(cfg, data.synthetic_dataset(n=160, seed=0), None, store={store!r}, progress=False,
                         checkpoint=every_batch)
    torch.save(res.model.state_dict(), {out!r})
""")


def _run_child(tmp_path: Path, store_dir: Path, out: Path, slow: bool) -> subprocess.Popen:
    script = tmp_path / f"child-{out.stem}.py"
    script.write_text(_CHILD.format(root=str(ROOT), store=str(store_dir), out=str(out), slow=slow))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE)


def _wait_for_state(proc: subprocess.Popen, store_dir: Path, at_least: tuple[int, int]) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        for f in store_dir.glob("*/resume.pt"):
            try:
                state = torch.load(f, weights_only=True)
            except Exception:  # renamed while we read it
                continue
            if (state["epoch"], state["batch"]) >= at_least:
                return state
        time.sleep(0.01)
    raise AssertionError(f"child ended or stalled: {proc.stderr.read().decode()[-2000:]}")


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM"])
def test_resume_after_a_real_interruption_is_bit_identical(tmp_path, how):
    ref = _run_child(tmp_path, tmp_path / "ref-store", tmp_path / "ref.pt", slow=False)
    assert ref.wait(timeout=300) == 0, ref.stderr.read().decode()[-2000:]
    ref.stderr.close()
    st = tmp_path / "store"
    proc = _run_child(tmp_path, st, tmp_path / "out.pt", slow=True)
    try:
        _wait_for_state(proc, st, at_least=(1, 2))  # in the middle of the second epoch
        os.kill(proc.pid, signal.SIGKILL if how == "kill -9" else signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == (-signal.SIGKILL if how == "kill -9" else -signal.SIGTERM)
    assert not (tmp_path / "out.pt").exists()  # it really was interrupted
    [resume] = st.glob("*/resume.pt")
    saved = torch.load(resume, weights_only=True)
    assert (saved["epoch"], saved["batch"]) >= (1, 2) and saved["epoch"] < 3
    again = _run_child(tmp_path, st, tmp_path / "out.pt", slow=False)
    assert again.wait(timeout=300) == 0, again.stderr.read().decode()[-2000:]
    again.stderr.close()
    a, b = (
        torch.load(tmp_path / "ref.pt", weights_only=True),
        torch.load(tmp_path / "out.pt", weights_only=True),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    metrics = json.loads(next(st.glob("*/metrics.json")).read_text())
    assert metrics["resumes"] and metrics["resumes"][0]["epoch"] == saved["epoch"]


# ------------------------------------------------------------------------------------------
# the store: checksums, NaN weights, half-written folders, writable, messages, umask
# ------------------------------------------------------------------------------------------


@pytest.fixture
def trained(toy, tmp_path):
    train_ds, _ = toy
    return training.train(_config("sat", epochs=1), train_ds, None, store=tmp_path / "store", progress=False)


def test_corrupt_artifact_is_refused_naming_its_folder(trained, toy):
    folder = trained.path
    st = store.ArtifactStore(folder.parent)
    assert json.loads((folder / store.CHECKSUM_FILE).read_text()).keys() == {"model.pt", "config.json"}
    blob = bytearray((folder / "model.pt").read_bytes())
    blob[-20] ^= 0xFF
    (folder / "model.pt").write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=rf"artifact {folder} is corrupt: model.pt does not match"):
        st.load(trained.config)
    with pytest.raises(
        ValueError, match="does not match its checksum"
    ):  # also through fatlib campaign's loader
        store.load_checkpoint(folder)


def test_nan_weights_are_never_reused(trained):
    folder = trained.path
    state = torch.load(folder / "model.pt", weights_only=True)
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = torch.full_like(state[name], float("nan"))
    torch.save(state, folder / "model.pt")
    (folder / store.CHECKSUM_FILE).unlink()  # as an artifact from before checksums
    with pytest.raises(ValueError, match=rf"{folder} holds NaN or infinite weights \({name}"):
        store.ArtifactStore(folder.parent).load(trained.config)


def test_old_artifacts_without_checksums_still_load(trained):
    (trained.path / store.CHECKSUM_FILE).unlink()
    model, _ = store.ArtifactStore(trained.path.parent).load(trained.config)
    _same_weights(model, trained.model)


def test_a_killed_save_is_cleaned_up_by_the_next_save(toy, tmp_path):
    train_ds, _ = toy
    st = store.ArtifactStore(tmp_path / "store")
    key = {**_config("sat", epochs=1).to_dict(), "train_data": training.data_fingerprint(train_ds)}
    stale = st.root / f".{store.config_key(key)}.part-x1y2"
    (stale / "sub").mkdir(parents=True)
    (stale / "model.pt").write_bytes(b"half")
    other = st.root / ".cnv-other-key.part-zz"  # another key's write in progress: left alone
    other.mkdir()
    training.train(_config("sat", epochs=1), train_ds, None, store=st, progress=False)
    assert not stale.exists() and other.exists()


def test_store_and_outputs_are_checked_writable_before_any_work(toy, tmp_path, monkeypatch):
    train_ds, _ = toy
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    calls = {"n": 0}
    monkeypatch.setattr(training, "build_from_config", lambda cfg: calls.update(n=1))
    with pytest.raises(ValueError, match=rf"artifact store {blocker} is a file, not a folder"):
        training.train(_config("sat", epochs=1), train_ds, None, store=blocker, progress=False)
    assert calls["n"] == 0
    from fatlib.core.files import output_dir

    with pytest.raises(ValueError, match=rf"OUTPUT_DIR {blocker} is a file"):
        output_dir(str(blocker), "x")


def test_corrupt_checkpoint_message_names_the_file_and_deletes_nothing_outside_the_store(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError) as err:
        store.load_checkpoint(bad)
    msg = str(err.value)
    assert str(bad) in msg and "weights_only" not in msg and f"delete {tmp_path}" not in msg


def test_edited_checkpoint_config_is_refused(tmp_path):
    from fatlib.core.models import cnv

    torch.manual_seed(0)
    model = cnv(1, 1, width=0.125)
    cfg = {"arch": "cnv", "num_classes": 10, "width": 0.125, "weight_bits": 1, "act_bits": 1}
    path = store.save_checkpoint(tmp_path / "w1a1.pt", model, cfg)
    assert store.load_checkpoint(path)[1] == cfg
    blob = torch.load(path, weights_only=True)
    blob["config"] = {**cfg, "weight_bits": 2, "act_bits": 2}  # says W2A2; the weights are W1A1's
    torch.save(blob, path)
    with pytest.raises(ValueError, match="do not match the checksum they were saved with"):
        store.load_checkpoint(path)


def test_outputs_follow_the_umask(toy, tmp_path):
    old = os.umask(0o022)
    try:
        res = training.train(
            _config("sat", epochs=1), toy[0], None, store=tmp_path / "shared", progress=False
        )
        path = store.save_checkpoint(tmp_path / "ck" / "m.pt", res.model, res.config)
    finally:
        os.umask(old)
    assert stat.S_IMODE(res.path.stat().st_mode) == 0o755
    assert stat.S_IMODE((res.path / "model.pt").stat().st_mode) == 0o644
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_training_refuses_images_outside_0_1(toy, tmp_path):
    train_ds, _ = toy
    raw = torch.utils.data.TensorDataset(train_ds.images.float(), train_ds.labels)  # 0-255 floats
    with pytest.raises(ValueError, match="divide uint8 images by 255"):
        training.train(_config("sat", epochs=1), raw, None, store=tmp_path, progress=False)
