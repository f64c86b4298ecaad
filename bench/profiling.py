"""Profiling one case with torch.profiler, and measured time per layer beside the static analysis.

Method: the case is built exactly as the worker builds it (``bench.prepare.Prepared``)
and stepped under ``torch.profiler.profile`` with a wait=1, warmup=1,
active=``steps`` schedule, CPU (and CUDA where the case runs there) activities,
shapes and memory recorded. Traces go through
``torch.profiler.tensorboard_trace_handler`` (gzipped ``*.pt.trace.json.gz``)
into ``<out>/<run>/<case>/``: the layout ``tensorboard --logdir <out>`` with the
torch-tb-profiler plugin reads, and files Perfetto and chrome://tracing open.

Per-layer time: every leaf module's forward is wrapped in a
``record_function("layer::<path>")`` scope, only for the profile (``cnnbench run`` never has them, so its timings carry no scoping
overhead); its time is the scope's total over the active steps divided by their
number (device time on CUDA, CPU time otherwise). The step time is a
``cnnbench::step`` scope around each step (for inference, the forward inside
``inference_mode``; synchronised on CUDA), averaged the same way. In training mode each backward node is charged to the layer
whose forward op has its sequence number (autograd's link between a forward op
and its backward node), giving ``backward_ms`` per layer without backward hooks
(which autograd refuses on modules running in-place ReLUs); ``time_share`` is
then forward plus backward over the step.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from . import escape, processes
from .analysis import analyse
from .cases import Case
from .errors import BadValue, CnnbenchError, first_line
from .precision import DTYPE_BYTES, weight_dtype
from .devices import device_of
from .prepare import Prepared, skip_reason
from .values import writable_folder
from .zoo import load_plugins

SCOPE = "layer::"
STEP = "cnnbench::step"
SUMMARY = "summary.json"
BACKWARD = "autograd::engine::evaluate_function: "


@dataclass(frozen=True)
class ProfileResult:
    case: Case
    trace_dir: Path
    trace_files: tuple[Path, ...]
    step_ms: float
    layers: tuple[dict[str, Any], ...]  # joined with the static analysis, one per leaf module
    top_ops: tuple[dict[str, Any], ...]  # key_averages by self time (device time where the device has its own)
    memory_timeline: Optional[Path] = None


def case_slug(case: Case) -> str:
    """The case's folder and trace-file name: its key through ``escape.slug`` (a plugin may name a model
    anything, '../x' and 'a/b' included)."""
    return escape.slug(case.key)


class _Scopes:
    """Wrap every leaf module's forward in a profiler scope; undone on exit.

    Wrapping ``forward`` on the instance, rather than adding forward hooks, keeps
    ``Module.__call__`` on its fast path, so the scopes cost little outside themselves.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.leaves = [(path, m) for path, m in model.named_modules() if path and not any(True for _ in m.children())]

    def __enter__(self) -> "_Scopes":
        enter, exit_ = torch.ops.profiler._record_function_enter_new, torch.ops.profiler._record_function_exit
        for path, module in self.leaves:
            def wrapped(*args: Any, _forward=module.forward, _name=SCOPE + path, **kwargs: Any) -> Any:
                handle = enter(_name, None)
                try:
                    return _forward(*args, **kwargs)
                finally:
                    exit_._RecordFunction(handle)
            module.forward = wrapped
        return self

    def __exit__(self, *exc: Any) -> None:
        for _, module in self.leaves:
            del module.forward


def profile_case(case: Case, *, out: "str | Path" = "results/profiles", run: str = "adhoc",
                 steps: int = 3) -> ProfileResult:
    reason = skip_reason(case)
    if reason:
        raise BadValue(f"case {case.key} cannot run here: {reason}")
    trace_dir = escape.path(out, run, case.key)
    writable_folder(trace_dir, "profiles")
    device = device_of(case.device)
    device.setup(case.threads)
    prep = Prepared(case)
    train_step = prep.step()
    train_step()  # cold start and compilation stay out of the profile

    def step() -> None:
        if case.mode == "infer":  # the step scope inside the grad-mode switch: the forward, and only it
            with torch.inference_mode(), prep.autocast(), torch.profiler.record_function(STEP):
                prep.callable(prep.x)
                device.synchronize()
        else:
            with torch.profiler.record_function(STEP):
                train_step()
                device.synchronize()

    use_device = device.profile_device_time
    with _Scopes(prep.model), torch.profiler.profile(
        activities=device.profiler_activities(),
        schedule=torch.profiler.schedule(wait=1, warmup=1, active=steps, repeat=1),
        on_trace_ready=torch.profiler.tensorboard_trace_handler(str(trace_dir), worker_name=case_slug(case),
                                                               use_gzip=True),
        record_shapes=True, profile_memory=True, with_stack=use_device,
    ) as prof:
        for _ in range(2 + steps):
            step()
            prof.step()
    timeline = None
    if use_device:
        timeline = trace_dir / "memory_timeline.html"
        with contextlib.suppress(Exception):  # an optional view: its absence is not worth failing the profile
            prof.export_memory_timeline(str(timeline), device=str(device.torch_device()))
        timeline = timeline if timeline.exists() else None
    events = prof.events()
    per_layer: dict[str, float] = {}
    backward: dict[str, float] = {}
    owner_of_seq: dict[int, str] = {}
    step_total = 0.0
    for e in events:
        if e.name.startswith(SCOPE):
            total = getattr(e, "device_time_total", 0.0) if use_device else e.cpu_time_total
            per_layer[e.name[len(SCOPE):]] = per_layer.get(e.name[len(SCOPE):], 0.0) + total
        elif e.name == STEP:
            step_total += e.cpu_time_total
        elif e.sequence_nr >= 0 and not e.name.startswith(BACKWARD):
            layer = _enclosing_layer(e)
            if layer is not None:
                owner_of_seq.setdefault(e.sequence_nr, layer)
    # backward: autograd runs node N of the forward op with sequence number N; charge it to that op's layer
    for e in events:
        if e.name.startswith(BACKWARD) and e.sequence_nr in owner_of_seq:
            layer = owner_of_seq[e.sequence_nr]
            total = getattr(e, "device_time_total", 0.0) if use_device else e.cpu_time_total
            backward[layer] = backward.get(layer, 0.0) + total
    step_ms = step_total / steps / 1e3
    top_ops = _top_ops(prof.key_averages(), steps, use_device)
    layers = _join(case, {k: v / steps / 1e3 for k, v in per_layer.items()},
                   {k: v / steps / 1e3 for k, v in backward.items()} if case.mode == "train" else None, step_ms)
    files = tuple(sorted(trace_dir.glob("*.pt.trace.json.gz")))
    result = ProfileResult(case, trace_dir, files, step_ms, layers, top_ops, timeline)
    (trace_dir / SUMMARY).write_text(json.dumps(summary(result), indent=1, default=str))
    return result


