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


@pytest.fixture(scope="session")
def client():
    """A real LocalCluster of two worker processes (one thread each), shared by the
    dask tests: started once, closed at the end of the session."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="session")
def banknote():
    """The bundled banknote data as a DataFrame with its target column 'class'."""
    pd = pytest.importorskip("pandas")
    from sklunlearn.datasets import load_banknote

    bunch = load_banknote()
    frame = pd.DataFrame(bunch.data, columns=bunch.feature_names)
    frame["class"] = bunch.target
    return frame
