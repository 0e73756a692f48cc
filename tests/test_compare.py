import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import tiny_checkpoint

from amc.compare import CompareConfig, run_compare
from amc.proxy import ProxyConfig
from amc.runtime import Runtime
from amc.search.context import SearchSettings


def test_compare_writes_tables_and_plots_and_resumes(tiny_data, tmp_path):
    settings = SearchSettings(
        model="resnet20",
        data=str(tiny_data),
        checkpoint=str(tiny_checkpoint(tmp_path)),
        proxy=ProxyConfig(size=30, calib_images=20),
        allow_train=False,
    )
    cfg = CompareConfig(
        budgets=(("macs", 0.5), ("macs", 0.7)),
        methods=("uniform", "global", "optuna", "ddpg"),
        episodes=3,
        warmup=1,
        latency_seconds=0.05,
        calib_images=20,
        runtimes=("onnxruntime",),
    )
    rt = Runtime.create("cpu", "fp32")
    rows = run_compare(settings, rt, cfg, tmp_path / "out", runs_dir=tmp_path / "runs", progress=False)
    assert len(rows) == 8
    assert all(r["macs_ratio"] <= r["target"] + 1e-9 for r in rows)
    # each budget gets its own policies (they were once reused across targets)
    uniform = {r["target"]: r["macs_ratio"] for r in rows if r["method"] == "uniform"}
    assert uniform[0.7] > uniform[0.5] + 0.1
    assert all(r["target"] - 0.05 <= r["macs_ratio"] for r in rows if r["method"] in ("uniform", "global"))
    for name in (
        "results.csv",
        "results.json",
        "pareto-test_acc-vs-macs_ratio.png",
        "pareto-test_acc-vs-latency_b64_ms.png",
        "pareto-test_acc-vs-latency_onnxruntime_b1_ms.png",
        "pareto-test_acc-vs-latency_onnxruntime_b64_ms.png",
        "sparsity-0.5.png",
        "search-0.7.png",
    ):
        assert (tmp_path / "out" / name).stat().st_size > 0, name
    assert all(r["latency_onnxruntime_b64_ms"] > r["latency_onnxruntime_b1_ms"] > 0 for r in rows)
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "| uniform | 0.5 |" in readme and "onnxruntime b1 ms" in readme and "onnxruntime b1 " in readme.split("|")[0]
    again = run_compare(settings, rt, cfg, tmp_path / "out", runs_dir=tmp_path / "runs", progress=False)
    assert [r["test_acc"] for r in again] == [r["test_acc"] for r in rows]  # reused, not recomputed


