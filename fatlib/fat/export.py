"""From the book to the FPGA: fault-aware CNVs as QONNX graphs for FINN, with faults that agree.

FAT's networks exist to be deployed as FINN dataflow accelerators (FAT §V measured them on a
ZCU104). :func:`to_qonnx` writes the file FINN's flow starts from: brevitas' own QONNX exporter,
then qonnx's clean-up (shape inference, constant folding, unique and readable names). Training-only
parts — FAT's error-injection layers and Dropout2D — are not in the graph: the network is rebuilt
from its weights, so the caller's model is left exactly as it was (mode, device, hooks).

The exported graph is a second engine, independent of torch, for the stuck-at campaign
(FAT Algorithm 1): :func:`inject_stuck_at` holds one channel, or one pixel, of an activation
quantizer's output at a level by a small graph edit after that quantizer (``out · M + V``, with
``M`` 0 at the stuck positions and 1 elsewhere, ``V`` the level there and 0 elsewhere — exact in
floating point), and :func:`graph_campaign` executes faults with
``qonnx.core.onnx_exec.execute_onnx``. The activation sites are CNV's eight activation quantizers
(the quantizers that follow a BatchNormalization, in graph order), numbered 0–7 as in
:func:`fatlib.core.models.activation_sites`; the stuck value replaces the quantizer's output
before any max-pool, as in :mod:`fatlib.fat.campaign`.

The graph is fixed to the batch size it was exported with (``input_shape[0]``): callers execute
that batch size; :func:`execute` pads the last batch.

Needs the optional extra ``fatlib[export]`` (``qonnx``, ``onnx``, ``onnxoptimizer``).
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from fatlib.core.files import atomic_file
from fatlib.core.schemes import CHANNEL, PIXEL

__all__ = [
    "to_qonnx",
    "load_graph",
    "graph_summary",
    "quantizers",
    "activation_site_tensors",
    "inject_stuck_at",
    "execute",
    "graph_campaign",
    "sample_faults",
]

#: ONNX operator types of QONNX's quantizers
QUANT_OPS = ("Quant", "BipolarQuant")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep the exporters' chatter off the pages: torch.onnx's progress lines (stdout) and the
    import-time notices of brevitas (no fast_hadamard_transform) and tqdm (no ipywidgets)."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="fast_hadamard_transform package not found")
        warnings.filterwarnings("ignore", message="IProgress not found")
        yield


def _require_qonnx() -> None:
    try:
        with _quiet():
            import onnx  # noqa: F401
            import qonnx  # noqa: F401
            import qonnx.core.onnx_exec  # noqa: F401
            import qonnx.util.cleanup  # noqa: F401
    except ImportError as err:
        raise ImportError(
            f"QONNX export needs the optional extra: pip install 'fatlib[export]' ({err.name} is missing)"
        ) from None


def _deployable_copy(model: nn.Module) -> nn.Module:
    """A fresh CNV with ``model``'s weights, on the CPU, in eval mode, without injection or dropout
    layers (they are not in the state dict); ``model`` itself is not touched."""
    from fatlib.core.models import CNV, cnv

    if not isinstance(model, CNV):
        raise ValueError(
            f"QONNX export takes a fatlib CNV (fatlib.core.models.cnv), got {type(model).__name__}"
        )
    fresh = cnv(
        model.weight_bits,
        model.act_bits,
        num_classes=model.num_classes,
        in_channels=model.in_channels,
        width=model.width,
    )
    fresh.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
    return fresh.eval()


def to_qonnx(
    model: nn.Module, path: str | os.PathLike, input_shape: tuple[int, int, int, int] = (1, 3, 32, 32)
) -> Path:
    """Export a CNV to ``path`` as a cleaned-up QONNX graph (FINN's input), atomically.

    ``input_shape`` is (batch, channels, height, width): the graph is fixed to that batch size.
    Returns the path. The model is left as it was."""
    _require_qonnx()
    with _quiet():
        from brevitas.export import export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(
            f"input_shape={input_shape!r}: give (batch, channels, height, width), e.g. (1, 3, 32, 32)"
        )
    copy = _deployable_copy(model)
    if shape[1:] != (copy.in_channels, 32, 32):
        raise ValueError(f"input_shape={input_shape!r}: CNV takes {copy.in_channels}×32×32 images")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # torch's exporter writes the weights beside its file: export into a scratch folder, then write
    # the cleaned, self-contained graph to ``path`` atomically
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.export-") as work:
        raw = Path(work) / "raw.onnx"
        with torch.no_grad(), _quiet():
            export_qonnx(copy, torch.zeros(shape), str(raw))  # cpu-only: export runs on the CPU
        cleaned = cleanup_model(ModelWrapper(str(raw)))
        with atomic_file(path, suffix=".onnx") as tmp:
            cleaned.save(str(tmp))
    return path


def load_graph(path: str | os.PathLike) -> Any:
    """The QONNX graph at ``path`` as a ``qonnx`` ModelWrapper."""
    _require_qonnx()
    from qonnx.core.modelwrapper import ModelWrapper

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: write it with fatlib.fat.export.to_qonnx")
    return ModelWrapper(str(path))


def _graph(graph: Any) -> Any:
    return load_graph(graph) if isinstance(graph, (str, os.PathLike)) else graph


def graph_summary(graph: Any) -> pd.DataFrame:
    """Node counts by operator type (``op_type``, ``nodes``), most frequent first."""
    g = _graph(graph)
    counts = Counter(n.op_type for n in g.graph.node)
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return pd.DataFrame(rows, columns=["op_type", "nodes"])


def quantizers(graph: Any) -> pd.DataFrame:
    """Every quantizer of the graph in order: ``node``, ``op_type``, ``kind`` ("weight" when it
    quantizes a constant, "input" for the image quantizer, "activation" otherwise), ``site``
    (0–7 for CNV's activation sites) and ``bit_width`` (BipolarQuant: 1)."""
    g = _graph(graph)
    sites = {name: i for i, name in enumerate(activation_site_tensors(g))}
    rows = []
    for node in g.graph.node:
        if node.op_type not in QUANT_OPS:
            continue
        constant = g.get_initializer(node.input[0]) is not None
        if node.op_type == "BipolarQuant":
            bits = 1.0
        else:
            bw = g.get_initializer(node.input[3])
            bits = float(np.asarray(bw).reshape(-1)[0]) if bw is not None else float("nan")
        out = node.output[0]
        kind = "weight" if constant else ("activation" if out in sites else "input")
        rows.append(
            {
                "node": node.name,
                "op_type": node.op_type,
                "kind": kind,
                "site": sites.get(out),
                "bit_width": bits,
            }
        )
    df = pd.DataFrame(rows, columns=["node", "op_type", "kind", "site", "bit_width"])
    df["site"] = df["site"].astype("Int64")
    return df


def activation_site_tensors(graph: Any) -> list[str]:
    """Names of the tensors that CNV's activation sites 0–7 output: the outputs of the quantizers
    fed by a BatchNormalization, in graph order."""
    g = _graph(graph)
    out = []
    for node in g.graph.node:
        if node.op_type in QUANT_OPS and g.get_initializer(node.input[0]) is None:
            producer = g.find_producer(node.input[0])
            if producer is not None and producer.op_type == "BatchNormalization":
                out.append(node.output[0])
    return out


def inject_stuck_at(
    graph: Any,
    layer: int,
    value: float,
    channel: int | None = None,
    row: int | None = None,
    col: int | None = None,
) -> Any:
    """A copy of ``graph`` whose activation site ``layer`` outputs ``value`` at one ``channel``
    (channel stuck@, FAT Fig. 2 left) or at one (``row``, ``col``) position of every channel
    (same-pixel stuck@, Fig. 2 right): ``out' = out · M + V`` right after the quantizer, every
    consumer rewired to ``out'``."""
    import onnx
    from onnx import helper

    g = _graph(graph)
    tensors = activation_site_tensors(g)
    if not 0 <= layer < len(tensors):
        raise ValueError(f"layer={layer}: the graph has activation sites 0–{len(tensors) - 1}")
    if (channel is None) == (row is None or col is None):
        raise ValueError("give either channel (channel stuck@) or row and col (same-pixel stuck@)")
    name = tensors[layer]
    shape = g.get_tensor_shape(name)
    if shape is None:
        raise ValueError(f"the graph has no shape for {name}: export it with fatlib.fat.export.to_qonnx")
    mshape = [1] * len(shape)
    if channel is not None:
        if not 0 <= channel < shape[1]:
            raise ValueError(f"channel={channel}: site {layer} has {shape[1]} channels")
        mshape[1] = shape[1]
        index: tuple = (0, channel) + (0,) * (len(shape) - 2)
    else:
        if len(shape) != 4:
            raise ValueError(f"site {layer} is a fully connected layer: it has no pixels")
        if not (0 <= row < shape[2] and 0 <= col < shape[3]):
            raise ValueError(
                f"(row, col)=({row}, {col}) lies outside site {layer}'s {shape[2]}×{shape[3]} map"
            )
        mshape[2:] = shape[2:]
        index = (0, 0, row, col)
    keep = np.ones(mshape, dtype=np.float32)
    put = np.zeros(mshape, dtype=np.float32)
    keep[index], put[index] = 0.0, np.float32(value)
    out = type(g)(copy.deepcopy(g.model))
    stem = f"fatlib_stuck_{layer}"
    faulty, scaled = f"{stem}_out", f"{stem}_scaled"
    for node in out.graph.node:  # every consumer reads the faulty tensor
        for i, inp in enumerate(node.input):
            if inp == name:
                node.input[i] = faulty
    outputs = [o.name for o in out.graph.output]
    if name in outputs:
        raise ValueError(f"{name} is a graph output: not an activation site")
    out.set_initializer(f"{stem}_keep", keep)
    out.set_initializer(f"{stem}_put", put)
    producer_index = [i for i, n in enumerate(out.graph.node) if name in n.output][0]
    out.graph.node.insert(producer_index + 1, helper.make_node("Mul", [name, f"{stem}_keep"], [scaled]))
    out.graph.node.insert(producer_index + 2, helper.make_node("Add", [scaled, f"{stem}_put"], [faulty]))
    out.set_tensor_shape(scaled, list(shape))
    out.set_tensor_shape(faulty, list(shape))
    onnx.checker.check_model(out.model)
    return out


def execute(graph: Any, images: torch.Tensor) -> np.ndarray:
    """Logits of the graph on ``images`` (N×C×H×W floats in [0, 1]), in batches of the graph's
    batch size (the last one padded with zeros and cut)."""
    from qonnx.core.onnx_exec import execute_onnx

    from fatlib.core.torch_utils import check_images01

    g = _graph(graph)
    check_images01(images)
    inp, out = g.graph.input[0].name, g.graph.output[0].name
    batch = int(g.get_tensor_shape(inp)[0])
    x = images.detach().cpu().float().numpy()
    logits = []
    for start in range(0, len(x), batch):
        chunk = x[start : start + batch]
        n = len(chunk)
        if n < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - n, *chunk.shape[1:]), dtype=chunk.dtype)])
        logits.append(np.asarray(execute_onnx(g, {inp: chunk})[out])[:n])
    return np.concatenate(logits)


