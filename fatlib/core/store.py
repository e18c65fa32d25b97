"""Artifact store: trained models saved under a key derived from their whole training config.

Layout: ``<root>/<key>/`` with ``model.pt`` (a state dict, read with
``torch.load(..., weights_only=True)``), ``config.json`` (the training config the key hashes),
``metrics.json`` (accuracy, learning curve, throughput, profile, data used, and the provenance
that can change weights: device, thread count) and ``checksum.json`` (SHA-256 of ``model.pt`` and
of the config). An artifact directory is written in a temporary directory, fsync'ed and renamed
into place, so a killed run never leaves half an artifact behind; the temporary folder a kill
leaves behind is removed by the next save of that key. An existing artifact is reused instead of
retrained, after its checksum is verified and its weights are checked to be finite: a corrupt
artifact is refused with a message naming its folder, never reused.

While training runs, ``<root>/<key>/resume.pt`` holds its latest resume state (weights,
optimizer, scheduler, random generators, position in the epoch; :meth:`ArtifactStore.save_resume_state`):
a restart of the same config continues from it. The finished artifact replaces it.

The root is the argument, else ``$FATLIB_STORE``, else ``$XDG_CACHE_HOME/fatlib/store``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fatlib.core.files import atomic_dir, atomic_file, remove_stale_parts

__all__ = ["ArtifactStore", "config_key", "default_store_dir", "load_checkpoint", "save_checkpoint"]

MODEL_FILE, CONFIG_FILE, METRICS_FILE = "model.pt", "config.json", "metrics.json"
CHECKSUM_FILE, RESUME_FILE = "checksum.json", "resume.pt"
#: format tag of the resume state (a different tag is never resumed from)
RESUME_FORMAT = "fatlib-train-resume/1"


def default_store_dir() -> Path:
    """``$FATLIB_STORE`` when set, else ``$XDG_CACHE_HOME/fatlib/store`` (``~/.cache/...``)."""
    from fatlib.core.data import user_cache_dir

    env = os.environ.get("FATLIB_STORE")
    if env:
        return Path(env).expanduser()
    return user_cache_dir("store")


def _canonical(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)


def config_key(config: dict[str, Any]) -> str:
    """A short, stable key for a training config: the start of the SHA-256 of its canonical JSON,
    prefixed with a readable name when the config has ``arch`` (e.g. ``cnv-w1a1-3f2a…``)."""
    digest = hashlib.sha256(_canonical(config).encode()).hexdigest()[:16]
    name = str(config.get("arch", "model"))
    if config.get("weight_bits") is not None and config.get("act_bits") is not None:
        name += f"-w{config['weight_bits']}a{config['act_bits']}"
    if config.get("scheme"):
        name += f"-{config['scheme']}"
    return f"{name}-{digest}"


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))


def build_from_config(config: dict[str, Any]) -> nn.Module:
    """Rebuild the (untrained) network a training config describes."""
    from fatlib.core.models import build_model

    return build_model(
        config["arch"],
        num_classes=config["num_classes"],
        width=config["width"],
        weight_bits=config.get("weight_bits"),
        act_bits=config.get("act_bits"),
    )


def _torch_reason(err: Exception) -> str:
    """The first line of a torch.load error, without torch's advice to load unsafely."""
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if "weights_only" in first or len(first) > 200:
        first = ""
    return type(err).__name__ + (f": {first}" if first else "")


def _retrain(folder: Path) -> str:
    """The fix for a damaged artifact: delete its folder, which is inside the store."""
    return f"delete the artifact folder {folder} (inside the store) and it will be retrained"