def test_compare_cli_on_resnet20_cifar10_jpeg(shared, tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "amc.cli",
            "compare",
            "--model",
            "resnet20",
            "--checkpoint",
            str(shared.zoo("resnet20")),
            "--data",
            str(shared.small),
            "--flops",
            "0.5",
            "0.7",
            "--methods",
            "uniform",
            "global",
            "optuna",
            "ddpg",
            "--episodes",
            "4",
            "--warmup",
            "2",
            "--proxy-size",
            "200",
            "--calib-images",
            "100",
            "--measure-calib-images",
            "100",
            "--latency-seconds",
            "0.05",
            "--runtimes",
            "onnxruntime",
            "torch-fp32",
            "--out",
            str(tmp_path / "cmp"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "cmp" / "results.json").read_text())
    assert {(x["method"], x["target"]) for x in rows} == {
        (m, t) for m in ("uniform", "global", "optuna", "ddpg") for t in (0.5, 0.7)
    }
    assert (tmp_path / "cmp" / "pareto-test_acc-vs-params_ratio.png").exists()
    assert (tmp_path / "cmp" / "pareto-test_acc-vs-latency_torch-fp32_b64_ms.png").exists()
    assert all(x["latency_onnxruntime_b1_ms"] > 0 and "latency_torch-bf16_b1_ms" not in x for x in rows)
    assert "uniform" in r.stdout
    readme = (tmp_path / "cmp" / "README.md").read_text()
    assert "Made by `amc compare --model resnet20" in readme and "![sparsity-0.5.png](sparsity-0.5.png)" in readme
    assert readme.count("| ddpg |") == 2


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--runtimes", "tensorrt"], "unknown runtime 'tensorrt': use some of torch-fp32"),
        (["--params", "0.5", "2"], "--params: every target must be in (0, 1]"),
        (["--criterion", "l7"], "--criterion: unknown criterion 'l7': use one of l1"),
    ],
)
def test_compare_refuses_bad_options_in_one_line(args, fragment, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "amc", "compare", "--model", "resnet20", *args, "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert fragment in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_compare_sweeps_parameter_and_macs_budgets_in_one_run(tiny_data, tmp_path):
    from dataclasses import replace

    settings = SearchSettings(
        model="resnet20",
        data=str(tiny_data),
        checkpoint=str(tiny_checkpoint(tmp_path)),
        proxy=ProxyConfig(size=30, calib_images=20),
        allow_train=False,
        kind="params",
    )
    cfg = CompareConfig(
        budgets=(("params", 0.4), ("macs", 0.6)), methods=("uniform", "global"), latency_seconds=0.01,
        calib_images=20, runtimes=(),
    )  # fmt: skip
    rows = run_compare(replace(settings, target=0.4), Runtime.create("cpu", "fp32"), cfg, tmp_path / "out",
                       runs_dir=tmp_path / "runs", progress=False)  # fmt: skip
    params = [r for r in rows if r["kind"] == "params"]
    macs = [r for r in rows if r["kind"] == "macs"]
    assert len(params) == len(macs) == 2
    assert all(0.35 <= r["params_ratio"] <= 0.4 + 1e-9 and r["macs_ratio"] > 0.4 for r in params)
    assert all(0.55 <= r["macs_ratio"] <= 0.6 + 1e-9 for r in macs)
    out = tmp_path / "out"
    assert (out / "sparsity-params-0.4.png").exists() and (out / "sparsity-0.6.png").exists()
    assert (out / "policies" / "uniform-params-0.4.json").exists() and (out / "policies" / "global-0.6.json").exists()
    readme = (out / "README.md").read_text()
    assert "several MACs and parameters budgets" in readme and "| budget |" in readme
    assert "| uniform | parameters 0.4 |" in readme and "| uniform | MACs 0.6 |" in readme


def test_compare_request_sweeps_the_budgets_given():
    from amc.requests import CompareRequest

    assert CompareRequest(model="resnet20", params=[0.2, 0.8]).budgets == [("params", 0.2), ("params", 0.8)]
    assert CompareRequest(model="resnet20").budgets == [("macs", 0.3), ("macs", 0.5), ("macs", 0.7)]
    both = CompareRequest(model="resnet20", params=[0.4], flops=[0.5])
    assert both.budgets == [("macs", 0.5), ("params", 0.4)]


def test_frontiers_are_drawn_side_by_side_against_the_compression_ratio(tmp_path, monkeypatch):
    import amc.report as report

    drawn = {}

    def save(fig, path):
        drawn["panels"] = [(ax.get_title(), [tuple(line.get_xdata()) for line in ax.get_lines()]) for ax in fig.axes]
        drawn["xlabel"] = fig.get_supxlabel()
        return path

    monkeypatch.setattr(report, "_save", save)
    rows = [{"method": "uniform", "params_ratio": 0.5, "test_acc": 0.8},
            {"method": "uniform", "params_ratio": 0.25, "test_acc": 0.6},
            {"method": "ddpg", "params_ratio": 0.5, "test_acc": None}]  # fmt: skip
    report.frontiers_plot({"resnet18": rows, "vgg19": rows[:1]}, "params_ratio", "test_acc", tmp_path / "f.png")
    (t1, lines1), (t2, lines2) = drawn["panels"]
    assert (t1, t2) == ("resnet18", "vgg19") and "compression ratio (parameters" in drawn["xlabel"]
    assert lines1 == [(2.0, 4.0)] and lines2 == [(2.0,)]  # 1 / kept fraction, sorted; rows without accuracy left out


def test_compare_runs_its_searchers_with_the_preset_amc_search_would(monkeypatch, tmp_path):
    import amc.compare
    from amc.jobs import run_compare as run_compare_request
    from amc.requests import CompareRequest, parse
    from amc.search.runner import SearchRun

    seen = {}
    monkeypatch.setattr(amc.compare, "run_compare", lambda s, rt, cfg, out, **kw: seen.update(cfg=cfg, settings=s))
    req = parse(CompareRequest, {"model": "resnet20", "preset": "reference", "out": str(tmp_path)})
    run_compare_request(req)
    run = SearchRun("ddpg", **seen["cfg"].search)
    assert run.projection == "spread" and run.reference == ("uniform", "global", "sensitivity")
    assert (run.sigma, run.sigma_decay, seen["settings"].proxy.size) == (1.0, 0.95, 1000)  # the preset's proxy too
    assert seen["settings"].proxy.criterion == "l1"  # and the criterion it was measured with
    run_compare_request(parse(CompareRequest, {"model": "resnet20", "out": str(tmp_path)}))
    assert SearchRun("ddpg", **seen["cfg"].search) == SearchRun("ddpg")
    assert (seen["settings"].proxy.size, seen["settings"].proxy.criterion) == (500, "group-l1")


def test_compare_refuses_to_add_rows_made_with_another_criterion(tiny_data, tmp_path):
    from dataclasses import replace

    from amc.errors import AmcError

    settings = SearchSettings(
        model="resnet20",
        data=str(tiny_data),
        checkpoint=str(tiny_checkpoint(tmp_path)),
        proxy=ProxyConfig(size=30, calib_images=20, criterion="l1"),
        allow_train=False,
    )
    cfg = CompareConfig(budgets=(("macs", 0.5),), methods=("uniform",), latency_seconds=0.01, calib_images=20,
                        runtimes=())  # fmt: skip
    rt, out = Runtime.create("cpu", "fp32"), tmp_path / "out"
    rows = run_compare(settings, rt, cfg, out, runs_dir=tmp_path / "runs", progress=False)
    other = replace(settings, proxy=replace(settings.proxy, criterion="group-l1"))
    with pytest.raises(AmcError, match="made with criterion 'l1' \\(now 'group-l1'\\)"):
        run_compare(other, rt, cfg, out, runs_dir=tmp_path / "runs", progress=False)
    assert json.loads((out / "results.json").read_text()) == rows  # untouched
    (out / "sweep.json").unlink()  # a sweep made before sweep.json: its config.json says the same
    with pytest.raises(AmcError, match="criterion"):
        run_compare(other, rt, cfg, out, runs_dir=tmp_path / "runs", progress=False)
    with pytest.raises(AmcError, match="another --storage"):  # its studies are in the first's storage
        run_compare(other, rt, cfg, tmp_path / "other", runs_dir=tmp_path / "runs", progress=False)
    fresh = run_compare(other, rt, cfg, tmp_path / "other", storage=str(tmp_path / "other.journal"),
                        runs_dir=tmp_path / "runs", progress=False)  # fmt: skip
    assert len(fresh) == 1


def test_the_three_model_page_draws_each_model_s_frontier_study(tmp_path):
    rows = [
        {"method": m, "kind": k, "target": t, "macs_ratio": t, "params_ratio": t * 0.9, "test_acc": 0.5 + t / 3,
         "ft_test_acc": 0.7 + t / 5}
        for m in ("uniform", "global") for k in ("macs", "params") for t in (0.2, 0.5, 0.8)
    ]  # fmt: skip
    for model in ("vgg19", "resnet18"):
        (tmp_path / "exp" / f"{model}-frontier").mkdir(parents=True)
        (tmp_path / "exp" / f"{model}-frontier" / "results.json").write_text(json.dumps(rows))
    (tmp_path / "exp" / "vgg19-frontier" / "config.json").write_text(json.dumps({"base": {"test_acc": 0.85}}))
    (tmp_path / "exp" / "vgg19-frontier" / "sweep.json").write_text(json.dumps({"criterion": "l1", "residual": True}))
    script = Path(__file__).parent.parent / "bench" / "frontiers.py"
    run = [sys.executable, str(script), "--experiments", str(tmp_path / "exp"), "--out", str(tmp_path / "page")]
    done = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "page" / "README.md").read_text()
    assert (tmp_path / "page" / "frontiers-macs.png").stat().st_size > 0
    assert (tmp_path / "page" / "frontiers-params.png").stat().st_size > 0
    vgg = "**vgg19** (unpruned: 85.00% test; criterion l1; residual-coupled channels pruned too (`--residual`)):"
    assert vgg in page and "**resnet18**:" in page and "mobilenetv2" not in page
    assert "| 0.5 | 80.00% (66.67%), x2.00 | 80.00% (66.67%), x2.00 |" in page
    empty = subprocess.run([*run[:3], str(tmp_path / "none"), *run[4:]], capture_output=True, text=True, timeout=120)
    assert empty.returncode != 0 and "no MODEL-frontier study" in empty.stderr


