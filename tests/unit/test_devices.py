"""Device-correct by construction (issue #16): every torch tensor the library makes names its
device, or says on purpose that it lives on the host — a test that catches the whole class of
"Expected all tensors to be on the same device" bugs without a GPU."""

from __future__ import annotations

import ast
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
#: torch functions that make a new tensor (``*_like`` follow their input's device)
CONSTRUCTORS = {
    "zeros",
    "ones",
    "empty",
    "full",
    "arange",
    "linspace",
    "logspace",
    "tensor",
    "as_tensor",
    "rand",
    "randn",
    "randint",
    "randperm",
    "eye",
    "from_numpy",
}
MARK = "cpu-only"


def _unmarked_constructors(path: Path) -> list[str]:
    src = path.read_text()
    lines = src.splitlines()
    tree = ast.parse(src)
    simple = [n for n in ast.walk(tree) if isinstance(n, ast.stmt) and not hasattr(n, "body")]
    found = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in CONSTRUCTORS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "torch"
        ):
            continue
        if any(k.arg == "device" for k in node.keywords):
            continue
        # the innermost simple statement holding the call, and the line above it
        holders = [s for s in simple if s.lineno <= node.lineno and node.end_lineno <= s.end_lineno]
        stmt = min(holders, key=lambda s: s.end_lineno - s.lineno) if holders else node
        span = lines[max(0, stmt.lineno - 2) : stmt.end_lineno]
        if not any(MARK in line for line in span):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    return found


def test_every_tensor_constructor_names_its_device_or_is_cpu_only_on_purpose():
    bad = [hit for p in sorted((ROOT / "fatlib").rglob("*.py")) for hit in _unmarked_constructors(p)]
    assert not bad, (
        "torch tensor constructors without device=...: pass the device of the model or data they "
        "work with, or mark a host-only tensor with a '# cpu-only: <why>' comment:\n" + "\n".join(bad)
    )


def test_the_rule_catches_a_constructor_without_device(tmp_path):
    f = ROOT / "fatlib" / "_probe_devices_tmp.py"
    try:
        f.write_text(
            "import torch\n\n"
            "def bad(m):\n    return torch.zeros(3) + m\n\n"
            "def good(m):\n    return torch.zeros(3, device=m.device)\n\n"
            "def host():\n    # cpu-only: a host table\n    return torch.arange(4)\n"
        )
        hits = _unmarked_constructors(f)
    finally:
        f.unlink()
    assert len(hits) == 1 and "torch.zeros(3) + m" in hits[0]


def test_activation_levels_probe_follows_buffers(monkeypatch):
    """CNV's activation sites (QuantIdentity) hold buffers but no parameters; the probe must be
    made on their device (a CPU probe crashed every campaign on CUDA)."""
    from fatlib.core import models

    site = models.activation_sites(models.cnv(1, 2, width=0.125))[0]
    assert next(site.parameters(), None) is None and next(site.buffers(), None) is not None
    seen = []
    real = torch.linspace

    def spy(*args, **kwargs):
        seen.append(kwargs.get("device"))
        return real(*args, **kwargs)

    monkeypatch.setattr(models.torch, "linspace", spy)
    assert models.activation_levels(site).tolist() == [-1.0, 0.0, 1.0]
    site.to("meta")
    assert models.model_device(site) == torch.device("meta")  # buffers decide where no parameter is
    assert seen == [torch.device("cpu")]


def test_device_check_cpu_part_runs_and_says_what_it_skipped():
    """CI runs the CPU part of benchmarks/device_check.py: the engine agrees with naive_campaign
    fault for fault, and what needs a GPU is reported as skipped, not passed."""
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "device_check.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    table = [line for line in r.stdout.splitlines() if line.startswith("engine = naive_campaign")]
    assert len(table) == 6 and all(line.rstrip().endswith("| ok") for line in table)
    assert "all exactness checks passed" in r.stdout
    if not torch.cuda.is_available():
        assert "skipped: needs a GPU" in r.stdout and "torch.compile" in r.stdout
