"""QONNX export for FINN (issue #21): every CNV bit width exports and executes as the same network,
the model is left as it was, and stuck@ faults edited into the graph agree with the campaign
engine fault for fault."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("qonnx", reason="needs the optional extra fatlib[export]")

from helpers import tiny_config  # noqa: E402

from fatlib.cli import main as cli_main  # noqa: E402
from fatlib.core import data, store, training  # noqa: E402
from fatlib.fat import campaign, export, injection  # noqa: E402

BIT_WIDTHS = [(1, 1), (1, 2), (1, 3), (1, 4), (2, 2)]


def _smoke_trained(wb: int, ab: int, tmp_path, scheme: str = "fat-m2") -> training.TrainResult:
    cfg = tiny_config(
        weight_bits=wb,
        act_bits=ab,
        epochs=1,
        lr_step=40,
        augment=True,
        seed=1,
        **({"scheme": scheme, "pattern": "channel", "p": 0.05} if scheme != "sat" else {}),
    )
    return training.train(
        cfg, data.synthetic_dataset(n=128, seed=0), None, store=tmp_path / "store", progress=False
    )


@pytest.fixture(scope="module")
def images():
    ds = data.synthetic_dataset(n=64, seed=5, split="test")
    return ds.images.float() / 255, ds.labels


@pytest.mark.exhaustive
@pytest.mark.parametrize("wb,ab", BIT_WIDTHS, ids=[f"W{w}A{a}" for w, a in BIT_WIDTHS])
def test_every_bit_width_exports_as_the_same_network(wb, ab, tmp_path, images):
    x, _ = images
    model = _smoke_trained(wb, ab, tmp_path).model
    path = export.to_qonnx(model, tmp_path / "cnv.onnx", input_shape=(32, 3, 32, 32))
    graph = export.load_graph(path)
    logits = export.execute(graph, x)
    with torch.no_grad():
        ref = model(x).numpy()
    assert (logits.argmax(1) == ref.argmax(1)).all()
    np.testing.assert_allclose(logits, ref, rtol=0, atol=1e-5)
    q = export.quantizers(graph)
    weights, acts = q[q["kind"] == "weight"], q[q["kind"] == "activation"]
    assert len(weights) == 9 and len(acts) == 8 and list(acts["site"]) == list(range(8))
    assert set(acts["bit_width"]) == {float(ab)}
    assert set(weights["bit_width"]) == {float(wb)}
    assert q.loc[q["kind"] == "input", "bit_width"].tolist() == [8.0]
    ops = set(export.graph_summary(graph)["op_type"])
    assert {"Conv", "MaxPool", "BatchNormalization"} <= ops and not ops & {
        "Dropout",
        "RandomUniform",
        "Where",
    }


def test_the_model_is_left_as_it_was(tmp_path, images):
    torch.manual_seed(0)
    from fatlib.core.models import cnv

    model = cnv(1, 2, width=0.125).train()
    layers = injection.insert_injection(model, "channel", 0.5)  # FAT's training-only layers attached
    state = {k: v.clone() for k, v in model.state_dict().items()}
    path = export.to_qonnx(model, tmp_path / "m.onnx", input_shape=(1, 3, 32, 32))
    assert path.is_file() and not list(tmp_path.glob(".m.onnx*"))  # written atomically
    assert model.training and injection.injection_layers(model) == layers
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    ops = set(export.graph_summary(path)["op_type"])
    assert not ops & {"Dropout", "RandomUniform", "RandomUniformLike", "Where"}  # no injection in the graph
    injection.remove_injection(model)
    with torch.no_grad():
        ref = model.eval()(images[0][:1]).numpy()
    np.testing.assert_allclose(export.execute(export.load_graph(path), images[0][:1]), ref, atol=1e-5)


@pytest.mark.exhaustive
@pytest.mark.parametrize("pattern", ["channel", "pixel"])
def test_faults_in_the_graph_agree_with_the_campaign(pattern, tmp_path, images):
    x, y = images
    model = _smoke_trained(2, 2, tmp_path).model
    graph = export.load_graph(export.to_qonnx(model, tmp_path / "g.onnx", input_shape=(64, 3, 32, 32)))
    space = campaign.enumerate_faults(model, pattern)
    chosen = export.sample_faults(space, 50, seed=3)
    assert len(chosen) == 50 and set(chosen["layer"]) == set(space["layer"])  # every site
    engine = campaign.stuck_at_campaign(model, (x, y), pattern=pattern, faults=chosen, progress=False)
    replayed = export.graph_campaign(graph, x, y, engine)
    assert replayed["correct"].tolist() == engine["correct"].tolist()
    assert engine["accuracy"].nunique() > 1  # the faults do change the accuracy


def test_a_fault_edit_holds_exactly_the_level(tmp_path, images):
    from fatlib.core.models import activation_sites, capture_activation, cnv

    torch.manual_seed(0)
    model = cnv(1, 1, width=0.125).eval()
    graph = export.load_graph(export.to_qonnx(model, tmp_path / "g.onnx"))
    x = images[0][:1]
    faulty = export.inject_stuck_at(graph, layer=2, value=-1.0, channel=3)
    hooks = []

    def stick(mod, inp, out):
        v = out.value if hasattr(out, "value") else out
        v = v.clone()
        v[:, 3] = -1.0
        return v

    site = activation_sites(model)[2]
    hooks.append(site.register_forward_hook(stick))
    try:
        with torch.no_grad():
            ref = model(x).numpy()
    finally:
        hooks[0].remove()
    np.testing.assert_allclose(export.execute(faulty, x), ref, atol=1e-5)
    assert capture_activation(model, site, x).shape[0] == 1  # the hook is gone
    with pytest.raises(ValueError, match="activation sites 0–7"):
        export.inject_stuck_at(graph, layer=8, value=1.0, channel=0)
    with pytest.raises(ValueError, match="no pixels"):
        export.inject_stuck_at(graph, layer=6, value=1.0, row=0, col=0)
    with pytest.raises(ValueError, match="either channel"):
        export.inject_stuck_at(graph, layer=0, value=1.0)


def test_bad_export_arguments(tmp_path):
    from fatlib.core.models import cnv, vgg16

    with pytest.raises(ValueError, match="takes a fatlib CNV"):
        export.to_qonnx(vgg16(width=0.125), tmp_path / "v.onnx")
    with pytest.raises(ValueError, match="input_shape"):
        export.to_qonnx(cnv(1, 1, width=0.125), tmp_path / "c.onnx", input_shape=(1, 3, 28, 28))
    with pytest.raises(FileNotFoundError, match="to_qonnx"):
        export.load_graph(tmp_path / "missing.onnx")


def test_cli_exports_a_store_key_and_a_checkpoint(tmp_path, capsys):
    res = _smoke_trained(1, 1, tmp_path, scheme="sat")
    out = tmp_path / "out" / "key.onnx"
    assert cli_main(["export", res.path.name, str(out), "--store", str(tmp_path / "store")]) == 0
    assert out.is_file() and "BipolarQuant" in capsys.readouterr().out
    ckpt = store.save_checkpoint(tmp_path / "m.pt", res.model, res.config)
    assert cli_main(["export", str(ckpt), str(tmp_path / "ck.onnx"), "--batch", "4"]) == 0
    assert export.load_graph(tmp_path / "ck.onnx").get_tensor_shape("global_in")[0] == 4
    capsys.readouterr()
    assert (
        cli_main(["export", "no-such-key", str(tmp_path / "x.onnx"), "--store", str(tmp_path / "store")]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fatlib export: error: no-such-key is neither")
