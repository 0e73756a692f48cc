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
            "cfg = CompareConfig(targets=TARGETS, methods=METHODS, episodes=EPISODES, warmup=WARMUP,\n"
            "                    finetune_epochs=FINETUNE_EPOCHS, latency_seconds=0.2 if QUICK else 1.0,\n"
            "                    calib_images=max(CALIB, 500))\n"
            "rows = run_compare(settings, Runtime.create(), cfg, OUT, runs_dir=OUT / 'runs')"
        ),
        new_code_cell(
            "import pandas as pd\npd.DataFrame(rows)[['method', 'target', 'macs_ratio', 'params_ratio', "
            "'heldout_proxy_acc', 'test_acc', 'latency_b64_ms']].sort_values(['target', 'test_acc'])"
        ),
        new_markdown_cell("Accuracy against MACs, parameters and measured latency (one line per method):"),
        new_code_cell(
            "for name in ('pareto-test_acc-vs-macs_ratio.png', 'pareto-test_acc-vs-params_ratio.png',\n"
            "             'pareto-test_acc-vs-latency_b64_ms.png', f'sparsity-{TARGETS[0]:g}.png', f'search-{TARGETS[0]:g}.png'):\n"
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
            "speed-up), with and without a short fine-tuning."
        ),
        new_code_cell(SETUP),
        params(
            'MODEL = "resnet20" if QUICK else "resnet56"\nSPARSITIES = (0.0, 0.4, 0.8) if QUICK else (0.0, 0.2, 0.4, 0.6, 0.8)\n'
            "FINETUNE_EPOCHS = 0.02 if QUICK else 0.5\nCALIB = 100 if QUICK else 2000"
        ),
        new_code_cell("""import copy
import numpy as np
from amc.base import open_base
from amc.pruning import unstructured
from amc.pruning.budget import Budget
from amc.proxy import ProxyConfig, ProxyEvaluator
from amc.runtime import Runtime
from amc.search.baselines import uniform_keep
from amc.search.context import SearchContext, SearchSettings, unit_graph_for
from amc.training import TrainConfig, evaluate, train
from amc.macs import count_macs, count_params

rt = Runtime.create()
base = open_base(MODEL, DATA, None, rt)
graph = unit_graph_for(MODEL, base, False)
ev = ProxyEvaluator(base.model, graph, base.data, rt, ProxyConfig(size=10, calib_images=CALIB))
rows = []
for s in SPARSITIES:
    keep_fraction = 1.0 - s
    # structured: the uniform channel policy that keeps at most this fraction of the parameters
    if s == 0:
        structured = copy.deepcopy(base.model)
    else:
        b = Budget(graph, keep_fraction, "params", max_sparsity=0.97, check_reachable=False)
        ctx = SearchContext(None, base, graph, b, ev)
        structured = ev.build(uniform_keep(ctx))
    masked = unstructured.apply_masks(copy.deepcopy(base.model), unstructured.sparsities(base.model, keep_fraction, "global"))
    ev.recalibrated_accuracy(masked)
    for kind, net in (("structured", structured), ("unstructured", masked)):
        row = {"kind": kind, "sparsity": s, "params_kept": count_params(net) / graph.base_params if kind == "structured"
               else unstructured.nonzero_fraction(net), "macs_ratio": count_macs(net, graph.input_size) / graph.base_macs,
               "test_acc": evaluate(net, base.data.test, rt)}
        if s > 0 and FINETUNE_EPOCHS > 0:
            train(net, base.data.train, rt, TrainConfig(epochs=FINETUNE_EPOCHS, lr=0.01, schedule="cosine"))
        row["ft_test_acc"] = evaluate(net, base.data.test, rt)
        rows.append(row)
import pandas as pd
pd.DataFrame(rows)"""),
        new_code_cell("""import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(6.4, 4.2))
for kind, style in (("structured", "o-"), ("unstructured", "s--")):
    pts = [r for r in rows if r["kind"] == kind]
    ax.plot([r["sparsity"] for r in pts], [r["test_acc"] for r in pts], style, label=f"{kind}, no fine-tuning")
    ax.plot([r["sparsity"] for r in pts], [r["ft_test_acc"] for r in pts], style, alpha=0.5, label=f"{kind}, fine-tuned")
ax.set_xlabel("fraction of parameters removed"); ax.set_ylabel("test accuracy")
ax.set_title(f"{MODEL} on {base.data.name}: structured vs unstructured"); ax.grid(alpha=0.3); ax.legend(fontsize=8)
plt.show()"""),
        new_markdown_cell(
            "Unstructured pruning keeps more accuracy at the same parameter count, but its zeros run "
            "at dense speed (its MACs ratio stays 1.0); structured pruning buys real speed."
        ),
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
print("wrote notebooks")
