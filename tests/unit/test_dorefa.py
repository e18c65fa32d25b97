"""DoReFa-Net on ImageNet (FAT Table II last row, Fig. 8): the network, injection on it, the
generic campaign runner (checked against the fast CNV engine and against per-fault hooks), the
ImageFolder loader, the training config and the experiment's "not run" path. Tiny sizes only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from brevitas.nn import QuantConv2d, QuantLinear
from torch import nn

from fatlib import campaign as C
from fatlib.core import data, models, paper, training
from fatlib.core.store import build_from_config
from fatlib.core.torch_utils import eval_mode
from fatlib.fat import experiments, injection
from fatlib.fat.campaign.faults import population, resolve_levels
from fatlib.fat.campaign.generic import GenericRunner

LEVELS = [0.0, 1 / 3, 2 / 3, 1.0]


def _calibrated(seed: int = 0) -> nn.Module:
    """A tiny DoReFa-AlexNet (width 1/16, 8 classes) whose BatchNorm statistics come from data and
    whose activations spread over all four levels, so outputs and faults matter."""
    torch.manual_seed(seed)
    net = models.dorefa_alexnet(width=0.0625, num_classes=8)
    bns = [m for m in net.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    for b in bns:
        b.momentum = None
        b.reset_running_stats()
    net.train()
    with torch.no_grad():
        net(torch.rand(64, 3, 64, 64, generator=torch.Generator().manual_seed(seed)))
    for b in bns:
        b.weight.data.fill_(0.4)
        b.bias.data.fill_(0.5)
    return net.eval()


@pytest.fixture(scope="module")
def tiny():
    return _calibrated()


@pytest.fixture(scope="module")
def tiny_data(tiny):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(24, 3, 64, 64, generator=g)
    with torch.no_grad():
        y = tiny(x).argmax(1)
    y[::3] = torch.randint(0, 8, (8,), generator=g)  # some right, some wrong
    return x, y


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagefolder") / "syn"
    return data.make_synthetic_imagefolder(root, num_classes=4, per_class=6, val_per_class=3, image_size=56)


# ------------------------------------------------------------------------------------------
# the network
# ------------------------------------------------------------------------------------------


def test_sites_levels_and_shapes(tiny):
    sites = models.activation_sites(tiny)
    assert len(sites) == 7 and models.conv_site_count(tiny) == 5
    for site in sites:
        assert models.activation_levels(site).tolist() == pytest.approx(LEVELS)
    shapes = models.output_shapes(tiny, sites, 64)
    assert [shapes[id(s)] for s in sites] == [
        (6, 14, 14),
        (16, 14, 14),
        (24, 7, 7),
        (24, 4, 4),
        (16, 4, 4),
        (256,),
        (256,),
    ]
    assert tiny(torch.rand(2, 3, 44, 44)).shape == (2, 8)  # the smallest input


def test_topology_of_paper_network():
    net = models.dorefa_alexnet().eval()
    convs = [m for m in net.layers if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0], c.groups) for c in convs] == [
        (96, 12, 4, 1),
        (256, 5, 1, 2),
        (384, 3, 1, 1),
        (384, 3, 1, 2),
        (256, 3, 1, 2),
    ]
    assert not isinstance(convs[0], QuantConv2d)  # first layer: float weights
    assert all(isinstance(c, QuantConv2d) for c in convs[1:])
    fcs = [m for m in net.layers if isinstance(m, nn.Linear)]
    assert [(f.in_features, f.out_features) for f in fcs] == [(9216, 4096), (4096, 4096), (4096, 1000)]
    assert isinstance(fcs[1], QuantLinear) and not isinstance(fcs[2], QuantLinear)  # last: float
    w = fcs[1].quant_weight().value
    assert torch.unique(w.abs()).numel() == 1  # binary: ±mean|W|
    assert torch.unique(w.abs()).item() == pytest.approx(fcs[1].weight.abs().mean().item(), rel=1e-5)
    thin = models.dorefa_alexnet(width=0.0625).eval()  # same spatial sizes, cheaper
    shapes = models.output_shapes(thin, models.activation_sites(thin), 224)
    assert [shapes[id(s)][1:] for s in models.activation_sites(thin)][:5] == [
        (54, 54),
        (54, 54),
        (27, 27),
        (14, 14),
        (14, 14),
    ]  # AlexNet's 6×6 before fc0


def test_build_model_and_store_rebuild(tiny):
    cfg = training.dorefa_config("smoke", num_classes=8).to_dict()
    net = build_from_config(cfg)
    assert isinstance(net, models.DoReFaAlexNet) and net.width == 0.0625
    net.load_state_dict(tiny.state_dict())
    x = torch.rand(3, 3, 64, 64)
    assert torch.equal(net.eval()(x), tiny(x))
    with pytest.raises(ValueError, match="weight_bits"):
        models.dorefa_alexnet(weight_bits=2)
    with pytest.raises(ValueError, match="act_bits"):
        models.dorefa_alexnet(act_bits=1)


# ------------------------------------------------------------------------------------------
# injection
# ------------------------------------------------------------------------------------------


def test_injection_and_dropout_sites(tiny):
    net = _calibrated()
    x = torch.rand(4, 3, 64, 64)
    golden = net(x)
    layers = injection.insert_injection(net, "channel", 1.0)
    assert len(layers) == 7 and all(torch.allclose(l.levels, torch.tensor(LEVELS)) for l in layers)
    assert not torch.equal(net(x), golden)
    injection.remove_injection(net)
    assert torch.equal(net(x), golden)
    assert len(injection.insert_injection(net, "pixel", 0.5)) == 5  # conv sites only
    injection.remove_injection(net)
    with pytest.raises(ValueError, match="cannot be output"):
        injection.insert_injection(net, "channel", 0.5, levels=(-1.0,))
    cfg = training.TrainConfig(arch="dorefa-alexnet", scheme="dropout2d", p=0.1, width=0.0625)
    d2 = injection.TrainingScheme.attach(net, cfg)
    assert [type(l).__name__ for l in d2.layers] == ["Dropout2d"] * 5 + ["Dropout"] * 2
    d2.export(net)
    m2 = injection.TrainingScheme.attach(net, training.dorefa_config("smoke", "fat-m2", p=0.05))
    m2.on_epoch(0, torch.Generator().manual_seed(0))
    assert len(m2.layers) == 7 and sum(l.enabled for l in m2.layers) == 1
    m2.export(net)
    assert torch.equal(net.eval()(x), golden)


# ------------------------------------------------------------------------------------------
# the generic campaign runner
# ------------------------------------------------------------------------------------------


def _cnv():
    from helpers import randomized_cnv

    return randomized_cnv(1, 1, seed=5)


@pytest.mark.exhaustive
def test_generic_runner_equals_fast_engine_on_cnv():
    """The generic path (hooks on the model itself) gives CNV exactly the fast engine's counts."""
    net = _cnv()
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(20, 3, 32, 32, generator=g), torch.randint(0, 10, (20,), generator=g)
    fast = C.stuck_at_campaign(net, (x, y), sample=60, seed=1, progress=False, batch_size=8)
    gen = C.stuck_at_campaign(
        net, (x, y), sample=60, seed=1, progress=False, batch_size=8, engine="generic", memory_budget=2 << 20
    )
    assert gen.attrs["campaign"]["engine"] == "fatlib.campaign/generic"
    cols = ["layer", "channel", "value", "correct", "total"]
    assert gen[cols].equals(fast[cols]) and fast["correct"].nunique() > 2
    assert set(gen.attrs["campaign"]) == set(fast.attrs["campaign"])
    for key in ("population_size", "population_by_layer", "n_faults", "error_free", "data_sha256", "levels"):
        assert gen.attrs["campaign"][key] == fast.attrs["campaign"][key], key
    fast_px = C.stuck_at_campaign(net, (x, y), pattern="pixel", layers=[3, 5], progress=False)
    gen_px = C.stuck_at_campaign(
        net, (x, y), pattern="pixel", layers=[3, 5], progress=False, engine="generic"
    )
    assert gen_px["correct"].tolist() == fast_px["correct"].tolist()


