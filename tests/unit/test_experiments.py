import numpy as np
import pandas as pd
import pytest

from fatlib.core.schemes import FAT_M1, FAT_M2, SAT
from fatlib.core.training import TrainResult
from fatlib.fat import experiments


def _ev(campaign, error_free=80.0, scheme=SAT, p=0.0, label="CNVW1A1 SAT"):
    train = TrainResult(model=None, config={"scheme": scheme, "p": p}, metrics={})
    return experiments.FaultEvaluation(
        label=label,
        network="CNVW1A1",
        dataset="cifar10",
        train=train,
        campaign=campaign,
        error_free=error_free,
        campaign_pattern="channel",
        profile="smoke",
    )


def _campaign(layers, accuracies, values=None, total=100):
    """A hand-made channel campaign: one fault per entry, channel = position within its layer."""
    values = values or [1.0] * len(layers)
    channels = [layers[:i].count(layer) for i, layer in enumerate(layers)]
    return pd.DataFrame(
        {
            "layer": layers,
            "channel": channels,
            "value": values,
            "correct": [round(a * total / 100) for a in accuracies],
            "total": total,
            "accuracy": [float(a) for a in accuracies],
        }
    )


CAMPAIGN = _campaign(
    [0, 0, 0, 0, 1, 1], [79.0, 70.0, 81.0, 78.0, 80.0, 60.0], values=[-1.0, 1.0, -1.0, 1.0, -1.0, 1.0]
)
CAMPAIGN["channel"] = [0, 0, 1, 1, 0, 0]


def test_table1_quantities():
    ev = _ev(CAMPAIGN)
    assert ev.minimum == 60.0
    assert ev.variance == pytest.approx(CAMPAIGN["accuracy"].var(ddof=0))
    t = experiments.per_layer_table(ev).set_index("layer")
    assert list(t.columns) == ["channels", "s@-1 min", "s@-1 max", "s@+1 min", "s@+1 max"]
    assert t.loc[0].tolist() == [2, 79.0, 81.0, 70.0, 78.0]
    assert t.loc[1].tolist() == [1, 80.0, 80.0, 60.0, 60.0]
    row = experiments.table_row(ev)
    assert row["min"] == 60.0 and row["faults"] == 6 and row["error_free"] == 80.0


def test_parse_parameters():
    assert experiments.parse_list("5, 2.5,1.5") == [5.0, 2.5, 1.5]
    assert experiments.parse_networks("W1A1, cnvw2a2") == [(1, 1), (2, 2)]
    with pytest.raises(ValueError, match="W<bits>A<bits>"):
        experiments.parse_networks("1-1")
    with pytest.raises(ValueError, match="comma-separated"):
        experiments.parse_list("5, x")


def test_table_claim_and_wide():
    long = _long(
        [
            (0, "CNVW1A1", "sat", "min", 40.0, 0.5),
            (0, "CNVW1A1", "fat", "min", 45.0, 0.5),
            (0, "CNVW1A1", "sat", "error_free", 60.0, 0.2),
            (0, "CNVW1A1", "fat", "error_free", 59.0, 0.2),
        ]
    )
    long = pd.concat([long, long.iloc[:1].assign(row=1, dataset="SVHN", ours=None, status="not run: svhn")])
    long.attrs = _long.attrs
    c = experiments.table_claim(long, "FAT min above SAT", "fat", "min", ">", "sat", "min")
    assert c.verdict == "holds" and "45.00 vs 40.00" in c.evidence and c.difference == pytest.approx(5.0)
    assert c.low > 0 and c.high > c.low
    assert experiments.table_claim(long, "c", "fat", "error_free", ">", "sat", "error_free").verdict == (
        "does not hold"
    )
    # "not below" within 2 pp: a 1 pp loss whose interval stays above −2 pp holds
    nb = experiments.table_claim(long, "c", "fat", "error_free", ">=", "sat", "error_free", tolerance=2.0)
    assert nb.verdict == "holds"
    assert experiments.table_claim(long, "c", "fat", "min", "~", "sat", "min", tolerance=1.0).verdict == (
        "does not hold"
    )
    with pytest.raises(ValueError, match="relation"):
        experiments.table_claim(long, "c", "fat", "min", "!=", "sat", "min")
    assert experiments.table_claim(long, "c", "d2d", "min", ">", "sat", "min").verdict == "not run"
    wide = experiments.wide(long)
    assert wide.loc[wide.dataset == "SVHN", "status"].iloc[0].startswith("not run")
    assert wide.loc[wide.dataset == "CIFAR10", "sat min (paper)"].iloc[0] == 50.0


