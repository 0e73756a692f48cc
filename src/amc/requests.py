"""One typed request per job: what ``amc search``, ``apply``, ``compare`` and ``train`` take.

Fields, defaults, units, ranges and validation are written once, here, as pydantic models. The
command line (:mod:`amc.cli`), the TOML specs in ``envs/`` and the service's REST API all parse
into them with :func:`parse`, so a bad value gets the same one-line message from every
entrance, ``--help`` and the API schema are generated from the same fields, and
``docs/REQUESTS.md`` is rendered from them (``python -m amc.requests``).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from amc.errors import AmcError
from amc.presets import DEFAULT_CRITERION, DEFAULT_REFERENCE, PRESETS, PROXY_FIELDS, RECIPES

__all__ = [
    "Request",
    "SearchRequest",
    "ApplyRequest",
    "CompareRequest",
    "TrainRequest",
    "ExportRequest",
    "REQUESTS",
    "parse",
    "read_toml",
    "data_spec",
    "flag",
]

R = TypeVar("R", bound="Request")
Precision = Literal["auto", "bf16", "fp32"]
Projection = Literal["spread", "bounded", "amc"]
Demo = Literal["uniform", "global", "sensitivity", "tp-global-l1", "tp-local-l1"]
Preset = Literal["default", "local-warmup", "amc", "amc-paper", "spread", "reference", "amc-reference"]
RoundTo = Annotated[int, Field(ge=1, le=1024)] | Literal["auto"]


def data_spec(data: str | None) -> str:
    """The data set a job uses: ``data``, else ``$AMC_DATA``, else ``cifar10``."""
    return data or os.environ.get("AMC_DATA") or "cifar10"


def flag(name: str) -> str:
    """A field's command-line flag: ``proxy_size`` -> ``--proxy-size``."""
    return "--" + name.replace("_", "-")


