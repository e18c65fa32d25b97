"""Verdicts with uncertainty (fatlib.core.verdicts): the decision table, the paired bootstrap,
seeds, claims over several networks, and per-image outcomes kept by the campaign."""

import numpy as np
import pytest

from fatlib.core import verdicts as V


def _est(value, sd, seed=0):
    rng = np.random.default_rng(seed)
    return V.Estimate(value, value + sd * rng.standard_normal(V.REPLICATES), "test")


@pytest.mark.parametrize(
    "value, sd, relation, tol, verdict",
    [
        (3.0, 1.0, ">", 0, "holds"),
        (-3.0, 1.0, ">", 0, "does not hold"),
        (0.5, 1.0, ">", 0, "inconclusive"),
        (-3.0, 1.0, "<", 0, "holds"),
        (3.0, 1.0, "<", 0, "does not hold"),
        (-0.5, 0.1, ">=", 1.0, "holds"),
        (-3.0, 0.5, ">=", 1.0, "does not hold"),
        (-1.0, 0.5, ">=", 1.0, "inconclusive"),
        (0.5, 0.1, "<=", 1.0, "holds"),
        (3.0, 0.5, "<=", 1.0, "does not hold"),
        (0.2, 0.1, "~", 1.0, "holds"),
        (3.0, 0.5, "~", 1.0, "does not hold"),
        (-3.0, 0.5, "~", 1.0, "does not hold"),
        (0.8, 0.5, "~", 1.0, "inconclusive"),
    ],
)
def test_decision_table(value, sd, relation, tol, verdict):
    assert V.decide(_est(value, sd), relation, tol) == verdict


def test_exact_unknown_and_not_run():
    assert V.decide(V.Estimate(0.1), ">") == "holds"  # exact: no interval
    assert V.decide(V.Estimate(0.0), ">") == "does not hold"
    one = V.seed_estimate([5.0])  # one seed: spread unknown
    assert one.interval() == (-np.inf, np.inf) and V.decide(one, ">") == "inconclusive"
    assert V.decide(None, ">") == "not run"
    assert V.compare("c", "p", None, ">").verdict == "not run"
    with pytest.raises(ValueError, match="relation"):
        V.decide(V.Estimate(1.0), "!=")
    with pytest.raises(ValueError, match="tolerance"):
        V.decide(V.Estimate(1.0), "~", -1.0)


def test_seed_estimate_is_students_t():
    e = V.seed_estimate([1.0, 2.0, 3.0])
    lo, hi = e.interval()
    assert e.value == 2.0
    assert lo == pytest.approx(2 - 4.303 / np.sqrt(3), abs=1e-3) and hi == pytest.approx(
        2 + 4.303 / np.sqrt(3), abs=1e-3
    )


def test_image_weights_pair_networks_on_the_same_images():
    w1, w2 = V.image_weights(50, key="abc"), V.image_weights(50, key="abc")
    assert np.array_equal(w1, w2) and (w1.sum(axis=1) == 50).all()
    assert not np.array_equal(w1, V.image_weights(50, key="other"))
    rng = np.random.default_rng(0)
    a = rng.random(400) < 0.6
    b = a.copy()
    b[:8] = True  # b is a plus a handful of images: paired, the difference is nearly exact
    w = V.image_weights(400, key="k")
    d = V.accuracy_estimate(b, w) - V.accuracy_estimate(a, w)
    lo, hi = d.interval()
    assert d.value == pytest.approx(100 * (b.mean() - a.mean())) and -1e-9 <= lo <= hi < 2 * d.value + 1e-9
    unpaired = V.accuracy_estimate(b, w) - V.accuracy_estimate(a, V.image_weights(400, key="x"))
    assert np.diff(unpaired.interval())[0] > 5 * np.diff(d.interval())[0]


def test_campaign_estimates_and_the_basic_interval():
    rng = np.random.default_rng(1)
    golden = rng.random(1000) < 0.8
    faults = np.stack([rng.random(1000) < a for a in (0.2, 0.5, 0.5, 0.79)])
    est = V.campaign_estimates(golden, faults, V.image_weights(1000, key=1))
    acc = 100 * faults.mean(axis=1)
    assert est["min"].value == acc.min() and est["variance"].value == pytest.approx(acc.var())
    lo, hi = est["min"].interval()
    assert lo < acc.min() < hi and hi - lo < 8  # about ±1.96 × 1.3 pp
    with pytest.raises(ValueError, match="same images"):
        V.campaign_estimates(golden[:10], faults, V.image_weights(1000))