def _read_json(path: Path, artifact: Path) -> Any:
    """A JSON file of the store's ``artifact`` folder; a ValueError naming it when it is damaged."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is corrupt ({err}); {_retrain(artifact)}") from None


def _load_state(path: Path, artifact: Path | None = None) -> Any:
    """``torch.load(path, weights_only=True)``; a ValueError naming the file when it cannot be
    read (and, for a file of the store's ``artifact`` folder, that deleting that folder retrains
    it — never advice to delete anything outside the store)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        fix = (
            _retrain(artifact)
            if artifact is not None
            else "write it again with fatlib.core.store.save_checkpoint"
        )
        raise ValueError(f"{path} is corrupt or not a fatlib file ({_torch_reason(err)}); {fix}") from None


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _state_digest(config: dict[str, Any], state: dict[str, torch.Tensor]) -> str:
    """SHA-256 binding a config to the weights saved with it (names, dtypes, shapes and bytes)."""
    h = hashlib.sha256(_canonical(config).encode())
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"|{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _check_finite(state: dict[str, torch.Tensor], where: Path, fix: str) -> None:
    bad = [
        k
        for k, v in state.items()
        if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()
    ]
    if bad:
        raise ValueError(
            f"{where} holds NaN or infinite weights ({', '.join(bad[:3])}): it is never reused; {fix}"
        )


class ArtifactStore:
    """Trained models keyed by their training config (see module docstring)."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_store_dir()

    def __repr__(self) -> str:
        return f"ArtifactStore(root={str(self.root)!r})"

    def path(self, config: dict[str, Any]) -> Path:
        """Directory of the artifact for ``config`` (it may not exist yet)."""
        return self.root / config_key(config)

    def exists(self, config: dict[str, Any]) -> bool:
        """Whether a complete artifact for ``config`` is stored."""
        return (self.path(config) / MODEL_FILE).is_file()

    def save(self, config: dict[str, Any], model: nn.Module, metrics: dict[str, Any]) -> Path:
        """Store ``model``'s weights with ``config``, ``metrics`` and their checksums, atomically
        and durably (fsync). Replaces the key's resume state and any half-written folder a killed
        save left behind."""
        target = self.path(config)
        remove_stale_parts(target)
        with atomic_dir(target, replace=True, fsync=True) as tmp:  # replaced only by a (re)train
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            torch.save(state, tmp / MODEL_FILE)
            _write_json(tmp / CONFIG_FILE, config)
            _write_json(tmp / METRICS_FILE, metrics)
            _write_json(
                tmp / CHECKSUM_FILE,
                {MODEL_FILE: _sha256_file(tmp / MODEL_FILE), CONFIG_FILE: _sha256_file(tmp / CONFIG_FILE)},
            )
        return target

    def verify(self, folder: str | os.PathLike) -> None:
        """Raise ValueError (naming ``folder``) when an artifact's files do not match the checksums
        saved with them. Artifacts written before checksums existed pass."""
        folder = Path(folder)
        sums_file = folder / CHECKSUM_FILE
        if not sums_file.is_file():
            return
        sums = _read_json(sums_file, folder)
        for name, digest in sums.items():
            f = folder / name
            if not f.is_file() or _sha256_file(f) != digest:
                raise ValueError(
                    f"artifact {folder} is corrupt: {name} does not match its checksum; it is "
                    f"never reused: {_retrain(folder)}"
                )

    # -- resume state of a training in progress ------------------------------------------------
    def resume_path(self, config: dict[str, Any]) -> Path:
        """Where the resume state of ``config``'s training lives (``<root>/<key>/resume.pt``)."""
        return self.path(config) / RESUME_FILE

    def save_resume_state(self, config: dict[str, Any], state: dict[str, Any]) -> Path:
        """Write a training's resume state for ``config`` atomically and durably (fsync)."""
        path = self.resume_path(config)
        with atomic_file(path, fsync=True) as tmp:
            torch.save({"format": RESUME_FORMAT, "key": config_key(config), **state}, tmp)
        return path

    def load_resume_state(self, config: dict[str, Any]) -> dict[str, Any] | None:
        """The latest resume state of ``config``'s training, or None when there is none. Raises
        ValueError naming the file when it is unreadable or belongs to another config."""
        path = self.resume_path(config)
        if not path.is_file():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ValueError(
                f"resume state {path} is unreadable ({_torch_reason(err)}); delete that file "
                "(inside the store) and the training starts from the beginning"
            ) from None
        if (
            not isinstance(state, dict)
            or state.get("format") != RESUME_FORMAT
            or state.get("key") != config_key(config)
        ):
            raise ValueError(
                f"resume state {path} was not written for this training config; delete that "
                "file (inside the store) and the training starts from the beginning"
            )
        return state

    def load(
        self, config: dict[str, Any], device: str | torch.device = "cpu"
    ) -> tuple[nn.Module, dict[str, Any]]:
        """The stored model for ``config`` (in eval mode, on ``device``) and its metrics.

        Raises :class:`FileNotFoundError` when absent and :class:`ValueError` when the stored
        config differs from ``config`` or a file is corrupt."""
        folder = self.path(config)
        if not (folder / MODEL_FILE).is_file():
            raise FileNotFoundError(f"no artifact for this config at {folder}; train it first")
        stored = _read_json(folder / CONFIG_FILE, folder)
        if _canonical(stored) != _canonical(config):
            diff = sorted(k for k in set(stored) | set(config) if stored.get(k) != config.get(k))
            raise ValueError(
                f"artifact {folder} was trained with another config (differs in "
                f"{diff}); delete {folder} or use another store root"
            )
        self.verify(folder)
        fix = _retrain(folder)
        state = _load_state(folder / MODEL_FILE, artifact=folder)
        _check_finite(state, folder, fix)
        model = build_from_config(config)
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(
                f"{folder / MODEL_FILE} does not fit the network of its config "
                f"({str(err).splitlines()[0]}); {fix}"
            ) from None
        metrics = _read_json(folder / METRICS_FILE, folder)
        return model.to(device).eval(), metrics

    def entries(self) -> list[dict[str, Any]]:
        """Every complete artifact: its key, config and metrics (for listing / reports)."""
        out = []
        if not self.root.is_dir():
            return out
        for folder in sorted(self.root.iterdir()):
            if folder.name.startswith(".") or not (folder / MODEL_FILE).is_file():
                continue
            try:
                out.append(
                    {
                        "key": folder.name,
                        "config": json.loads((folder / CONFIG_FILE).read_text()),
                        "metrics": json.loads((folder / METRICS_FILE).read_text()),
                    }
                )
            except (OSError, json.JSONDecodeError):
                continue
        return out


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: dict[str, Any]) -> Path:
    """Write one self-contained checkpoint file (``{"config", "state_dict"}``), atomically —
    what ``fatlib campaign CHECKPOINT`` reads."""
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_file(path, fsync=True) as tmp:
        torch.save(
            {"config": dict(config), "state_dict": state, "sha256": _state_digest(dict(config), state)}, tmp
        )
    return path