def graph_campaign(
    graph: Any, images: torch.Tensor, labels: torch.Tensor, faults: pd.DataFrame
) -> pd.DataFrame:
    """Accuracy (%) under each fault of ``faults`` (a campaign table: ``layer``, ``value`` and
    ``channel`` or ``row``/``col``, e.g. from :func:`fatlib.fat.campaign.stuck_at_campaign`),
    computed on the exported graph alone. Returns ``faults``' key columns with ``correct``,
    ``total`` and ``accuracy`` — the columns the campaign engine reports, to compare fault for fault."""
    g = _graph(graph)
    pattern = CHANNEL if "channel" in faults.columns else PIXEL
    keys = ["layer", "channel", "value"] if pattern == CHANNEL else ["layer", "row", "col", "value"]
    y = labels.detach().cpu().numpy()
    rows = []
    for f in faults[keys].itertuples(index=False):
        where = {"channel": int(f.channel)} if pattern == CHANNEL else {"row": int(f.row), "col": int(f.col)}
        faulty = inject_stuck_at(g, int(f.layer), float(f.value), **where)
        correct = int((execute(faulty, images).argmax(1) == y).sum())
        rows.append(
            {**f._asdict(), "correct": correct, "total": len(y), "accuracy": 100.0 * correct / len(y)}
        )
    return pd.DataFrame(rows, columns=keys + ["correct", "total", "accuracy"])


def sample_faults(
    faults: pd.DataFrame, n: int, seed: int = 0, by: Sequence[str] = ("layer",)
) -> pd.DataFrame:
    """``n`` rows of a campaign table drawn without replacement (seeded), with at least one from
    every ``by`` group (every site), in the table's order — the faults a graph check replays."""
    rng = np.random.default_rng(seed)
    first = faults.groupby(list(by), sort=True).head(1)
    rest = faults.drop(first.index)
    extra = rest.iloc[rng.permutation(len(rest))[: max(0, n - len(first))]]
    return pd.concat([first, extra]).sort_index()