class Request(BaseModel):
    """Base of every job's request: unknown fields are refused, values are checked on
    assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class _BaseJob(Request):
    model: str = Field(description="built-in name (see 'amc models') or package.module:NAME (runs that module)")
    data: str | None = Field(None, description="cifar10, cifar100 or an ImageFolder tree (default: $AMC_DATA)")
    checkpoint: str | None = Field(None, description="base weights (default: found in $AMC_CHECKPOINTS)")
    seed: int = Field(0, ge=0, description="random seed")
    device: str = Field("auto", description="cpu, cuda, cuda:N or auto")
    precision: Precision = Field("auto", description="auto (bf16 where the CPU/GPU has it), bf16 or fp32")
    threads: int | None = Field(None, ge=1, le=1024, description="CPU threads (default: all cores / workers)")
    trust_checkpoint: bool = Field(False, description="allow a legacy pickled checkpoint (runs its code)")

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v not in ("auto", "cpu", "cuda", "mps") and not v.startswith("cuda:"):
            raise ValueError("use cpu, cuda, cuda:N or auto")
        return v


class SearchRequest(_BaseJob):
    """``amc search``: find a per-unit pruning policy under a budget."""

    flops: float | None = Field(None, gt=0, le=1, description="keep at most this fraction of the MACs")
    params: float | None = Field(None, gt=0, le=1, description="keep at most this fraction of the parameters")
    latency: float | None = Field(
        None, gt=0, le=1, description="keep at most this fraction of the latency measured on --runtime, this machine"
    )
    runtime: str = Field(
        "onnxruntime", description="where --latency and --round-to auto measure: onnxruntime, torch-fp32, torch-bf16"
    )
    batch_size: int = Field(1, ge=1, le=4096, description="batch size --latency and --round-to auto measure at")
    method: str = Field("ddpg", description="searcher: see 'amc searchers' (ddpg, optuna, random, uniform, ...)")
    preset: Preset = Field(
        "default", description="default (best measured), amc (AMC's projection), amc-paper (the paper), spread, ..."
    )
    episodes: int = Field(400, ge=1, le=100_000, description="DDPG episodes or sampler trials")
    warmup: int = Field(
        100,
        ge=0,
        description="DDPG warm-up episodes (see --warmup-noise; replayed --demos); default: episodes/4, at most 100",
    )
    reward: Literal["acc", "acc-flops", "loss"] = Field(
        "acc", description="acc (-error), acc-flops (-error*log MACs) or loss (-cross-entropy: less noisy)"
    )
    criterion: str = Field(
        DEFAULT_CRITERION,
        description="channel selection: group-l1 (every coupled weight), l1 (the filter's), l2, taylor, random, auto",
    )
    reconstruct: bool = Field(False, description="least-squares refit of the layer after each unit")
    proxy_size: int = Field(500, ge=1, description="held-out images scored per policy")
    confirm_images: int = Field(
        0,
        ge=0,
        description="racing: further held-out images a policy is scored on when its first score reaches the best"
        " so far, its reward then taken over all of them (0 = off)",
    )
    calib_images: int = Field(250, ge=0, description="training images for BN recalibration (0 = off)")
    max_sparsity: float = Field(0.8, ge=0, lt=1, description="largest fraction of a unit's channels removed")
    round_to: RoundTo = Field(
        1,
        description="round kept channels up to a multiple of this; auto: the multiple whose networks run fastest"
        " on --runtime at --batch-size, measured on this machine",
    )
    residual: bool = Field(False, description="also prune channels coupled by residual additions")
    projection: Projection = Field("spread", description="action -> sparsity: spread (around the reference),"
                                   " bounded (spread within what the bound leaves open) or amc (AMC's)")  # fmt: skip
    fill: bool = Field(True, description="top the policy up until the next channel would break the budget")
    demos: list[Demo] = Field([], description="heuristic policies replayed in DDPG's warm-up (e.g. uniform global)")
    reference: list[Demo] = Field(
        [],
        description="DDPG: heuristics scored first as episodes of the search and re-scored with its best (so it"
        " returns nothing worse); with --projection spread or bounded the best also centres DDPG's actions"
        " (default for ddpg:"
        " uniform global sensitivity tp-global-l1 tp-local-l1; --preset amc drops them)",
    )
    sigma: float = Field(0.5, gt=0, le=2, description="DDPG exploration noise at the first episode, on the [-1, 1]"
                         " action scale (AMC's 1.0, half the [0, 1] range)")  # fmt: skip
    sigma_final: float = Field(0.1, gt=0, le=2, description="DDPG exploration noise at the last episode")
    warmup_noise: Literal["uniform", "sigma", "tpe"] = Field(
        "tpe",
        description="DDPG warm-up actions: proposed by Optuna's TPE from the episodes scored so far, uniform"
        " random (AMC's), or --sigma's noise around action 0 (the reference policy; --preset local-warmup)",
    )
    tpe_every: int = Field(0, ge=0, description="DDPG: every N-th episode after the warm-up is TPE's (0: none)")
    critics: int = Field(1, ge=1, le=2, description="DDPG critics: 1 (AMC) or 2 (TD3's twin critics, delayed actor)")
    sigma_decay: float | None = Field(
        None, gt=0, le=1, description="noise decay per episode (AMC's 0.95); none: decay to --sigma-final at the end"
    )
    polish: int = Field(0, ge=0, description="DDPG: the last N of --episodes hill-climb from the best policy by"
                        " swapping channels between units (0 = off)")  # fmt: skip
    rescore: int = Field(
        8, ge=0, le=100, description="score the best N policies again on unseen held-out images; return the best there"
    )
    rescore_size: int = Field(4000, ge=1, description="held-out images --rescore uses (those the proxy did not see)")
    storage: str | None = Field(None, description="Optuna storage URL or .journal path (default runs/amc.journal)")
    study: str | None = Field(None, description="study name (default: model-data-budget-method)")
    resume: bool = Field(False, description="continue the study where it stopped")
    out: str = Field("policies/best.json", description="where the best policy is written")
    train: bool = Field(True, description="train a missing base (--no-train: print the amc train command instead)")

    @field_validator("round_to", mode="before")
    @classmethod
    def _round_to(cls, v: Any) -> Any:
        if isinstance(v, str) and v != "auto" and not v.strip().isdigit():
            raise ValueError("use a channel multiple or auto, e.g. --round-to 8 or --round-to auto")
        return v

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        ddpg = values.get("method", "ddpg") == "ddpg"  # the heuristics (a preset's or the default's) seed DDPG only
        if values.get("preset") in PRESETS:
            preset = dict(PRESETS[values["preset"]])
            if not ddpg:
                preset.pop("reference", None)
            values = {**preset, **values}
        if ddpg and "reference" not in values:
            values = {**values, "reference": list(DEFAULT_REFERENCE)}
        if values.get("warmup") is None:
            try:
                values = {**values, "warmup": min(100, int(values.get("episodes", 400)) // 4)}
            except (TypeError, ValueError):  # a bad --episodes is reported by its own check
                pass
        return values

    @model_validator(mode="after")
    def _consistent(self) -> SearchRequest:
        given = [f"--{k}" for k in ("flops", "params", "latency") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"{' and '.join(given)} contradict each other: give one budget")
        if self.reference and self.method != "ddpg":
            raise ValueError("--reference seeds DDPG's search: drop it, or use --method ddpg")
        if self.method == "ddpg" and self.warmup >= self.episodes:
            raise ValueError(
                f"--warmup ({self.warmup}) must be smaller than --episodes ({self.episodes}): "
                "warm-up episodes are random, the agent learns after them"
            )
        if self.polish and (self.method != "ddpg" or self.warmup + self.polish >= self.episodes):
            raise ValueError(f"--polish ({self.polish}) ends a DDPG search: use --method ddpg and keep --warmup +"
                             f" --polish below --episodes ({self.episodes}) so the agent learns")  # fmt: skip
        return self

    @property
    def budget(self) -> tuple[str, float]:
        """``(kind, target)``: MACs 0.5 unless a budget is given."""
        if self.params is not None:
            return "params", self.params
        if self.latency is not None:
            return "latency", self.latency
        return "macs", self.flops if self.flops is not None else 0.5


class ApplyRequest(Request):
    """``amc apply``: cut a policy out of its base for real, fine-tune, measure, save."""

    policy: str = Field(description="a policy JSON written by amc search")
    checkpoint: str | None = Field(None, description="base weights (default: the policy's)")
    data: str | None = Field(None, description="data set (default: the policy's, then $AMC_DATA)")
    recipe: Literal["short", "recover"] = Field(
        "short", description="fine-tuning defaults: short (1 epoch) or recover (20 epochs, distilled)"
    )
    finetune_epochs: float = Field(1.0, ge=0, description="cosine-LR fine-tuning epochs (0 = none)")
    lr: float = Field(0.01, gt=0, description="initial fine-tuning learning rate")
    distill: bool = Field(False, description="distil from the unpruned model while fine-tuning")
    distill_weight: float = Field(0.7, ge=0, le=1, description="the distillation term's share of the loss")
    curve: bool = Field(True, description="score held-out and test after every epoch (curve.json)")
    calib_images: int = Field(2000, ge=0, description="training images for BN recalibration (0 = off)")
    criterion: str | None = Field(None, description="channel criterion (default: the policy's)")
    iterative: int = Field(1, ge=1, le=64, description="reach the policy in K cuts, fine-tuning between them")
    latency: bool = Field(True, description="measure latency")
    out: str | None = Field(None, description="output folder (default runs/apply/POLICY_NAME)")
    onnx: bool = Field(True, description="also write pruned.onnx (checked against torch with onnxruntime)")
    force: bool = Field(False, description="apply a policy made for another checkpoint or data set")
    seed: int = Field(0, ge=0, description="random seed")
    device: str = Field("auto", description="cpu, cuda, cuda:N or auto")
    precision: Precision = Field("auto", description="auto, bf16 or fp32")
    threads: int | None = Field(None, ge=1, le=1024, description="CPU threads")
    trust_checkpoint: bool = Field(False, description="allow a legacy pickled checkpoint (runs its code)")

    @model_validator(mode="before")
    @classmethod
    def _recipe(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("recipe") in RECIPES:
            values = {**RECIPES[values["recipe"]], **values}
        return values


class CompareRequest(_BaseJob):
    """``amc compare``: several methods at several budgets, applied and measured."""

    flops: list[float] = Field([0.3, 0.5, 0.7], description="MACs targets, e.g. --flops 0.3 0.5 0.7")
    params: list[float] | None = Field(
        None,
        description="parameter targets, e.g. --params 0.2 0.5 0.8: alone, instead of the MACs ones; "
        "with --flops, both sets in one sweep",
    )
    methods: list[str] = Field(
        ["uniform", "global", "sensitivity", "optuna", "ddpg"], description="searchers to compare"
    )
    episodes: int = Field(100, ge=1, description="episodes / trials per learned search")
    warmup: int = Field(25, ge=0, description="DDPG warm-up episodes")
    criterion: str = Field(
        DEFAULT_CRITERION, description="channel selection of every method: group-l1, l1, l2, taylor, random or auto"
    )
    preset: Preset = Field("default", description="the searchers' settings, as amc search --preset")
    finetune_epochs: float = Field(0.0, ge=0, description="fine-tuning epochs per policy (0 = none)")
    proxy_size: int = Field(500, ge=1, description="held-out images scored per policy")
    calib_images: int = Field(250, ge=0, description="BN recalibration images for the search proxy")
    measure_calib_images: int = Field(
        2000, ge=0, description="BN recalibration images before each found policy is measured"
    )
    latency_seconds: float = Field(0.5, gt=0, le=60, description="seconds of timing per latency measurement")
    remeasure_latency: bool = Field(False, description="take every finished row's latencies again (e.g. on an"
                                    " idle machine); run again after a stop, it goes on where it was")  # fmt: skip
    runtimes: list[str] = Field(
        ["torch-fp32", "torch-bf16", "onnxruntime"],
        description="runtimes each network's latency is measured on (batch 1 and 64), plotted against accuracy",
    )
    max_sparsity: float = Field(0.8, ge=0, lt=1, description="largest fraction of a unit's channels removed")
    residual: bool = Field(False, description="also prune channels coupled by residual additions")
    storage: str | None = Field(None, description="Optuna storage (default runs/amc.journal)")
    out: str = Field("runs/compare", description="folder for results.csv/json and the plots")
    train: bool = Field(True, description="train a missing base (--no-train: print the amc train command instead)")

    @field_validator("flops", "params")
    @classmethod
    def _targets(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and (not v or any(not 0 < t <= 1 for t in v)):
            raise ValueError("every target must be in (0, 1], e.g. 0.3 0.5 0.7")
        return v

    @model_validator(mode="before")
    @classmethod
    def _preset_proxy(cls, values: Any) -> Any:
        """A preset's proxy settings fill the ones not given, as in amc search."""
        if isinstance(values, dict) and values.get("preset") in PRESETS:
            given = PRESETS[values["preset"]]
            values = {**{k: given[k] for k in PROXY_FIELDS if k in given}, **values}
        return values

    @property
    def budgets(self) -> list[tuple[str, float]]:
        """``(kind, target)`` pairs: the MACs targets (unless only ``params`` is given), then the
        parameter ones."""
        macs = self.flops if self.params is None or "flops" in self.model_fields_set else []
        return [("macs", t) for t in macs] + [("params", t) for t in self.params or []]

    @field_validator("runtimes")
    @classmethod
    def _runtimes(cls, v: list[str]) -> list[str]:
        from amc.deploy.runtimes import runtime_names

        unknown = [r for r in v if r not in runtime_names()]
        if unknown:
            raise ValueError(f"unknown runtime {unknown[0]!r}: use some of {', '.join(runtime_names())}")
        return v

    @model_validator(mode="after")
    def _warmup(self) -> CompareRequest:
        if "ddpg" in self.methods and self.warmup >= self.episodes:
            raise ValueError(f"--warmup ({self.warmup}) must be smaller than --episodes ({self.episodes})")
        return self


