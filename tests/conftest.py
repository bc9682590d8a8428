import numpy as np
import pytest
from hypothesis import settings

# derandomize: CI must be reproducible; run with --hypothesis-profile=explore to search.
settings.register_profile("default", deadline=None, max_examples=40, derandomize=True)
settings.register_profile("explore", deadline=None, max_examples=500)
settings.load_profile("default")


@pytest.fixture
def rng():
    return np.random.RandomState(0)


def random_spd(rng, d, scale=1.0):
    A = rng.randn(d, d)
    return scale * (A @ A.T + d * np.eye(d))