def _top_ops(averages: Any, steps: int, by_device: bool) -> tuple[dict[str, Any], ...]:
    """The 20 operators with the most self time per step: device time on a device that has its own (a GPU's
    kernels, not the CPU time that launched them), CPU time otherwise."""
    def self_time(a: Any) -> float:
        return getattr(a, "self_device_time_total", 0.0) if by_device else a.self_cpu_time_total

    ops = [a for a in averages
           if not a.key.startswith(SCOPE) and a.key != STEP and not a.key.startswith("ProfilerStep")]
    rows = []
    for a in sorted(ops, key=self_time, reverse=True)[:20]:
        row = {"operator": a.key, "calls": a.count, "self_cpu_ms": a.self_cpu_time_total / steps / 1e3,
               "cpu_total_ms": a.cpu_time_total / steps / 1e3}
        if by_device:
            row["self_device_ms"] = self_time(a) / steps / 1e3
        rows.append(row)
    return tuple(rows)


def summary(result: ProfileResult) -> dict[str, Any]:
    """What the report shows of a profile; written beside the traces as summary.json."""
    return {"case": result.case.to_dict(), "case_key": result.case.key, "step_ms": result.step_ms,
            "trace_files": [f.name for f in result.trace_files], "layers": list(result.layers),
            "top_ops": list(result.top_ops)}


def load_summaries(root: "str | Path", run_id: str) -> list[dict[str, Any]]:
    """The profile summaries of one run (``cnnbench run --profile``), with their folders."""
    out = []
    for path in sorted(escape.path(root, run_id).glob(f"*/{SUMMARY}")):
        with contextlib.suppress(OSError, ValueError):
            doc = json.loads(path.read_text())
            doc["trace_dir"] = str(path.parent)
            out.append(doc)
    return out


def _enclosing_layer(event: Any) -> Optional[str]:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith(SCOPE):
            return parent.name[len(SCOPE):]
        parent = parent.cpu_parent
    return None


def _join(case: Case, measured_ms: dict[str, float], backward_ms: Optional[dict[str, float]],
          step_ms: float) -> tuple[dict[str, Any], ...]:
    dtype = weight_dtype(case.precision)
    static = analyse(case.model, batch_size=case.batch_size, input_shape=case.input_shape, dtype=dtype, training=False)
    itemsize = DTYPE_BYTES[dtype]
    rows = []
    for layer in static.layers:
        if layer.path not in measured_ms:
            continue
        ms = measured_ms[layer.path]
        back = backward_ms.get(layer.path, 0.0) if backward_ms is not None else None
        flops = 2 * layer.macs
        moved = layer.activation_bytes + layer.params * itemsize
        rows.append({
            "layer": layer.path, "type": layer.type, "output_shape": layer.output_shape, "params": layer.params,
            "macs": layer.macs, "activation_bytes": layer.activation_bytes, "time_ms": ms,
            "backward_ms": back,
            "time_share": (ms + (back or 0.0)) / step_ms if step_ms else float("nan"),
            "achieved_gflop_s": flops / (ms / 1e3) / 1e9 if ms > 0 and flops else 0.0,
            "intensity_flop_per_byte": flops / moved if moved else 0.0,
        })
    return tuple(rows)


def read_trace(path: "str | Path") -> dict[str, Any]:
    with gzip.open(path, "rt") as fh:
        return json.load(fh)


def main(argv: list[str]) -> int:
    """``python -m bench.profiling REQUEST.json``: what ``run --profile`` starts per measured case.

    The request is ``{"case": Case.to_dict(), "out": trace root, "run": folder, "steps": N,
    **RunOptions.worker_flags()}``, the flags set as the measuring worker set them (``bench.prepare.apply_flags``);
    the profile lands as ``profile_case`` writes it; a failure ends with its line on stderr and status 1.
    """
    from .prepare import apply_flags

    request = json.loads(Path(argv[0]).read_text())
    processes.own_limit(request.get("timeout_s"))  # the runner's limit, kept even if the runner is gone
    try:
        apply_flags(request)
        load_plugins()
        profile_case(Case.from_dict(request["case"]), out=request["out"], run=request["run"],
                     steps=int(request.get("steps", 3)))
    except CnnbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the runner reports it in the case's row
        print(f"error: {type(exc).__name__}: {first_line(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


__all__ = ["ProfileResult", "profile_case", "read_trace", "case_slug", "summary", "load_summaries"]
