"""``amc compare``: every method at every budget, applied and measured, as tables and plots.

Searches are reused from the study storage (a study already holding the requested number of
policies is not searched again), and every finished (method, budget) row is saved as it is
made, so a stopped sweep resumes where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
from torch import nn

from amc.apply import policy_keep
from amc.checkpoints import atomic_write_bytes
from amc.errors import AmcError
from amc.macs import count_macs, count_params
from amc.policy import Policy, load_policy
from amc.progress import Progress
from amc.pruning.budget import Budget
from amc.pruning.build import BuildConfig, NetworkBuilder
from amc.report import MEASURE_COLUMNS, markdown_table, pareto_plot, search_curve_plot, sparsity_plot, write_rows
from amc.runtime import Runtime
from amc.search import study as studies
from amc.search.base import get_searcher
from amc.search.context import SearchContext, SearchSettings, build_context
from amc.search.runner import SearchRun, run_search
from amc.training import evaluate, finetune

__all__ = ["CompareConfig", "run_compare", "measure_network"]


@dataclass(frozen=True)
class CompareConfig:
    budgets: tuple[tuple[str, float], ...] = (("macs", 0.3), ("macs", 0.5), ("macs", 0.7))  # (kind, target)
    methods: tuple[str, ...] = ("uniform", "global", "sensitivity", "optuna", "ddpg")
    episodes: int = 100
    warmup: int = 25
    finetune_epochs: float = 0.0
    latency_seconds: float = 0.5
    remeasure_latency: bool = False  # take the finished rows' latencies again
    calib_images: int = 2000
    runtimes: tuple[str, ...] = ("torch-fp32", "torch-bf16", "onnxruntime")  # latency at batch 1 and 64 on each
    search: dict[str, Any] = field(default_factory=dict)  # SearchRun settings of a --preset (projection, ...)


def measure_network(
    net: nn.Module,
    ctx: SearchContext,
    finetune_epochs: float,
    latency_seconds: float,
    desc: str = "fine-tuning",
    runtimes: Sequence[str] = (),
) -> dict[str, Any]:
    """MACs and parameter ratios, held-out and test accuracy, the same after ``finetune_epochs`` of
    cosine fine-tuning (if > 0), and latency at batch 1 and 64 (ms) of a pruned network: on the
    job's torch runtime (``latency_b1_ms``, ...) and on each of ``runtimes``
    (``latency_onnxruntime_b1_ms``, ...)."""
    rt, data = ctx.base.runtime, ctx.base.data
    row = {
        "macs_ratio": count_macs(net, ctx.graph.input_size) / ctx.graph.base_macs,
        "params_ratio": count_params(net) / ctx.graph.base_params,
        "heldout_acc": evaluate(net, data.heldout, rt),
        "test_acc": evaluate(net, data.test, rt),
    }
    if finetune_epochs > 0:
        finetune(net, data.train, rt, finetune_epochs, desc=desc)
        row |= {"ft_heldout_acc": evaluate(net, data.heldout, rt), "ft_test_acc": evaluate(net, data.test, rt)}
    return row | latencies(net, ctx, latency_seconds, runtimes)


def latencies(net: nn.Module, ctx: SearchContext, seconds: float, runtimes: Sequence[str] = ()) -> dict[str, Any]:
    """Latency at batch 1 and 64 (ms) on the job's torch runtime and on each of ``runtimes``, and
    the ``machine`` they were taken on."""
    from amc.deploy.measure import measure_latency, runtime_latencies

    rt, size = ctx.base.runtime, ctx.graph.input_size
    row: dict[str, Any] = {f"latency_b{b}_ms": 1e3 * measure_latency(net, rt, b, size, seconds) for b in (1, 64)}
    return row | runtime_latencies(net, size, runtimes, min_time=seconds) | {"machine": rt.machine()}


def run_compare(
    settings: SearchSettings,
    runtime: Runtime,
    cfg: CompareConfig,
    out: Path,
    storage: str | None = None,
    runs_dir: Path = Path("runs"),
    progress: bool = True,
    command: str | None = None,
) -> list[dict[str, Any]]:
    """Run the sweep; write results.{csv,json}, PNG plots and a README.md (the table, the
    figures and ``command``) into ``out``; return the rows."""
    state_path = out / "results.json"
    rows: list[dict[str, Any]] = json.loads(state_path.read_text()) if state_path.exists() else []
    done = {_row_key(r) for r in rows}
    ctx = build_context(settings, runtime)
    settings = ctx.settings  # --criterion auto: the one chosen at the loosest budget, for every row
    ident = _same_sweep(out, settings, cfg)
    budgets = {(k, t): Budget(ctx.graph, t, k, settings.max_sparsity, ctx.budget.round_to) for k, t in cfg.budgets}
    out.mkdir(parents=True, exist_ok=True)  # every budget is reachable: only now is anything written
    pending = _retake_latencies(out, rows, cfg.remeasure_latency)
    marked = {**ident, "remeasuring": True} if pending else ident
    atomic_write_bytes(out / "sweep.json", json.dumps(marked, indent=2).encode())
    p = settings.proxy
    build = BuildConfig(criterion=p.criterion, calib_images=cfg.calib_images, reconstruct=p.reconstruct)
    evaluator = NetworkBuilder(ctx.base.model, ctx.graph, ctx.base.data, runtime, build)
    base = _base_row(ctx, cfg)
    policies: dict[tuple[str, float], dict[str, dict[str, float]]] = {}  # budget -> method -> per-unit sparsity
    curves: dict[tuple[str, float], dict[str, list[float]]] = {}
    # a bar on a terminal; in a log (nohup, a worker) one line per finished run, naming it
    bar = Progress(len(cfg.budgets) * len(cfg.methods), "compare", "run", enabled=progress, every_percent=0)
    for kind, target in cfg.budgets:
        tctx = SearchContext(
            replace(settings, target=target, kind=kind),  # the study name and the policy record the budget
            ctx.base,
            ctx.graph,
            budgets[(kind, target)],
            ctx.proxy,
        )
        tag = budget_tag(kind, target)
        for method in cfg.methods:
            path, key = out / "policies" / f"{method}-{tag}.json", (method, kind, target)
            policy = _finished_policy(path, tctx, method) if key in done else None
            if policy is None:
                run = SearchRun(method, cfg.episodes, cfg.warmup, storage=storage, resume=True, out=path,
                                runs_dir=runs_dir, progress=False, **cfg.search)  # fmt: skip
                policy = run_search(tctx, run)
            policies.setdefault((kind, target), {})[method] = policy.sparsity
            curve = _curve(policy.metrics["study"], storage, runs_dir) if get_searcher(method).learns else None
            if curve:
                curves.setdefault((kind, target), {})[method] = curve
            if _measure_row(rows, key, evaluator, policy, tctx, cfg):
                write_rows(rows, out)  # saved as it goes: a stopped sweep resumes here
            bar.update(1, last=f"{method}@{tag}")
    bar.close()
    if pending:  # every row's latencies are of this run now
        atomic_write_bytes(out / "sweep.json", json.dumps(ident, indent=2).encode())
    _write_outputs(out, rows, base, policies, curves, settings, cfg, ctx.base.data.name, command)
    return rows


def _same_sweep(out: Path, settings: SearchSettings, cfg: CompareConfig) -> dict[str, Any]:
    """Refuse to add to ``out`` rows made otherwise than its own (they would be reused as if
    comparable); returns how its rows are made, which the run records (``sweep.json``)."""
    p = settings.proxy
    ident = {"model": settings.model, "criterion": p.criterion, "reconstruct": p.reconstruct,
             "max_sparsity": settings.max_sparsity, "residual": settings.residual,
             "finetune_epochs": cfg.finetune_epochs, "calib_images": cfg.calib_images}  # fmt: skip
    before: dict[str, Any] = {}
    if (out / "sweep.json").is_file():
        before = json.loads((out / "sweep.json").read_text())
    elif (out / "config.json").is_file():  # a sweep made before sweep.json: its config says the same
        config = json.loads((out / "config.json").read_text())
        s, c = config.get("settings", {}), config.get("compare", {})
        before = {**{k: s.get(k) for k in ("model", "max_sparsity", "residual")},
                  **{k: s.get("proxy", {}).get(k) for k in ("criterion", "reconstruct")},
                  **{k: c.get(k) for k in ("finetune_epochs", "calib_images")}}  # fmt: skip
    diff = [f"{k} {before[k]!r} (now {v!r})" for k, v in ident.items() if before.get(k) not in (None, v)]
    if diff:
        raise AmcError(
            f"--out {out}: its rows were made with {', '.join(diff)}: use another --out, or remove it to start over"
        )
    return ident


def _retake_latencies(out: Path, rows: list[dict[str, Any]], remeasure: bool) -> bool:
    """``--remeasure-latency``: the finished rows forget the machine their latencies were taken on,
    so :func:`_measure_row` takes them again. True while that is under way: ``sweep.json`` says so,
    and the same command run again after a stop goes on with the rows not yet re-measured."""
    sweep = out / "sweep.json"
    pending = sweep.is_file() and bool(json.loads(sweep.read_text()).get("remeasuring"))
    if remeasure and not pending and rows:
        for row in rows:
            row.pop("machine", None)
        write_rows(rows, out)  # before sweep.json says it is under way
        return True
    return pending


def budget_tag(kind: str, target: float) -> str:
    """How a budget names its files: ``0.5`` for MACs (as before parameter budgets), ``params-0.5``."""
    return f"{target:g}" if kind == "macs" else f"{kind}-{target:g}"


def _write_outputs(
    out: Path,
    rows: list[dict[str, Any]],
    base: dict[str, Any],
    policies: dict[tuple[str, float], dict[str, dict[str, float]]],
    curves: dict[tuple[str, float], dict[str, list[float]]],
    settings: SearchSettings,
    cfg: CompareConfig,
    data_name: str,
    command: str | None,
) -> None:
    title = f"{settings.model} on {data_name}"
    kinds = sorted({k for k, _ in cfg.budgets})  # macs, then params
    what = " and ".join(AXIS_NAMES.get(k, k) for k in kinds)
    _write_plots(out, title, rows, base, policies, curves, cfg)
    config = {"settings": asdict(settings), "compare": asdict(cfg), "base": base}
    atomic_write_bytes(out / "config.json", json.dumps(config, indent=2, default=str).encode())
    _write_readme(out, title, rows, base, command, cfg.runtimes, what)


def _base_row(ctx: SearchContext, cfg: CompareConfig) -> dict[str, Any]:
    model = ctx.base.model
    row = {"method": "unpruned", "macs_ratio": 1.0, "params_ratio": 1.0,
           "test_acc": evaluate(model, ctx.base.data.test, ctx.base.runtime)}  # fmt: skip
    return row | latencies(model, ctx, cfg.latency_seconds, cfg.runtimes)


def _row_key(row: dict[str, Any]) -> tuple[str, str, float]:
    """(method, kind, target) of a row; rows made before parameter budgets are MACs rows."""
    return row["method"], row.get("kind", "macs"), row["target"]


def _measure_row(
    rows: list[dict[str, Any]],
    key: tuple[str, str, float],
    evaluator: NetworkBuilder,
    policy: Policy,
    ctx: SearchContext,
    cfg: CompareConfig,
) -> bool:
    """Add the row of ``key`` (method, kind, target) to ``rows``, measured; a row already there
    keeps its accuracies, and has its latencies taken again when they were taken on another
    machine (the plots set them beside this machine's). True when ``rows`` changed."""
    method, kind, target = key
    made = next((r for r in rows if _row_key(r) == key), None)
    if made is not None and made.get("machine") == ctx.base.runtime.machine():
        return False
    net = evaluator.build(policy_keep(policy, ctx.graph))
    if made is None:
        row = {
            "method": method,
            "kind": kind,
            "target": target,
            "heldout_proxy_acc": policy.metrics["heldout_proxy_acc"],
        }
        rows.append(row | measure_network(net, ctx, cfg.finetune_epochs, cfg.latency_seconds, runtimes=cfg.runtimes))
    else:
        made |= latencies(net, ctx, cfg.latency_seconds, cfg.runtimes)
    return True


def _finished_policy(path: Path, ctx: SearchContext, method: str) -> Policy | None:
    """The policy a finished row was measured with, when ``path`` holds it for this budget and these
    settings: its row is reused, so it is not searched again (the study storage may be gone, and a
    new search could return another policy than the one the row measured)."""
    if not path.is_file():
        return None
    s = ctx.settings
    try:
        policy = load_policy(path)
    except AmcError:
        return None
    b = policy.budget
    same = (policy.method, policy.model, policy.criterion, policy.residual) == (method, s.model, s.proxy.criterion,
                                                                             s.residual)  # fmt: skip
    if same and (b.get("kind"), b.get("target"), b.get("max_sparsity")) == (s.kind, s.target, s.max_sparsity):
        return policy
    return None


def _curve(study_name: str, storage: str | None, runs_dir: Path) -> list[float]:
    """The search's proxy accuracy per trial; empty when the storage no longer holds the study (its
    policy was read back from the sweep's folder), and the folder's plot of it is left as it is."""
    try:
        study = optuna.load_study(study_name=study_name, storage=studies.open_storage(storage, runs_dir))
    except KeyError:
        return []
    return [float(t.value or 0.0) for t in studies.completed(study)]


def _write_plots(
    out: Path,
    title: str,
    rows: list[dict[str, Any]],
    base: dict[str, Any],
    policies: dict[tuple[str, float], dict[str, dict[str, float]]],
    curves: dict[tuple[str, float], dict[str, list[float]]],
    cfg: CompareConfig,
) -> None:
    from amc.deploy.measure import latency_key

    xs = ["macs_ratio", "params_ratio", "latency_b64_ms"]
    xs += [latency_key(r, b) for r in cfg.runtimes for b in (1, 64)]
    mixed = len({k for k, _ in cfg.budgets}) > 1
    series = _series if mixed else None  # two budget kinds: one line per method and kind
    for x in xs:
        for y in ("test_acc", "ft_test_acc") if cfg.finetune_epochs > 0 else ("test_acc",):
            name = f"{title}: {AXIS(y)} vs {x.replace('_', ' ')}"
            pareto_plot(rows, x, y, name, out / f"pareto-{y}-vs-{x}.png", base, series=series)
    for (kind, target), pol in policies.items():
        at = f"{target:g} of the {AXIS_NAMES.get(kind, kind)}"
        sparsity_plot(pol, f"{title}: per-unit sparsity at {at}", out / f"sparsity-{budget_tag(kind, target)}.png")
    for (kind, target), cur in curves.items():
        at = f"{target:g} of the {AXIS_NAMES.get(kind, kind)}"
        path = out / f"search-{budget_tag(kind, target)}.png"
        search_curve_plot(cur, f"{title}: search at {at} (held-out proxy)", path)


def _series(row: dict[str, Any]) -> str:
    return f"{row['method']}, {AXIS_NAMES.get(row.get('kind', 'macs'), '?')} budgets"


AXIS_NAMES = {"macs": "MACs", "params": "parameters"}  # what a budget kind's targets are fractions of
COLUMNS = [
    ("method", "method", ""),
    ("target", "target", "g"),
    ("heldout_proxy_acc", "search proxy", ".2%"),
    *MEASURE_COLUMNS,
]


def _write_readme(
    out: Path,
    title: str,
    rows: list[dict[str, Any]],
    base: dict[str, Any],
    command: str | None,
    runtimes: Sequence[str],
    what: str = "MACs",
) -> None:
    from amc.deploy.measure import latency_key

    kinds = {r.get("kind", "macs") for r in rows}
    ordered = sorted(rows, key=lambda r: (r.get("kind", "macs"), r["target"], -r.get("ft_test_acc", r["test_acc"])))
    if len(kinds) > 1:  # both kinds in one table: the budget column names its kind
        ordered = [{**r, "target": f"{AXIS_NAMES.get(r.get('kind', 'macs'), '?')} {r['target']:g}"} for r in ordered]
    head = "budget" if len(kinds) > 1 else f"{what} target"
    columns = [(k, head, "" if len(kinds) > 1 else f) if k == "target" else (k, h, f) for k, h, f in COLUMNS] + [
        (latency_key(r, b), f"{r} b{b} ms", ".2f" if b == 1 else ".1f") for r in runtimes for b in (1, 64)
    ]
    unpruned = ", ".join(
        f"{r} b1 {base[latency_key(r, 1)]:.2f} / b64 {base[latency_key(r, 64)]:.1f} ms" for r in runtimes
    )
    lines = [f"# {title}: methods at several {what} budgets", ""]
    if command:
        lines += [f"Made by `{command}`.", ""]
    lines += [
        f"Unpruned: test {base['test_acc']:.2%}, latency b64 {base['latency_b64_ms']:.1f} ms"
        + (f"; {unpruned}" if unpruned else "")
        + ". Accuracies are fractions of the split; FT = after the fine-tuning in config.json; "
        "b1 / b64 ms: the job's torch runtime, then each runtime named (median, warm-up excluded), "
        f"all taken on {base.get('machine', 'this machine')}.",
        "",
        markdown_table(ordered, columns),
        "",
        *(f"![{p.name}]({p.name})" for p in sorted(out.glob("*.png"))),
    ]
    atomic_write_bytes(out / "README.md", ("\n".join(lines) + "\n").encode())


def AXIS(key: str) -> str:  # noqa: N802 - short helper for titles
    return {"test_acc": "test accuracy", "ft_test_acc": "fine-tuned test accuracy"}.get(key, key)
