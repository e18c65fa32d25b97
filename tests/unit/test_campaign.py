"""Tests of the stuck-at campaign engine (FAT Algorithm 1): exact against per-fault
re-execution, resumable after SIGKILL, shardable. Small random CNVs (width 0.125), seeded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import randomized_cnv

from fatlib import campaign as C
from fatlib.cli import campaign_main
from fatlib.core.models import activation_sites
from fatlib.core.torch_utils import eval_mode
from fatlib.fat.campaign.engine import Engine

ROOT = Path(__file__).resolve().parents[2]


def _data(n: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


@pytest.fixture(scope="module")
def w1a1():
    return randomized_cnv(1, 1, seed=0)


@pytest.fixture(scope="module")
def w2a2():
    return randomized_cnv(2, 2, seed=3)


# ------------------------------------------------------------------------------------------
# bit-exactness of the frozen network
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("wb,ab", [(1, 1), (2, 2), (1, 2), (1, 3), (1, 4)])
def test_golden_pass_is_bit_exact(wb, ab):
    """Every site output, the logits and the predictions equal the brevitas model's bit for bit."""
    model = randomized_cnv(wb, ab, seed=wb * 10 + ab)
    x, y = _data(24, seed=ab)
    outs = {}
    hooks = [
        s.register_forward_hook(lambda m, i, o, k=k: outs.__setitem__(k, o.detach()))
        for k, s in enumerate(activation_sites(model))
    ]
    with torch.no_grad():
        ref = model(x)
    for h in hooks:
        h.remove()
    with eval_mode(model), torch.no_grad():
        eng = Engine(model, torch.device("cpu"), (3, 32, 32))
        g = eng.golden(x, y)
        for k in range(8):
            assert torch.equal(eng.site_values(g, k), outs[k]), f"site {k}"
    assert eng.float_mode == (ab >= 3)  # A3 / A4 scales (1/3, 1/7) are not dyadic
    assert torch.equal(g.logits, ref)
    assert torch.equal(g.pred, ref.argmax(1))
    # no fault: the campaign's error-free accuracy is the brevitas model's
    df = C.stuck_at_campaign(model, (x, y), faults=[], progress=False)
    assert len(df) == 0
    assert df.attrs["campaign"]["golden_correct"] == int((ref.argmax(1) == y).sum())
    assert df.attrs["campaign"]["error_free"] == C.golden_accuracy(model, (x, y))


# ------------------------------------------------------------------------------------------
# exactness against the naive per-fault reference
# ------------------------------------------------------------------------------------------


@pytest.mark.exhaustive
def test_channel_w1a1_every_layer_exact(w1a1):
    """Exhaustive channel campaign, layers 0-7, both levels: every count equals the reference."""
    x, y = _data(16)
    df = C.stuck_at_campaign(w1a1, (x, y), progress=False, batch_size=7)
    ref = C.naive_campaign(w1a1, (x, y))
    assert len(df) == 2 * (8 + 8 + 16 + 16 + 32 + 32 + 64 + 64)
    assert sorted(df["layer"].unique()) == list(range(8))
    pd.testing.assert_frame_equal(df[["layer", "channel", "value"]], ref[["layer", "channel", "value"]])
    assert (df["correct"].to_numpy() == ref["correct"].to_numpy()).all()
    assert df["correct"].nunique() > 3, "faults must actually change predictions in this test"
    assert (df["total"] == 16).all()
    np.testing.assert_allclose(df["accuracy"], 100 * df["correct"] / 16)


@pytest.mark.exhaustive
def test_channel_w2a2_exact(w2a2):
    """W2A2 (three levels, thresholds) on every layer, a seeded sample of faults."""
    x, y = _data(16, seed=1)
    df = C.stuck_at_campaign(w2a2, (x, y), progress=False, sample=240, seed=5, memory_budget=1 << 22)
    assert set(df["value"]) == {-1.0, 0.0, 1.0}
    assert sorted(df["layer"].unique()) == list(range(8))
    ref = C.naive_campaign(w2a2, (x, y), faults=df)
    assert (df["correct"].to_numpy() == ref["correct"].to_numpy()).all()
    assert df["correct"].nunique() > 3


@pytest.mark.exhaustive
def test_channel_float_mode_exact():
    """W1A3: non-dyadic scales, the engine replays brevitas' float ops and stays exact."""
    model = randomized_cnv(1, 3, seed=7)
    x, y = _data(12, seed=2)
    df = C.stuck_at_campaign(model, (x, y), progress=False, sample=120, seed=1)
    assert not df.attrs["campaign"]["exact"]
    ref = C.naive_campaign(model, (x, y), faults=df)
    assert (df["correct"].to_numpy() == ref["correct"].to_numpy()).all()


