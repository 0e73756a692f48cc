"""The ``amc`` command line: thin wrappers that parse a typed request, call one job, print.

Each job's options are generated from its request (:mod:`amc.requests`), so ``--help``, the
TOML specs and the service's API agree. User errors (:class:`amc.errors.AmcError`) print one
line on stderr and exit with status 2.
"""

from __future__ import annotations

import inspect
import json
import logging
import shlex
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from amc.cli import service
from amc.cli.options import request_command
from amc.errors import AmcError
from amc.requests import ApplyRequest, CompareRequest, ExportRequest, SearchRequest, TrainRequest, parse, read_toml

__all__ = ["app", "main"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="AutoML for model compression: search, apply and compare pruning policies.",
)


def _echo_json(obj: dict[str, Any]) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


def _flag(name: str, flag_name: str, help_text: str) -> inspect.Parameter:
    ann = Annotated[bool, typer.Option(flag_name, help=help_text)]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=False, annotation=ann)


ENV_OPTION = inspect.Parameter(
    "env",
    inspect.Parameter.KEYWORD_ONLY,
    default=None,
    annotation=Annotated[Optional[str], typer.Option("--env", help="a TOML spec (envs/*.toml); flags override it")],
)
JSON_FLAG = _flag("as_json", "--json", "print the result as JSON")


def _with_spec(given: dict[str, Any]) -> dict[str, Any]:
    spec = given.pop("env", None)
    return {**(read_toml(spec) if spec else {}), **given}


def _search(given: dict[str, Any]) -> None:
    req = parse(SearchRequest, _with_spec(given))  # bad input fails here, before torch is imported
    from amc.jobs import run_search_request

    policy = run_search_request(req, progress=True)
    typer.echo(_search_line(req, policy))


def _search_line(req: SearchRequest, policy: Any) -> str:
    m, a = policy.metrics, policy.achieved
    if policy.structure == "weights":
        return (
            f"{req.method} on {req.model} ({policy.dataset}): held-out proxy accuracy {m['heldout_proxy_acc']:.2%} "
            f"(unpruned {m['base_heldout_proxy_acc']:.2%}) with {a['nonzero_params_ratio']:.3f} of parameters "
            f"non-zero; no dense speed-up (same shapes and MACs); wrote {req.out}"
        )
    kind, target = req.budget
    reused = " (reused: same settings as before, nothing re-run)" if m.get("reused") else ""
    return (
        f"{req.method} on {req.model} ({policy.dataset}, {kind} <= {target:g}): best held-out proxy accuracy "
        f"{m['heldout_proxy_acc']:.2%} (unpruned {m['base_heldout_proxy_acc']:.2%}) at {a['macs_ratio']:.3f} MACs, "
        f"{a['params_ratio']:.3f} params, {policy.budget.get('used', 0):.1%} of the budget used; {m['trials']} "
        f"policies in study '{m['study']}' ({m['search_seconds_this_run']:.0f} s){reused}; wrote {req.out}"
    )


def _apply(given: dict[str, Any]) -> None:
    as_json = given.pop("as_json", False)
    req = parse(ApplyRequest, given)
    from amc.jobs import run_apply

    m, out = run_apply(req)
    if as_json:
        _echo_json(m)
        return
    line = (
        f"{m['model']} pruned to {m['macs_ratio']:.3f} MACs / {m['params_ratio']:.3f} params: test "
        f"{m['base_test_acc']:.2%} -> {m['pruned_test_acc']:.2%} pruned"
    )
    if "finetuned_test_acc" in m:
        line += f" -> {m['finetuned_test_acc']:.2%} fine-tuned"
    if req.latency:
        line += (
            f"; latency b64 {m['base_latency_b64_ms']:.1f} -> {m['pruned_latency_b64_ms']:.1f} ms, "
            f"b1 {m['base_latency_b1_ms']:.2f} -> {m['pruned_latency_b1_ms']:.2f} ms"
        )
        for rt in ("onnxruntime", "latency_torch-bf16", "latency_torch-fp32"):
            if f"pruned_{rt}_b1_ms" in m:
                b64, b1 = (f"{m[f'base_{rt}_b{b}_ms']:.2f} -> {m[f'pruned_{rt}_b{b}_ms']:.2f} ms" for b in (64, 1))
                line += f"; {rt.removeprefix('latency_')} b64 {b64}, b1 {b1}"
    typer.echo(line + f"; wrote {out}/pruned.pt")