class TrainRequest(_BaseJob):
    """``amc train``: train a base model (or adapt one with ``init``)."""

    init: str | None = Field(None, description="start from these weights (adapt a base)")
    epochs: float = Field(5.0, ge=0.01, le=10_000, description="epochs over the training split")
    lr: float | None = Field(None, gt=0, description="peak one-cycle LR (default 0.02 with --init, else 0.1)")
    label_smoothing: float | None = Field(None, ge=0, lt=1, description="default 0 with --init, else 0.1")
    batch_size: int = Field(128, ge=1, le=65_536, description="images per step")
    out: str | None = Field(None, description="output checkpoint (default: the base cache)")


class ExportRequest(Request):
    """``amc export``: a pruned model (``pruned.pt``) or a base checkpoint as ONNX or torch.export."""

    source: str = Field(description="pruned.pt written by amc apply, or a base checkpoint (with --model)")
    format: Literal["onnx", "pt2"] = Field("onnx", description="onnx (dynamic batch) or pt2 (torch.export)")
    model: str | None = Field(None, description="the architecture of a base checkpoint")
    out: str | None = Field(None, description="output file (default: the source with .onnx / .pt2)")
    trust_checkpoint: bool = Field(False, description="allow a legacy pickled checkpoint (runs its code)")


REQUESTS: dict[str, type[Request]] = {
    "search": SearchRequest,
    "apply": ApplyRequest,
    "compare": CompareRequest,
    "train": TrainRequest,
    "export": ExportRequest,
}