def test_compare_prunes_residual_channels_when_asked(tiny_data, tmp_path):
    from amc.errors import AmcError
    from amc.jobs import run_compare as run_compare_request
    from amc.requests import CompareRequest, parse

    values = {"model": "resnet20", "data": str(tiny_data), "checkpoint": str(tiny_checkpoint(tmp_path)),
              "flops": [0.5], "methods": ["uniform"], "out": str(tmp_path / "out"), "residual": True}  # fmt: skip
    req = parse(CompareRequest, values)
    assert req.residual and not parse(CompareRequest, {**values, "residual": False}).residual
    with pytest.raises(AmcError, match="--residual is not supported on resnet20"):  # reached the unit graph
        run_compare_request(req)
    assert not (tmp_path / "out" / "results.json").exists()


def test_an_unreachable_budget_fails_before_anything_is_written(tiny_data, tmp_path):
    from amc.errors import AmcError

    settings = SearchSettings(model="resnet20", data=str(tiny_data), checkpoint=str(tiny_checkpoint(tmp_path)),
                              proxy=ProxyConfig(size=30, calib_images=20), allow_train=False)  # fmt: skip
    cfg = CompareConfig(budgets=(("macs", 0.5), ("macs", 0.02)), methods=("uniform",), calib_images=20, runtimes=())
    with pytest.raises(AmcError, match="macs target 0.02 is unreachable"):
        run_compare(settings, Runtime.create("cpu", "fp32"), cfg, tmp_path / "out", runs_dir=tmp_path / "runs",
                    progress=False)  # fmt: skip
    assert not (tmp_path / "out").exists()  # no sweep.json that would refuse the corrected command