@pytest.mark.exhaustive
@pytest.mark.parametrize("which", ["w1a1", "w2a2"])
def test_pixel_exact(which, request):
    """Same-pixel stuck@ on every conv site (incl. the pooled sites 1, 3 and the odd borders)."""
    model = request.getfixturevalue(which)
    x, y = _data(12, seed=4)
    space = C.enumerate_faults(model, pattern="pixel", layers=[0, 1, 2, 3, 4, 5])
    rng = np.random.default_rng(0)
    pick = []
    for L in range(6):
        idx = np.flatnonzero(space["layer"] == L)
        pick.append(rng.choice(idx, min(25, len(idx)), replace=False))
    # the last row / column of the pooled sites 1 and 3 (28×28 and 10×10 maps, even) and corners
    corners = space[
        (space["layer"].isin([0, 1, 3]))
        & (space["row"].isin([0, 9, 27, 29]))
        & (space["col"].isin([0, 9, 27, 29]))
    ].index.to_numpy()
    pick = np.unique(np.concatenate(pick + [corners]))
    sub = C.stuck_at_campaign(model, (x, y), pattern="pixel", faults=space.iloc[pick], progress=False)
    pd.testing.assert_frame_equal(
        sub[["layer", "row", "col", "value"]], space.iloc[pick].reset_index(drop=True)
    )
    ref = C.naive_campaign(model, (x, y), pattern="pixel", faults=sub)
    assert (sub["correct"].to_numpy() == ref["correct"].to_numpy()).all()
    assert sub["correct"].nunique() > 2


def test_pixel_default_skips_fc_and_one_pixel_maps(w1a1):
    """Table IV's same-pixel model: FC sites have no pixels; site 5 is a 1×1 map whose one pixel
    is the whole layer — stuck, the output no longer depends on the image (chance accuracy,
    which the paper's minima rule out), so the default leaves it out; by number it still runs."""
    assert C.default_layers(w1a1, "channel") == list(range(8))
    assert C.default_layers(w1a1, "pixel") == [0, 1, 2, 3, 4]
    assert sorted(C.enumerate_faults(w1a1, pattern="pixel")["layer"].unique()) == [0, 1, 2, 3, 4]
    x, y = _data(16, seed=5)
    site5 = C.stuck_at_campaign(w1a1, (x, y), pattern="pixel", layers=[5], progress=False)
    assert len(site5) == 2  # one position, two A1 levels
    assert site5.attrs["campaign"]["layers"] == [5]
    for v in site5["value"]:
        ref = C.naive_campaign(w1a1, (x, y), pattern="pixel", faults=[(5, 0, 0, v)])
        assert int(ref["correct"].iloc[0]) == int(site5.loc[site5["value"] == v, "correct"].iloc[0])
        # a constant output: the accuracy is the share of the one predicted class
        assert int(ref["correct"].iloc[0]) in {int((y == c).sum()) for c in range(10)}


def test_results_independent_of_batching(w2a2):
    x, y = _data(20, seed=3)
    a = C.stuck_at_campaign(w2a2, (x, y), layers=[1, 4, 6], progress=False)
    b = C.stuck_at_campaign(
        w2a2, (x, y), layers=[1, 4, 6], progress=False, batch_size=3, memory_budget=1 << 16
    )
    assert (a["correct"].to_numpy() == b["correct"].to_numpy()).all()


# ------------------------------------------------------------------------------------------
# API behaviour
# ------------------------------------------------------------------------------------------


def test_bad_input(w1a1):
    x, y = _data(4)
    with pytest.raises(ValueError, match="pattern"):
        C.stuck_at_campaign(w1a1, (x, y), pattern="row", progress=False)
    with pytest.raises(ValueError, match="allowed"):
        C.stuck_at_campaign(w1a1, (x, y), layers=[8], progress=False)
    with pytest.raises(ValueError, match="pixels"):
        C.stuck_at_campaign(w1a1, (x, y), pattern="pixel", layers=[6], progress=False)
    with pytest.raises(ValueError, match="not a level"):
        C.stuck_at_campaign(w1a1, (x, y), levels=[0.0], progress=False)
    with pytest.raises(ValueError, match="shard"):
        C.stuck_at_campaign(w1a1, (x, y), shard=(2, 2), progress=False)
    with pytest.raises(ValueError, match="sample"):
        C.stuck_at_campaign(w1a1, (x, y), sample=10**6, progress=False)
    with pytest.raises(ValueError, match="CNV"):
        C.stuck_at_campaign(torch.nn.Linear(2, 2), (x, y), progress=False)
    with pytest.raises(ValueError, match="labels"):
        C.stuck_at_campaign(w1a1, (x, y[:2]), progress=False)


