"""Shared test configuration: hypothesis profiles, the location of the real data sets, and the
fault tests' fixtures.

Hypothesis profiles
-------------------
``fast`` (default) keeps the whole suite to a few minutes on 2 cores; ``thorough`` draws many more
examples. Select with ``VAE_NP_HYPOTHESIS_PROFILE=thorough python -m pytest``.

Real data
---------
``../shared/data`` (beside the repository) holds MNIST, binarized MNIST and Frey Face. Users do not
have it, so a test that needs it skips with a reason in a user's clone, but fails under ``CI=true``
so that CI always runs it. ``VAE_NP_SHARED_DATA`` overrides the location.

Fault tests
-----------
``ref`` (the uninterrupted reference run, made once per session) and ``fast_sprites`` are used by
several ``tests/runs/test_faults_*.py`` files, so they live here.
"""
import functools
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from _fault_helpers import reference_run

settings.register_profile(
    "fast", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("VAE_NP_HYPOTHESIS_PROFILE", "fast"))

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VAE_NP_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ``../shared/data``; skip (user clone) or fail (CI) when it is absent."""
    if not (SHARED_DATA / "SHA256SUMS").is_file():
        message = f"real data not found at {SHARED_DATA} (set VAE_NP_SHARED_DATA to point at it)"
        if IN_CI:
            pytest.fail(message + "; under CI=true this test must run")
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture(scope="session")
def ref(tmp_path_factory):
    """The fault tests' uninterrupted reference run (``_fault_helpers.reference_run``), made once
    per session; tests read it and copy its files, never change it."""
    return reference_run(tmp_path_factory.mktemp("reference"))


@functools.lru_cache(maxsize=None)
def _sprites():
    from vae_np.data.registry import load_dataset
    return load_dataset("sprites", None, download=False, progress=False)


def _cached_load_dataset(name, data_dir=None, **kwargs):
    from vae_np.data.registry import load_dataset
    return _sprites() if name == "sprites" else load_dataset(name, data_dir, **kwargs)


@pytest.fixture
def fast_sprites(monkeypatch):
    """In-process commands load sprites many times: generate it once (the same data each time)."""
    from vae_np import data
    monkeypatch.setattr(data, "load_dataset", _cached_load_dataset)
