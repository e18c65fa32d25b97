import numpy as np
import pytest
import torch

from fatlib.core import data


def _write(tmp_path, name="toy", n=20, size=32, classes=True):
    rng = np.random.default_rng(0)
    arrays = {
        "train_x": rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
        "train_y": rng.integers(0, 10, n).astype(np.int64),
        "test_x": rng.integers(0, 256, (n // 2, size, size, 3), dtype=np.uint8),
        "test_y": rng.integers(0, 10, n // 2).astype(np.int64),
    }
    if classes:
        arrays["classes"] = np.array([f"c{i}" for i in range(10)])
    data.save_npz(tmp_path / f"{name}.npz", arrays)
    return arrays


def test_array_format_roundtrip(tmp_path):
    arrays = _write(tmp_path)
    ds = data.load_dataset("toy", "train", data_dir=tmp_path)
    assert len(ds) == 20 and ds.num_classes == 10 and ds.classes[3] == "c3"
    x, y = ds[5]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert torch.equal(
        (x * 255).round().to(torch.uint8), torch.from_numpy(arrays["train_x"][5]).permute(2, 0, 1)
    )
    assert y == arrays["train_y"][5]
    assert len(data.load_dataset("toy", "test", data_dir=tmp_path)) == 10


def test_data_dir_from_environment(tmp_path, monkeypatch):
    _write(tmp_path)
    monkeypatch.setenv("FATLIB_DATA", str(tmp_path))
    assert data.default_data_dir() == tmp_path
    assert len(data.load_dataset("toy", "test")) == 10


def test_missing_data_names_paths_and_fix(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        data.load_dataset("cifar10", "train", data_dir=tmp_path / "nowhere", download=False)
    msg = str(err.value)
    assert str(tmp_path / "nowhere" / "cifar10.npz") in msg
    assert "build.py" in msg and "FATLIB_DATA" in msg
    with pytest.raises(FileNotFoundError, match="array format"):
        data.load_dataset("mystery", "train", data_dir=tmp_path)


def test_bad_inputs(tmp_path):
    _write(tmp_path)
    with pytest.raises(ValueError, match="split"):
        data.load_dataset("toy", "val", data_dir=tmp_path)
    (tmp_path / "broken.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="delete it"):
        data.load_dataset("broken", "train", data_dir=tmp_path)
    _write(tmp_path, name="small", size=28)
    with pytest.raises(ValueError, match="32"):
        data.load_dataset("small", "train", data_dir=tmp_path)


def test_augmentation_is_a_padded_crop_and_flip():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 32, 32)
    out = data.augment_batch(x, flip=False, generator=g)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(64):  # every output is some 32x32 window of the zero-padded image
        hits = [
            (dy, dx)
            for dy in range(9)
            for dx in range(9)
            if torch.equal(padded[i, :, dy : dy + 32, dx : dx + 32], out[i])
        ]
        assert hits, f"image {i} is not a crop"
    flipped = data.augment_batch(x, flip=True, generator=torch.Generator().manual_seed(1))
    n_flipped = 0
    for i in range(64):
        windows = [padded[i, :, dy : dy + 32, dx : dx + 32] for dy in range(9) for dx in range(9)]
        plain = any(torch.equal(w, flipped[i]) for w in windows)
        mirrored = any(torch.equal(w.flip(-1), flipped[i]) for w in windows)
        assert plain or mirrored
        n_flipped += mirrored and not plain
    assert 15 <= n_flipped <= 49  # about half (binomial(64, 0.5): 5 sigma)


def test_flip_only_for_cifar(tmp_path):
    assert data.DATASETS["cifar10"][1] and not data.DATASETS["gtsrb"][1] and not data.DATASETS["svhn"][1]


def test_subset_is_seeded_and_sized():
    ds = data.synthetic_dataset(n=100)
    a, b = data.subset(ds, 30, seed=3), data.subset(ds, 30, seed=3)
    assert len(a) == 30 and torch.equal(a.labels, b.labels)
    assert data.subset(ds, None) is ds and data.subset(ds, 500) is ds


def test_profile_dataset_falls_back_to_synthetic_only_in_smoke(tmp_path, monkeypatch):
    # no data folder named (FATLIB_DATA: an existing folder without the dataset): a stand-in at
    # smoke only; a named data folder never falls back (tests/unit/test_validation.py)
    monkeypatch.setenv("FATLIB_DATA", str(tmp_path))
    ds = data.profile_dataset("cifar10", "train", "smoke")
    assert "synthetic" in ds.source and len(ds) == 256
    with pytest.raises(FileNotFoundError):
        data.profile_dataset("cifar10", "train", "cpu")


def test_real_cifar10(real_data_dir):
    train = data.load_dataset("cifar10", "train", data_dir=real_data_dir)
    test = data.load_dataset("cifar10", "test", data_dir=real_data_dir)
    assert len(train) == 50000 and len(test) >= 1000
    assert train.classes[0] == "airplane" and train.flip
    counts = torch.bincount(train.labels, minlength=10)
    assert counts.tolist() == [5000] * 10
