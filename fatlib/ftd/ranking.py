"""Ranking the channels (feature maps) of every convolution — FT-DeepNets §3.1 and §3.3.

:func:`rank_channels` returns, for each ``Conv2d`` (by module name, registration order), one score
per output channel; a higher score means a more important channel, i.e. one to duplicate first.

Methods
-------
``weight_sum`` (Eq. 1–2)
    The summed absolute weights that *read* the channel in the next convolution:
    ``s_i = Σ_j Σ_p Σ_q |W_next[j, i, p, q]|`` (for a grouped next convolution only the filters of
    the channel's group read it). With several next convolutions (branches) the sums are added; a
    convolution with no next convolution (e.g. the last one, followed by a Linear classifier) uses
    its own filters: ``s_i = Σ |W[i]|``.
``second_order`` (Eq. 5–6)
    ``s_i = 1/B Σ_b Σ_p Σ_q ½ (o_{b,i,p,q})² (∂E/∂o_{b,i,p,q})²`` where ``o`` is the convolution's
    output and ``E`` the summed cross-entropy of the batch (the Hessian approximated by the squared
    gradient, Eq. 4). Averaged over every image of ``data``. Parameters' ``.grad`` are untouched.
``entropy`` (Eq. 7–9)
    ``s_i = −1/B Σ_b H(softmax(o_{b,i}.flatten()))``: low-entropy channels score high.
``random``
    Uniform scores from a generator seeded with ``seed`` (the paper's "random selection" baseline).

"Next convolution"
------------------
The network is traced with :func:`torch.fx.symbolic_trace`; the next convolutions of a
convolution are the ``Conv2d`` modules reached from its output through any non-convolution
operation (BatchNorm, activations, pooling, residual additions, ...), not going past a
convolution or a ``Linear``, and whose ``in_channels`` equals its ``out_channels`` (this drops
paths through concatenations, flattening and the like, where channel identity is lost). If the
model cannot be traced, the fallback is module-registration order: the next ``Conv2d`` registered
after it, if its ``in_channels`` matches — exact for sequential networks such as VGG and
MobileNetV1 (a warning says that the fallback was used).

Depthwise / pointwise pairs (§3.3, Fig. 5)
------------------------------------------
A depthwise convolution (``groups == in_channels == out_channels > 1``) whose single next
convolution is not depthwise (MobileNet's pointwise 1×1 conv) is *paired* with it; the pair is one
unit (:func:`depthwise_pairs`). For ``weight_sum`` a depthwise convolution is skipped when looking
for the next layer: channel ``i`` flows through depthwise channel ``i`` into column ``i`` of the
pointwise kernel, so its score is the sum of that pointwise column ("the summation of only
pointwise convolutional kernels", Fig. 5). The depthwise convolution's own scores are therefore
the column sums of its paired pointwise kernel (for data methods: scores of its own output maps).
They are informative only: :func:`fatlib.ftd.duplication.duplication_plan` duplicates the *whole*
depthwise kernel whenever its paired pointwise convolution has any duplicated filter.

Scores are returned as float32 CPU tensors.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from fatlib.core.torch_utils import eval_mode, model_device

__all__ = [
    "RANKING_METHODS",
    "rank_channels",
    "next_convs",
    "depthwise_pairs",
    "is_depthwise",
    "top_channels",
    "num_selected",
    "overlap",
    "conv_layers",
    "check_ratio",
    "check_scores",
]

#: ranking methods of §3.1 plus the random baseline of §4.1.
RANKING_METHODS: tuple[str, ...] = ("weight_sum", "second_order", "entropy", "random")

Data = tuple[torch.Tensor, torch.Tensor] | Dataset


def is_depthwise(conv: nn.Module) -> bool:
    """True for a depthwise convolution: ``groups == in_channels == out_channels > 1`` (FTD §3.3,
    Fig. 5: MobileNet's depthwise layers)."""
    return (
        isinstance(conv, nn.Conv2d)
        and conv.groups > 1
        and conv.groups == conv.in_channels == conv.out_channels
    )


def conv_layers(model: nn.Module) -> dict[str, nn.Conv2d]:
    """Every ``Conv2d`` of ``model`` by module name, in registration order: the layers whose
    channels FTD §3.1 ranks and §3.2 duplicates."""
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def _next_convs_fx(model: nn.Module, convs: dict[str, nn.Conv2d]) -> dict[str, list[str]]:
    import torch.fx as fx

    gm = fx.symbolic_trace(model)
    modules = dict(gm.named_modules())
    result: dict[str, list[str]] = {}
    for node in gm.graph.nodes:
        if node.op != "call_module" or node.target not in convs:
            continue
        found: list[str] = []
        seen: set = set()
        stack = list(node.users)
        while stack:
            user = stack.pop()
            if user in seen:
                continue
            seen.add(user)
            if user.op == "call_module":
                mod = modules.get(user.target)
                if isinstance(mod, nn.Conv2d):
                    if mod.in_channels == convs[node.target].out_channels and user.target not in found:
                        found.append(user.target)
                    continue
                if isinstance(mod, nn.Linear):
                    continue
            if user.op == "output":
                continue
            stack.extend(user.users)
        result[node.target] = sorted(found, key=list(convs).index)
    for name in convs:  # convolutions fx did not see being called (unused modules)
        result.setdefault(name, [])
    return result


def _next_convs_order(convs: dict[str, nn.Conv2d]) -> dict[str, list[str]]:
    names = list(convs)
    out: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        nxt = names[i + 1] if i + 1 < len(names) else None
        ok = nxt is not None and convs[nxt].in_channels == convs[name].out_channels
        out[name] = [nxt] if ok else []
    return out


def next_convs(model: nn.Module) -> dict[str, list[str]]:
    """For each ``Conv2d`` name, the names of the convolutions that read its output channels
    (FTD Eq. 2's "layer l+1"; see the module docstring for how they are found)."""
    convs = conv_layers(model)
    try:
        return _next_convs_fx(model, convs)
    except Exception as exc:  # noqa: BLE001 - any tracing failure falls back
        warnings.warn(
            f"torch.fx could not trace {type(model).__name__} ({exc}); using module "
            "registration order to find the next convolution",
            stacklevel=2,
        )
        return _next_convs_order(convs)


def depthwise_pairs(model: nn.Module, graph: dict[str, list[str]] | None = None) -> dict[str, str]:
    """Depthwise → pointwise pairs ranked and duplicated as one unit (FTD §3.3, Fig. 5): each
    depthwise ``Conv2d`` whose single next convolution is not depthwise, mapped to that one."""
    convs = conv_layers(model)
    graph = next_convs(model) if graph is None else graph
    pairs = {}
    for name, conv in convs.items():
        nxt = graph.get(name, [])
        if is_depthwise(conv) and len(nxt) == 1 and not is_depthwise(convs[nxt[0]]):
            pairs[name] = nxt[0]
    return pairs


def _read_sums(conv: nn.Conv2d) -> torch.Tensor:
    """Σ |weights| reading each input channel of ``conv`` (only its group's filters read it)."""
    w = conv.weight.detach().abs().float().sum(dim=(2, 3))  # (out, in/groups)
    g = conv.groups
    per_group = w.view(g, conv.out_channels // g, conv.in_channels // g).sum(dim=1)
    return per_group.reshape(conv.in_channels)


def _weight_sum(model: nn.Module) -> dict[str, torch.Tensor]:
    convs = conv_layers(model)
    graph = next_convs(model)
    pairs = depthwise_pairs(model, graph)
    scores: dict[str, torch.Tensor] = {}
    for name, conv in convs.items():
        s = torch.zeros(conv.out_channels)  # cpu-only: scores live on the host
        consumers = graph.get(name, [])
        for c in consumers:
            reader = pairs.get(c, c)  # skip a paired depthwise conv: read by its pointwise conv
            s += _read_sums(convs[reader]).cpu()
        if not consumers:
            s = conv.weight.detach().abs().float().sum(dim=(1, 2, 3)).cpu()
        scores[name] = s
    return scores


def _batches(
    data: Data, batch_size: int, batches: int | None, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    if isinstance(data, (tuple, list)):
        if len(data) != 2 or not all(isinstance(t, torch.Tensor) for t in data):
            raise ValueError("data must be an (images, labels) pair of tensors or a Dataset")
        x, y = data
        if len(x) != len(y):
            raise ValueError(f"data: {len(x)} images but {len(y)} labels")
        chunks = zip(x.split(batch_size), y.split(batch_size))
    elif isinstance(data, Dataset):
        chunks = iter(DataLoader(data, batch_size=batch_size, shuffle=False))
    else:
        raise ValueError(
            f"data must be an (images, labels) pair of tensors or a Dataset, got {type(data).__name__}"
        )
    for i, (xb, yb) in enumerate(chunks):
        if batches is not None and i >= batches:
            break
        # cpu-only: scores live on the host
        yield xb.to(device), (None if yb is None else torch.as_tensor(yb).to(device))


def _data_scores(
    model: nn.Module, method: str, data: Data, batch_size: int, batches: int | None
) -> dict[str, torch.Tensor]:
    convs = conv_layers(model)
    device = model_device(model)
    # cpu-only: scores live on the host
    totals = {n: torch.zeros(c.out_channels, dtype=torch.float64) for n, c in convs.items()}
    count = 0
    captured: dict[str, torch.Tensor] = {}

    def capture(name: str):
        def hook(module, args, output):
            if method == "second_order":
                if not output.requires_grad:  # frozen parameters: make the map a graph leaf
                    output = output.detach().requires_grad_(True)
                captured[name] = output
                return output.clone()  # in-place ops downstream must not modify ``output``
            with torch.no_grad():
                logp = F.log_softmax(output.detach().flatten(2).double(), dim=2)  # Eq. 8
                ent = -(logp.exp() * logp).sum(dim=2)  # (B, C), Eq. 7
                totals[name] -= ent.sum(dim=0).cpu()  # Eq. 9 (the 1/B comes at the end)
            return None

        return hook

    handles = [m.register_forward_hook(capture(n)) for n, m in convs.items()]
    try:
        with eval_mode(model):
            for xb, yb in _batches(data, batch_size, batches, device):
                captured.clear()
                if method == "second_order":
                    if yb is None:
                        raise ValueError("second_order ranking needs labels in data")
                    with torch.enable_grad():
                        out = model(xb)
                        loss = F.cross_entropy(out, yb, reduction="sum")
                        names = [n for n in convs if n in captured]
                        grads = torch.autograd.grad(loss, [captured[n] for n in names], allow_unused=True)
                    for n, g in zip(names, grads):
                        if g is None:
                            continue
                        o = captured[n].detach().double()
                        totals[n] += (0.5 * o.pow(2) * g.double().pow(2)).sum(dim=(0, 2, 3)).cpu()
                else:
                    with torch.no_grad():
                        model(xb)
                count += xb.shape[0]
    finally:
        for h in handles:
            h.remove()
        captured.clear()
    if count == 0:
        raise ValueError("data yielded no images")
    return {n: (t / count).float() for n, t in totals.items()}


def rank_channels(
    model: nn.Module,
    method: str,
    data: Data | None = None,
    seed: int = 0,
    batches: int | None = None,
    batch_size: int = 128,
) -> dict[str, torch.Tensor]:
    """Score every output channel of every ``Conv2d`` of ``model`` (FTD §3.1, Eq. 2, 5–6, 8–9).

    ``method``: ``"weight_sum"`` (Eq. 2), ``"second_order"`` (Eq. 6; needs ``data`` with labels),
    ``"entropy"`` (Eq. 9; needs ``data``) or ``"random"`` (seeded with ``seed``). ``data`` is an
    ``(images, labels)`` pair of tensors or a ``Dataset``; it is read in order in batches of
    ``batch_size``, at most ``batches`` of them (``None``: all), and the scores are averaged over
    all images read. The model runs in eval mode (its modes are restored after).
    Returns ``{conv name: float32 CPU tensor of out_channels scores}``, higher = more important.
    Depthwise / pointwise pairs follow §3.3 (module docstring)."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if method not in RANKING_METHODS:
        raise ValueError(f"unknown ranking method {method!r}: use one of {RANKING_METHODS}")
    convs = conv_layers(model)
    if not convs:
        raise ValueError(f"{type(model).__name__} has no Conv2d layer to rank")
    if batch_size < 1 or (batches is not None and batches < 1):
        raise ValueError("batch_size and batches must be >= 1 (batches=None reads all data)")
    if method == "weight_sum":
        scores = _weight_sum(model)
    elif method == "random":
        g = torch.Generator().manual_seed(int(seed))
        # cpu-only: scores live on the host
        scores = {n: torch.rand(c.out_channels, generator=g) for n, c in convs.items()}
    elif data is None:
        raise ValueError(
            f"ranking method {method!r} needs data=(images, labels) or a Dataset; "
            "'weight_sum' and 'random' need none"
        )
    else:
        scores = _data_scores(model, method, data, batch_size, batches)
    check_scores(scores, f"{method} ranking")
    return scores


def check_scores(scores: dict[str, torch.Tensor], what: str = "ranking scores") -> None:
    """ValueError naming the layer when any score is NaN: a NaN sorts arbitrarily, so the channels
    it would select (and duplicate) would be meaningless."""
    if not isinstance(scores, dict):
        raise ValueError(f"{what} must be a dict {{conv name: scores}}, got {type(scores).__name__}")
    for name, s in scores.items():
        t = torch.as_tensor(s).detach()  # cpu-only: scores live on the host
        if t.is_floating_point() and bool(torch.isnan(t).any()):
            n_nan = int(torch.isnan(t).sum())
            raise ValueError(
                f"{what}: layer {name!r} has {n_nan} NaN score(s) of {t.numel()}; NaN cannot be "
                "ranked — check the model's weights and the ranking data for NaN / inf, or rank "
                "with another method"
            )


def num_selected(channels: int, ratio: float) -> int:
    """How many of ``channels`` the ``ratio`` selects: ``round(ratio · channels)``, halves up
    (FTD §3.3's duplication ratio)."""
    return min(channels, max(0, int(ratio * channels + 0.5)))


def check_ratio(ratio: float) -> None:
    """ValueError unless ``ratio`` is a fraction of channels in [0, 1] (the duplication ratio of
    FTD §3.3, e.g. 0.5 for the paper's 50 %)."""
    if not isinstance(ratio, (int, float)) or not 0.0 <= float(ratio) <= 1.0:
        raise ValueError(f"ratio={ratio!r}: use a fraction of channels in [0, 1]")


def top_channels(scores: dict[str, torch.Tensor], ratio: float) -> dict[str, torch.Tensor]:
    """Indices of the top ``ratio`` fraction of channels of each layer (FTD §3.3: "the highest
    score in descending order"), ``round(ratio · C)`` of them, most important first; ties go to
    the lower channel index. NaN scores raise ValueError naming the layer."""
    check_ratio(ratio)
    check_scores(scores)
    out = {}
    for name, s in scores.items():
        s = torch.as_tensor(s).detach().float().cpu().flatten()  # cpu-only: scores live on the host
        k = num_selected(s.numel(), ratio)
        order = torch.sort(s, descending=True, stable=True).indices
        out[name] = order[:k].clone()
    return out


def overlap(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], ratio: float) -> pd.DataFrame:
    """How much two rankings agree on their top ``ratio`` channels, per layer (for FTD Fig. 3/6):
    columns ``layer``, ``k``, ``common`` (size of the intersection), ``fraction`` (common / k)
    and ``jaccard`` (intersection over union). Layers present in both are compared."""
    ta, tb = top_channels(a, ratio), top_channels(b, ratio)
    rows = []
    for name in ta:
        if name not in tb:
            continue
        # cpu-only: scores live on the host
        if torch.as_tensor(a[name]).numel() != torch.as_tensor(b[name]).numel():
            raise ValueError(f"layer {name!r}: the two rankings have different channel counts")
        sa, sb = set(ta[name].tolist()), set(tb[name].tolist())
        k, common, union = len(sa), len(sa & sb), len(sa | sb)
        rows.append(
            {
                "layer": name,
                "k": k,
                "common": common,
                "fraction": common / k if k else float("nan"),
                "jaccard": common / union if union else float("nan"),
            }
        )
    if not rows:
        raise ValueError("the two rankings share no layer name")
    return pd.DataFrame(rows)
