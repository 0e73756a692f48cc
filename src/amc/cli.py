"""The ``amc`` command line: thin wrappers that parse, call one function, and print.

User errors (:class:`amc.errors.AmcError`) print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from amc.errors import AmcError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="AutoML for model compression: search, apply and compare pruning policies.",
)

DATA_HELP = "cifar10, cifar100, or a path to an ImageFolder tree with train/ and test/ (default: $AMC_DATA or cifar10)"
DataOpt = Annotated[Optional[str], typer.Option("--data", help=DATA_HELP)]
DeviceOpt = Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto")]
PrecisionOpt = Annotated[str, typer.Option(help="auto (bf16 where the hardware has it), bf16 or fp32")]
TrustOpt = Annotated[bool, typer.Option("--trust-checkpoint", help="allow a legacy pickled checkpoint (runs its code)")]


def data_spec(data: str | None) -> str:
    return data or os.environ.get("AMC_DATA") or "cifar10"


def _echo_json(obj: dict) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


@app.command()
def models(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the built-in models with their MACs and parameters at 32x32."""
    from amc.macs import count_macs, count_params
    from amc.models import BUILTIN, build_model

    rows = []
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
def evaluate(
    model: Annotated[str, typer.Option(help="built-in name or package.module:factory")],
    checkpoint: Annotated[
        Optional[str], typer.Option(help="weights to evaluate (default: the base found for model and data)")
    ] = None,
    data: DataOpt = None,
    split: Annotated[str, typer.Option(help="heldout or test")] = "test",
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    trust_checkpoint: TrustOpt = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Accuracy, MACs and parameters of a trained model."""
    from amc.base import open_base
    from amc.macs import count_macs, count_params
    from amc.runtime import Runtime
    from amc.training import evaluate as run_eval

    if split not in ("heldout", "test"):
        raise AmcError(f"unknown split '{split}': use heldout or test")
    rt = Runtime.create(device, precision)
    base = open_base(model, data_spec(data), checkpoint, rt, trust=trust_checkpoint)
    acc = run_eval(base.model, base.data.split(split), rt, progress=True)
    out = {
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
    else:
        typer.echo(
            f"{model} on {base.data.name} {split}: accuracy {acc:.2%}  "
            f"MACs {out['macs'] / 1e6:.1f}M  params {out['params'] / 1e6:.3f}M  ({rt.precision})"
        )


@app.command()
def train(
    model: Annotated[str, typer.Option(help="built-in name or package.module:factory")],
    init: Annotated[Optional[str], typer.Option(help="start from these weights (adapt a base)")] = None,
    epochs: Annotated[float, typer.Option(min=0.01, help="epochs over the training split")] = 5,
    lr: Annotated[Optional[float], typer.Option(help="peak one-cycle LR (default 0.02 with --init, else 0.1)")] = None,
    label_smoothing: Annotated[Optional[float], typer.Option(help="default 0 with --init, else 0.1")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 128,
    seed: int = 0,
    out: Annotated[
        Optional[Path], typer.Option(help="output checkpoint (default: the base cache, where search finds it)")
    ] = None,
    data: DataOpt = None,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    trust_checkpoint: TrustOpt = False,
) -> None:
    """Train a base model (or adapt one with --init) and save it with its measured accuracy."""
    import torch

    from amc.base import base_meta
    from amc.checkpoints import base_filename, checkpoint_dirs, load_weights, read_checkpoint, save_checkpoint
    from amc.data import load_data
    from amc.models import build_model
    from amc.runtime import Runtime
    from amc.training import TrainConfig
    from amc.training import evaluate as run_eval
    from amc.training import train as run_train

    rt = Runtime.create(device, precision)
    bundle = load_data(data_spec(data))
    net = build_model(model, bundle.num_classes)
    if init:
        state, _ = read_checkpoint(init, trust=trust_checkpoint)
        load_weights(net, state, source=f"checkpoint {init}")
    out = out or checkpoint_dirs()[-1] / base_filename(model, bundle.name)
    torch.manual_seed(seed)
    cfg = TrainConfig(
        epochs=epochs,
        lr=lr if lr is not None else (0.02 if init else 0.1),
        label_smoothing=label_smoothing if label_smoothing is not None else (0.0 if init else 0.1),
        batch_size=batch_size,
        seed=seed,
    )
    rt.prepare(net)
    start = time.time()
    run_train(net, bundle.train, rt, cfg, desc=f"training {model}")
    seconds = time.time() - start
    held, test = run_eval(net, bundle.heldout, rt), run_eval(net, bundle.test, rt)
    save_checkpoint(out, net, base_meta(model, bundle, cfg, init, seconds, held, test))
    typer.echo(
        f"{model} on {bundle.name}: held-out {held:.2%}, test {test:.2%} after {epochs:g} epochs "
        f"in {seconds / 60:.1f} min ({rt.precision}); saved {out}"
    )


@app.command()
def search(
    model: Annotated[Optional[str], typer.Option(help="built-in name or package.module:factory")] = None,
    flops: Annotated[Optional[float], typer.Option(help="keep at most this fraction of the MACs, in (0, 1]")] = None,
    params: Annotated[
        Optional[float], typer.Option(help="keep at most this fraction of the parameters instead")
    ] = None,
    method: Annotated[Optional[str], typer.Option(help="ddpg, optuna, random, uniform, global or sensitivity")] = None,
    checkpoint: Annotated[
        Optional[str], typer.Option(help="base weights (default: found in $AMC_CHECKPOINTS or the cache)")
    ] = None,
    data: DataOpt = None,
    episodes: Annotated[Optional[int], typer.Option(help="DDPG episodes or Optuna trials (default 400)")] = None,
    warmup: Annotated[Optional[int], typer.Option(help="random DDPG warm-up episodes (default 100)")] = None,
    reward: Annotated[Optional[str], typer.Option(help="acc (-error) or acc-flops (-error*log(MACs))")] = None,
    criterion: Annotated[Optional[str], typer.Option(help="channel selection: l1, l2, taylor or random")] = None,
    reconstruct: Annotated[
        Optional[bool], typer.Option("--reconstruct/--no-reconstruct", help="least-squares refit of the next layer")
    ] = None,
    proxy_size: Annotated[Optional[int], typer.Option(help="held-out images scored per policy (default 1000)")] = None,
    calib_images: Annotated[
        Optional[int], typer.Option(help="training images for BN recalibration, 0 = off (default 500)")
    ] = None,
    max_sparsity: Annotated[
        Optional[float], typer.Option(help="largest fraction of a unit's channels removed (default 0.8)")
    ] = None,
    round_to: Annotated[Optional[int], typer.Option(help="round kept channels up to a multiple of this")] = None,
    residual: Annotated[
        Optional[bool],
        typer.Option("--residual/--no-residual", help="also prune channels coupled by residual additions"),
    ] = None,
    storage: Annotated[
        Optional[str], typer.Option(help="Optuna storage URL or .journal path (default runs/amc.journal)")
    ] = None,
    study: Annotated[Optional[str], typer.Option(help="study name (default: model-data-budget-method)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the study where it stopped")] = False,
    seed: Annotated[Optional[int], typer.Option()] = None,
    out: Annotated[Optional[str], typer.Option(help="where the best policy goes (default policies/best.json)")] = None,
    env: Annotated[
        Optional[str], typer.Option("--env", help="a TOML search spec (envs/*.toml); flags override it")
    ] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:N or auto")] = None,
    precision: Annotated[Optional[str], typer.Option(help="auto, bf16 or fp32")] = None,
    no_train: Annotated[bool, typer.Option("--no-train", help="never train a missing base; say how instead")] = False,
    trust_checkpoint: TrustOpt = False,
) -> None:
    """Search a per-layer pruning policy that meets a MACs (or parameter) budget."""
    from amc.proxy import ProxyConfig
    from amc.runtime import Runtime
    from amc.search.context import SearchSettings, build_context
    from amc.search.runner import SearchRun, run_search
    from amc.search.spec import resolve

    o = resolve({k: v for k, v in locals().items() if k not in ("env", "resume", "no_train", "trust_checkpoint")}, env)
    if o["model"] is None:
        raise AmcError("no model given: pass --model NAME (see 'amc models') or --env SPEC.toml")
    if o["flops"] is not None and o["params"] is not None:
        raise AmcError("--flops and --params contradict each other: give one budget")
    kind, target = (
        ("params", o["params"]) if o["params"] is not None else ("macs", o["flops"] if o["flops"] is not None else 0.5)
    )
    from amc.env import REWARDS
    from amc.pruning.criteria import CRITERIA

    if o["criterion"] not in CRITERIA:
        raise AmcError(f"unknown criterion '{o['criterion']}': use one of {', '.join(CRITERIA)}")
    if o["reward"] not in REWARDS:
        raise AmcError(f"unknown reward '{o['reward']}': use one of {', '.join(REWARDS)}")
    if o["proxy_size"] < 1 or o["calib_images"] < 0:
        raise AmcError("--proxy-size must be at least 1 and --calib-images at least 0")
    rt = Runtime.create(o["device"], o["precision"])
    settings = SearchSettings(
        model=o["model"],
        data=data_spec(o["data"]),
        checkpoint=o["checkpoint"],
        target=float(target),
        kind=kind,
        max_sparsity=o["max_sparsity"],
        round_to=o["round_to"],
        residual=o["residual"],
        proxy=ProxyConfig(
            size=o["proxy_size"],
            calib_images=o["calib_images"],
            criterion=o["criterion"],
            reconstruct=o["reconstruct"],
            seed=o["seed"],
        ),
        seed=o["seed"],
        trust_checkpoint=trust_checkpoint,
        allow_train=not no_train,
        unstructured=str(o["method"]).startswith("unstructured"),
    )
    run = SearchRun(
        method=o["method"],
        episodes=o["episodes"],
        warmup=o["warmup"],
        reward=o["reward"],
        storage=o["storage"],
        study=o["study"],
        resume=resume,
        out=Path(o["out"]),
    )
    from amc.search.runner import METHODS

    if run.method not in METHODS:
        raise AmcError(f"unknown method '{run.method}': use one of {', '.join(METHODS)}")
    ctx = build_context(settings, rt)
    start = time.time()
    policy = run_search(ctx, run)
    m = policy.metrics
    if policy.structure == "weights":
        typer.echo(
            f"{run.method} on {settings.model} ({policy.dataset}): held-out proxy accuracy "
            f"{m['heldout_proxy_acc']:.2%} (unpruned {m['base_heldout_proxy_acc']:.2%}) with "
            f"{policy.achieved['nonzero_params_ratio']:.3f} of parameters non-zero; no dense speed-up "
            f"(same shapes and MACs); wrote {run.out}"
        )
        return
    typer.echo(
        f"{run.method} on {settings.model} ({policy.dataset}, {kind} <= {target:g}): best held-out proxy "
        f"accuracy {m['heldout_proxy_acc']:.2%} (unpruned {m['base_heldout_proxy_acc']:.2%}) at "
        f"{policy.achieved['macs_ratio']:.3f} MACs, {policy.achieved['params_ratio']:.3f} params; "
        f"{m['trials']} policies in study '{m['study']}' ({time.time() - start:.0f} s); wrote {run.out}"
    )


def _policy_checkpoint(pol) -> str | None:
    """The policy's checkpoint path if it exists, else a base with the same sha256 found in
    $AMC_CHECKPOINTS / the cache (policies stay valid when files move between machines)."""
    from amc.checkpoints import checkpoint_dirs, sha256_file

    path = pol.checkpoint.get("path")
    if path and Path(path).is_file():
        return path
    sha = pol.checkpoint.get("sha256")
    for folder in checkpoint_dirs():
        for candidate in sorted(folder.glob(f"{pol.model}-*.pt")) if folder.is_dir() else []:
            if sha and sha256_file(candidate) == sha:
                return str(candidate)
    raise AmcError(
        f"the policy's checkpoint {path} does not exist and no base with its sha256 is in "
        "$AMC_CHECKPOINTS: pass --checkpoint PATH"
    )


@app.command()
def apply(
    policy: Annotated[Path, typer.Argument(help="a policy JSON written by amc search")],
    checkpoint: Annotated[
        Optional[str], typer.Option(help="base weights (default: the policy's checkpoint path)")
    ] = None,
    data: DataOpt = None,
    finetune_epochs: Annotated[float, typer.Option(min=0, help="cosine-LR fine-tuning epochs (0 = none)")] = 1.0,
    lr: Annotated[float, typer.Option(min=0, help="initial fine-tuning learning rate")] = 0.01,
    distill: Annotated[
        bool, typer.Option("--distill", help="distil from the unpruned model while fine-tuning")
    ] = False,
    calib_images: Annotated[int, typer.Option(min=0, help="training images for BN recalibration (0 = off)")] = 2000,
    criterion: Annotated[
        Optional[str], typer.Option(help="channel criterion l1|l2|taylor|random (default: the policy's)")
    ] = None,
    iterative: Annotated[
        int,
        typer.Option(
            help="reach the policy in K cuts, re-scoring channels and fine-tuning finetune-epochs/K after each"
        ),
    ] = 1,
    latency: Annotated[bool, typer.Option("--latency/--no-latency", help="measure CPU/GPU latency")] = True,
    out: Annotated[Optional[Path], typer.Option(help="output folder (default runs/apply/POLICY_NAME)")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="apply a policy made for another checkpoint or data set")
    ] = False,
    seed: int = 0,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    trust_checkpoint: TrustOpt = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Prune a base with a policy for real, fine-tune, measure, and save the smaller model."""
    from amc.apply import ApplyConfig, apply_policy
    from amc.base import open_base
    from amc.policy import load_policy
    from amc.runtime import Runtime
    from amc.search.context import unit_graph_for

    pol = load_policy(policy)
    rt = Runtime.create(device, precision)
    ckpt = checkpoint or _policy_checkpoint(pol)
    base = open_base(pol.model, data_spec(data), ckpt, rt, trust=trust_checkpoint)
    graph = unit_graph_for(pol.model, base, pol.residual)
    out = out or Path("runs") / "apply" / policy.stem
    cfg = ApplyConfig(
        finetune_epochs=finetune_epochs,
        lr=lr,
        distill=distill,
        calib_images=calib_images,
        latency=latency,
        seed=seed,
        criterion=criterion,
        iterative=iterative,
    )
    m = apply_policy(pol, base, graph, cfg, out, force=force)
    if as_json:
        _echo_json(m)
        return
    line = (
        f"{pol.model} pruned to {m['macs_ratio']:.3f} MACs / {m['params_ratio']:.3f} params: test "
        f"{m['base_test_acc']:.2%} -> {m['pruned_test_acc']:.2%} pruned"
    )
    if "finetuned_test_acc" in m:
        line += f" -> {m['finetuned_test_acc']:.2%} fine-tuned"
    if latency:
        line += (
            f"; latency b64 {m['base_latency_b64_ms']:.1f} -> {m['pruned_latency_b64_ms']:.1f} ms, "
            f"b1 {m['base_latency_b1_ms']:.2f} -> {m['pruned_latency_b1_ms']:.2f} ms"
        )
    typer.echo(line + f"; wrote {out}/pruned.pt")


@app.command()
def compare(
    model: Annotated[str, typer.Option(help="built-in name or package.module:factory")],
    flops: Annotated[Optional[list[float]], typer.Option(help="MACs targets, e.g. --flops 0.3 0.5 0.7")] = None,
    methods: Annotated[
        Optional[list[str]], typer.Option(help="e.g. --methods uniform global sensitivity optuna ddpg")
    ] = None,
    checkpoint: Annotated[Optional[str], typer.Option(help="base weights (default: found for model and data)")] = None,
    data: DataOpt = None,
    episodes: Annotated[int, typer.Option(min=1, help="episodes / trials per learned search")] = 100,
    warmup: Annotated[int, typer.Option(min=0, help="DDPG warm-up episodes")] = 25,
    finetune_epochs: Annotated[float, typer.Option(min=0, help="fine-tuning epochs per policy (0 = none)")] = 0.0,
    proxy_size: Annotated[int, typer.Option(min=1)] = 1000,
    calib_images: Annotated[
        int,
        typer.Option(min=0, help="BN recalibration images for the search proxy (measured networks use at least 500)"),
    ] = 500,
    max_sparsity: Annotated[float, typer.Option()] = 0.8,
    storage: Annotated[Optional[str], typer.Option(help="Optuna storage (default runs/amc.journal)")] = None,
    out: Annotated[Path, typer.Option(help="folder for results.csv/json and the plots")] = Path("runs/compare"),
    seed: int = 0,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    no_train: Annotated[bool, typer.Option("--no-train")] = False,
) -> None:
    """Run several methods at several budgets; tables and Pareto plots of the results."""
    from amc.compare import CompareConfig, run_compare
    from amc.proxy import ProxyConfig
    from amc.runtime import Runtime
    from amc.search.context import SearchSettings
    from amc.search.runner import METHODS

    targets = tuple(flops or (0.3, 0.5, 0.7))
    chosen = tuple(methods or ("uniform", "global", "sensitivity", "optuna", "ddpg"))
    bad = [m for m in chosen if m not in METHODS or m.startswith("unstructured")]
    if bad:
        raise AmcError(
            f"unknown method '{bad[0]}' for compare: use "
            + ", ".join(m for m in METHODS if not m.startswith("unstructured"))
        )
    if "ddpg" in chosen and warmup >= episodes:
        raise AmcError(f"--warmup ({warmup}) must be smaller than --episodes ({episodes})")
    rt = Runtime.create(device, precision)
    settings = SearchSettings(
        model=model,
        data=data_spec(data),
        checkpoint=checkpoint,
        target=max(targets),
        max_sparsity=max_sparsity,
        proxy=ProxyConfig(size=proxy_size, calib_images=calib_images, seed=seed),
        seed=seed,
        allow_train=not no_train,
    )
    cfg = CompareConfig(
        targets=targets, methods=chosen, episodes=episodes, warmup=warmup, finetune_epochs=finetune_epochs
    )
    command = shlex.join(["amc", *sys.argv[1:]])
    rows = run_compare(settings, rt, cfg, out, storage=storage, command=command)
    acc = "ft_test_acc" if finetune_epochs > 0 else "test_acc"
    typer.echo(f"{'method':<12} {'target':>6} {'MACs':>6} {'params':>6} {'proxy':>7} {'test':>7} {'b64 ms':>7}")
    for r in sorted(rows, key=lambda r: (r["target"], r["method"])):
        typer.echo(
            f"{r['method']:<12} {r['target']:>6g} {r['macs_ratio']:>6.3f} {r['params_ratio']:>6.3f} "
            f"{r['heldout_proxy_acc']:>7.2%} {r[acc]:>7.2%} {r['latency_b64_ms']:>7.1f}"
        )
    typer.echo(f"wrote {out}/results.csv, results.json and plots")


MULTI_VALUE_OPTIONS = ("--flops", "--methods")


def _expand_multi_values(argv: list[str]) -> list[str]:
    """``--flops 0.3 0.5`` -> ``--flops 0.3 --flops 0.5`` for compare's list options (click
    options take one value each)."""
    if not argv or argv[0] != "compare":
        return argv
    out: list[str] = []
    current = None
    for tok in argv:
        if tok.startswith("-"):
            current = tok if tok in MULTI_VALUE_OPTIONS else None
            out.append(tok)
        elif current is not None and out and out[-1] != current:
            out += [current, tok]
        else:
            out.append(tok)
    return out


def main() -> None:
    """Entry point: run the app, turning user errors into one line and exit status 2."""
    try:
        from typer._click.exceptions import ClickException
    except ImportError:  # typer versions that use click itself
        from click.exceptions import ClickException  # type: ignore[no-redef]
    import logging

    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # CUDA_HOME notices
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
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