def _compare(given: dict[str, Any]) -> None:
    req = parse(CompareRequest, _with_spec(given))
    from amc.jobs import run_compare

    rows = run_compare(req, command=shlex.join(["amc", *sys.argv[1:]]))
    acc = "ft_test_acc" if req.finetune_epochs > 0 else "test_acc"
    typer.echo(f"{'method':<12} {'target':>6} {'MACs':>6} {'params':>6} {'proxy':>7} {'test':>7} {'b64 ms':>7}")
    for r in sorted(rows, key=lambda r: (r["target"], r["method"])):
        typer.echo(
            f"{r['method']:<12} {r['target']:>6g} {r['macs_ratio']:>6.3f} {r['params_ratio']:>6.3f} "
            f"{r['heldout_proxy_acc']:>7.2%} {r[acc]:>7.2%} {r['latency_b64_ms']:>7.1f}"
        )
    typer.echo(f"wrote {req.out}/results.csv, results.json and plots")


def _train(given: dict[str, Any]) -> None:
    req = parse(TrainRequest, given)
    from amc.jobs import run_train

    r = run_train(req)
    typer.echo(
        f"{req.model} on {r['dataset']}: held-out {r['heldout']:.2%}, test {r['test']:.2%} after {req.epochs:g} "
        f"epochs in {r['seconds'] / 60:.1f} min ({r['precision']}); saved {r['out']}"
    )


def _argument(name: str, help_text: str) -> inspect.Parameter:
    """A positional argument for a generated command (the request field it fills is skipped)."""
    ann = Annotated[str, typer.Argument(help=help_text, metavar=name.upper())]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=ann)


POLICY_ARG = _argument("policy", "a policy JSON written by amc search")
app.command("search", help="Search a per-unit pruning policy that meets a MACs (or parameter) budget.")(
    request_command(SearchRequest, _search, extra=(ENV_OPTION,))
)
app.command("apply", help="Prune a base with a policy for real, fine-tune, measure, and save the smaller model.")(
    request_command(ApplyRequest, _apply, extra=(POLICY_ARG, JSON_FLAG), skip=("policy",))
)
app.command("compare", help="Run several methods at several budgets; tables and Pareto plots of the results.")(
    request_command(CompareRequest, _compare, extra=(ENV_OPTION,))
)
app.command("train", help="Train a base model (or adapt one with --init) and save it with its accuracy.")(
    request_command(TrainRequest, _train)
)


def _export(given: dict[str, Any]) -> None:
    req = parse(ExportRequest, given)
    from amc.jobs import run_export

    r = run_export(req)
    typer.echo(
        f"{r['network']} -> {r['path']} ({r['format']}; max |difference| to torch {r['max_abs_difference']:.1e})"
    )


SOURCE_ARG = _argument("source", "pruned.pt from amc apply, or a base checkpoint")
app.command("export", help="Export a pruned model or a base checkpoint to ONNX (dynamic batch) or torch.export.")(
    request_command(ExportRequest, _export, extra=(SOURCE_ARG,), skip=("source",))
)
app.command("serve")(service.serve)
app.command("worker")(service.worker)