def test_data_missing(tmp_path, monkeypatch):
    assert "not found" in experiments.data_missing("svhn", tmp_path)
    # a named data folder never falls back to a stand-in; with none named, smoke uses one
    assert "not found" in experiments.data_missing("svhn", tmp_path, profile="smoke")
    monkeypatch.setenv("FATLIB_DATA", str(tmp_path))
    assert experiments.data_missing("svhn", None, profile="smoke") is None  # synthetic stand-in
    with pytest.raises(ValueError, match="table"):
        experiments.reproduce_table("fat_table9", "smoke")


def test_pixel_campaign_images_and_layers(tmp_path, monkeypatch):
    """Profile.pixel_campaign_images sizes the Table IV campaigns only (channel campaigns keep the
    whole test split), and the same-pixel store is named after its layers (0-4: no 1×1 map)."""
    import dataclasses

    from fatlib.core import profiles

    monkeypatch.setenv("FATLIB_STORE", str(tmp_path / "store"))
    prof = dataclasses.replace(
        profiles.get_profile("smoke"), name="smoke", pixel_campaign_images=40, campaign_faults=6
    )
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("FATLIB_DATA", str(empty))  # no data folder named: synthetic stand-ins at smoke
    pix = experiments.evaluate_cnv(prof, 1, 1, campaign_pattern="pixel", device="cpu")
    chan = experiments.evaluate_cnv(prof, 1, 1, campaign_pattern="channel", device="cpu")
    assert set(pix.campaign["total"]) == {40}
    assert set(chan.campaign["total"]) == {prof.test_size}
    assert pix.campaign.attrs["campaign"]["layers"] == [0, 1, 2, 3, 4]
    assert any(p.name.startswith("campaign-pixel-L01234-") for p in pix.train.path.iterdir())
    assert "same-pixel campaigns on 40" in prof.describe()


