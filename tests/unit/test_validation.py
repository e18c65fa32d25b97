"""Bad input never gives a silent wrong answer (issue #14): each bad input below raises a clear
error whose message names the fix, and every CLI subcommand reports it as one line
``fatlib COMMAND: error: MESSAGE`` on stderr with exit status 2 (the traceback with ``--debug``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import randomized_cnv
from torch import nn

from fatlib import cli
from fatlib.core import data
from fatlib.fat import campaign as C
from fatlib.fat import experiments


@pytest.fixture(scope="module")
def cnv10():
    return randomized_cnv(1, 1, seed=0)


def _images(n: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


@pytest.fixture
def no_data_env(tmp_path, monkeypatch):
    """No data folder named anywhere: FATLIB_DATA unset, the per-user cache under tmp_path."""
    monkeypatch.delenv("FATLIB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def _npz(folder: Path, name: str, labels: np.ndarray, n_classes: int | None = None) -> Path:
    n = len(labels)
    x = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    arrays = {"train_x": x, "train_y": labels, "test_x": x, "test_y": labels}
    if n_classes is not None:
        arrays["classes"] = np.array([f"c{i}" for i in range(n_classes)])
    return data.save_npz(folder / f"{name}.npz", arrays)


def _one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"fatlib {command}: error: "), err
    assert "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------------------------------
# 1. images not in [0, 1]; 7. images of another shape
# ------------------------------------------------------------------------------------------


def test_campaign_refuses_images_0_to_255(cnv10):
    x, y = _images()
    with pytest.raises(ValueError, match=r"images must be floats in \[0, 1\].*divide uint8 images by 255"):
        C.stuck_at_campaign(cnv10, (x * 255, y), layers=[6], levels=[1.0], progress=False)


def test_golden_accuracy_refuses_images_0_to_255(cnv10):
    x, y = _images()
    with pytest.raises(ValueError, match="divide uint8 images by 255"):
        C.golden_accuracy(cnv10, (x * 255, y))


def test_naive_campaign_refuses_uint8_images(cnv10):
    x, y = _images()
    with pytest.raises(ValueError, match="divide uint8 images by 255"):
        C.naive_campaign(cnv10, ((x * 255).to(torch.uint8), y), layers=[6], levels=[1.0])


def test_campaign_refuses_normalised_images(cnv10):
    x, y = _images()
    with pytest.raises(ValueError, match=r"\[0, 1\].*normalisation"):
        C.stuck_at_campaign(cnv10, ((x - 0.5) / 0.25, y), layers=[6], levels=[1.0], progress=False)


def test_ftd_evaluation_refuses_images_0_to_255():
    from fatlib.core.models import vgg16
    from fatlib.ftd.evaluation import accuracy_under_errors

    torch.manual_seed(0)
    x, y = _images(4)
    with pytest.raises(ValueError, match="divide uint8 images by 255"):
        accuracy_under_errors(vgg16(width=0.125).eval(), (x * 255, y))


def test_campaign_refuses_images_of_another_size(cnv10):
    x, y = _images()
    small = x[:, :, :28, :28].contiguous()
    with pytest.raises(ValueError, match="CNV needs 3×32×32"):
        C.stuck_at_campaign(cnv10, (small, y), layers=[6], levels=[1.0], progress=False)


def test_campaign_refuses_one_channel_images(cnv10):
    x, y = _images()
    with pytest.raises(ValueError, match="CNV needs 3×32×32"):
        C.golden_accuracy(cnv10, (x[:, :1].contiguous(), y))


def test_campaign_refuses_a_bad_device_string(cnv10):
    with pytest.raises(ValueError, match="use cpu, cuda or cuda:N"):
        C.golden_accuracy(cnv10, _images(), device="cudax")


# ------------------------------------------------------------------------------------------
# 2. labels the model cannot output
# ------------------------------------------------------------------------------------------


def test_campaign_refuses_labels_beyond_the_models_classes(cnv10):
    x, _ = _images()
    y = torch.arange(8) * 6  # up to 42: GTSRB's labels on a 10-class CIFAR model
    with pytest.raises(ValueError, match="labels go up to 42 but the model has 10 output classes"):
        C.stuck_at_campaign(cnv10, (x, y), layers=[6], levels=[1.0], progress=False)


def test_golden_accuracy_refuses_non_integer_labels(cnv10):
    x, _ = _images()
    with pytest.raises(ValueError, match="integer class indices"):
        C.golden_accuracy(cnv10, (x, torch.full((8,), 2.5)))


# ------------------------------------------------------------------------------------------
# 3. labels of an array file
# ------------------------------------------------------------------------------------------


def test_npz_negative_labels(tmp_path):
    path = _npz(tmp_path, "cifar10", np.array([0, 1, -1, 3], dtype=np.int64))
    with pytest.raises(ValueError, match="negative labels") as err:
        data.load_dataset("cifar10", "train", data_dir=tmp_path)
    assert str(path) in str(err.value) and "train_y" in str(err.value)


def test_npz_non_integer_labels(tmp_path):
    path = _npz(tmp_path, "toy", np.array([0.0, 1.5, 2.0, 3.0]))
    with pytest.raises(ValueError, match="integer class indices") as err:
        data.load_dataset("toy", "test", data_dir=tmp_path)
    assert str(path) in str(err.value) and "test_y" in str(err.value)


def test_npz_labels_outside_the_datasets_classes(tmp_path):
    _npz(tmp_path, "cifar10", np.array([0, 1, 12, 3], dtype=np.int64))
    with pytest.raises(ValueError, match="labels up to 12 but there are only cifar10's 10 classes"):
        data.load_dataset("cifar10", "train", data_dir=tmp_path)


def test_npz_labels_outside_the_files_class_names(tmp_path):
    _npz(tmp_path, "toy", np.array([0, 1, 5, 3], dtype=np.int64), n_classes=4)
    with pytest.raises(ValueError, match="the file's 4 class names"):
        data.load_dataset("toy", "train", data_dir=tmp_path)


def test_npz_integral_float_labels_still_load(tmp_path):
    _npz(tmp_path, "toy", np.array([0.0, 1.0, 2.0, 3.0]))
    ds = data.load_dataset("toy", "train", data_dir=tmp_path)
    assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == [0, 1, 2, 3]


# ------------------------------------------------------------------------------------------
# 4. NaN ranking scores
# ------------------------------------------------------------------------------------------


def test_top_channels_refuses_nan_scores():
    from fatlib.ftd.ranking import top_channels

    scores = {"a": torch.tensor([1.0, 2.0]), "features.3": torch.tensor([0.5, float("nan"), 1.0])}
    with pytest.raises(ValueError, match=r"layer 'features\.3' has 1 NaN score"):
        top_channels(scores, 0.5)


def test_rank_channels_refuses_nan_scores():
    from fatlib.ftd.ranking import rank_channels

    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))
    with torch.no_grad():
        net[2].weight[0, 1, 0, 0] = float("nan")  # reads channel 1 of layer "0"
    with pytest.raises(ValueError, match="weight_sum ranking: layer '0' has 1 NaN score"):
        rank_channels(net, "weight_sum")


def test_duplicate_refuses_nan_scores():
    from fatlib.ftd.duplication import duplicate

    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))
    scores = {"0": torch.tensor([1.0, float("nan"), 0.0, 2.0]), "2": torch.ones(4)}
    with pytest.raises(ValueError, match="layer '0' has 1 NaN score"):
        duplicate(net, 0.5, scores)


# ------------------------------------------------------------------------------------------
# 5. data folders, unknown datasets and synthetic stand-ins
# ------------------------------------------------------------------------------------------


def test_mistyped_data_dir_at_smoke_raises_and_creates_nothing(tmp_path):
    typo = tmp_path / "dat"
    with pytest.raises(FileNotFoundError, match="does not exist") as err:
        data.profile_dataset("cifar10", "train", "smoke", data_dir=typo)
    assert str(typo) in str(err.value) and "typo" in str(err.value)
    assert not typo.exists()


def test_mistyped_fatlib_data_raises_and_creates_nothing(tmp_path, monkeypatch):
    typo = tmp_path / "dat"
    monkeypatch.setenv("FATLIB_DATA", str(typo))
    with pytest.raises(FileNotFoundError, match=r"\$FATLIB_DATA"):
        data.profile_dataset("cifar10", "test", "smoke")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_dataset("cifar10", "test")  # no torchvision download into a mistyped folder
    assert not typo.exists()


def test_unknown_dataset_at_smoke_lists_the_known_ones(no_data_env):
    with pytest.raises(ValueError, match=r"Known datasets: \['cifar10', 'gtsrb', 'svhn'\]"):
        data.profile_dataset("cifar100", "train", "smoke")
    with pytest.raises(ValueError, match="known datasets are"):
        data.profile_dataset("cifar100", "train", "smoke", data_dir="synthetic")


def test_named_folder_without_the_dataset_is_no_stand_in(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_dir='synthetic'"):
        data.profile_dataset("svhn", "test", "smoke", data_dir=tmp_path)


def test_stand_in_without_a_named_folder_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("FATLIB_DATA", str(tmp_path))  # exists, holds no svhn.npz
    with pytest.warns(data.SyntheticDataWarning, match="svhn test: using synthetic stand-in"):
        ds = data.profile_dataset("svhn", "test", "smoke")
    assert ds.source.startswith("synthetic stand-in for svhn (real data not found)")


def test_stand_in_on_request_at_any_profile(no_data_env):
    with pytest.warns(data.SyntheticDataWarning, match="asked for"):
        ds = data.profile_dataset("gtsrb", "train", "cpu", data_dir="synthetic")
    assert ds.num_classes == 43 and "synthetic stand-in for gtsrb" in ds.source


def test_data_missing_mirrors_profile_dataset(tmp_path, no_data_env):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        experiments.data_missing("cifar10", tmp_path / "typo", profile="smoke")
    with pytest.raises(ValueError, match="Known datasets"):
        experiments.data_missing("mnist", None, profile="smoke")
    assert experiments.data_missing("svhn", None, profile="smoke") is None
    assert experiments.data_missing("svhn", "synthetic", profile="cpu") is None
    assert "not found" in experiments.data_missing("svhn", tmp_path, profile="smoke")


# ------------------------------------------------------------------------------------------
# 6, 7. the command line: checks before any work, one error line, exit status 2
# ------------------------------------------------------------------------------------------


@pytest.fixture
def checkpoint(tmp_path, cnv10):
    from fatlib.core.store import save_checkpoint

    cfg = {"arch": "cnv", "num_classes": 10, "width": 0.125, "weight_bits": 1, "act_bits": 1}
    cfg["dataset"] = "cifar10"
    return save_checkpoint(tmp_path / "m.pt", cnv10, cfg)


@pytest.fixture
def cifar_dir(tmp_path):
    _npz(tmp_path / "data", "cifar10", np.arange(12) % 10)
    return tmp_path / "data"


def test_cli_campaign_refuses_a_dataset_with_other_classes(tmp_path, checkpoint, capsys):
    _npz(tmp_path / "data", "gtsrb", np.arange(12) % 43 * 3)
    out = tmp_path / "r.parquet"
    argv = [str(checkpoint), "--out", str(out), "--dataset", "gtsrb", "--data-dir", str(tmp_path / "data")]
    assert cli.main(["campaign", *argv]) == 2
    line = _one_error_line(capsys, "campaign")
    assert "gtsrb has 43 classes but the model outputs 10" in line and "--dataset cifar10" in line
    assert not out.exists()


def test_cli_campaign_refuses_an_out_folder(tmp_path, checkpoint, cifar_dir, capsys):
    argv = [str(checkpoint), "--out", str(tmp_path), "--data-dir", str(cifar_dir)]
    assert cli.main(["campaign", *argv]) == 2
    assert "is a folder: give a file path" in _one_error_line(capsys, "campaign")


def test_cli_campaign_refuses_an_out_whose_folder_is_a_file(tmp_path, checkpoint, cifar_dir, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    argv = [str(checkpoint), "--out", str(blocker / "r.parquet"), "--data-dir", str(cifar_dir)]
    assert cli.main(["campaign", *argv]) == 2
    assert f"--out folder {blocker} is a file" in _one_error_line(capsys, "campaign")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes read-only folders")
def test_cli_campaign_refuses_a_read_only_out_folder(tmp_path, checkpoint, cifar_dir, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        argv = [str(checkpoint), "--out", str(ro / "r.parquet"), "--data-dir", str(cifar_dir)]
        assert cli.main(["campaign", *argv]) == 2
        assert "is not writable" in _one_error_line(capsys, "campaign")
    finally:
        ro.chmod(0o755)


def test_cli_campaign_refuses_a_store_that_is_a_file(tmp_path, checkpoint, cifar_dir, capsys):
    store = tmp_path / "store"
    store.write_text("x")
    argv = [str(checkpoint), "--out", str(tmp_path / "r.parquet"), "--store", str(store)]
    assert cli.main(["campaign", *argv, "--data-dir", str(cifar_dir)]) == 2
    assert f"--store {store} is a file" in _one_error_line(capsys, "campaign")


def test_cli_campaign_refuses_a_bad_device(tmp_path, checkpoint, cifar_dir, capsys):
    argv = [str(checkpoint), "--out", str(tmp_path / "r.parquet"), "--device", "cudax"]
    assert cli.main(["campaign", *argv, "--data-dir", str(cifar_dir)]) == 2
    assert "use cpu, cuda or cuda:N" in _one_error_line(capsys, "campaign")


def test_cli_campaign_reports_a_missing_checkpoint(tmp_path, capsys):
    assert cli.main(["campaign", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "r.parquet")]) == 2
    assert "nope.pt not found" in _one_error_line(capsys, "campaign")


def test_cli_train_bad_device_is_one_line(capsys):
    assert cli.main(["train", "--profile", "smoke", "--device", "cudax"]) == 2
    assert "device='cudax' is not a device: use cpu, cuda or cuda:N" in _one_error_line(capsys, "train")


def test_cli_train_unknown_dataset_is_one_line(no_data_env, capsys):
    assert cli.main(["train", "--profile", "smoke", "--dataset", "mnist", "--device", "cpu"]) == 2
    assert "Known datasets" in _one_error_line(capsys, "train")


def test_cli_train_mistyped_data_dir_is_one_line(tmp_path, capsys):
    typo = tmp_path / "dat"
    assert cli.main(["train", "--profile", "smoke", "--data-dir", str(typo), "--device", "cpu"]) == 2
    assert f"data folder {typo}" in _one_error_line(capsys, "train")
    assert not typo.exists()


def test_cli_book_errors_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("FATLIB_DATA", raising=False)
    assert cli.main(["book", "--profile", "huge", "--root", str(tmp_path)]) == 2
    assert "unknown profile 'huge'" in _one_error_line(capsys, "book")
    assert cli.main(["book", "--profile", "smoke", "--root", str(tmp_path)]) == 2
    assert "_toc.yml not found" in _one_error_line(capsys, "book")
    assert cli.main(["book", "--profile", "smoke", "--data-dir", str(tmp_path / "typo")]) == 2
    assert "does not exist" in _one_error_line(capsys, "book")


def test_cli_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="cudax"):
        cli.main(["train", "--device", "cudax", "--debug"])
    with pytest.raises(ValueError, match="cudax"):
        cli.main(["--debug", "train", "--device", "cudax"])


# ------------------------------------------------------------------------------------------
# 8. JSON errors name their file
# ------------------------------------------------------------------------------------------


def test_damaged_store_manifest_names_the_file(tmp_path, cnv10):
    store = tmp_path / "st"
    store.mkdir()
    (store / C.MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json is not valid JSON") as err:
        C.stuck_at_campaign(cnv10, _images(), layers=[6], levels=[1.0], store=store, progress=False)
    assert str(store / C.MANIFEST_FILE) in str(err.value)
    with pytest.raises(ValueError, match="is not valid JSON") as err:
        C.load_results(store)
    assert str(store / C.MANIFEST_FILE) in str(err.value)


def test_damaged_notebook_names_the_file(tmp_path):
    from fatlib.book import read_glue

    nb = tmp_path / "x.ipynb"
    nb.write_text(json.dumps({"cells": []})[:-3])
    with pytest.raises(ValueError, match="x.ipynb is not a notebook"):
        read_glue(nb)