def test_levels_layers_and_tables(w1a1):
    x, y = _data(10)
    df = C.stuck_at_campaign(w1a1, (x, y), levels=[1.0], layers=[5, 2], progress=False)
    assert list(df.columns) == ["layer", "channel", "value", "correct", "total", "accuracy"]
    assert list(df["layer"].unique()) == [2, 5] and set(df["value"]) == {1.0}
    assert list(df["channel"][df["layer"] == 2]) == list(range(16))
    s = C.summarize(df)
    assert list(s["layer"]) == [2, 5] and list(s["faults"]) == [16, 32]
    for _, r in s.iterrows():
        acc = df.loc[df["layer"] == r["layer"], "accuracy"]
        assert r["min"] == acc.min() and r["max"] == acc.max()
        assert r["var"] == pytest.approx(acc.var(ddof=0))
    o = C.overall(df)
    assert o["min"] == df["accuracy"].min() and o["var"] == pytest.approx(df["accuracy"].var(ddof=0))
    assert o["error_free"] == C.golden_accuracy(w1a1, (x, y))
    space = C.enumerate_faults(w1a1, levels=[1.0], layers=[2, 5])
    pd.testing.assert_frame_equal(space, df[["layer", "channel", "value"]])


def test_estimate_sampled(w1a1):
    x, y = _data(16)
    full = C.stuck_at_campaign(w1a1, (x, y), layers=[0, 1, 2], progress=False)
    s = C.stuck_at_campaign(w1a1, (x, y), layers=[0, 1, 2], sample=30, seed=3, progress=False)
    assert len(s) == 30 and s.attrs["campaign"]["population_size"] == len(full)
    merged = s.merge(full, on=["layer", "channel", "value"], suffixes=("", "_full"))
    assert (merged["correct"] == merged["correct_full"]).all()  # a sample is a subset
    est = C.estimate(s)
    allrow = est[est["layer"].isna()].iloc[0]
    assert allrow["sampled"] == 30 and allrow["population"] == len(full)
    assert allrow["p_missed_worst"] == pytest.approx(1 - 30 / len(full))
    assert allrow["worse_fraction_bound"] == pytest.approx(1 - 0.05 ** (1 / 30))
    assert allrow["mean_low"] <= allrow["mean"] <= allrow["mean_high"]
    assert allrow["min_low"] <= allrow["min"] <= allrow["min_high"]
    exhaustive = C.estimate(full).iloc[-1]
    assert exhaustive["mean_low"] == exhaustive["mean_high"] == pytest.approx(full["accuracy"].mean())
    assert exhaustive["p_missed_worst"] == 0.0
    lo, hi = C.wilson_interval(8, 10)
    assert 49.0 < lo < 49.1 and 94.3 < hi < 94.4  # Wilson 95 %: 49.0–94.3 %


def test_shards_and_merge(tmp_path, w1a1):
    x, y = _data(8)
    full = C.stuck_at_campaign(w1a1, (x, y), layers=[3, 7], progress=False)
    paths = []
    for i in range(3):
        part = C.stuck_at_campaign(w1a1, (x, y), layers=[3, 7], shard=f"{i}/3", progress=False)
        paths.append(C.save_results(part, tmp_path / f"s{i}.parquet"))
    m = C.merge(paths)
    pd.testing.assert_frame_equal(m, full, check_like=False)
    assert m.attrs["campaign"]["complete"]
    assert not C.merge(paths[:2]).attrs["campaign"]["complete"]
    with pytest.raises(ValueError, match="overlap"):
        C.merge([paths[0], paths[1], paths[0]])
    other = C.stuck_at_campaign(w1a1, (x, y), layers=[3], shard=(1, 3), progress=False)
    with pytest.raises(ValueError, match="different campaign"):
        C.merge([paths[0], other])
    x2 = x.clone()
    x2[0, 0, 0, 0] = 0.123
    with pytest.raises(ValueError, match="data_sha256"):
        C.merge([paths[0], C.stuck_at_campaign(w1a1, (x2, y), layers=[3, 7], shard=(1, 3), progress=False)])


# ------------------------------------------------------------------------------------------
# never loses work
# ------------------------------------------------------------------------------------------