def test_table2_rows_without_data_say_why(tmp_path, monkeypatch):
    """At the cpu profile with no data at all nothing is trained: every row of Table II keeps the
    paper's numbers, and DoReFa-Net's row says where ImageNet was looked for."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("FATLIB_DATA", str(empty))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    long = experiments.reproduce_table("fat_table2", "cpu", data_dir=empty, device="cpu")
    assert long["ours"].isna().all() and long["paper"].notna().all()
    status = long.groupby("network")["status"].first()
    assert status["DoReFa-Net"].startswith("not run: ImageNet not found")
    assert "imagenet" in status["DoReFa-Net"]
    assert all(s.startswith("not run: cifar10") or "not found" in s for s in status.drop("DoReFa-Net"))


def test_paper_quotes_match_their_text():
    """Numbers the papers print only in prose come from quotes.csv; each one appears in the
    sentence it is quoted from, and an unknown key names the known ones."""
    from fatlib.core import paper

    q = paper.quotes()
    assert q["key"].is_unique and len(q) >= 10
    for _, row in q.iterrows():
        assert f"{row['value']:g}%" in row["text"] or f"{row['value']:g} " in row["text"], row["key"]
    assert paper.quote("fat_fig9_sat_channels") == 278 and paper.quote("ftd_vgg_error_free_map") == 77.26
    with pytest.raises(ValueError, match="fat_fig9_target_error"):
        paper.quote("no-such-quote")


def test_per_layer_is_summarize_with_the_network():
    """One per-layer min / max: FaultEvaluation.per_layer is campaign.summarize's, with the
    network's label; Table I's pivot reads it."""
    from fatlib.fat.campaign import summarize

    ev = _ev(CAMPAIGN)
    per = ev.per_layer()
    assert list(per.columns) == experiments.PER_LAYER_COLUMNS
    s = summarize(CAMPAIGN, error_free=80.0)
    for col in ("layer", "value", "min", "max", "mean"):
        assert per[col].tolist() == s[col].tolist()
    assert per["count"].tolist() == s["faults"].tolist()
    assert set(per["network"]) == {"CNVW1A1 SAT"} and set(per["error_free"]) == {80.0}
    both = experiments.per_layer_of([ev, _ev(CAMPAIGN, label="CNVW1A1 FAT p=5%")])
    assert len(both) == 2 * len(per) and list(both.index) == list(range(len(both)))
    assert ev.worst_fault["accuracy"] == 60.0 and ev.worst_fault["layer"] == 1


def _outcomes(accuracies, n, seed, golden_acc=80.0):
    """Per-image outcomes whose fault accuracies are ``accuracies`` (rounded to whole images)."""
    from fatlib.fat.campaign import Outcomes

    rng = np.random.default_rng(seed)
    golden = np.zeros(n, dtype=bool)
    golden[rng.permutation(n)[: round(golden_acc * n / 100)]] = True
    faults = np.zeros((len(accuracies), n), dtype=bool)
    for f, a in enumerate(accuracies):
        faults[f, rng.permutation(n)[: round(a * n / 100)]] = True
    return Outcomes(golden, faults)


def _evo(layers, accuracies, error_free=80.0, scheme=SAT, p=0.0, label="CNVW1A1 SAT", n=2000, seed=0):
    """A FaultEvaluation with per-image outcomes on ``n`` shared test images (key "imgs")."""
    o = _outcomes(accuracies, n, seed, error_free)
    camp = _campaign(list(layers), list(100.0 * o.faults.mean(axis=1)), total=n)
    camp["correct"] = o.faults.sum(axis=1)
    ev = _ev(camp, error_free=100.0 * o.golden.mean(), scheme=scheme, p=p, label=label)
    ev.outcomes, ev.images_key = o, "imgs"
    return ev


def _table1(conv, fc, error_free=80.0, seed=0):
    """Six conv layers and two FC layers, two channels each: ``conv`` / ``fc`` the accuracies
    of the first channel of each (the others at 79)."""
    layers = [layer for layer in range(8) for _ in range(2)]
    acc = [(conv[L] if L < 6 else fc[L - 6]) if k == 0 else 79.0 for L in range(8) for k in range(2)]
    return _evo(layers, acc, error_free=error_free, seed=seed)


def test_table1_claims_flip_with_the_data():
    holds = experiments.table1_claims(_table1([79, 20, 79, 79, 79, 79], [78, 78]))
    assert [c.verdict for c in holds] == ["holds", "holds", "holds"]
    assert holds[1].evidence.startswith("conv layers min 20.") and "Table I" in holds[0].paper
    fails = experiments.table1_claims(_table1([79] * 6, [70, 40]))
    assert [c.verdict for c in fails] == ["holds", "does not hold", "does not hold"]
    assert "worst fault in layer 7" in fails[2].evidence
    even = experiments.table1_claims(_table1([60] * 6, [60, 60]))
    assert even[0].verdict == "does not hold"  # every stuck channel costs alike
    close = experiments.table1_claims(_table1([79, 50, 79, 79, 79, 79], [50.5, 79]))
    assert close[1].verdict == "inconclusive"  # 0.5 pp apart on 2,000 images


def _fat(accuracies, p, scheme=FAT_M2, error_free=80.0, seed=1):
    return _evo(
        [0] * len(accuracies), accuracies, error_free, scheme, p, f"CNVW1A1 FAT p={100 * p:g}%", seed=seed
    )


def test_method_figure_claims_flip_with_the_data():
    sat = _evo([0, 0, 0], [20.0, 50.0, 80.0], error_free=80.0)
    good = [_fat([70.0, 71.0, 72.0], 0.05, seed=1), _fat([60.0, 65.0, 70.0], 0.015, error_free=82.0, seed=2)]
    claims = experiments.fat_vs_sat_claims(sat, good)
    assert [c.claim for c in claims] == [
        "FAT's minimum accuracy is above SAT's for every p",
        "FAT's error-free accuracy is not below SAT's at the lowest p (within 1 pp)",
        "FAT lowers the variance of accuracy under faults (every p)",
    ]
    assert [c.verdict for c in claims] == ["holds", "holds", "holds"]
    assert "Table II: 81.26 vs 50.83" in claims[0].paper
    bad = [_fat([10.0, 80.0, 45.0], 0.05, error_free=70.0, seed=3), good[0]]
    assert [c.verdict for c in experiments.fat_vs_sat_claims(sat, bad)] == ["does not hold"] * 3
    same = [_fat([20.0, 50.0, 80.0], 0.05, error_free=79.5, seed=0)]  # same draws: strongly paired
    # identical faults: "above" does not hold; a 0.5 pp loss on the same images is "not below" (1 pp)
    assert [c.verdict for c in experiments.fat_vs_sat_claims(sat, same)][:2] == ["does not hold", "holds"]


def test_fig06_trend_does_not_depend_on_the_order_of_p():
    """Fig. 6: "a higher p gives a lower variance" is the slope over p, in any order of P_VALUES."""
    fat = [
        _fat([50.0, 80.0], 0.05, error_free=82.0, seed=1),
        _fat([70.0, 80.0], 0.10, error_free=80.0, seed=2),
        _fat([78.0, 80.0], 0.15, error_free=77.0, seed=3),
    ]
    for order in (fat, fat[::-1], [fat[1], fat[0], fat[2]]):
        c = experiments.trend_claim("v", "Fig. 6", order, "variance")
        assert c.verdict == "holds" and c.difference < 0
        assert experiments.trend_claim("e", "Fig. 6", order, "error_free").verdict == "holds"
    rising = [_fat([78.0, 80.0], 0.05, seed=1), _fat([50.0, 80.0], 0.15, seed=2)]
    assert experiments.trend_claim("v", "Fig. 6", rising, "variance").verdict == "does not hold"
    assert experiments.trend_claim("v", "Fig. 6", rising[:1], "variance").verdict == "not run"


def test_fig07_compares_error_free_accuracy_of_method_2_and_method_1():
    """Fig. 7 (§V-B): the paper compares error-free accuracy at p = 5 % (85.07 vs 82.57)."""
    sat = _evo([0, 0], [20.0, 80.0], error_free=80.0)
    m2 = _fat([70.0, 72.0], 0.05, error_free=85.0, seed=1)
    m1_low = _fat([75.0, 76.0], 0.05, scheme=FAT_M1, error_free=80.0, seed=2)
    m1_high = _fat([75.0, 76.0], 0.05, scheme=FAT_M1, error_free=90.0, seed=3)
    c = experiments.method_claims(FAT_M2, [5.0], sat, [m2], m1_low)[-1]
    assert c.claim.startswith("Method 2's error-free accuracy is above method 1's")
    assert "85.07 vs 82.57" in c.paper and c.verdict == "holds"  # method 2's minimum is lower: irrelevant
    assert experiments.method_claims(FAT_M2, [5.0], sat, [m2], m1_high)[-1].verdict == "does not hold"
    with pytest.raises(ValueError, match="Fig. 6"):
        experiments.method_figure("smoke", SAT, [5.0])


def _long(rows):
    """A reproduce_table result: rows of (row, network, group, quantity, ours, spread); the
    estimates get normal replicates with that standard deviation."""
    from fatlib.core.verdicts import REPLICATES, Estimate

    rng = np.random.default_rng(0)
    long = pd.DataFrame(
        [
            {
                "row": r,
                "network": n,
                "dataset": "CIFAR10",
                "group": g,
                "p": 5.0,
                "quantity": q,
                "paper": 50.0,
                "ours": v,
                "status": "ok",
                "profile": "smoke",
            }
            for r, n, g, q, v, _ in rows
        ]
    )
    long["difference"] = long["ours"] - long["paper"]
    est = {
        (r, g, q): Estimate(v, v + sd * rng.standard_normal(REPLICATES), "test") for r, n, g, q, v, sd in rows
    }
    long.attrs.update({"estimates": est, "images": {}, "synthetic": {}, "table": "fat_table2"})
    _long.attrs = dict(long.attrs)
    return long


def test_table2_claims():
    long = _long(
        [
            (0, "CNVW1A1", "sat", "min", 40.0, 0.5),
            (0, "CNVW1A1", "fat", "min", 45.0, 0.5),
            (0, "CNVW1A1", "sat", "error_free", 60.0, 0.5),
            (0, "CNVW1A1", "fat", "error_free", 60.0, 0.2),
            (0, "CNVW1A1", "sat", "variance", 9.0, 0.3),
            (0, "CNVW1A1", "fat", "variance", 10.0, 0.3),
        ]
    )
    claims = experiments.table2_claims(long)
    assert [c.claim for c in claims] == [
        "FAT's minimum accuracy is above SAT's (every network run)",
        "FAT's error-free accuracy is not below SAT's (every network run, within 1 pp)",
        "FAT's variance is below SAT's (every network run)",
    ]
    assert [c.verdict for c in claims] == ["holds", "inconclusive", "does not hold"]
    assert "CNVW1A1 CIFAR10: 10.000 vs 9.000" in claims[2].evidence
    assert claims[0].paper.startswith("Table II, ")


def test_table3_claims():
    long = _long(
        [
            (0, "CNVW1A1", "fat", "error_free", 60.0, 0.1),
            (0, "CNVW1A1", "d2d", "error_free", 60.3, 0.1),
            (1, "CNVW1A2", "fat", "error_free", 70.0, 0.1),
            (1, "CNVW1A2", "d2d", "error_free", 70.2, 0.1),
            (0, "CNVW1A1", "fat", "min", 40.0, 0.3),
            (0, "CNVW1A1", "d2d", "min", 41.0, 0.3),
            (1, "CNVW1A2", "fat", "min", 50.0, 0.3),
            (1, "CNVW1A2", "d2d", "min", 49.0, 0.3),
            (0, "CNVW1A1", "sat", "min", 30.0, 0.3),
            (1, "CNVW1A2", "sat", "min", 45.0, 0.3),
        ]
    )
    claims = experiments.table3_claims(long)
    assert [c.claim for c in claims] == [
        "Dropout2D's error-free accuracy is close to FAT's (within 1 pp, every network)",
        "Dropout2D's minimum accuracy beats FAT's in most networks (paper: 4 of 5)",
        "Dropout2D raises the minimum accuracy over SAT (every network run)",
    ]
    assert [c.verdict for c in claims] == ["holds", "does not hold", "holds"]  # d2d better in 1 of 2
    assert claims[1].evidence.startswith("1 of 2 hold, 1 do not")


def test_table4_claims_and_the_corrected_paper_table():
    long = _long(
        [
            (0, "CNVW1A2", "sat", "min", 30.0, 0.5),
            (0, "CNVW1A2", "fat", "min", 45.0, 0.5),
            (0, "CNVW1A2", "d2d", "min", 47.0, 0.5),
            (0, "CNVW1A2", "sat", "error_free", 60.0, 0.5),
            (0, "CNVW1A2", "fat", "error_free", 60.5, 0.5),
        ]
    )
    claims = experiments.table4_claims(long)
    assert [c.verdict for c in claims] == ["holds", "does not hold", "inconclusive", "holds"]
    from fatlib.core.paper import paper_table

    t4 = paper_table("fat_table4")  # FAT trains at 2.5 % in all three rows, Dropout2D at 2.5, 10, 10
    assert t4["fat_p"].tolist() == [2.5, 2.5, 2.5] and t4["d2d_p"].tolist() == [2.5, 10.0, 10.0]


def test_fig09_claims():
    needed = pd.DataFrame(
        [
            {"network": n, "training": t, "target": g, "target_error": e, "channels": c, "cost": k}
            for n, t, g, e, c, k in [
                ("CNVW1A1", "SAT", "paper's target", 13.84, 5.0, 1.2),
                ("CNVW1A1", "SAT", "FAT unprotected", 20.0, 3.0, 1.1),
                ("CNVW1A1", "FAT", "FAT unprotected", 20.0, 0.0, 1.0),
            ]
        ]
    )
    match = experiments.sat_matching_fat(needed)
    assert match["network"].tolist() == ["CNVW1A1"] and list(match.index) == [0]
    claims = experiments.fig09_claims(needed)
    assert [c.verdict for c in claims] == ["not run"]  # the networks were not kept


def test_dataset_not_found_carries_the_reason(tmp_path):
    """data_missing's "not run" reason is the data module's: what is missing and where it was
    looked for, without the hint on how to get it."""
    from fatlib.core.data import DatasetNotFound, load_dataset

    with pytest.raises(DatasetNotFound) as err:
        load_dataset("cifar10", "test", data_dir=tmp_path, download=False)
    assert isinstance(err.value, FileNotFoundError)
    assert err.value.reason == str(err.value).split(". To get it")[0]
    assert err.value.reason == f"cifar10 not found. Tried: {tmp_path / 'cifar10.npz'}"
    assert experiments.data_missing("cifar10", tmp_path) == f"cifar10 not found ({err.value.reason})"
    with pytest.raises(DatasetNotFound) as err:
        load_dataset("mnist", "test", data_dir=tmp_path, download=False)
    assert err.value.reason == str(err.value)  # an unknown name: the whole message is the reason


def test_paper_dataset_spellings_are_one():
    from fatlib.core.paper import FATLIB_DATASET, PAPER_DATASET

    assert FATLIB_DATASET == {"CIFAR10": "cifar10", "SVHN": "svhn", "GTSRB": "gtsrb", "ImageNet": "imagenet"}
    assert {v: k for k, v in FATLIB_DATASET.items()} == PAPER_DATASET


def test_setup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    profile, out, data_dir = experiments.setup("smoke", "", "fat-fig06-method1", "")
    assert profile.name == "smoke" and data_dir is None
    assert out == tmp_path.joinpath("results", "fat-fig06-method1").relative_to(tmp_path) and out.is_dir()
    s = experiments.setup("smoke", str(tmp_path / "o"), "x", "/data")
    assert s.out == tmp_path / "o" and s.out.is_dir() and s.data_dir == "/data"


def test_training_args_give_a_pattern_to_fat_methods_only():
    assert experiments.training_args("sat", 0.05) == {"scheme": "sat", "pattern": None, "p": 0.0}
    assert experiments.training_args("fat-m2", 0.05) == {"scheme": "fat-m2", "pattern": "channel", "p": 0.05}
    assert experiments.training_args("fat-m1", 0.1)["pattern"] == "channel"
    assert experiments.training_args("dropout2d", 0.05) == {"scheme": "dropout2d", "pattern": None, "p": 0.05}