def load_checkpoint(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """Load a model for a campaign: a checkpoint file from :func:`save_checkpoint`, or an
    artifact directory of the store (``<root>/<key>``). Returns ``(model in eval mode, config)``.

    Refused with a ValueError naming the file: unreadable files, weights that do not match the
    checksum saved with them (e.g. a config edited to say W2A2 beside W1A1 weights — CNV's W1A1
    and W2A2 weights have the same names and shapes, so only the checksum can tell), weights that
    do not fit the config's network, and NaN or infinite weights."""
    path = Path(path)
    if path.is_dir():
        cfg_file = path / CONFIG_FILE
        if not cfg_file.is_file():
            raise FileNotFoundError(f"{path} is a directory without {CONFIG_FILE}: not an artifact")
        try:
            config = json.loads(cfg_file.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{cfg_file} is not valid JSON ({err})") from None
        ArtifactStore(path.parent).verify(path)
        state = _load_state(path / MODEL_FILE, artifact=path)
        fix = _retrain(path)
    elif path.is_file():
        blob = _load_state(path)
        if not isinstance(blob, dict) or "config" not in blob or "state_dict" not in blob:
            raise ValueError(
                f"{path} is not a fatlib checkpoint (needs 'config' and 'state_dict'; "
                "write it with fatlib.core.store.save_checkpoint)"
            )
        config, state = blob["config"], blob["state_dict"]
        if "sha256" in blob and blob["sha256"] != _state_digest(dict(config), state):
            raise ValueError(
                f"{path}: its config and weights do not match the checksum they were saved with (was the "
                "config edited?); write the checkpoint again with fatlib.core.store.save_checkpoint"
            )
        fix = "write the checkpoint again from a good model"
    else:
        raise FileNotFoundError(
            f"checkpoint {path} not found (give a checkpoint file or a store artifact directory)"
        )
    _check_finite(state, path, fix)
    model = build_from_config(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(
            f"{path}: the weights do not fit the network of its config ({str(err).splitlines()[0]}); {fix}"
        ) from None
    return model.eval(), config
