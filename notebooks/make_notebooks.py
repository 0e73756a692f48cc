"""Regenerate the comparison notebooks (run from the repository root: python notebooks/make_notebooks.py).

Each notebook has a ``parameters`` cell (papermill's tag): full size by default, a tiny budget when
AMC_NOTEBOOK_QUICK=1 (what CI sets), so CI executes them in seconds with nbmake.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

SETUP = """import os
from pathlib import Path
from IPython.display import Image, display
QUICK = os.environ.get("AMC_NOTEBOOK_QUICK") == "1"
DATA = os.environ.get("AMC_DATA", "cifar10")        # an ImageFolder tree (cifar10-jpeg) or cifar10
CHECKPOINTS = os.environ.get("AMC_CHECKPOINTS")      # the zoo; without it amc trains a base"""


def params(text: str):
    cell = new_code_cell(text)
    cell.metadata["tags"] = ["parameters"]
    return cell


def write(name: str, cells) -> None:
    for i, cell in enumerate(cells):  # ids stable across regenerations: a rewrite changes only what changed
        cell["id"] = f"{Path(name).stem[:50]}-{i}"
    nb = new_notebook(
        cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    nbformat.write(nb, HERE / name)


write(
    "baselines_vs_learned.ipynb",
    [
        new_markdown_cell(
            "# Baselines vs learned policies\n\nUniform, global (normalised L1) and sensitivity "
            "policies against Optuna (TPE) and DDPG (AMC) at several MACs budgets: each policy is "
            "cut out of the network for real, BatchNorm-recalibrated and measured (accuracy, "
            "MACs, parameters, latency). Searches are stored in `runs/` and reused."
        ),
        new_code_cell(SETUP),
        params(
            'MODEL = "resnet20" if QUICK else "resnet56"\nTARGETS = (0.5,) if QUICK else (0.3, 0.5, 0.7)\n'
            'METHODS = ("uniform", "global", "ddpg") if QUICK else ("uniform", "global", "sensitivity", "optuna", "ddpg")\n'
            "EPISODES, WARMUP = (3, 1) if QUICK else (200, 50)\nPROXY_SIZE, CALIB = (200, 100) if QUICK else (1000, 500)\n"
            'FINETUNE_EPOCHS = 0.0 if QUICK else 0.5\nOUT = Path("runs/notebooks/baselines_vs_learned" + ("-quick" if QUICK else ""))'
        ),
        new_code_cell(
            "from amc.checkpoints import find_base\nfrom amc.compare import CompareConfig, run_compare\n"
            "from amc.proxy import ProxyConfig\nfrom amc.runtime import Runtime\nfrom amc.search.context import SearchSettings\n"
            "settings = SearchSettings(model=MODEL, data=DATA, proxy=ProxyConfig(size=PROXY_SIZE, calib_images=CALIB))\n"
            "cfg = CompareConfig(budgets=tuple((\"macs\", t) for t in TARGETS), methods=METHODS, episodes=EPISODES, warmup=WARMUP,\n"
            "                    finetune_epochs=FINETUNE_EPOCHS, latency_seconds=0.2 if QUICK else 1.0,\n"
            "                    calib_images=max(CALIB, 500),\n"
            "                    runtimes=('onnxruntime',) if QUICK else ('torch-fp32', 'torch-bf16', 'onnxruntime'))\n"
            "rows = run_compare(settings, Runtime.create(), cfg, OUT, runs_dir=OUT / 'runs')"
        ),
        new_code_cell(
            "import pandas as pd\npd.DataFrame(rows)[['method', 'target', 'macs_ratio', 'params_ratio', "
            "'heldout_proxy_acc', 'test_acc', 'latency_b64_ms']].sort_values(['target', 'test_acc'])"
        ),
        new_markdown_cell(
            "Accuracy against MACs, parameters and measured latency (torch, and onnxruntime at batch 1; "
            "`OUT` holds one plot per runtime and batch size), one line per method:"
        ),
        new_code_cell(
            "for name in ('pareto-test_acc-vs-macs_ratio.png', 'pareto-test_acc-vs-params_ratio.png',\n"
            "             'pareto-test_acc-vs-latency_b64_ms.png', 'pareto-test_acc-vs-latency_onnxruntime_b1_ms.png',\n"
            "             f'sparsity-{TARGETS[0]:g}.png', f'search-{TARGETS[0]:g}.png'):\n"
            "    display(Image(filename=str(OUT / name)))"
        ),
    ],
)

write(
    "structured_vs_unstructured.ipynb",
    [
        new_markdown_cell(
            "# Structured vs unstructured pruning\n\nAccuracy against the fraction of parameters "
            "removed: whole channels cut out (uniform structured: a smaller, faster network) "
            "versus individual weights zeroed (global magnitude: same shapes, no dense "
            "speed-up), with and without a short fine-tuning. The full-size run's figure and "
            "table are in `docs/experiments/` (`python bench/structured_vs_unstructured.py`)."
        ),
        new_code_cell(SETUP),
        params(
            'MODEL = "resnet20" if QUICK else "resnet56"\nSPARSITIES = (0.0, 0.4, 0.8) if QUICK else (0.0, 0.2, 0.4, 0.6, 0.8)\n'
            "FINETUNE_EPOCHS = 0.02 if QUICK else 0.3\nCALIB = 100 if QUICK else 2000"
        ),
        new_code_cell("""from amc.base import open_base
from amc.experiments import structured_vs_unstructured
from amc.runtime import Runtime
from amc.search.context import unit_graph_for
rt = Runtime.create()
base = open_base(MODEL, DATA, None, rt)
graph = unit_graph_for(MODEL, base, False)
rows = structured_vs_unstructured(base, graph, SPARSITIES, FINETUNE_EPOCHS, CALIB)
import pandas as pd
pd.DataFrame(rows)"""),
        new_code_cell("""from amc.report import accuracy_vs_sparsity_plot
out = Path("runs/notebooks/structured" + ("-quick" if QUICK else "")); out.mkdir(parents=True, exist_ok=True)
title = f"{MODEL} on {base.data.name}: structured vs unstructured ({FINETUNE_EPOCHS:g} epoch fine-tuning)"
display(Image(filename=str(accuracy_vs_sparsity_plot(rows, title, out / "accuracy-vs-sparsity.png"))))"""),
        new_markdown_cell(
            "Unstructured pruning keeps more accuracy at the same parameter count, but its zeros run "
            "at dense speed (its MACs ratio stays 1.0); structured pruning buys real speed."
        ),
    ],
)

write(
    "iterative_vs_oneshot.ipynb",
    [
        new_markdown_cell(
            "# Iterative vs one-shot pruning\n\nThe same final network (the uniform policy at a MACs "
            "budget) reached in one cut or in several, with short fine-tuning between the cuts, "
            "scoring channels by filter magnitude (L1) or by Taylor importance; every run gets the "
            "same total fine-tuning. One run of it is `amc apply POLICY --iterative 4 --criterion taylor`. "
            "The full-size run is in `docs/experiments/` (`python bench/iterative_vs_oneshot.py`)."
        ),
        new_code_cell(SETUP),
        params(
            'MODEL = "resnet20" if QUICK else "resnet56"\nTARGET = 0.5\nSTEPS = 2 if QUICK else 4\n'
            "FINETUNE_EPOCHS = 0.02 if QUICK else 0.4\nCALIB = 100 if QUICK else 2000"
        ),
        new_code_cell("""from amc.experiments import iterative_vs_oneshot
from amc.runtime import Runtime
from amc.search.baselines import uniform_keep
from amc.search.context import SearchSettings, build_context
ctx = build_context(SearchSettings(model=MODEL, data=DATA, target=TARGET), Runtime.create())
rows = iterative_vs_oneshot(ctx.base, ctx.graph, uniform_keep(ctx), STEPS, FINETUNE_EPOCHS, calib_images=CALIB)
import pandas as pd
pd.DataFrame(rows)"""),
        new_code_cell("""from amc.report import schedule_plot
out = Path("runs/notebooks/iterative" + ("-quick" if QUICK else "")); out.mkdir(parents=True, exist_ok=True)
title = f"{MODEL} on {ctx.base.data.name}: uniform policy at {TARGET:g} of MACs, {FINETUNE_EPOCHS:g} epochs in total"
display(Image(filename=str(schedule_plot(rows, title, out / "iterative-vs-oneshot.png"))))"""),
    ],
)

write(
    "search_walkthrough.ipynb",
    [
        new_markdown_cell(
            "# A walk through one AMC search\n\nThe units, the environment's observation and action "
            "bound, one scored episode, then a short DDPG search and its reward curve."
        ),
        new_code_cell(SETUP),
        params(
            'MODEL = "resnet20" if QUICK else "resnet56"\nTARGET = 0.5\nEPISODES, WARMUP = (4, 2) if QUICK else (150, 40)\n'
            "PROXY_SIZE, CALIB = (200, 100) if QUICK else (1000, 500)"
        ),
        new_code_cell("""from amc.proxy import ProxyConfig
from amc.runtime import Runtime
from amc.search.context import SearchSettings, build_context
rt = Runtime.create()
ctx = build_context(SearchSettings(model=MODEL, data=DATA, target=TARGET,
                                   proxy=ProxyConfig(size=PROXY_SIZE, calib_images=CALIB)), rt)
print(f"{len(ctx.graph.units)} units, {ctx.graph.base_macs / 1e6:.1f} M MACs, runtime {rt.precision}")
for u in ctx.graph.units[:5]:
    print(u.index, u.name, u.kind, u.channels, "channels,", u.layer.macs, "MACs")"""),
        new_code_cell("""import numpy as np
from amc.env import PruningEnv
env = PruningEnv(ctx.budget, lambda keep: ctx.proxy.evaluate(keep).accuracy)
obs, _ = env.reset(seed=0)
print("observation of unit 0:", np.round(obs, 3))
for t in range(env.n):   # an agent that asks for no pruning: the bound forces the budget anyway
    obs, reward, done, _, info = env.step(np.array([-1.0], dtype=np.float32))
print(f"MACs kept {info['macs_ratio']:.3f}, held-out proxy accuracy {info['accuracy']:.2%}, reward {reward:.4f}")
print("sparsity per unit:", np.round(info["sparsity"], 2))"""),
        new_code_cell("""from pathlib import Path
import optuna
from amc.report import search_curve_plot
from amc.search.runner import SearchRun, run_search
from amc.search import study as studies
out = Path("runs/notebooks/walkthrough" + ("-quick" if QUICK else ""))
policy = run_search(ctx, SearchRun(method="ddpg", episodes=EPISODES, warmup=WARMUP, runs_dir=out, resume=True,
                                   out=out / "best.json"))
study = optuna.load_study(study_name=policy.metrics["study"], storage=studies.open_storage(None, out))
curve = [t.value for t in studies.completed(study)]
display(Image(filename=str(search_curve_plot({"ddpg": curve}, f"{MODEL}: DDPG search at {TARGET} of MACs",
                                              out / "curve.png"))))
print(f"best held-out proxy accuracy {policy.metrics['heldout_proxy_acc']:.2%} at {policy.achieved['macs_ratio']:.3f} MACs")"""),
    ],
)

write(
    "three_model_frontiers.ipynb",
    [
        new_markdown_cell(
            "# Compression frontiers of ResNet-18, MobileNetV2 and VGG-19, side by side\n\n"
            "Accuracy against compression ratio (unpruned / pruned parameters, and MACs) for uniform, global, "
            "layer-wise sensitivity and learned (DDPG) policies, one panel per model, from the `amc compare` "
            "studies in `docs/experiments/` (their commands are in each folder's README). A model whose study "
            "is not there yet is named with the command that makes it."
        ),
        new_code_cell(SETUP),
        params('MODELS = ("resnet18", "mobilenetv2", "vgg19")\nOUT = Path("runs/notebooks/frontiers")'),
        new_code_cell("""from amc.report import frontier_studies, frontiers_plot
ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "docs" / "experiments").is_dir())
BUDGETS = "--flops 0.2 0.35 0.5 0.65 0.8 --params 0.2 0.35 0.5 0.65 0.8"
# each model's study is docs/experiments/MODEL-frontier (other studies differ in budgets or tuning)
found = frontier_studies(ROOT / "docs" / "experiments", MODELS)  # budget kind -> model -> rows of amc compare
for m in MODELS:
    missing = [k for k in ("macs", "params") if m not in found.get(k, {})]
    if missing:
        print(f"not yet measured: {m} at {' and '.join(missing)} budgets; run amc compare --model {m} {BUDGETS}"
              " --methods uniform global sensitivity ddpg --episodes 400 --warmup 100 --finetune-epochs 0.3"
              f" --out docs/experiments/{m}-frontier")
    else:
        print(f"{m}: docs/experiments/{m}-frontier")"""),
        new_code_cell(
            'OUT.mkdir(parents=True, exist_ok=True)\nfor kind, results in found.items():\n    rows = [r for rs in results.values() for r in rs]\n    y = "ft_test_acc" if any(r.get("ft_test_acc") is not None for r in rows) else "test_acc"\n    cost = "params_ratio" if kind == "params" else "macs_ratio"\n    path = frontiers_plot({m: results[m] for m in MODELS if m in results}, cost, y, OUT / f"frontiers-{kind}.png",\n                          title=f"budgets on {kind}: accuracy against compression")\n    display(Image(filename=str(path)))'
        ),
    ],
)

print("wrote notebooks")