@pytest.mark.exhaustive
def test_generic_runner_equals_per_fault_hooks_on_dorefa(tiny, tiny_data):
    df = C.stuck_at_campaign(tiny, tiny_data, sample=100, seed=4, progress=False, memory_budget=1 << 20)
    ref = C.naive_campaign(tiny, tiny_data, faults=df)
    assert df["correct"].tolist() == ref["correct"].tolist()
    assert df["correct"].nunique() > 2  # faults do matter here
    meta = df.attrs["campaign"]
    assert meta["population_size"] == 4 * (6 + 16 + 24 + 24 + 16 + 256 + 256) == len(C.enumerate_faults(tiny))
    assert meta["engine"] == "fatlib.campaign/generic" and meta["sample"] == 100
    assert meta["error_free"] == C.golden_accuracy(tiny, tiny_data)
    assert sorted(df["value"].unique()) == pytest.approx(LEVELS)
    px = C.stuck_at_campaign(tiny, tiny_data, pattern="pixel", layers=[4], progress=False)
    px_ref = C.naive_campaign(tiny, tiny_data, pattern="pixel", layers=[4])
    assert px["correct"].tolist() == px_ref["correct"].tolist()
    with pytest.raises(ValueError, match="FC sites 5, 6"):
        C.stuck_at_campaign(tiny, tiny_data, pattern="pixel", layers=[5], progress=False)
    with pytest.raises(ValueError, match="fast"):
        C.stuck_at_campaign(tiny, tiny_data, engine="fast", progress=False)
    # the hook path (whole model per fault block) agrees with the prefix path
    with eval_mode(tiny), torch.no_grad():
        runner = GenericRunner(tiny, torch.device("cpu"), (3, 64, 64))
        gold = runner.golden(*tiny_data)
        sites = runner.table
        fl = population(sites, "channel", [1, 5], resolve_levels(sites, [1, 5], None))
        idx = np.arange(0, len(fl), 7)
        sub = [idx[fl.layer[idx] == L] for L in (1, 5)]
        prefix = [runner.eval_faults(gold, fl, s, L)[0] for s, L in zip(sub, (1, 5))]
        runner.suffix = {}
        hooks = [runner.eval_faults(gold, fl, s, L)[0] for s, L in zip(sub, (1, 5))]
    assert all((a == b).all() for a, b in zip(prefix, hooks))