def _message(exc: ValidationError) -> str:
    errors = exc.errors()
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])  # a typo explains the rest
    loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
    msg = str(err["msg"]).removeprefix("Value error, ")
    if not loc:  # a whole-request check: its message names the flags itself
        return msg
    shown = err.get("input")
    got = "" if err["type"] in ("missing", "extra_forbidden") or isinstance(shown, dict) else f", got {shown}"
    if err["type"] == "extra_forbidden":
        return f"unknown option {flag(loc[0])}: see --help for the options"
    return f"{flag(loc[0])}: {msg[0].lower()}{msg[1:]}{got}"


def parse(cls: type[R], values: dict[str, Any]) -> R:
    """A validated ``cls`` from ``values``; a bad value raises :class:`AmcError` with one line
    naming the option and what is wrong (the CLI exits 2, the service answers 422)."""
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        raise AmcError(_message(exc)) from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML spec (``envs/*.toml``) as flat request values: tables are flattened and keys may
    use dashes or underscores."""
    path = Path(path)
    if not path.is_file():
        raise AmcError(f"env spec {path} does not exist: pass a TOML file such as envs/resnet56-cifar10jpeg.toml")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise AmcError(f"env spec {path} is not valid TOML: {exc}") from None
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        items = value.items() if isinstance(value, dict) else [(key, value)]
        for k, v in items:
            flat[k.replace("-", "_")] = v
    return flat


if __name__ == "__main__":  # docs/REQUESTS.md
    from amc.request_docs import markdown_reference

    print(markdown_reference())
