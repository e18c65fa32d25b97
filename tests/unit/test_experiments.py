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
    long = pd.DataFrame(
        [
            {
                "row": 0,
                "network": "CNVW1A1",
                "dataset": "CIFAR10",
                "group": g,
                "p": 5.0,
                "quantity": q,
                "paper": pv,
                "ours": ov,
                "status": "ok",
                "profile": "smoke",
            }
            for g, q, pv, ov in [
                ("sat", "min", 50.8, 40.0),
                ("fat", "min", 81.3, 45.0),
                ("sat", "error_free", 84.6, 60.0),
                ("fat", "error_free", 85.1, 59.0),
            ]
        ]
        + [
            {
                "row": 1,
                "network": "CNVW1A1",
                "dataset": "SVHN",
                "group": "sat",
                "p": 0.0,
                "quantity": "min",
                "paper": 94.15,
                "ours": None,
                "status": "not run: svhn not found",
                "profile": "smoke",
            }
        ]
    )
    long["difference"] = pd.to_numeric(long["ours"]) - long["paper"]
    claim, holds, evidence = experiments.table_claim(
        long, "FAT min above SAT", "fat", "min", ">", "sat", "min"
    )
    assert holds and "45.00 vs 40.00" in evidence
    assert experiments.table_claim(long, "c", "fat", "error_free", ">=", "sat", "error_free")[1] is False
    assert experiments.table_claim(long, "c", "fat", "error_free", "<", "sat", "error_free")[1] is True
    assert experiments.table_claim(long, "c", "fat", "min", "~", "sat", "min")[1] is False  # 5 pp apart
    with pytest.raises(ValueError, match="op"):
        experiments.table_claim(long, "c", "fat", "min", "!=", "sat", "min")
    wide = experiments.wide(long)
    assert wide.loc[wide.dataset == "SVHN", "status"].iloc[0].startswith("not run")
    assert wide.loc[wide.dataset == "CIFAR10", "sat min (paper)"].iloc[0] == 50.8


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


def _table1_campaign(conv, fc):
    """Six conv layers and two FC layers, two channels each: ``conv`` / ``fc`` the accuracies
    of the first channel of each (the others at 80)."""
    layers = [layer for layer in range(8) for _ in range(2)]
    acc = [
        (conv[layer] if layer < 6 else fc[layer - 6]) if k == 0 else 80.0
        for layer in range(8)
        for k in range(2)
    ]
    return _campaign(layers, acc)


def test_table1_claims():
    holds = experiments.table1_claims(_ev(_table1_campaign([80, 20, 79, 79, 79, 79], [78, 78])))
    assert [c[0] for c in holds] == [
        "A single stuck channel can cost SAT far more accuracy than the typical one "
        "(worst drop ≥ 5 × mean drop)",
        "Convolutional layers are more sensitive than the FC layers (lower minimum)",
        "The worst fault is in an early layer (0–2; paper: layer 1)",
    ]
    assert [c[1] for c in holds] == [True, True, True]
    assert holds[1][2] == "conv layers min 20.00 %, FC layers min 78.00 %"
    assert holds[2][2] == "worst fault in layer 1"
    assert holds[0][2] == "worst drop 60.00 pp, mean drop 4.25 pp"
    fails = experiments.table1_claims(_ev(_table1_campaign([79] * 6, [70, 40])))
    assert [c[1] for c in fails] == [True, False, False]
    assert fails[2][2] == "worst fault in layer 7"
    even = experiments.table1_claims(_ev(_table1_campaign([60] * 6, [60, 60]), error_free=80.0))
    assert even[0][1] is False  # every stuck channel costs alike


def _fat(accuracies, p, scheme=FAT_M2, error_free=80.0):
    return _ev(
        _campaign([0] * len(accuracies), accuracies),
        error_free=error_free,
        scheme=scheme,
        p=p,
        label=f"CNVW1A1 FAT p={100 * p:g}%",
    )


def test_method_figure_claims():
    sat = _ev(_campaign([0, 0, 0], [20.0, 50.0, 80.0]), error_free=80.0)
    good = [_fat([70.0, 71.0, 72.0], 0.05), _fat([60.0, 65.0, 70.0], 0.015, error_free=81.0)]
    claims = experiments.fat_vs_sat_claims(sat, good)
    assert [c[0] for c in claims] == [
        "FAT's minimum accuracy is above SAT's for every p",
        "FAT's error-free accuracy is not below SAT's at the lowest p",
        "FAT lowers the variance of accuracy under faults",
    ]
    assert [c[1] for c in claims] == [True, True, True]
    assert claims[0][2] == "p=5%: 70.00, p=1.5%: 60.00 vs SAT 20.00"
    assert claims[1][2] == "FAT 81.00 vs SAT 80.00"
    assert claims[2][2] == "0.667, 16.667 vs SAT 600.000"
    bad = [_fat([10.0, 80.0, 45.0], 0.05, error_free=79.0), good[0]]
    assert [c[1] for c in experiments.fat_vs_sat_claims(sat, bad)] == [False, False, False]

    claim = experiments.variance_by_p_claim(good, [5.0, 1.5])
    assert claim == ("A higher p gives a lower variance (p = 5 % vs 1.5 %)", True, "variance 0.667 vs 16.667")
    assert experiments.variance_by_p_claim(good[::-1], [1.5, 5.0])[1] is False

    m1 = _fat([65.0, 66.0], 0.05, scheme=FAT_M1)
    claim = experiments.method2_vs_method1_claim(good[0], m1, 5.0)
    assert claim == (
        "Method 2 beats method 1 in minimum accuracy at the same p",
        True,
        "p = 5 %: method 2 min 70.00 %, method 1 min 65.00 %",
    )
    assert experiments.method2_vs_method1_claim(good[1], m1, 5.0)[1] is False
    with pytest.raises(ValueError, match="Fig. 6"):
        experiments.method_figure("smoke", SAT, [5.0])


