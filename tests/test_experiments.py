import pandas as pd
import pytest

from fatlib import experiments
from fatlib.training import TrainResult


def _ev(campaign, error_free=80.0):
    train = TrainResult(model=None, config={"scheme": "sat", "p": 0.0}, metrics={})
    return experiments.FaultEvaluation(label="CNVW1A1 SAT", network="CNVW1A1", dataset="cifar10", train=train,
                                       campaign=campaign, error_free=error_free, campaign_pattern="channel",
                                       profile="smoke")


CAMPAIGN = pd.DataFrame({"layer": [0, 0, 0, 0, 1, 1], "channel": [0, 0, 1, 1, 0, 0],
                         "value": [-1.0, 1.0, -1.0, 1.0, -1.0, 1.0],
                         "accuracy": [79.0, 70.0, 81.0, 78.0, 80.0, 60.0]})


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
    long = pd.DataFrame([
        {"row": 0, "network": "CNVW1A1", "dataset": "CIFAR10", "group": g, "p": 5.0, "quantity": q,
         "paper": pv, "ours": ov, "status": "ok", "profile": "smoke"}
        for g, q, pv, ov in [("sat", "min", 50.8, 40.0), ("fat", "min", 81.3, 45.0),
                             ("sat", "error_free", 84.6, 60.0), ("fat", "error_free", 85.1, 59.0)]
    ] + [{"row": 1, "network": "CNVW1A1", "dataset": "SVHN", "group": "sat", "p": 0.0, "quantity": "min",
          "paper": 94.15, "ours": None, "status": "not run: svhn not found", "profile": "smoke"}])
    long["difference"] = pd.to_numeric(long["ours"]) - long["paper"]
    claim, holds, evidence = experiments.table_claim(long, "FAT min above SAT", "fat", "min", ">", "sat", "min")
    assert holds and "45.00 vs 40.00" in evidence
    assert experiments.table_claim(long, "c", "fat", "error_free", ">=", "sat", "error_free")[1] is False
    assert experiments.table_claim(long, "c", "fat", "error_free", "<", "sat", "error_free")[1] is True
    assert experiments.table_claim(long, "c", "fat", "min", "~", "sat", "min")[1] is False  # 5 pp apart
    with pytest.raises(ValueError, match="op"):
        experiments.table_claim(long, "c", "fat", "min", "!=", "sat", "min")
    wide = experiments.wide(long)
    assert wide.loc[wide.dataset == "SVHN", "status"].iloc[0].startswith("not run")
    assert wide.loc[wide.dataset == "CIFAR10", "sat min (paper)"].iloc[0] == 50.8


def test_data_missing(tmp_path):
    assert "not found" in experiments.data_missing("svhn", tmp_path)
    assert experiments.data_missing("svhn", tmp_path, profile="smoke") is None  # synthetic stand-in
    with pytest.raises(ValueError, match="table"):
        experiments.reproduce_table("fat_table9", "smoke")


def test_pixel_campaign_images_and_layers(tmp_path, monkeypatch):
    """Profile.pixel_campaign_images sizes the Table IV campaigns only (channel campaigns keep the
    whole test split), and the same-pixel store is named after its layers (0-4: no 1×1 map)."""
    import dataclasses

    from fatlib import profiles

    monkeypatch.setenv("FATLIB_STORE", str(tmp_path / "store"))
    prof = dataclasses.replace(profiles.get_profile("smoke"), name="smoke", pixel_campaign_images=40,
                               campaign_faults=6)
    empty = tmp_path / "no-data"
    empty.mkdir()
    pix = experiments.evaluate_cnv(prof, 1, 1, campaign_pattern="pixel", data_dir=empty, device="cpu")
    chan = experiments.evaluate_cnv(prof, 1, 1, campaign_pattern="channel", data_dir=empty, device="cpu")
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
    from fatlib import paper

    q = paper.quotes()
    assert q["key"].is_unique and len(q) >= 10
    for _, row in q.iterrows():
        assert f"{row['value']:g}%" in row["text"] or f"{row['value']:g} " in row["text"], row["key"]
    assert paper.quote("fat_fig9_sat_channels") == 278 and paper.quote("ftd_vgg_error_free_map") == 77.26
    with pytest.raises(ValueError, match="fat_fig9_target_error"):
        paper.quote("no-such-quote")
