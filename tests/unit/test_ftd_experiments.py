"""The FT-DeepNets chapter's experiment helpers (fatlib.ftd.experiments, fatlib.ftd.evaluation,
fatlib.ftd.plots) on tiny untrained networks and synthetic data: sizes per profile, the pages'
setup, evaluation under errors, the sweeps of Fig. 2, 6, 7, the Fig. 4 demonstrations, Tables 1–3,
the claim checks and the figures."""

from __future__ import annotations

from dataclasses import replace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from helpers import ftd_net
from torch import nn  # noqa: E402

from fatlib.core.data import synthetic_dataset
from fatlib.core.models import vgg16
from fatlib.core.profiles import PROFILES, Profile, SweepSizes
from fatlib.core.verdicts import VERDICTS, Claim
from fatlib.ftd import duplication, evaluation, plots, ranking
from fatlib.ftd import experiments as ftd


def _net(arch: str) -> nn.Module:
    return ftd_net(arch)


@pytest.fixture(scope="module")
def nets() -> dict[str, nn.Module]:
    return {"vgg16": _net("vgg16"), "mobilenet_v1": _net("mobilenet_v1")}


@pytest.fixture(scope="module")
def ds():
    return synthetic_dataset(n=24, seed=3, split="test")


@pytest.fixture(scope="module")
def data(ds):
    return ftd.as_tensors(ds)


# ------------------------------------------------------------------------------------------
def test_sweep_sizes_follow_the_profile():
    smoke, cpu, paper = (ftd.sweep_sizes(n) for n in ("smoke", "cpu", "paper"))
    for name, s in (("smoke", smoke), ("cpu", cpu), ("paper", paper)):
        assert s.seeds == PROFILES[name].seeds
        assert s.location_rates[0] == 0.0 and 0.1 in s.location_rates
        assert max(s.fmap_rates) == 0.1 and min(s.fmap_rates) == 0.01  # the paper's 1 %–10 %
    assert len(smoke.fmap_rates) < len(cpu.fmap_rates) < len(paper.fmap_rates)
    assert paper.fmap_rates == tuple(i / 100 for i in range(1, 11))
    assert smoke.seed_list(5) == [5] and cpu.seed_list(2) == [2, 3, 4]
    custom = Profile("tiny", 0.125, 1, 1, 100, 64, 32, 2, 8, 0.125, 1)
    assert ftd.sweep_sizes(custom) == replace(ftd.sweep_sizes("smoke"), seeds=2)
    assert "smoke" in ftd.setup_line("smoke") and "width 0.125" in ftd.setup_line("smoke")


def test_profiles_are_the_one_size_registry():
    """The sweep sizes live in fatlib.core.profiles (Profile.ftd_sweep); the profile's flat row
    (to_dict, what the book's profile table shows) and describe() are what they were."""
    for name, prof in PROFILES.items():
        assert isinstance(prof.ftd_sweep, SweepSizes)
        assert ftd.sweep_sizes(name) == replace(prof.ftd_sweep, seeds=prof.seeds)
        assert ftd.sweep_sizes(prof) == ftd.sweep_sizes(name)
        row = prof.to_dict()
        assert (
            "ftd_sweep" not in row and row["name"] == name and len(row) == 26
        )  # 23 + the export check sizes + the FAT training seeds
        assert "sweeps" not in prof.describe()
    assert ftd.SweepSizes is SweepSizes
    own = replace(PROFILES["smoke"].ftd_sweep, fmap_rates=(0.05,))
    custom = replace(PROFILES["cpu"], name="custom", seeds=2, ftd_sweep=own)
    assert ftd.sweep_sizes(custom) == replace(own, seeds=2)
    big = Profile("big", 0.125, 1, 1, 100, 1000, 32, 1, 8, 0.125, 1)  # no ftd_sweep: by test split
    assert big.ftd_sweep is None and ftd.sweep_sizes(big) == replace(ftd.sweep_sizes("cpu"), seeds=1)


