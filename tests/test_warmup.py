"""--warmup-noise tpe: Optuna's TPE proposes DDPG's warm-up episodes from the study's episodes."""

import numpy as np
import optuna
import pytest
from helpers import study_trials

from amc.search.runner import SearchRun, run_search
from amc.search.warmup import TPEProposer

NAMES = ["a", "b", "c", "d"]
TARGET = 0.5


def _record(study, actions):
    """A trial as the search records an episode: the actions as parameters, the reward as value."""
    value = -float(np.sum((np.asarray(actions) - TARGET) ** 2))
    dists = {n: optuna.distributions.FloatDistribution(-1.0, 1.0) for n in NAMES}
    study.add_trial(optuna.trial.create_trial(params=dict(zip(NAMES, actions)), distributions=dists, value=value))
    return -value


def test_proposals_improve_with_the_episodes_and_leave_the_study_to_the_search():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    proposer = TPEProposer(study, NAMES, seed=0)
    errors = [_record(study, proposer.propose()) for _ in range(60)]
    assert len(study.trials) == 60  # the proposer wrote nothing to the search's study
    assert np.mean(errors[-15:]) < 0.4 * np.mean(errors[:10])  # the first 10 are TPE's random start


def test_a_new_proposer_starts_from_what_the_study_holds():
    """A resumed search makes a new proposer: it proposes from every episode scored before."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    first = TPEProposer(study, NAMES, seed=0)
    for _ in range(40):
        _record(study, first.propose())
    resumed, fresh = TPEProposer(study, NAMES, seed=1), TPEProposer(optuna.create_study(), NAMES, seed=1)
    near = [float(np.sum((resumed.propose() - TARGET) ** 2)) for _ in range(5)]
    random = [float(np.sum((fresh.propose() - TARGET) ** 2)) for _ in range(5)]
    assert np.mean(near) < 0.5 * np.mean(random)


def test_ddpg_takes_the_proposals_in_its_warm_up_only_and_resumes(ctx, tmp_path, monkeypatch):
    calls = []

    def propose(self):
        calls.append(len(self.source.trials))  # what the study held when asked
        return np.full(len(self.names), 0.375)

    monkeypatch.setattr(TPEProposer, "propose", propose)
    stops = iter([False] * 4 + [True])  # stopped after 5 episodes: the reference and 4 warm-up ones
    base = dict(method="ddpg", episodes=10, warmup=6, warmup_noise="tpe", reference=("uniform",), rescore=0,
                runs_dir=tmp_path / "runs", out=tmp_path / "b.json", progress=False, study="tpe")  # fmt: skip
    run_search(ctx, SearchRun(**base, should_stop=lambda: next(stops, True)))
    assert len(study_trials(tmp_path / "runs", "tpe")) == 5 and calls == [1, 2, 3, 4]
    run_search(ctx, SearchRun(**base, resume=True))
    trials = study_trials(tmp_path / "runs", "tpe")
    assert len(trials) == 10 and calls == [1, 2, 3, 4, 5, 6]  # asked again only for the warm-up's last two
    proposed = [np.allclose(list(t.params.values()), 0.375) for t in trials]
    assert proposed == [False] + [True] * 6 + [False] * 3  # the reference, the warm-up, the agent's own


def test_tpe_warm_up_is_a_request_value_and_part_of_the_study_s_identity(ctx, tmp_path):
    from amc.errors import AmcError
    from amc.requests import SearchRequest, parse

    assert parse(SearchRequest, {"model": "resnet20", "warmup_noise": "tpe"}).warmup_noise == "tpe"
    base = dict(method="ddpg", episodes=4, warmup=2, rescore=0, reference=(), runs_dir=tmp_path / "runs",
                out=tmp_path / "b.json", progress=False, study="sigma")  # fmt: skip
    run_search(ctx, SearchRun(**base, warmup_noise="sigma"))
    with pytest.raises(AmcError, match="other settings"):
        run_search(ctx, SearchRun(**{**base, "episodes": 6, "warmup_noise": "tpe", "resume": True}))
    assert SearchRun().warmup_noise == "tpe"  # the default since session 22


def test_after_the_warm_up_every_nth_episode_is_proposed_and_resumes(ctx, tmp_path, monkeypatch):
    from amc.errors import AmcError
    from amc.requests import SearchRequest, parse

    monkeypatch.setattr(TPEProposer, "propose", lambda self: np.full(len(self.names), 0.375))
    assert parse(SearchRequest, {"model": "resnet20", "tpe_every": 2}).tpe_every == 2
    stops = iter([False] * 4 + [True])  # stopped after 5 episodes: inside the learning phase
    base = dict(method="ddpg", episodes=8, warmup=2, warmup_noise="sigma", tpe_every=2, reference=("uniform",),
                rescore=0, runs_dir=tmp_path / "runs", out=tmp_path / "b.json", progress=False,
                study="every")  # fmt: skip
    run_search(ctx, SearchRun(**base, should_stop=lambda: next(stops, True)))
    run_search(ctx, SearchRun(**base, resume=True))
    trials = study_trials(tmp_path / "runs", "every")
    proposed = [np.allclose(list(t.params.values()), 0.375) for t in trials]
    # the reference, two warm-up episodes around it, then learning episodes of which every second is proposed
    assert proposed == [False, False, False, False, True, False, True, False]
    with pytest.raises(AmcError, match="other settings"):
        run_search(ctx, SearchRun(**{**base, "episodes": 9, "tpe_every": 0, "resume": True}))
