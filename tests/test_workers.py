"""Many workers, one study: Optuna searches on one PostgreSQL server share their trials.

Needs a server: AMC_TEST_POSTGRES=postgresql://... (``.ci/postgres.sh`` starts a throwaway one;
CI does). Skips without it on a developer's machine, fails under CI=true.
"""

import os
import subprocess
import sys
import uuid

import optuna
import pytest
from helpers import tiny_checkpoint


@pytest.fixture(scope="module")
def postgres_url():
    url = os.environ.get("AMC_TEST_POSTGRES")
    if not url:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI=true but AMC_TEST_POSTGRES is not set: .ci/run must start PostgreSQL")
        pytest.skip("AMC_TEST_POSTGRES is not set (start a server with .ci/postgres.sh)")
    return url


def test_two_workers_share_one_study_exactly(postgres_url, tiny_data, tmp_path):
    study = f"workers-{uuid.uuid4().hex[:8]}"
    total = 10
    args = [
        sys.executable,
        "-m",
        "amc.cli",
        "search",
        "--model",
        "resnet20",
        "--data",
        str(tiny_data),
        "--checkpoint",
        str(tiny_checkpoint(tmp_path)),
        "--method",
        "optuna",
        "--episodes",
        str(total),
        "--storage",
        postgres_url,
        "--study",
        study,
        "--resume",
        "--proxy-size",
        "30",
        "--calib-images",
        "20",
        "--precision",
        "fp32",
    ]
    workers = [
        subprocess.Popen(
            [*args, "--out", str(tmp_path / f"best{i}.json"), "--seed", "0"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for w in workers:
        _, err = w.communicate(timeout=600)
        assert w.returncode == 0, err
    trials = optuna.load_study(study_name=study, storage=postgres_url).get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == total
    assert len({t.number for t in complete}) == total
    assert len({t.user_attrs["worker"] for t in complete}) == 2  # both workers did some of the work
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
