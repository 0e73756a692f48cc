"""Fine-tuning as amc apply runs it: a curve per epoch, and a run stopped after an epoch (or inside
one) that continues to exactly the weights of an uninterrupted run."""

import json

import pytest
import torch

import amc.finetuning as finetuning
from amc.apply import ApplyConfig, apply_policy
from amc.errors import AmcError
from amc.pruned import load_pruned
from amc.requests import ApplyRequest, parse


def _cfg(**kw):
    return ApplyConfig(finetune_epochs=3, lr=0.05, calib_images=20, latency=False, **kw)


def _stop_after(saves, real_save):
    """A ``_save_state`` that saves, then stops the run at its ``saves``-th call."""
    calls = []

    def save_then_stop(*args, **kw):
        real_save(*args, **kw)
        calls.append(1)
        if len(calls) == saves:
            raise KeyboardInterrupt

    return save_then_stop


def test_curve_has_one_point_per_epoch(ctx, policy, tmp_path):
    metrics = apply_policy(policy, ctx.base, ctx.graph, _cfg(distill=True), tmp_path, progress=False)
    curve = json.loads((tmp_path / "curve.json").read_text())
    assert [p["epoch"] for p in curve] == [1, 2, 3]
    assert all({"heldout_acc", "test_acc", "seconds"} <= set(p) for p in curve)
    assert metrics["finetuned_test_acc"] == curve[-1]["test_acc"]
    assert metrics["curve"] == curve
    assert not (tmp_path / finetuning.STATE_FILE).exists()  # removed once the run ended


def test_interrupted_finetuning_resumes_to_the_same_weights(ctx, policy, tmp_path, monkeypatch):
    apply_policy(policy, ctx.base, ctx.graph, _cfg(), tmp_path / "whole", progress=False)
    real_save = finetuning._save_state
    monkeypatch.setattr(finetuning, "_save_state", _stop_after(2, real_save))
    with pytest.raises(KeyboardInterrupt):
        apply_policy(policy, ctx.base, ctx.graph, _cfg(), tmp_path / "stopped", progress=False)
    assert (tmp_path / "stopped" / finetuning.STATE_FILE).exists()
    assert not (tmp_path / "stopped" / "pruned.pt").exists()
    monkeypatch.setattr(finetuning, "_save_state", real_save)
    metrics = apply_policy(policy, ctx.base, ctx.graph, _cfg(), tmp_path / "stopped", progress=False)
    assert [p["epoch"] for p in metrics["curve"]] == [1, 2, 3]
    whole, _ = load_pruned(tmp_path / "whole" / "pruned.pt")
    resumed, _ = load_pruned(tmp_path / "stopped" / "pruned.pt")
    for k, v in whole.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def test_finetuning_stopped_inside_an_epoch_resumes_to_the_same_weights(ctx, tmp_path, monkeypatch):
    import copy

    from amc.training import TrainConfig

    def job(out):
        cfg = TrainConfig(epochs=2, lr=0.05, batch_size=8, schedule="cosine")
        splits = {"heldout": ctx.base.data.split("heldout")}
        return finetuning.FinetuneJob(cfg, ctx.base.data.train, ctx.base.runtime, out, {"run": 1}, splits)

    whole = copy.deepcopy(ctx.base.model)
    finetuning.run_finetune(whole, job(tmp_path / "whole"))
    monkeypatch.setattr(finetuning, "CHECKPOINT_SECONDS", 0.0)  # a checkpoint after every step
    real_save = finetuning._save_state
    monkeypatch.setattr(finetuning, "_save_state", _stop_after(3, real_save))
    with pytest.raises(KeyboardInterrupt):
        finetuning.run_finetune(copy.deepcopy(ctx.base.model), job(tmp_path / "stopped"))
    state = torch.load(tmp_path / "stopped" / finetuning.STATE_FILE, weights_only=True)
    assert (state["epoch"], state["step"], state["curve"]) == (0, 3, [])  # inside the first epoch
    assert state["seconds"] > 0  # the stopped run's time is kept, though no epoch ended
    monkeypatch.setattr(finetuning, "_save_state", real_save)
    resumed = copy.deepcopy(ctx.base.model)
    curve = finetuning.run_finetune(resumed, job(tmp_path / "stopped"))
    assert [p["epoch"] for p in curve] == [1, 2]
    assert curve[0]["seconds"] > state["seconds"]  # the wall time counts both parts of the run
    for k, v in whole.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def test_state_of_another_run_is_refused(ctx, policy, tmp_path, monkeypatch):
    def stop(*args, **kw):
        raise KeyboardInterrupt

    real_save = finetuning._save_state
    monkeypatch.setattr(finetuning, "_save_state", lambda *a, **k: (real_save(*a, **k), stop()))
    with pytest.raises(KeyboardInterrupt):
        apply_policy(policy, ctx.base, ctx.graph, _cfg(), tmp_path, progress=False)
    monkeypatch.setattr(finetuning, "_save_state", real_save)
    with pytest.raises(AmcError, match="another run.*another --out"):
        apply_policy(policy, ctx.base, ctx.graph, _cfg(distill=True), tmp_path, progress=False)


