import json

import pytest
import torch
from helpers import tiny_config

from fatlib.core import data, store, training
from fatlib.core.training import TrainConfig


def _tiny(scheme="sat", pattern=None, p=0.0, epochs=3, seed=0):
    return tiny_config(epochs=epochs, seed=seed, scheme=scheme, pattern=pattern, p=p)


@pytest.fixture(scope="module")
def toy():
    return data.synthetic_dataset(n=256, seed=0), data.synthetic_dataset(n=128, seed=1, split="test")


def test_sqr_hinge_loss_golden():
    out = torch.tensor([[0.5, -2.0, 0.0], [1.5, 0.2, -0.3]])
    y = torch.tensor([0, 2])
    # targets ±1: row 0 (+1,-1,-1), row 1 (-1,-1,+1): hinge^2 = .25,0,1 | 6.25,1.44,1.69
    expected = (0.25 + 0 + 1 + 6.25 + 1.44 + 1.69) / 6
    assert training.sqr_hinge_loss(out, y).item() == pytest.approx(expected)


def test_tiny_run_learns_and_is_repeatable(toy, tmp_path):
    train_ds, test_ds = toy
    before = training.evaluate(store.build_from_config({**_tiny().to_dict(), "train_data": ""}), test_ds)
    # repeatability is promised on one kind of device and thread count: assert it on the CPU
    # (test_training_on_cuda_is_repeatable does so on CUDA)
    res = training.train(
        _tiny(epochs=4), train_ds, test_ds, store=tmp_path / "a", device="cpu", progress=False
    )
    assert not res.reused and res.path.is_dir() and res.metrics["deterministic"] is True
    assert res.test_accuracy >= 40.0, res.history  # 10 classes: chance is 10 %
    assert res.test_accuracy > before + 20
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4]
    assert [h["lr"] for h in res.history] == pytest.approx([0.02, 0.02, 0.01, 0.01])
    assert res.metrics["images_per_second"] > 0
    again = training.train(
        _tiny(epochs=4), train_ds, test_ds, store=tmp_path / "b", device="cpu", progress=False
    )
    for (k, v), (_, w) in zip(res.model.state_dict().items(), again.model.state_dict().items()):
        assert torch.equal(v, w), k
    assert all(
        p.abs().max() <= 1.0 for n, p in res.model.named_parameters() if n.endswith("weight") and p.ndim > 1
    )


def test_store_reuses_and_rejects_bad_artifacts(toy, tmp_path):
    train_ds, test_ds = toy
    first = training.train(_tiny(epochs=1), train_ds, test_ds, store=tmp_path, progress=False)
    second = training.train(_tiny(epochs=1), train_ds, test_ds, store=tmp_path, progress=False)
    assert second.reused and second.test_accuracy == first.test_accuracy
    assert training.evaluate(second.model, test_ds) == first.test_accuracy
    # another seed, another data set -> other keys
    other = training.train(_tiny(epochs=1, seed=1), train_ds, None, store=tmp_path, progress=False)
    assert other.path != first.path
    subset = data.subset(train_ds, 128)
    assert (
        store.ArtifactStore(tmp_path).path(
            {**_tiny(epochs=1).to_dict(), "train_data": training.data_fingerprint(subset)}
        )
        != first.path
    )
    # corrupt weights -> clear error naming the folder
    (first.path / "model.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="delete"):
        training.train(_tiny(epochs=1), train_ds, test_ds, store=tmp_path, progress=False)
    # config mismatch (an artifact whose stored config disagrees with its key)
    cfg_path = other.path / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["epochs"] = 99
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="another config"):
        training.train(_tiny(epochs=1, seed=1), train_ds, None, store=tmp_path, progress=False)


def test_store_is_atomic(toy, tmp_path, monkeypatch):
    train_ds, _ = toy
    st = store.ArtifactStore(tmp_path)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "_write_json", boom)
    with pytest.raises(RuntimeError):
        training.train(_tiny(epochs=1), train_ds, None, store=st, progress=False)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_checkpoint_roundtrip(tmp_path):
    from fatlib.core.models import cnv

    net = cnv(2, 2, width=0.125).eval()
    cfg = {**_tiny().to_dict(), "weight_bits": 2, "act_bits": 2, "train_data": "x"}
    store.save_checkpoint(tmp_path / "ck.pt", net, cfg)
    loaded, cfg2 = store.load_checkpoint(tmp_path / "ck.pt")
    x = torch.rand(2, 3, 32, 32)
    assert cfg2 == cfg and torch.equal(loaded(x), net(x))
    with pytest.raises(FileNotFoundError):
        store.load_checkpoint(tmp_path / "missing.pt")


def test_config_validation():
    with pytest.raises(ValueError, match="scheme"):
        TrainConfig(scheme="magic")
    with pytest.raises(ValueError, match="probability"):
        TrainConfig(scheme="fat-m1", pattern="channel", p=5)
    with pytest.raises(ValueError, match="pattern"):
        TrainConfig(scheme="fat-m1", p=0.05)
    with pytest.raises(ValueError, match="sat"):
        TrainConfig(scheme="sat", p=0.05)


def test_profile_config_follows_paper_recipe():
    paper = training.cnv_config("paper", 1, 1)
    assert (
        paper.epochs,
        paper.lr,
        paper.lr_step,
        paper.batch_size,
        paper.width,
        paper.loss,
        paper.optimizer,
    ) == (1000, 0.02, 40, 100, 1.0, "sqr_hinge", "adam")
    assert training.cnv_config("paper", 2, 2).epochs == 500
    assert training.cnv_config("cpu", 1, 1).lr_step == 40
    cpu = training.cnv_config("cpu", 1, 1)
    assert cpu.lr == paper.lr and cpu.loss == paper.loss and cpu.width < 1
    assert training.cnv_config("paper", 1, 1, dataset="gtsrb").num_classes == 43


def test_device_resolution():
    assert training.resolve_device("cpu").type == "cpu"
    assert training.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            training.resolve_device("cuda")


def test_deterministic_switch_is_scoped_and_recorded(toy, tmp_path):
    from fatlib.core.torch_utils import deterministic_algorithms

    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    with deterministic_algorithms() as on:
        assert on and torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
        assert torch.backends.cudnn.deterministic
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark) == before
    with deterministic_algorithms(False) as on:
        assert on is False and torch.are_deterministic_algorithms_enabled() == before[0]
    train_ds, _ = toy
    res = training.train(
        _tiny(epochs=1), train_ds, None, store=tmp_path, device="cpu", progress=False, deterministic=False
    )
    assert res.metrics["deterministic"] is False


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_cuda_is_repeatable(toy, tmp_path):
    train_ds, test_ds = toy
    runs = [
        training.train(_tiny(epochs=2), train_ds, test_ds, store=tmp_path / k, device="cuda", progress=False)
        for k in "ab"
    ]
    for (k, v), (_, w) in zip(runs[0].model.state_dict().items(), runs[1].model.state_dict().items()):
        assert torch.equal(v, w), k


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_cuda(toy, tmp_path):
    train_ds, test_ds = toy
    res = training.train(_tiny(epochs=1), train_ds, test_ds, store=tmp_path, device="cuda", progress=False)
    assert next(res.model.parameters()).device.type == "cuda"