def test_a_finished_sweep_resumes_from_its_folder_when_the_study_storage_is_gone(
    tiny_data, tmp_path, monkeypatch, capsys
):
    import shutil

    import amc.compare

    settings = SearchSettings(model="resnet20", data=str(tiny_data), checkpoint=str(tiny_checkpoint(tmp_path)),
                              proxy=ProxyConfig(size=30, calib_images=20), allow_train=False)  # fmt: skip
    cfg = CompareConfig(budgets=(("macs", 0.5),), methods=("uniform", "ddpg"), episodes=3, warmup=1,
                        latency_seconds=0.02, calib_images=20, runtimes=())  # fmt: skip
    rt, out = Runtime.create("cpu", "fp32"), tmp_path / "out"
    rows = run_compare(settings, rt, cfg, out, runs_dir=tmp_path / "runs", progress=False)
    saved = {p.name: p.read_bytes() for p in (out / "policies").glob("*.json")}
    shutil.rmtree(tmp_path / "runs")  # the journal of the searches is lost; the sweep's folder is not
    searched: list[str] = []
    real = amc.compare.run_search
    monkeypatch.setattr(amc.compare, "run_search", lambda ctx, run: searched.append(run.method) or real(ctx, run))
    capsys.readouterr()
    again = run_compare(settings, rt, cfg, out, runs_dir=tmp_path / "runs", progress=True)
    log = capsys.readouterr().err  # not a terminal: a line per run, naming it
    assert "compare: 1/2 run" in log and "last=uniform@0.5" in log and "compare: 2/2 run" in log, log
    assert searched == [] and again == rows  # the measured policies are read back, not searched again
    assert {p.name: p.read_bytes() for p in (out / "policies").glob("*.json")} == saved
    assert (out / "search-0.5.png").stat().st_size > 0  # the search's plot is kept

    # rows measured on another machine keep their accuracies and have their latencies taken again here
    elsewhere = [r | {"machine": "another CPU", "latency_b1_ms": -1.0} for r in rows]
    (out / "results.json").write_text(json.dumps([elsewhere[0], rows[1]]))
    here = run_compare(settings, rt, cfg, out, runs_dir=tmp_path / "runs", progress=False)
    assert searched == [] and here[1] == rows[1] and here[0]["machine"] == rows[0]["machine"]
    assert here[0]["latency_b1_ms"] > 0 and here[0]["test_acc"] == rows[0]["test_acc"]
    assert f"all taken on {rows[0]['machine']}" in (out / "README.md").read_text()

    ddpg = out / "policies" / "ddpg-0.5.json"  # a file that is not this budget's policy is searched again
    ddpg.write_text(ddpg.read_text().replace('"target": 0.5', '"target": 0.7'))
    run_compare(settings, rt, cfg, out, runs_dir=tmp_path / "runs", progress=False)
    assert searched == ["ddpg"] and '"target": 0.5' in ddpg.read_text()