def test_recipe_sets_defaults_that_flags_override():
    req = parse(ApplyRequest, {"policy": "p.json", "recipe": "recover"})
    assert (req.finetune_epochs, req.lr, req.distill) == (20, 0.02, True)
    req = parse(ApplyRequest, {"policy": "p.json", "recipe": "recover", "finetune_epochs": "5"})
    assert (req.finetune_epochs, req.distill) == (5, True)
    assert parse(ApplyRequest, {"policy": "p.json"}).finetune_epochs == 1.0


def test_recovery_curves_keep_the_masks_and_reuse_finished_runs(ctx, tmp_path, monkeypatch):
    import amc.experiments as experiments

    rows = experiments.recovery_curves(ctx.base, ctx.graph, tmp_path, (0.0, 0.5), epochs=2, calib_images=20)
    assert sorted({(r["kind"], r["sparsity"]) for r in rows}) == [
        ("structured", 0.0), ("structured", 0.5), ("unstructured", 0.0), ("unstructured", 0.5)
    ]  # fmt: skip
    assert all(sorted(r["epoch"] for r in rows if r["kind"] == k and r["sparsity"] == s) == [0, 1, 2]
               for k in ("structured", "unstructured") for s in (0.0, 0.5))  # fmt: skip
    half = [r for r in rows if r["sparsity"] == 0.5]
    assert all(r["params_kept"] <= 0.5 + 1e-6 for r in half)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["structured-0", "structured-0.5", "unstructured-0.5"]
    # the masks held through fine-tuning: the saved curve's network is still half zeros
    assert next(r for r in half if r["kind"] == "unstructured")["params_kept"] == pytest.approx(0.5, abs=0.01)

    def no_training(*args, **kw):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(experiments, "run_finetune", no_training)
    again = experiments.recovery_curves(ctx.base, ctx.graph, tmp_path, (0.0, 0.5), epochs=2, calib_images=20)
    assert again == rows


def test_each_epoch_s_accuracies_show_on_the_progress_lines_of_a_log(ctx, tmp_path, capsys):
    """In a log (no terminal) the steady progress lines carry the last finished epoch's accuracies."""
    import copy

    from amc.training import TrainConfig

    cfg = TrainConfig(epochs=2, lr=0.05, batch_size=8, schedule="cosine")
    splits = {"heldout": ctx.base.data.split("heldout")}
    job = finetuning.FinetuneJob(cfg, ctx.base.data.train, ctx.base.runtime, tmp_path, {"run": 1}, splits)
    curve = finetuning.run_finetune(copy.deepcopy(ctx.base.model), job)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("fine-tuning:")]
    shown = f"heldout_acc={curve[0]['heldout_acc']:.2%}"
    assert shown not in lines[0] and any(shown in ln and "epoch=2" in ln for ln in lines)