def test_seed_mean_resamples_seeds():
    spread = [_est(v, 0.1, seed=i) for i, v in enumerate((10.0, 20.0, 30.0))]
    m = V.seed_mean(spread, key="x")
    assert m.value == 20.0 and m.interval()[1] - m.interval()[0] > 10  # the seeds' spread dominates
    assert V.seed_mean(spread[:1]) is spread[0]


def test_every_most_and_synthetic_rows():
    h = V.compare("a", "", _est(3, 0.5), ">", evidence="a")
    n = V.compare("b", "", _est(-3, 0.5), ">", evidence="b")
    i = V.compare("c", "", _est(0.2, 0.5), ">", evidence="c")
    nr = V.not_run("d", "", "no data")
    assert V.every("all", "", [h, h, nr]).verdict == "holds"
    assert V.every("all", "", [h, i]).verdict == "inconclusive"
    assert V.every("all", "", [h, i, n]).verdict == "does not hold"
    assert V.every("all", "", [nr]).verdict == "not run"
    assert V.most("most", "", [h, h, n]).verdict == "holds"
    assert V.most("most", "", [h, n, n]).verdict == "does not hold"
    assert V.most("most", "", [h, i, n]).verdict == "inconclusive"
    syn = V.compare("s", "", _est(-3, 0.5), ">", evidence="s", synthetic=True)
    assert V.every("all", "", [h, syn]).verdict == "holds"  # a synthetic row never counts beside real ones
    assert V.every("all", "", [syn]).synthetic


def test_claims_table_and_counts():
    t = V.claims_table(
        [
            V.compare("a", "Fig. 1", _est(3, 0.5), ">", evidence="a"),
            V.compare("b", "Fig. 2", None, ">"),
            V.compare("o", "", _est(3, 0.5), ">", kind="observation"),
            V.compare("s", "", _est(3, 0.5), ">", synthetic=True),
            ("old", False, "exact"),
        ]
    )
    assert list(t.columns) == V.CLAIM_COLUMNS
    assert t.loc[0, "ours"].startswith("+3") and "[" in t.loc[0, "ours"] and t.loc[1, "ours"] == "–"
    assert V.verdict_counts(t) == {"holds": 1, "does not hold": 1, "inconclusive": 0, "not run": 1}


def test_campaign_keeps_per_image_outcomes(tmp_path):
    """Per-image outcomes of the fast engine equal the generic runner's (which runs the model
    itself), add up to the campaign's counts, and are added to a store that lacks them."""
    import torch

    from fatlib.fat.campaign import load_outcomes, stuck_at_campaign
    from tests.unit.helpers import randomized_cnv

    torch.manual_seed(0)
    m = randomized_cnv(1, 2)
    x, y = torch.rand(70, 3, 32, 32), torch.randint(0, 10, (70,))
    kw = dict(progress=False, batch_size=32, sample=30, seed=1)
    for pattern in ("channel", "pixel"):
        fast = stuck_at_campaign(
            m, (x, y), pattern=pattern, store=tmp_path / f"{pattern}-f", outcomes=True, **kw
        )
        o = load_outcomes(tmp_path / f"{pattern}-f")
        stuck_at_campaign(
            m, (x, y), pattern=pattern, store=tmp_path / f"{pattern}-g", outcomes=True, engine="generic", **kw
        )
        g = load_outcomes(tmp_path / f"{pattern}-g")
        assert np.array_equal(o.faults, g.faults) and np.array_equal(o.golden, g.golden)
        assert (o.faults.sum(axis=1) == fast["correct"].to_numpy()).all()
    later = tmp_path / "later"
    stuck_at_campaign(m, (x, y), store=later, **kw)
    with pytest.raises(FileNotFoundError, match="outcomes=True"):
        load_outcomes(later)
    again = stuck_at_campaign(m, (x, y), store=later, outcomes=True, **kw)
    assert (load_outcomes(later).faults.sum(axis=1) == again["correct"].to_numpy()).all()
    with pytest.raises(ValueError, match="store=DIR"):
        stuck_at_campaign(m, (x, y), outcomes=True, **kw)
