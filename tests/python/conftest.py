import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh random generator per test; the seed is printed on failure through the test id."""
    seed = np.random.SeedSequence().entropy % (2**32)
    print(f"seed={seed}")
    return np.random.default_rng(seed)
