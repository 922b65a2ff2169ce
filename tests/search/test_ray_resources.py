"""RayBackend refuses, in one line, a trial that the local Ray instance it starts could never
run, and shuts that instance down. (A module of its own: it needs Ray not yet initialised, and
tests/search/test_backends.py keeps one for its module.)"""

from __future__ import annotations

import pytest

from search.searchers import RandomSearcher
from search.study import Study


@pytest.mark.ray
def test_a_local_instance_refuses_a_trial_it_could_never_start():
    """gpus_per_trial=1 on a machine without GPUs: one line instead of a silent wait, and the
    Ray instance it started is shut down."""
    import ray

    from search.backends import RayBackend
    from supernet.errors import SharenasError
    from supernet.spaces import build_space

    assert not ray.is_initialized()  # else RayBackend uses that instance, which it did not start
    study = Study(RandomSearcher(build_space("nb201"), seed=0, n_trials=2))
    with pytest.raises(SharenasError) as err:
        RayBackend(gpus_per_trial=1, progress=False).run(study, lambda arch: {})
    assert str(err.value) == (
        "backend.gpus_per_trial=1 but the Ray cluster has 0 GPUs in all: no trial could start"
    )
    assert not ray.is_initialized() and study.n_used() == 0
