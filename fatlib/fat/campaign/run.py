"""Exhaustive single stuck-at campaigns — FAT Algorithm 1 (channel stuck@, Tables I–III) and the
same-pixel model (Table IV): :func:`stuck_at_campaign` plans the work (fault list, sample, shard,
persisted units), runs it on the fast engine (:mod:`fatlib.fat.campaign.engine`, CNV) or the
generic runner (:mod:`fatlib.fat.campaign.generic`) and records it in the store
(:mod:`fatlib.fat.campaign.store`)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from fatlib.core.files import writer_lock
from fatlib.core.schemes import CHANNEL
from fatlib.core.torch_utils import eval_mode
from fatlib.fat.campaign.data import (
    DEFAULT_BATCH_SIZE,
    ImageSource,
    check_image_shape,
    check_labels,
    model_fingerprint,
    prepare_model,
)
from fatlib.fat.campaign.engine import Engine, Golden
from fatlib.fat.campaign.faults import (
    FaultList,
    check_pattern,
    named_faults,
    population,
    resolve_layers,
    resolve_levels,
    site_table,
)
from fatlib.fat.campaign.generic import GenericGolden, GenericRunner
from fatlib.fat.campaign.outcomes import OUTCOMES_FILE, has_outcomes, save_outcomes
from fatlib.fat.campaign.results import result_frame, save_results
from fatlib.fat.campaign.store import RESULTS_FILE, STORE_FORMAT, CampaignStore

#: work per persisted unit when ``chunk_size`` is not given: faults × suffix MACs × images.
_UNIT_MAC_TARGET = 4e10
_CPU_BUDGET = 256 << 20


def _parse_shard(shard: Any) -> tuple[int, int] | None:
    if shard is None:
        return None
    if isinstance(shard, str):
        try:
            i, n = (int(x) for x in shard.split("/"))
        except ValueError:
            raise ValueError(f"shard={shard!r}: write it as 'i/n' with 0 <= i < n") from None
    else:
        try:
            i, n = (int(x) for x in shard)
        except (TypeError, ValueError):
            raise ValueError(f"shard={shard!r}: give (i, n) with 0 <= i < n") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"shard=({i}, {n}): needs n >= 1 and 0 <= i < n")
    return i, n


def _memory_budget(device: torch.device, memory_budget: int | None) -> int:
    if memory_budget is not None:
        if memory_budget <= 0:
            raise ValueError(f"memory_budget={memory_budget!r} must be a positive number of bytes")
        return int(memory_budget)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.5)
    return _CPU_BUDGET


def _plan_chunks(
    faults: FaultList, cost: dict[int, int], n_batch_images: int, chunk_size: int | None
) -> list[tuple[int, int]]:
    """Persistence units: consecutive faults of one layer."""
    chunks = []
    start = 0
    n = len(faults)
    while start < n:
        L = int(faults.layer[start])
        end = start
        while end < n and faults.layer[end] == L:
            end += 1
        if chunk_size is not None:
            size = chunk_size
        else:
            size = int(max(1, min(4096, _UNIT_MAC_TARGET // max(1, cost[L] * n_batch_images))))
        for s in range(start, end, size):
            chunks.append((s, min(end, s + size)))
        start = end
    return chunks


def stuck_at_campaign(
    model: nn.Module,
    data: Any,
    pattern: str = CHANNEL,
    levels: Sequence[float] | None = None,
    layers: Sequence[int] | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    store: str | os.PathLike | None = None,
    shard: tuple[int, int] | str | None = None,
    sample: int | None = None,
    seed: int = 0,
    progress: bool = True,
    faults: pd.DataFrame | Sequence[tuple] | None = None,
    memory_budget: int | None = None,
    chunk_size: int | None = None,
    engine: str = "auto",
    outcomes: bool = False,
) -> pd.DataFrame:
    """Exhaustive single stuck-at campaign — FAT Algorithm 1 (channel stuck@, Tables I–III) or
    the same-pixel model (Table IV) — computed exactly, fast and resumably.

    CNV runs on the fast engine of :mod:`fatlib.fat.campaign.engine`. Every other network
    (DoReFa-AlexNet, FAT Fig. 8) runs on the generic runner, exact by construction because it
    runs the model itself: (fault, image) rows are stacked along the batch dimension and each
    row block gets its fault where the site outputs it (after the golden prefix, computed once
    per image batch, when the network is one ``nn.Sequential``). Same fault space, order,
    columns, manifest and store.

    Args:
        model: a fatlib CNV or DoReFaAlexNet (its own device is used unless ``device`` is given).
        data: a Dataset of ``(image, label)`` or a tuple ``(images, labels)``; images in [0, 1]
            (else ValueError: divide uint8 images by 255), of the shape the model needs (CNV:
            3×32×32), labels in ``[0, model.num_classes)``.
            The generic runner reads a long Dataset with ``fingerprint()``
            (:class:`fatlib.core.data.ImageFolderDataset`) batch by batch instead of holding it.
        pattern: ``"channel"`` or ``"pixel"`` (conv sites only; FC sites have no pixels).
        levels: stuck-at values (each must be a level of every selected site's quantizer);
            None: every level of each site (FAT §II).
        layers: activation sites 0–7 (FAT Table I numbering; 0–6 for DoReFa-AlexNet); None: all
            (for ``"pixel"``: the conv sites whose map has more than one position).
        batch_size: images per golden batch (default 100; part of a store's identity).
        store: directory persisting results as they complete (resumable after any kill).
        shard: ``(i, n)`` or ``"i/n"``: evaluate faults ``i, i+n, i+2n, ...`` of the list.
        sample: evaluate ``sample`` faults drawn uniformly without replacement (``seed``).
        faults: explicit faults (DataFrame with the key columns, or tuples) instead of all.
        memory_budget: bytes for stacked fault copies (default: half the free GPU memory, or
            256 MiB on the CPU).
        chunk_size: faults per persisted unit (default: about 4e10 MAC·images per unit).
        engine: ``"auto"`` (fast engine for CNV, generic runner otherwise), ``"fast"`` or
            ``"generic"`` (e.g. to check one against the other on a CNV).
        outcomes: also keep every fault's per-image outcome (correct or not) in
            ``DIR/outcomes.npz`` of the ``store`` (needed for it), read back with
            :func:`fatlib.fat.campaign.load_outcomes` — what a paired bootstrap over
            the test images (:mod:`fatlib.core.verdicts`) resamples. A store that has the
            results but no outcomes evaluates its faults once more.

    Returns:
        One row per fault, canonical order — ``layer``, ``channel`` | ``row``, ``col``, ``value``,
        ``correct``, ``total``, ``accuracy`` (%); ``attrs["campaign"]`` holds the manifest
        (fingerprints, population size, error-free accuracy ``error_free``, ``exact``).
    """
    check_pattern(pattern)
    shard_t = _parse_shard(shard)
    if sample is not None and (
        isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 1
    ):
        raise ValueError(f"sample={sample!r}: give a positive number of faults, or None for all")
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer")
    if chunk_size is not None and (not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1):
        raise ValueError(f"chunk_size={chunk_size!r} must be a positive integer")
    if outcomes and store is None:
        raise ValueError("outcomes=True keeps the per-image outcomes in the campaign store: pass store=DIR")
    if engine not in ("auto", "fast", "generic"):
        raise ValueError(f"engine={engine!r}: use 'auto', 'fast' (CNV only) or 'generic'")
    if store is not None:
        from fatlib.core import work

        if work.planning():  # the book on Dask (issue #15): a missing campaign is a unit to plan
            done = (Path(store) / RESULTS_FILE).is_file() and (
                not outcomes or (Path(store) / OUTCOMES_FILE).is_file()
            )
            if work.listing() or not done:
                raise work.Planned(
                    {"kind": "campaign", "stored": done, "campaign": pattern, "sample": sample}
                )
        # one process runs a stored campaign; another that wants it waits, then reads it
        with writer_lock(Path(store)):
            return _campaign(
                model,
                data,
                pattern,
                levels,
                layers,
                batch_size,
                device,
                store,
                shard_t,
                sample,
                seed,
                progress,
                faults,
                memory_budget,
                chunk_size,
                engine,
                outcomes,
            )
    return _campaign(
        model,
        data,
        pattern,
        levels,
        layers,
        batch_size,
        device,
        store,
        shard_t,
        sample,
        seed,
        progress,
        faults,
        memory_budget,
        chunk_size,
        engine,
        outcomes,
    )


def _campaign(
    model: nn.Module,
    data: Any,
    pattern: str,
    levels: Sequence[float] | None,
    layers: Sequence[int] | None,
    batch_size: int | None,
    device: str | torch.device | None,
    store: str | os.PathLike | None,
    shard_t: tuple[int, int] | None,
    sample: int | None,
    seed: int,
    progress: bool,
    faults: pd.DataFrame | Sequence[tuple] | None,
    memory_budget: int | None,
    chunk_size: int | None,
    engine: str,
    outcomes: bool,
) -> pd.DataFrame:
    from fatlib.core.models import CNV

    model, dev = prepare_model(model, device)
    if engine == "fast" and not isinstance(model, CNV):
        raise ValueError(f"engine='fast' needs a CNV; {type(model).__name__} runs on engine='generic'")
    generic = engine == "generic" or not isinstance(model, CNV)
    src = ImageSource(data, lazy_ok=generic)
    check_image_shape(model, src.image_shape)
    check_labels(src.all_labels(), model)
    budget = _memory_budget(dev, memory_budget)
    with eval_mode(model), torch.no_grad():
        eng: Engine | GenericRunner
        if generic:
            eng = GenericRunner(model, dev, src.image_shape)
            sites = eng.table
            cost = dict(eng.cost)
            exact = True
        else:
            eng = Engine(model, dev, src.image_shape)
            sites = site_table(eng)
            cost = {s: sum(st.macs for st in eng.stages[i + 1 :]) for s, i in eng.site_stage.items()}
            exact = not eng.float_mode
        lays = resolve_layers(sites, pattern, layers, explicit_faults=faults is not None)
        lv = resolve_levels(sites, lays, levels)
        pop = population(sites, pattern, lays, lv)
        fl = named_faults(pop, faults) if faults is not None else pop
        pop_by_layer = {int(L): int((fl.layer == L).sum()) for L in lays}
        population_size = len(fl)
        if sample is not None:
            if sample > len(fl):
                raise ValueError(f"sample={sample} exceeds the {len(fl)} faults of this campaign")
            rng = np.random.Generator(np.random.PCG64(seed))
            fl = fl.take(np.sort(rng.choice(len(fl), size=int(sample), replace=False)))
        campaign_faults = len(fl)
        if shard_t is not None:
            fl = fl.take(np.arange(shard_t[0], len(fl), shard_t[1]))
        n_img = src.n
        bs = int(batch_size or DEFAULT_BATCH_SIZE)
        batches = [(s, min(n_img, s + bs)) for s in range(0, n_img, bs)]
        chunks = _plan_chunks(fl, cost, min(bs, n_img), chunk_size)
        manifest = {
            "format": STORE_FORMAT,
            "pattern": pattern,
            "layers": lays,
            "levels": {str(L): [v for _, v in lv[L]] for L in lays},
            "sample": None if sample is None else int(sample),
            "seed": int(seed),
            "shard": None if shard_t is None else list(shard_t),
            "explicit_faults": faults is not None,
            "faults_sha256": fl.digest(),
            "n_faults": len(fl),
            "campaign_faults": campaign_faults,
            "population_size": population_size,
            "population_by_layer": pop_by_layer,
            "model_sha256": model_fingerprint(model),
            "data_sha256": src.fingerprint(),
            "n_images": int(n_img),
            "batch_size": bs,
            "chunks_sha256": hashlib.sha256(json.dumps(chunks).encode()).hexdigest(),
            "n_chunks": len(chunks),
            "exact": exact,
            "model": repr(getattr(model, "extra_repr", lambda: "")()),
            "torch": torch.__version__,
        }
        st_obj = CampaignStore(Path(store), manifest, chunks, len(batches)) if store is not None else None
        want = outcomes and not has_outcomes(Path(store), manifest) if store is not None else False
        try:
            correct, golden_correct, per_image = _run(
                eng, fl, chunks, batches, src.fetch, dev, budget, st_obj, progress, want
            )
        finally:
            if st_obj is not None:
                st_obj.close()
        if per_image is not None:
            save_outcomes(Path(store), manifest, *per_image)
    meta = dict(manifest)
    # the engine's name is part of every result's metadata: fatlib 0.1's name, kept by the move
    meta.update(
        {
            "golden_correct": int(golden_correct),
            "error_free": 100.0 * golden_correct / n_img,
            "engine": "fatlib.campaign/generic" if generic else "fatlib.campaign",
        }
    )
    df = result_frame(fl, correct, n_img, meta)
    if store is not None:
        save_results(df, Path(store) / RESULTS_FILE)
    return df


def _run(
    eng: Engine | GenericRunner,
    fl: FaultList,
    chunks: list[tuple[int, int]],
    batches: list[tuple[int, int]],
    fetch: Any,
    dev: torch.device,
    budget: int,
    store: CampaignStore | None,
    progress: bool,
    want_outcomes: bool = False,
) -> tuple[np.ndarray, int, tuple[np.ndarray, np.ndarray] | None]:
    """Evaluate every (chunk, image batch) unit the store does not hold yet — all of them when
    ``want_outcomes`` (then also the per-image outcomes: golden (n_img,), faults (n_f, n_img)
    bool; units the store already holds are checked against it)."""
    from tqdm import tqdm  # tqdm.auto warns on every page where ipywidgets is absent

    n_f = len(fl)
    per_batch = np.zeros((len(batches), n_f), dtype=np.int64)
    done = np.zeros((len(chunks), len(batches)), dtype=bool)
    stored: dict[tuple[int, int], list[int]] = {}
    if store is not None:
        stored = dict(store.done)
        for (k, b), corr in stored.items():
            s, e = chunks[k]
            per_batch[b, s:e] = corr
            done[k, b] = not want_outcomes
    n_img = batches[-1][1] if batches else 0
    golden_img = np.zeros(n_img, dtype=bool) if want_outcomes else None
    fault_img = np.zeros((n_f, n_img), dtype=bool) if want_outcomes else None
    golden_correct = 0
    total_work = sum(
        (e - s) * (batches[b][1] - batches[b][0])
        for k, (s, e) in enumerate(chunks)
        for b in range(len(batches))
        if not done[k, b]
    )
    bar = tqdm(
        total=total_work,
        unit="fault·img",
        unit_scale=True,
        disable=not progress,
        desc=f"stuck-at {fl.pattern}",
        dynamic_ncols=True,
    )
    levels_of_layer = {int(L): int(np.unique(fl.code[fl.layer == L]).size) for L in np.unique(fl.layer)}
    chunks_of_layer: dict[int, list[int]] = {}
    chunk_of = np.zeros(n_f, dtype=np.int64)
    for k, (s, e) in enumerate(chunks):
        chunks_of_layer.setdefault(int(fl.layer[s]), []).append(k)
        chunk_of[s:e] = k
    try:
        for b, (i0, i1) in enumerate(batches):
            x, y = fetch(i0, i1)
            x, y = x.to(dev), y.to(dev)
            g = eng.golden(x, y)
            golden_correct += int(g.correct.sum())
            if golden_img is not None:
                golden_img[i0:i1] = g.correct.cpu().numpy()
            for L in sorted(chunks_of_layer):
                pending = [k for k in chunks_of_layer[L] if not done[k, b]]
                if not pending:
                    continue
                idx = np.concatenate([np.arange(*chunks[k]) for k in pending])
                n_b = i1 - i0
                f_sub = max(1, budget // (eng.row_bytes(L) * n_b))
                k_lv = levels_of_layer[L]  # keep a channel's levels together
                f_sub = max(k_lv, f_sub - f_sub % k_lv)
                chunk_left = {k: chunks[k][1] - chunks[k][0] for k in pending}
                for s in range(0, len(idx), f_sub):
                    sub = idx[s : s + f_sub]
                    corr, img = _eval_faults(eng, g, fl, sub, L, want_outcomes)
                    if fault_img is not None:
                        fault_img[sub, i0:i1] = img
                    per_batch[b, sub] = corr
                    bar.update(len(sub) * n_b)
                    for k, cnt in zip(*np.unique(chunk_of[sub], return_counts=True)):
                        chunk_left[int(k)] -= int(cnt)
                        if chunk_left[int(k)] == 0:
                            done[k, b] = True
                            cs, ce = chunks[k]
                            was = stored.get((int(k), b))
                            if was is not None and was != per_batch[b, cs:ce].tolist():
                                raise RuntimeError(
                                    f"campaign store {store.path if store else ''}: unit {(int(k), b)} "
                                    "evaluated again gives other counts than recorded; the store "
                                    "does not belong to this model and data: use a new store"
                                )
                            if store is not None:
                                store.write(int(k), b, per_batch[b, cs:ce].tolist())
            del g
    finally:
        bar.close()
    assert done.all()
    per_image = None if fault_img is None else (golden_img, fault_img)
    return per_batch.sum(0), golden_correct, per_image


def _eval_faults(
    eng: Engine | GenericRunner,
    g: Golden | GenericGolden,
    fl: FaultList,
    sub: np.ndarray,
    layer: int,
    per_image: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Correct counts on one golden batch of faults ``sub`` (all of site ``layer``) and, when
    ``per_image``, each fault's outcome per image (len(sub) × images, bool)."""
    if isinstance(eng, GenericRunner):
        return eng.eval_faults(g, fl, sub, layer, per_image)
    dev = g.pred.device
    codes = torch.as_tensor(fl.code[sub], dtype=torch.float32, device=dev)
    values = torch.as_tensor(fl.value[sub], dtype=torch.float32, device=dev)
    if fl.pattern == CHANNEL:
        chans = torch.as_tensor(fl.a[sub], device=dev)
        acc = eng.first_acc_channel(g, layer, chans, codes, values)
    else:
        rows = torch.as_tensor(fl.a[sub], device=dev)
        cols = torch.as_tensor(fl.b[sub], device=dev)
        acc = eng.first_acc_pixel(g, layer, rows, cols, codes, values)
    f, n = acc.shape[0], acc.shape[1]
    acc = acc.reshape(f * n, *acc.shape[2:])
    j = eng.site_stage[layer] + 1
    rows_changed, pred = eng.suffix(j, acc, g, f)
    out = np.full(f, int(g.correct.sum()), dtype=np.int64)
    outcome = g.correct.view(1, n).repeat(f, 1) if per_image else None
    if rows_changed.numel():
        img = rows_changed % n
        now = pred == g.labels.index_select(0, img)
        delta = now.long() - g.correct.index_select(0, img).long()
        per_f = torch.zeros(f, dtype=torch.long, device=dev).index_add_(0, rows_changed // n, delta)
        out += per_f.cpu().numpy()
        if outcome is not None:
            outcome.view(-1)[rows_changed] = now
    return out, None if outcome is None else outcome.cpu().numpy()