def test_setup_trains_and_loads_what_a_page_needs(tmp_path):
    s = ftd.setup("smoke", "cpu", 3, "", tmp_path / "out", "ftd-test", archs=("vgg16",), with_rank_data=True)
    assert s.profile is PROFILES["smoke"] and s.sizes == ftd.sweep_sizes("smoke")
    assert s.out == tmp_path / "out" and s.out.is_dir()
    assert list(s.models) == ["vgg16"] and s.models["vgg16"] is s.trained["vgg16"].model
    assert len(s.eval_data[1]) == len(s.test) == PROFILES["smoke"].test_size  # eval_images None: all
    assert s.seeds == [3]
    assert len(s.rank_data[1]) == ftd.sweep_sizes("smoke").rank_images and s.train is not None
    x, y = ftd.as_tensors(s.test, None)
    assert torch.equal(x, s.eval_data[0]) and torch.equal(y, s.eval_data[1])
    glued = s.glued("t")
    assert glued == {
        "t_profile": "smoke",
        "t_profile_line": PROFILES["smoke"].describe(),
        "t_setup": ftd.setup_line("smoke"),
        "t_test_source": s.test.source,
        "t_eval_images": len(s.eval_data[1]),
        "t_synthetic": s.test.synthetic,
    }
    assert s.synthetic == s.test.synthetic
    assert s.line == ftd.setup_line("smoke")
    table = s.networks()
    assert list(table.columns) == ["vgg16"]
    assert list(table.index) == ["test accuracy [%]", "width", "epochs", "reused from store"]
    plain = ftd.setup("smoke", "cpu", 3, "", tmp_path / "out2", "ftd-test", archs=("vgg16",))
    assert plain.rank_data is None and plain.train is None
    assert plain.trained["vgg16"].reused  # the same network, from the store


def test_evaluation_helpers_are_reexported():
    for name in evaluation.__all__:
        assert getattr(ftd, name) is getattr(evaluation, name)


