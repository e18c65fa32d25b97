"""Artifact store: trained models saved under a key derived from their whole training config.

Layout: ``<root>/<key>/`` with ``model.pt`` (a state dict, read with
``torch.load(..., weights_only=True)``), ``config.json`` (the training config the key hashes) and
``metrics.json`` (accuracy, learning curve, throughput, profile, data used). An artifact directory
is written in a temporary directory and renamed into place, so a killed run never leaves half an
artifact behind. An existing artifact is reused instead of retrained.

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

from fatlib.core.files import atomic_dir, atomic_file

__all__ = ["ArtifactStore", "config_key", "default_store_dir", "load_checkpoint", "save_checkpoint"]

MODEL_FILE, CONFIG_FILE, METRICS_FILE = "model.pt", "config.json", "metrics.json"


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


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(
            f"artifact file {path} is corrupt or unreadable ({type(err).__name__}: "
            f"{err}); delete {path.parent} and it will be retrained"
        ) from err


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
        """Store ``model``'s weights with ``config`` and ``metrics``, atomically."""
        target = self.path(config)
        with atomic_dir(target, replace=True) as tmp:  # replaced only by an explicit retrain
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            torch.save(state, tmp / MODEL_FILE)
            _write_json(tmp / CONFIG_FILE, config)
            _write_json(tmp / METRICS_FILE, metrics)
        return target

    def load(
        self, config: dict[str, Any], device: str | torch.device = "cpu"
    ) -> tuple[nn.Module, dict[str, Any]]:
        """The stored model for ``config`` (in eval mode, on ``device``) and its metrics.

        Raises :class:`FileNotFoundError` when absent and :class:`ValueError` when the stored
        config differs from ``config`` or a file is corrupt."""
        folder = self.path(config)
        if not (folder / MODEL_FILE).is_file():
            raise FileNotFoundError(f"no artifact for this config at {folder}; train it first")
        try:
            stored = json.loads((folder / CONFIG_FILE).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(
                f"{folder / CONFIG_FILE} is corrupt ({err}); delete {folder} and it will be retrained"
            ) from err
        if _canonical(stored) != _canonical(config):
            diff = sorted(k for k in set(stored) | set(config) if stored.get(k) != config.get(k))
            raise ValueError(
                f"artifact {folder} was trained with another config (differs in "
                f"{diff}); delete {folder} or use another store root"
            )
        model = build_from_config(config)
        try:
            model.load_state_dict(_load_state(folder / MODEL_FILE))
        except RuntimeError as err:
            raise ValueError(
                f"{folder / MODEL_FILE} does not fit the network of its config "
                f"({err}); delete {folder} and it will be retrained"
            ) from err
        try:
            metrics = json.loads((folder / METRICS_FILE).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{folder / METRICS_FILE} is corrupt ({err}); delete {folder}") from err
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
    with atomic_file(path) as tmp:
        torch.save(
            {
                "config": dict(config),
                "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            },
            tmp,
        )
    return path


def load_checkpoint(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """Load a model for a campaign: a checkpoint file from :func:`save_checkpoint`, or an
    artifact directory of the store (``<root>/<key>``). Returns ``(model in eval mode, config)``."""
    path = Path(path)
    if path.is_dir():
        cfg_file = path / CONFIG_FILE
        if not cfg_file.is_file():
            raise FileNotFoundError(f"{path} is a directory without {CONFIG_FILE}: not an artifact")
        config = json.loads(cfg_file.read_text())
        state = _load_state(path / MODEL_FILE)
    elif path.is_file():
        blob = _load_state(path)
        if not isinstance(blob, dict) or "config" not in blob or "state_dict" not in blob:
            raise ValueError(
                f"{path} is not a fatlib checkpoint (needs 'config' and 'state_dict'; "
                "write it with fatlib.core.store.save_checkpoint)"
            )
        config, state = blob["config"], blob["state_dict"]
    else:
        raise FileNotFoundError(
            f"checkpoint {path} not found (give a checkpoint file or a store artifact directory)"
        )
    model = build_from_config(config)
    model.load_state_dict(state)
    return model.eval(), config