_CHILD = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, {root!r})
    from fatlib import campaign as C
    from fatlib.core.models import cnv
    torch.set_num_threads(1)
    blob = torch.load({blob!r}, weights_only=True)
    model = cnv(2, 2, width=0.125)
    model.load_state_dict(blob["state"])
    C.stuck_at_campaign(model.eval(), (blob["x"], blob["y"]), pattern="pixel", layers=[1, 2],
                        store={store!r}, batch_size=8, chunk_size=5, progress=False)
""")


def _records(store: Path) -> list[tuple[int, int]]:
    """Units of the complete, CRC-valid lines of the store's log (a torn tail is skipped)."""
    out = []
    for line in (store / C.RECORDS_FILE).read_bytes().split(b"\n")[:-1]:
        body, _, crc = line.decode(errors="replace").rpartition("\t")
        if f"{zlib.crc32(body.encode()):08x}" == crc:
            rec = json.loads(body)
            out.append((rec["chunk"], rec["batch"]))
    return out


def test_store_survives_sigkill(tmp_path, w2a2):
    x, y = _data(16, seed=6)
    blob = tmp_path / "blob.pt"
    torch.save({"state": w2a2.state_dict(), "x": x, "y": y}, blob)
    store = tmp_path / "store"
    script = tmp_path / "child.py"
    script.write_text(_CHILD.format(root=str(ROOT), blob=str(blob), store=str(store)))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE)
    records = store / C.RECORDS_FILE
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if records.exists() and records.read_bytes().count(b"\n") >= 4:
                break
            time.sleep(0.005)
        assert proc.poll() is None, f"child ended early: {proc.stderr.read().decode()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (store / C.RESULTS_FILE).exists()  # it really was interrupted
    before = _records(store)
    n_units = json.loads((store / C.MANIFEST_FILE).read_text())["n_chunks"] * 2
    assert 4 <= len(before) < n_units
    with open(records, "ab") as fh:  # a torn record, as from a crash mid-write
        fh.write(b'{"chunk":0,"batch":1,"correct":[1,2')
    # a restart with other arguments is refused, clearly
    with pytest.raises(ValueError, match="different campaign"):
        C.stuck_at_campaign(
            w2a2, (x, y), pattern="pixel", layers=[1], store=store, batch_size=8, chunk_size=5, progress=False
        )
    resumed = C.stuck_at_campaign(
        w2a2, (x, y), pattern="pixel", layers=[1, 2], store=store, batch_size=8, chunk_size=5, progress=False
    )
    after = _records(store)
    assert after[: len(before)] == before  # kept, not recomputed
    assert len(after) == len(set(after)) == n_units  # no lost and no duplicated units
    clean = C.stuck_at_campaign(w2a2, (x, y), pattern="pixel", layers=[1, 2], progress=False)
    pd.testing.assert_frame_equal(resumed, clean)
    again = C.load_results(store)
    pd.testing.assert_frame_equal(again, clean)
    assert C.merge([store])["correct"].equals(clean["correct"])


def test_cli(tmp_path, w1a1):
    from fatlib.core.data import save_npz, synthetic_dataset
    from fatlib.core.store import save_checkpoint

    ckpt = save_checkpoint(
        tmp_path / "m.pt",
        w1a1,
        {"arch": "cnv", "num_classes": 10, "width": 0.125, "weight_bits": 1, "act_bits": 1},
    )
    ds = synthetic_dataset(n=12, seed=0, split="test")
    x = ds.images.permute(0, 2, 3, 1).numpy()
    save_npz(
        tmp_path / "data" / "cifar10.npz",
        {"train_x": x, "train_y": ds.labels.numpy(), "test_x": x, "test_y": ds.labels.numpy()},
    )
    out = tmp_path / "r.parquet"
    rc = campaign_main(
        [
            str(ckpt),
            "--pattern",
            "channel",
            "--out",
            str(out),
            "--layers",
            "4",
            "6",
            "--levels",
            "1",
            "--data-dir",
            str(tmp_path / "data"),
            "--store",
            str(tmp_path / "st"),
            "--no-progress",
        ]
    )
    assert rc == 0
    df = C.load_results(out)
    images = ds.images.float() / 255
    ref = C.stuck_at_campaign(w1a1, (images, ds.labels), layers=[4, 6], levels=[1.0], progress=False)
    assert (df["correct"].to_numpy() == ref["correct"].to_numpy()).all()
    assert df.attrs["campaign"]["model_sha256"] == ref.attrs["campaign"]["model_sha256"]
    assert (
        campaign_main([str(ckpt), "--out", str(out), "--layers", "9", "--data-dir", str(tmp_path / "data")])
        == 2
    )