def test_generic_store_resumes_and_reads_datasets_lazily(tiny, folder, tmp_path, monkeypatch):
    ds = data.imagefolder_dataset(folder, "val", 48, False)
    images = torch.stack([ds[i][0] for i in range(len(ds))])
    eager = C.stuck_at_campaign(tiny, (images, ds.labels), sample=40, progress=False)
    monkeypatch.setattr("fatlib.fat.campaign.data._LAZY_MIN_ITEMS", 1)
    lazy = C.stuck_at_campaign(tiny, ds, sample=40, progress=False, store=tmp_path / "s", batch_size=5)
    assert lazy["correct"].tolist() == eager["correct"].tolist()
    assert lazy.attrs["campaign"]["data_sha256"] != eager.attrs["campaign"]["data_sha256"]
    again = C.stuck_at_campaign(tiny, ds, sample=40, progress=False, store=tmp_path / "s", batch_size=5)
    assert again["correct"].tolist() == lazy["correct"].tolist()
    assert (tmp_path / "s" / C.RESULTS_FILE).is_file()


# ------------------------------------------------------------------------------------------
# ImageFolder data
# ------------------------------------------------------------------------------------------


def test_synthetic_imagefolder_and_loader(folder):
    assert sorted(p.name for p in (folder / "train").iterdir()) == [f"class{c:03d}" for c in range(4)]
    assert (
        data.make_synthetic_imagefolder(folder, num_classes=4, per_class=6, val_per_class=3, image_size=56)
        == folder
    )  # reused
    with pytest.raises(FileExistsError):
        data.make_synthetic_imagefolder(folder, num_classes=5)
    train = data.imagefolder_dataset(folder, "train", 48, True)
    val = data.imagefolder_dataset(folder, "val", 48, False, limit=5, seed=1)
    assert len(train) == 24 and len(val) == 5 and train.num_classes == 4
    x, y = val[0]
    assert x.shape == (3, 48, 48) and x.dtype == torch.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert isinstance(y, int) and val.labels.tolist() == [int(val[i][1]) for i in range(5)]
    assert torch.equal(val[2][0], data.imagefolder_dataset(folder, "val", 48, False, limit=5, seed=1)[2][0])
    assert train.fingerprint() == data.imagefolder_dataset(folder, "train", 48, True).fingerprint()
    assert train.fingerprint() != data.imagefolder_dataset(folder, "train", 32, True).fingerprint()
    assert training.data_fingerprint(train) == training.data_fingerprint(train)  # crops are random


def test_missing_imagefolder_names_the_layout(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"train/<class>/<image>"):
        data.imagefolder_dataset(tmp_path / "nowhere", "val", 64, False)
    (tmp_path / "half" / "train" / "a").mkdir(parents=True)
    assert "val" in data.imagefolder_missing(tmp_path / "half")
    monkeypatch.setenv("FATLIB_DATA", str(tmp_path / "env"))
    assert data.imagenet_candidates(tmp_path / "dd")[:2] == [
        tmp_path / "dd" / "imagenet",
        tmp_path / "env" / "imagenet",
    ]
    assert data.imagenet_dir(tmp_path / "dd") == tmp_path / "dd" / "imagenet"  # expected place
    for split in ("train", "val"):
        (tmp_path / "env" / "imagenet" / split / "n0").mkdir(parents=True)
    assert data.imagenet_dir(tmp_path / "dd") == tmp_path / "env" / "imagenet"  # found