def _long(rows):
    """A reproduce_table result: rows of (row, network, group, quantity, ours)."""
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
            for r, n, g, q, v in rows
        ]
    )
    long["difference"] = long["ours"] - long["paper"]
    return long


def test_table2_claims():
    long = _long(
        [
            (0, "CNVW1A1", "sat", "min", 40.0),
            (0, "CNVW1A1", "fat", "min", 45.0),
            (0, "CNVW1A1", "sat", "error_free", 60.0),
            (0, "CNVW1A1", "fat", "error_free", 60.0),
            (0, "CNVW1A1", "sat", "variance", 9.0),
            (0, "CNVW1A1", "fat", "variance", 10.0),
        ]
    )
    claims = experiments.table2_claims(long)
    assert [c[0] for c in claims] == [
        "FAT's minimum accuracy is above SAT's (every network run)",
        "FAT's error-free accuracy is not below SAT's (every network run)",
        "FAT's variance is below SAT's (every network run)",
    ]
    assert [c[1] for c in claims] == [True, True, False]
    assert claims[2][2] == "CNVW1A1: 10.00 vs 9.00"


def test_table3_claims():
    long = _long(
        [
            (0, "CNVW1A1", "fat", "error_free", 60.0),
            (0, "CNVW1A1", "d2d", "error_free", 60.5),
            (1, "CNVW1A2", "fat", "error_free", 70.0),
            (1, "CNVW1A2", "d2d", "error_free", 71.0),
            (0, "CNVW1A1", "fat", "min", 40.0),
            (0, "CNVW1A1", "d2d", "min", 41.0),
            (1, "CNVW1A2", "fat", "min", 50.0),
            (1, "CNVW1A2", "d2d", "min", 49.0),
        ]
    )
    claims = experiments.table3_claims(long)
    assert [c[0] for c in claims] == [
        "Dropout2D's error-free accuracy is close to FAT's (within 1 pp on average)",
        "Dropout2D's minimum accuracy beats FAT's in most networks (paper: 4 of 5)",
    ]
    assert [c[1] for c in claims] == [True, False]  # 0.75 pp apart; d2d better in 1 of 2
    assert claims[1][2] == "CNVW1A1: 41.00 vs 40.00; CNVW1A2: 49.00 vs 50.00"


def test_table4_claims():
    long = _long(
        [
            (0, "CNVW1A2", "sat", "min", 30.0),
            (0, "CNVW1A2", "fat", "min", 45.0),
            (0, "CNVW1A2", "d2d", "min", 46.0),
        ]
    )
    claims = experiments.table4_claims(long)
    assert [c[0] for c in claims] == [
        "FAT's minimum accuracy is above SAT's under pixel stuck@",
        "FAT beats Dropout2D under pixel stuck@ (minimum accuracy)",
    ]
    assert [c[1] for c in claims] == [True, False]
    assert claims[1][2] == "CNVW1A2: 45.00 vs 46.00"


def test_fig09_claims():
    needed = pd.DataFrame(
        [
            {"network": n, "training": t, "target": g, "target_error": e, "channels": c, "cost": k}
            for n, t, g, e, c, k in [
                ("CNVW1A1", "SAT", "paper's target", 13.84, 5.0, 1.2),
                ("CNVW1A1", "SAT", "FAT unprotected", 20.0, 3.0, 1.1),
                ("CNVW1A1", "FAT", "FAT unprotected", 20.0, 0.0, 1.0),
                ("CNVW2A2", "SAT", "FAT unprotected", 30.5, 0.0, 1.0),
            ]
        ]
    )
    match = experiments.sat_matching_fat(needed)
    assert match["network"].tolist() == ["CNVW1A1", "CNVW2A2"] and list(match.index) == [0, 1]
    claims = experiments.fig09_claims(needed)
    assert claims == [
        (
            "CNVW1A1: SAT must triplicate channels to match FAT's unprotected worst case",
            True,
            "SAT needs 3.0 channels (cost 1.100) to reach 20.00 % worst-case error",
        ),
        (
            "CNVW2A2: SAT must triplicate channels to match FAT's unprotected worst case",
            False,
            "SAT needs 0.0 channels (cost 1.000) to reach 30.50 % worst-case error",
        ),
    ]


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
