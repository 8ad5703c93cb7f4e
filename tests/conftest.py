"""Shared test configuration: hypothesis profiles and the location of the real data sets.

Hypothesis profiles
-------------------
``fast`` (default) keeps the whole suite to a few minutes on 2 cores; ``thorough`` draws many more
examples. Select with ``VAE_NP_HYPOTHESIS_PROFILE=thorough python -m pytest``.

Real data
---------
``../shared/data`` (beside the repository) holds MNIST, binarized MNIST and Frey Face. Users do not
have it, so a test that needs it skips with a reason in a user's clone, but fails under ``CI=true``
so that CI always runs it. ``VAE_NP_SHARED_DATA`` overrides the location.
"""
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

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