@app.command()
def models(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the built-in models with their MACs and parameters at 32x32."""
    from amc.macs import count_macs, count_params
    from amc.models import BUILTIN, build_model

    rows: list[dict[str, Any]] = []
    for name, spec in BUILTIN.items():
        net = build_model(name)
        rows.append(
            {"model": name, "macs": count_macs(net), "params": count_params(net), "description": spec.description}
        )
    if as_json:
        _echo_json({"models": rows})
        return
    typer.echo(f"{'model':<12} {'MACs':>9} {'params':>9}  description")
    for r in rows:
        typer.echo(f"{r['model']:<12} {r['macs'] / 1e6:>8.1f}M {r['params'] / 1e6:>8.2f}M  {r['description']}")


@app.command()
def searchers() -> None:
    """List the search methods (built-in and from installed plugins)."""
    from amc.search.base import get_searcher, searcher_names

    for name in searcher_names():
        cls = get_searcher(name)
        kind = "learned" if cls.learns else "heuristic"
        typer.echo(f"{name:<20} {kind:<9} {cls.description}")


@app.command()
def evaluate(
    model: Annotated[str, typer.Option(help="built-in name or package.module:NAME")],
    checkpoint: Annotated[Optional[str], typer.Option(help="weights (default: the base for model and data)")] = None,
    data: Annotated[Optional[str], typer.Option(help="cifar10, cifar100 or an ImageFolder tree")] = None,
    split: Annotated[str, typer.Option(help="heldout or test")] = "test",
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto")] = "auto",
    precision: Annotated[str, typer.Option(help="auto, bf16 or fp32")] = "auto",
    threads: Annotated[Optional[int], typer.Option(help="CPU threads")] = None,
    trust_checkpoint: Annotated[bool, typer.Option("--trust-checkpoint")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Accuracy, MACs and parameters of a trained model."""
    from amc.base import open_base
    from amc.macs import count_macs, count_params
    from amc.requests import data_spec
    from amc.runtime import Runtime
    from amc.training import evaluate as run_eval

    if split not in ("heldout", "test"):
        raise AmcError(f"--split: unknown split '{split}': use heldout or test")
    rt = Runtime.create(device, precision, threads)
    base = open_base(model, data_spec(data), checkpoint, rt, trust=trust_checkpoint)
    acc = run_eval(base.model, base.data.split(split), rt, progress=True)
    out: dict[str, Any] = {
        "model": model,
        "checkpoint": str(base.checkpoint),
        "data": base.data.name,
        "split": split,
        "accuracy": acc,
        "macs": count_macs(base.model),
        "params": count_params(base.model),
        "precision": rt.precision,
        "device": str(rt.device),
    }
    if as_json:
        _echo_json(out)
        return
    typer.echo(
        f"{model} on {base.data.name} {split}: accuracy {acc:.2%}  MACs {out['macs'] / 1e6:.1f}M  "
        f"params {out['params'] / 1e6:.3f}M  ({rt.precision})"
    )


def _expand_multi_values(argv: list[str]) -> list[str]:
    """``--flops 0.3 0.5`` -> ``--flops 0.3 --flops 0.5`` for list options (click options take
    one value each)."""
    from amc.requests import REQUESTS, flag

    cls = REQUESTS.get(argv[0]) if argv else None
    if cls is None:
        return argv
    multi = {flag(n) for n, f in cls.model_fields.items() if "list" in str(f.annotation)}
    out: list[str] = []
    current = None
    for tok in argv:
        if tok.startswith("-"):
            current = tok if tok in multi else None
            out.append(tok)
        elif current is not None and out and out[-1] != current:
            out += [current, tok]
        else:
            out.append(tok)
    return out


_PACKAGE = Path(__file__).resolve().parent.parent
_python_warning = warnings.formatwarning


def _one_line_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None
) -> str:
    """amc's own warnings as one line, as its errors are; other libraries' as Python prints them."""
    if Path(filename).resolve().is_relative_to(_PACKAGE):
        return f"amc: warning: {message}\n"
    return _python_warning(message, category, filename, lineno, line)


def main() -> None:
    """Entry point: run the app, turning user errors into one line and exit status 2."""
    try:
        from typer._click.exceptions import ClickException
    except ImportError:  # typer versions that use click itself
        from click.exceptions import ClickException  # type: ignore[no-redef,assignment,unused-ignore]

    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # CUDA_HOME notices
    warnings.formatwarning = _one_line_warning  # the entrance decides how warnings look, as it does errors
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the entrance, not a library module, decides
    try:
        app(args=_expand_multi_values(sys.argv[1:]), standalone_mode=False)
    except AmcError as exc:
        print(f"amc: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        print(
            "amc: interrupted; completed work is saved (rerun with --resume where the command has it)", file=sys.stderr
        )
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except ClickException as exc:
        exc.show()
        sys.exit(2)