# ------------------------------------------------------------------------------------------
# training config and the experiment
# ------------------------------------------------------------------------------------------


def test_train_config_accepts_dorefa_and_follows_its_recipe():
    for scheme, kw in [
        ("fat-m1", {"pattern": "channel", "p": 0.05}),
        ("fat-m2", {"pattern": "pixel", "p": 0.025}),
        ("dropout2d", {"p": 0.1}),
        ("sat", {}),
    ]:
        training.TrainConfig(arch="dorefa-alexnet", scheme=scheme, **kw)
    with pytest.raises(ValueError, match="arch"):
        training.TrainConfig(arch="vgg16", scheme="fat-m2", pattern="channel", p=0.05)
    paper_cfg = training.dorefa_config("paper")
    assert (
        paper_cfg.lr,
        paper_cfg.batch_size,
        paper_cfg.epochs,
        paper_cfg.lr_milestones,
        paper_cfg.lr_gamma,
        paper_cfg.loss,
        paper_cfg.width,
        paper_cfg.weight_bits,
        paper_cfg.act_bits,
    ) == (1e-4, 128, 100, (56, 64), 0.2, "cross_entropy", 1.0, 1, 2)
    assert training.dorefa_config("smoke", "fat-m2", p=0.05).pattern == "channel"
    assert (
        training.dorefa_config("smoke", "fat-m2", p=0.05).label == "DoReFa-AlexNet W1A2 FAT-M2 channel p=5%"
    )
    assert "lr_milestones" not in training.cnv_config("cpu", 1, 1).to_dict()  # CNV keys unchanged
    with pytest.raises(ValueError, match="lr_milestones"):
        training.TrainConfig(lr_milestones=(5, 2))


def test_dorefa_trains_on_an_imagefolder(folder, tmp_path):
    train = data.imagefolder_dataset(folder, "train", 48, True)
    val = data.imagefolder_dataset(folder, "val", 48, False)
    cfg = training.TrainConfig(
        arch="dorefa-alexnet",
        dataset="synthetic",
        num_classes=4,
        weight_bits=1,
        act_bits=2,
        width=0.0625,
        epochs=2,
        batch_size=8,
        lr=1e-3,
        lr_gamma=0.2,
        lr_milestones=(1,),
        loss="cross_entropy",
        scheme="fat-m2",
        pattern="channel",
        p=0.05,
    )
    res = training.train(cfg, train, val, store=tmp_path, device="cpu", progress=False)
    assert [h["lr"] for h in res.history] == pytest.approx([1e-3, 2e-4])
    assert injection.injection_layers(res.model) == [] and 0.0 <= res.test_accuracy <= 100.0
    again = training.train(cfg, train, val, store=tmp_path, device="cpu", progress=False)
    assert again.reused and again.path == res.path


def test_experiment_not_run_without_imagenet(tmp_path):
    missing = tmp_path / "no-imagenet"
    with pytest.raises(experiments.DataMissing, match="ImageNet not found at"):
        experiments.evaluate_dorefa("cpu", imagenet_dir=missing)
    fig = experiments.dorefa_figure8("cpu", [5, 2.5], imagenet_dir=missing)
    assert fig.status.startswith("not run: ImageNet not found at") and "IMAGENET_DIR" in fig.status
    assert fig.evaluations == [] and fig.summary["error_free"].isna().all() and len(fig.summary) == 3
    t2 = fig.table2.set_index("quantity")
    assert t2.loc["SAT min", "paper"] == 22.80 and t2.loc["FAT min", "paper"] == 49.92
    assert t2["ours"].isna().all()  # nothing invented
    assert paper.claims_table(fig.claims)["verdict"].tolist() == ["not run"] * 3
    assert paper.claims_table([("c", True, ""), ("d", False, "")])["verdict"].tolist() == [
        "holds",
        "does not hold",
    ]


def test_experiment_runs_on_synthetic_data_at_smoke():
    ev = experiments.evaluate_dorefa("smoke", device="cpu")
    assert ev.dataset == "synthetic-imagefolder" and ev.label == "DoReFa-Net SAT"
    meta = ev.campaign.attrs["campaign"]
    assert meta["sample"] == 48 and len(ev.campaign) == 48 and meta["population_size"] == 2392
    assert 0.0 <= ev.minimum <= 100.0 and 0.0 <= ev.error_free <= 100.0
    assert set(ev.per_layer()["layer"]) <= set(range(7))
    again = experiments.evaluate_dorefa("smoke", device="cpu")
    assert again.train.reused and again.campaign["correct"].tolist() == ev.campaign["correct"].tolist()
