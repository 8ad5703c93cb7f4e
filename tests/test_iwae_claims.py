"""Every record of the IWAE claims can fail: a bug injected into what it checks makes it FAIL
(and it passes without the bug, at several seeds)."""
import math

import numpy as np
import pytest

from vae_np.derivations import iwae
from vae_np.objective import NegativeIWAE

RECORDS = ["iwae_bound.exact_order", "iwae_bound.limit", "iwae_bound.vae_path",
           "iwae_gradient.library", "iwae_gradient.weighted_average",
           "iwae_gradient.spurious_term"]


def run(record):
    group = iwae.iwae_bound if record.startswith("iwae_bound") else iwae.iwae_gradient
    return {r.name: r for r in group(seed=0)}[record]


def bound_without_ln_k(monkeypatch):
    """L_K computed as ln sum_k w_k, the - ln K forgotten: above ln p(x) for K > 1."""
    exact = iwae.exact_iwae
    monkeypatch.setattr(iwae, "exact_iwae", lambda q, lj, K: (exact(q, lj, K)[0] + math.log(K),
                                                             None))


def mean_instead_of_logsumexp(monkeypatch):
    """logsumexp replaced by K x mean: every L_K is the ELBO, the gap does not fall like 1/K."""
    monkeypatch.setattr(iwae, "logsumexp", lambda a, axis=None: (
        np.mean(a, axis=axis) + math.log(np.shape(a)[axis] if axis is not None else np.size(a))))


def library_without_ln_k(monkeypatch):
    forward = NegativeIWAE.forward

    def wrong(self, trace, posterior):
        forward(self, trace, posterior)
        trace.values["loss"] = trace.values["loss"] - math.log(trace.values["log_w"].shape[0])
    monkeypatch.setattr(NegativeIWAE, "forward", wrong)


def library_uniform_weights(monkeypatch):
    """The gradient with w~ = 1/K (the ELBO's) under the IWAE value."""
    backward = NegativeIWAE.backward

    def wrong(self, trace):
        backward(self, trace)
        d = trace.grads
        K, B = d["log_w"].shape
        d["log_w"] = np.full((K, B), -1 / (K * B))
        d["nll"], d["log_pz"], d["log_q"] = -d["log_w"], d["log_w"], -d["log_w"]
    monkeypatch.setattr(NegativeIWAE, "backward", wrong)


def weights_held_fixed(monkeypatch):
    """The surrogate with w~ held fixed: no spurious term, so nothing to show."""
    monkeypatch.setattr(iwae, "differentiated_weights_loss",
                        lambda model, x, eps: model.loss(x, k=eps.shape[0], eps=eps,
                                                         objective="iwae"))


CASES = [
    ("iwae_bound.exact_order", bound_without_ln_k),
    ("iwae_bound.limit", mean_instead_of_logsumexp),
    ("iwae_bound.vae_path", library_without_ln_k),
    ("iwae_gradient.library", library_uniform_weights),
    ("iwae_gradient.weighted_average", library_uniform_weights),
    ("iwae_gradient.spurious_term", weights_held_fixed),
]


def test_every_iwae_record_has_a_case():
    names = {r.name for r in iwae.iwae_bound(0) + iwae.iwae_gradient(0)}
    assert names == set(RECORDS) == {c[0] for c in CASES}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_iwae_claims_pass(seed):
    records = iwae.iwae_bound(seed) + iwae.iwae_gradient(seed)
    assert all(r.passed for r in records), [r.name for r in records if not r.passed]


@pytest.mark.parametrize("record, bug", CASES, ids=[c[0] for c in CASES])
def test_the_record_fails_under_its_bug(record, bug, monkeypatch):
    bug(monkeypatch)
    with np.errstate(all="ignore"):
        assert not run(record).passed