def test_as_tensors_matches_the_dataset(ds):
    x, y = ftd.as_tensors(ds, 5)
    assert x.shape == (5, 3, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert torch.equal(y, ds.labels[:5])
    assert torch.allclose(x[2], ds[2][0])
    assert len(ftd.as_tensors(ds, 10_000)[1]) == len(ds)


def test_feature_layers_are_the_convolutions(nets):
    layers = ftd.feature_layers(nets["vgg16"])
    assert "classifier" not in layers and len(layers) == 13
    dup = duplication.duplicate(nets["vgg16"], 0.5, ranking.rank_channels(nets["vgg16"], "weight_sum"))
    assert ftd.feature_layers(dup) == layers  # duplicated layers are single sites


def test_predictions_without_and_with_errors(nets, data):
    m, (x, y) = nets["vgg16"], data
    with torch.no_grad():
        ref = m(x).argmax(1)
    assert torch.equal(ftd.predict_under_errors(m, x, batch_size=7), ref)
    a = ftd.predict_under_errors(m, x, 0.2, 0.2, seed=1, batch_size=8)
    b = ftd.predict_under_errors(m, x, 0.2, 0.2, seed=1, batch_size=8)
    assert torch.equal(a, b)  # seeded
    before = {k: v.clone() for k, v in m.state_dict().items()}
    # every feature map zeroed: the classifier sees zeros, so every image gets the same class
    const = ftd.predict_under_errors(m, x, 0.0, 1.0, seed=0)
    assert const.unique().numel() == 1
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    acc = ftd.accuracy_under_errors(m, data)
    assert acc == pytest.approx(100.0 * float((ref == y).double().mean()))


def test_per_class_accuracy():
    pred = torch.tensor([0, 1, 1, 2, 0])
    true = torch.tensor([0, 1, 0, 2, 2])
    s = ftd.per_class_accuracy(pred, true, ["a", "b", "c", "d"])
    assert s["a"] == 50.0 and s["b"] == 100.0 and s["c"] == 50.0 and pd.isna(s["d"])


def test_error_sweep_and_summary(nets, data):
    res = ftd.error_sweep({"v": nets["vgg16"]}, data, [0.0, 0.05], [0.0], [0, 1], batch_size=12)
    assert list(res.columns) == ["model", "weight_rate", "fmap_rate", "seed", "accuracy"]
    assert len(res) == 4
    clean = res[res["weight_rate"] == 0]["accuracy"]
    assert clean.nunique() == 1 and clean.iloc[0] == ftd.accuracy_under_errors(nets["vgg16"], data)
    s = ftd.summarize(res, ["model", "weight_rate"])
    assert list(s.columns) == ["model", "weight_rate", "mean", "std", "n"]
    assert (s["n"] == 2).all() and s.loc[s["weight_rate"] == 0, "std"].iloc[0] == 0.0
    one = ftd.summarize(res[res["seed"] == 0], ["weight_rate"])
    assert (one["std"] == 0).all()  # a single seed has no spread, not NaN


def test_error_location_sweep_and_claims(nets, data):
    res = ftd.error_location_sweep(nets, data, (0.0, 0.5), [0], batch_size=12)
    assert set(res["location"]) == {"kernel", "feature map"}
    assert len(res) == 2 * 2 * 2
    claims = ftd.error_location_claims(res)
    assert set(claims) == {
        "kernel_worse_vgg16",
        "kernel_worse_mobilenet_v1",
        "kernel_worse",
        "compact_more_sensitive",
    }
    assert all(isinstance(c, Claim) and c.verdict in VERDICTS for c in claims.values())
    assert claims["kernel_worse_vgg16"].method == "one error seed: spread unknown"
    assert claims["kernel_worse_vgg16"].verdict in ("inconclusive", "not run")
    rows = ftd.error_location_comparison(res)  # rate 0.1 absent: the largest rate is used
    assert len(rows) == 4 and all("50 %" in r["quantity"] for r in rows)
    # a hand-made result where kernel errors are worse and MobileNet keeps less
    hand = pd.DataFrame(
        [
            {"network": n, "location": loc, "rate": r, "seed": s, "accuracy": acc + (s if r else 0)}
            for n, base, k, f in (("vgg16", 80, 60, 70), ("mobilenet_v1", 70, 20, 40))
            for loc, acc_r in (("kernel", k), ("feature map", f))
            for r, acc in ((0.0, base), (0.1, acc_r))
            for s in (0, 1, 2)
        ]
    )
    c = ftd.error_location_claims(hand)
    assert c["kernel_worse"].verdict == "holds" and c["compact_more_sensitive"].verdict == "holds"
    paper_rows = {r["quantity"]: r for r in ftd.error_location_comparison(hand)}
    mn = paper_rows["MobileNetV1, 10 % feature map errors: score kept [% of error-free]"]
    assert mn["paper"] == pytest.approx(100 * 62 / 67.5) and mn["ours"] == pytest.approx(
        100 * 41 / 70
    )  # seeds 0, 1, 2 add 1 on average


def test_rankings_scores_and_overlaps(nets, data):
    scores = ftd.rank_all(nets["vgg16"], data=data, batch_size=12)
    assert set(scores) == set(ranking.RANKING_METHODS)
    t = ftd.score_table(scores, "features.3", 0.5)
    assert len(t) == nets["vgg16"].features[3].out_channels
    assert t["weight_sum_top"].sum() == len(t) // 2
    assert sorted(t["entropy_rank"]) == list(range(len(t)))
    best = t.loc[t["second_order_score"].idxmax()]
    assert best["second_order_rank"] == 0 and best["second_order_top"]
    ov = ftd.layer_overlaps(scores, 0.5)
    assert len(ov) == 6 * 13 and ov["fraction"].between(0, 1).all()
    m = ftd.overlap_matrix(ov)
    assert (m.to_numpy().diagonal() == 1).all() and (m == m.T).all().all()
    same = ftd.layer_overlaps({"a": scores["weight_sum"], "b": scores["weight_sum"]})
    assert (same["fraction"] == 1).all()
    claims = ftd.ranking_claims(ov)
    assert set(claims) == {"differ", "not_random"}
    assert all(c.kind == "observation" for c in claims.values())  # Fig. 3 is a diagram
    with pytest.raises(ValueError, match="not ranked"):
        ftd.score_table(scores, "classifier")


def test_single_error_demos_halve_the_error(nets, data):
    m = nets["vgg16"]
    scores = ranking.rank_channels(m, "weight_sum")
    kr = duplication.duplicate(m, 0.5, scores, "kr")
    fmr = duplication.duplicate(m, 0.5, scores, "fmr")
    x = ftd.layer_input(kr, "features.3", data[0][:2])
    assert x.shape[1] == m.features[3].in_channels
    d = ftd.kr_weight_error_demo(kr.get_submodule("features.3"), x)
    assert d["halfway"] and d["unprotected_channel_equal"]
    assert d["max_error_kr"] == pytest.approx(d["max_error_no_duplication"] / 2, rel=1e-4)
    assert d["max_error_no_duplication"] > 0
    f = ftd.fmr_fmap_error_demo(fmr.get_submodule("features.3"), x)
    assert f["halfway"] and f["fmr_value"] == pytest.approx(f["clean_value"] / 2, rel=1e-5)
    # the demos work on copies: the networks are unchanged
    assert ftd.no_error_agreement(m, kr, data[0])["equal"]
    agree = ftd.no_error_agreement(m, fmr, data[0], batch_size=10)
    assert agree["max_abs_diff"] < 1e-4 and agree["same_predictions"] == 1.0
    with pytest.raises(ValueError, match="no copy"):
        undup = [c for c in range(kr.features[3].channels) if c not in kr.features[3].index.tolist()]
        ftd.kr_weight_error_demo(kr.get_submodule("features.3"), x, channel=undup[0])
    with pytest.raises(ValueError, match="KRConv2d"):
        ftd.kr_weight_error_demo(fmr.get_submodule("features.3"), x)


def test_ranking_methods_sweep(nets, data):
    panels = (ftd.Panel("vgg16", "kr", 0.01), ftd.Panel("vgg16", "fmr", 0.01))
    res = ftd.ranking_methods_sweep(
        nets, panels, data, data, [0.01, 0.1], [0], batch_size=12, methods=("weight_sum", "random")
    )
    assert set(res["ranking"]) == {"weight_sum", "random", "none"}
    assert len(res) == 2 * 3 * 2
    none = res[res["ranking"] == "none"]
    assert none.groupby("fmap_rate")["accuracy"].nunique().eq(1).all()  # shared between panels
    assert len(ftd.fig06_panels()) == 4 and len(ftd.fig06_panels(True)) == 8
    assert ftd.PAPER_FIG06_PANELS[3] == ftd.Panel("vgg16", "fmr", 0.10)
    claims = ftd.ranking_methods_claims(res)
    assert set(claims) == {"beats_random", "random_beats_none", "dup_beats_none"}
    rows = ftd.ranking_methods_comparison(res, {"vgg16": 50.0})
    assert rows[-1]["paper"] == 10.0 and "gain" in rows[-1]["quantity"]
    spread = ftd.rankings_within_one_std(res)
    assert spread["pairs"] == 2 * 2 and 0 <= spread["within"] <= spread["pairs"]


def test_kr_vs_fmr(nets, data):
    a = ftd.kr_vs_fmr_sweep(nets, data, "fmap", [0.02, 0.2], 0.01, [0], batch_size=12)
    b = ftd.kr_vs_fmr_sweep(
        {"mobilenet_v1": nets["mobilenet_v1"]}, data, "weight", [0.02, 0.2], 0.0, [0], batch_size=12
    )
    assert set(a["duplication"]) == {"kr", "fmr"} and (a["rate"] == a["fmap_rate"]).all()
    assert (b["rate"] == b["weight_rate"]).all() and (b["fmap_rate"] == 0).all()
    # weight errors only, same seed: KR and FMR are the same computation
    wide = b.pivot_table(index="rate", columns="duplication", values="accuracy")
    assert (wide["kr"] - wide["fmr"]).abs().max() <= 100 / len(data[1]) + 1e-9
    ident = ftd.weight_only_identity(nets["mobilenet_v1"], data[0], 0.2, batch_size=12)
    assert ident["relative_diff"] < 1e-5 and ident["same_predictions"] == 1.0
    claims = ftd.kr_vs_fmr_claims(a, b)
    assert set(claims) == {
        "fmr_ge_kr_fmap",
        "fmr_gap_grows",
        "kr_ge_fmr_weight",
        "kr_similar_low_fmap",
        "obs1_kr_similar",
    }
    assert claims["obs1_kr_similar"].verdict == "not run"  # 1 % + 1 % is not in this sweep
    with pytest.raises(ValueError, match="varied"):
        ftd.kr_vs_fmr_sweep(nets, data, "both", [0.1], 0.0, [0])


def test_latency_table_and_claims(nets):
    rounds = ftd.latency_rounds({"vgg16": nets["vgg16"]}, min_run_time=0.01, rounds=2)
    assert list(rounds.columns) == ["network", "model", "round", "median_ms", "ratio", "device", "macs_bound"]
    assert len(rounds) == 3 * 2 and (rounds.loc[rounds["model"] == "original", "ratio"] == 1.0).all()
    lat = ftd.summarize_latency(rounds)
    assert list(lat["model"]) == ["original", "kr", "fmr"]
    assert lat.loc[lat["model"] == "original", "ratio"].iloc[0] == 1.0
    assert 1.0 < lat.loc[lat["model"] == "fmr", "macs_bound"].iloc[0] < 2.0
    assert lat["device"].iloc[0].startswith("cpu")
    one = ftd.latency_table({"vgg16": nets["vgg16"]}, min_run_time=0.01, rounds=1)
    assert list(one.columns) == list(lat.columns)
    paper = ftd.paper_latency()
    assert paper.loc[0, "fmr_ratio"] == pytest.approx(60.35 / 31.39)
    comp = ftd.latency_comparison(lat)
    assert set(comp["source"]) == {"ours", "paper (SSD-VGG)", "paper (SSD-MobileNet)"}
    claims = ftd.latency_claims(rounds)
    assert set(claims) == {"kr_far_less", "fmr_slower", "obs1_kr_speed"}
    assert all(c.verdict in VERDICTS and c.unit == "%" for c in claims.values())


def test_memory_tables_and_claims(nets):
    mem = ftd.memory_table(nets)
    assert set(mem["method"]) == {"kr", "fmr"} and len(mem) == 2 * 2 * 3
    small = ftd.paper_scale_memory(width=0.125, vgg_input=32, mobilenet_input=32)
    assert set(small["input"]) == {"32×32"}
    comp = ftd.memory_comparison(mem, small)
    assert list(comp["paper_mb"]) == [29.6, 78.0, 6.4, 16.8]
    kr = ftd.kr_memory_table(nets)
    assert list(kr["network"]) == ["vgg16", "mobilenet_v1"]
    # the copies differ: KR keeps its averaged kernels beside the duplicated ones
    assert (kr["averaged_bytes"] > 0).all() and (kr["duplicated_bytes"] == kr["estimate_bytes"]).all()
    kernels = mem[(mem["method"] == "kr") & (mem["quantity"] == "kernels")]
    assert list(kernels["analytic_overhead_bytes"]) == list(kr["estimate_bytes"])
    claims = ftd.memory_claims(comp, kr)
    assert claims["kr_matches_estimate"].verdict == "does not hold"  # Table 2 leaves them out
    assert claims["fmr_more"].verdict == "holds"
    assert claims["paper_scale_vgg16"].verdict == "does not hold"  # a tiny network is far from the paper's MB
    assert ftd.memory_claims(comp)["kr_matches_estimate"].verdict == "not run"
    # the VGG-16 feature extractor at width 1 has the paper's 14.7 million parameters
    vgg_params = sum(p.numel() for p in vgg16(width=1.0).features.parameters() if p.dim() > 1)
    assert round(vgg_params / 1e6, 1) == 14.7


def test_table3(nets, ds, data):
    variants = ftd.table3_models(nets["mobilenet_v1"])
    assert list(variants) == [c for c in ftd.TABLE3_COLUMNS if c != "no_error"]
    assert isinstance(variants["d2nn_50"], duplication.D2NN)
    assert isinstance(variants["kr_20"].blocks[0][3], duplication.KRConv2d)
    runs = ftd.table3_runs(variants, data, ds.classes, 0.01, 0.01, [0, 1], batch_size=12)
    assert list(runs.columns) == ["variant", "seed", "class", "accuracy"]
    assert set(runs["seed"]) == {0, 1} and "overall" in set(runs["class"])
    table = ftd.per_class_from_runs(runs)
    assert list(table.columns) == list(ftd.TABLE3_COLUMNS)
    assert list(table.index[-2:]) == ["mean per-class", "overall"]
    assert table.loc["overall", "no_error"] == pytest.approx(
        ftd.accuracy_under_errors(nets["mobilenet_v1"], data)
    )
    same = ftd.per_class_table(variants, data, ds.classes, 0.01, 0.01, [0, 1], batch_size=12)
    pd.testing.assert_frame_equal(same, table)
    fps_r = ftd.fps_rounds(variants, min_run_time=0.01, rounds=1)
    fps = ftd.fps_median(fps_r)
    assert list(fps.index) == list(ftd.TABLE3_COLUMNS) and (fps > 0).all()
    assert fps["no_error"] == fps["no_duplication"]
    assert list(ftd.fps_row(variants, min_run_time=0.01, rounds=1).index) == list(fps.index)
    claims = ftd.table3_claims(runs, fps_r)
    assert set(claims) == {"beat_d2nn", "dup_recovers", "more_dup_better", "kr_faster"}
    assert claims["kr_faster"].verdict == "inconclusive"  # one round: spread unknown
    assert ftd.order_agreement(
        pd.Series({"a": 1, "b": 2, "c": 3}), pd.Series({"a": 10, "b": 20, "c": 30, "d": 1})
    ) == pytest.approx(1.0)
    assert ftd.order_agreement(pd.Series({"a": 1, "b": 2}), pd.Series({"a": 2, "b": 1})) == pytest.approx(
        -1.0
    )


def test_figures(nets, data):
    loc = ftd.error_location_sweep(nets, data, (0.0, 0.1), [0, 1], batch_size=12)
    scores = ftd.rank_all(nets["vgg16"], data=data, batch_size=12)
    m = ftd.overlap_matrix(ftd.layer_overlaps(scores))
    kr = duplication.duplicate(nets["vgg16"], 0.5, ranking.rank_channels(nets["vgg16"], "weight_sum"))
    fmr = duplication.duplicate(nets["vgg16"], 0.5, ranking.rank_channels(nets["vgg16"], "weight_sum"), "fmr")
    x = ftd.layer_input(kr, "features.0", data[0][:1])
    panels = (ftd.Panel("vgg16", "kr", 0.01),)
    r6 = ftd.ranking_methods_sweep(
        nets, panels, data, data, [0.01, 0.1], [0], batch_size=12, methods=("weight_sum", "random")
    )
    a = ftd.kr_vs_fmr_sweep(nets, data, "fmap", [0.01, 0.1], 0.01, [0], batch_size=12)
    b = ftd.kr_vs_fmr_sweep({"mobilenet_v1": nets["mobilenet_v1"]}, data, "weight", [0.01, 0.1], 0.01, [0])
    hand = pd.DataFrame(
        {
            "network": ["vgg16", "mobilenet_v1"] * 3,
            "model": ["original"] * 2 + ["kr"] * 2 + ["fmr"] * 2,
            "ratio": [1, 1, 1.1, 1.1, 1.6, 1.5],
            "device": "cpu",
        }
    )
    table = pd.DataFrame(
        {"no_error": [50.0, 60.0, 55.0], "kr_50": [40.0, 50.0, 45.0]}, index=["a", "b", "mean per-class"]
    )
    figs = [
        plots.plot_error_location(loc, "t"),
        plots.plot_ranking_scores(scores, "features.3", m, title="t"),
        plots.plot_duplication_demo(
            ftd.kr_weight_error_demo(kr.features[0], x), ftd.fmr_fmap_error_demo(fmr.features[0], x)
        ),
        plots.plot_duplication_summary({"vgg16": duplication.duplication_summary(kr)}),
        plots.plot_ranking_methods(r6, panels),
        plots.plot_kr_vs_fmr(a, b),
        plots.plot_latency(ftd.latency_comparison(hand)),
        plots.plot_per_class(table),
    ]
    axes = [len(f.axes) for f in figs]
    assert axes[0] == 2 and axes[1] == 5 and axes[2] == 8 and axes[5] == 2  # 3 scores + matrix + colorbar
    for f in figs:
        plt.close(f)


def test_zero_error_moments():
    m = ftd.zero_error_moments(0.1).set_index("copies")
    one, two = m.iloc[0], m.iloc[1]
    assert one["mean_error"] == two["mean_error"] == -0.1  # averaging keeps the expected error
    assert two["mean_squared_error"] == pytest.approx(0.1 * 1.1 / 2)
    assert ftd.zero_error_moments(0.0)["rms_error"].eq(0).all()
    with pytest.raises(ValueError):
        ftd.zero_error_moments(1.5)
    # Monte Carlo of the same statement
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(200_000, generator=g) >= 0.1, torch.rand(200_000, generator=g) >= 0.1
    avg = (a.double() + b.double()) / 2 - 1
    assert float(avg.mean()) == pytest.approx(-0.1, abs=3e-3)
    assert float(avg.pow(2).mean()) == pytest.approx(0.055, abs=3e-3)


def test_layer_error_statistics(nets, data):
    m = nets["vgg16"]
    scores = ranking.rank_channels(m, "weight_sum")
    fmr = duplication.duplicate(m, 0.5, scores, "fmr")
    kr = duplication.duplicate(m, 0.5, scores, "kr")
    x = ftd.layer_input(m, "features.3", data[0][:4])
    s = ftd.layer_error_statistics(m.features[3], fmr.features[3], x, 0.0, 0.2, range(4))
    assert list(s["layer"]) == ["no duplication"] * 2 + ["FMR"] * 2
    t = s.set_index(["layer", "channels"])
    # FMR shrinks the spread of feature-map errors in duplicated channels, not elsewhere
    assert (
        t.loc[("FMR", "duplicated"), "rms_error"]
        < 0.85 * t.loc[("no duplication", "duplicated"), "rms_error"]
    )
    assert t.loc[("FMR", "not duplicated"), "rms_error"] == pytest.approx(
        t.loc[("no duplication", "not duplicated"), "rms_error"]
    )
    k = ftd.layer_error_statistics(m.features[3], kr.features[3], x, 0.0, 0.2, range(4)).set_index(
        ["layer", "channels"]
    )
    assert k.loc[("KR", "duplicated"), "rms_error"] == pytest.approx(
        k.loc[("no duplication", "duplicated"), "rms_error"]
    )  # KR leaves feature-map errors alone