def test_remeasure_latency_retakes_every_row_and_resumes_after_a_stop(tiny_data, tmp_path, monkeypatch):
    import amc.compare

    settings = SearchSettings(model="resnet20", data=str(tiny_data), checkpoint=str(tiny_checkpoint(tmp_path)),
                              proxy=ProxyConfig(size=30, calib_images=20), allow_train=False)  # fmt: skip
    cfg = CompareConfig(budgets=(("macs", 0.5),), methods=("uniform", "global"), latency_seconds=0.02,
                        calib_images=20, runtimes=())  # fmt: skip
    rt, out = Runtime.create("cpu", "fp32"), tmp_path / "out"
    rows = run_compare(settings, rt, cfg, out, runs_dir=tmp_path / "runs", progress=False)
    taken: list[int] = []  # one entry per network timed: the unpruned base first, then each re-measured row
    real = amc.compare.latencies

    def timed(*args: Any, **kwargs: Any) -> dict[str, Any]:
        taken.append(1)
        if stop_at == len(taken):
            raise KeyboardInterrupt
        return real(*args, **kwargs) | {"latency_b1_ms": 1000.0 + len(taken)}

    monkeypatch.setattr(amc.compare, "latencies", timed)
    stop_at = 3  # stopped while re-measuring the second row
    with pytest.raises(KeyboardInterrupt):
        run_compare(settings, rt, replace(cfg, remeasure_latency=True), out, runs_dir=tmp_path / "runs", progress=False)
    assert json.loads((out / "sweep.json").read_text())["remeasuring"] is True
    taken.clear()
    stop_at = 0
    again = run_compare(settings, rt, replace(cfg, remeasure_latency=True), out, runs_dir=tmp_path / "runs",
                        progress=False)  # fmt: skip
    assert len(taken) == 2  # the base and the row the stop left; the first row is not timed a third time
    assert [r["latency_b1_ms"] for r in again] == [1002.0, 1002.0]  # both re-taken, in the two runs
    assert [r["test_acc"] for r in again] == [r["test_acc"] for r in rows]  # accuracies kept
    assert "remeasuring" not in json.loads((out / "sweep.json").read_text())
    taken.clear()
    run_compare(settings, rt, cfg, out, runs_dir=tmp_path / "runs", progress=False)
    assert len(taken) == 1  # without the flag, only the unpruned base is timed
