"""mtl_jax's own train step against PyTorch peers on the same model, in one process, as JSON.

The model is the one of ``benchmarks/aggregators.py``: a 64 → 256 → 256 ReLU trunk shared,
T linear heads, per-task batch 32, Adam (lr 1e-3). Two settings:

* ``per_task`` (T in ``--tasks``, default 2, 8, 32): each task its own inputs;
* ``shared_inputs`` (T = ``--shared_tasks``, default 40, CelebA style): one input batch,
  T labels of it.

The JAX side is the library's step (``train.make_train_step`` + ``make_chunk``, built by
``benchmarks/aggregators.runner``): ``equal`` (the plain step), ``upgrad``, ``mgda``,
``mean``, ``pcgrad``, and with shared inputs also ``upgrad`` with ``rep_grad=True`` and
with ``gramian="always"`` (``mtl_jax.gramian``). The
PyTorch side, an eager loop over the same data: ``torch`` (plain summed loss), ``torchjd``
(``mtl_backward`` with the trunk's output as the features, then ``jac_to_grad`` of the trunk
with ``UPGrad``, ``MGDA`` or ``Mean``; the heads get their own gradients, as in mtl_jax)
and ``libmtl_loop`` (LibMTL-style PCGrad: one ``backward`` per task, the flattened shared
gradients projected pairwise in Python). Both sides are pinned to ``--threads`` CPU cores
(process affinity, set before either runtime starts; ``torch.set_num_threads``; OpenMP
waits passively unless ``OMP_WAIT_POLICY`` says otherwise).

torch and torchjd are an optional extra (``pip install -e .[bench]``); without them (or
with ``--jax_only``) only the JAX side is timed and a line says so. Every implementation is
compiled (or warmed up) first, then timed in round robin, ``--repeats`` chunks of
``--chunk`` steps each, and the median taken: the ratios of one run share the same load.

    python benchmarks/vs_torchjd.py                      # the full comparison (minutes)
    python benchmarks/vs_torchjd.py --tasks=8 --shared_tasks=0
    python benchmarks/vs_torchjd.py --quick              # seconds, for smoke tests

Prints one JSON line per (setting, T, impl, method): {"bench": "vs_torchjd", "setting", "T",
"impl", "method", "median_step_ms", "steps_per_s", "ratio_to_plain"} (the step time over the
same impl's plain step); mtl_jax lines also carry "peer" and "speedup_vs_peer" (the peer's
step time over mtl_jax's, measured in the same run). A markdown table goes to stderr.
"""

import argparse
import os
import sys

# Pin both runtimes before either starts its thread pools.
_pre = argparse.ArgumentParser(add_help=False)
_pre.add_argument("--threads", type=int, default=2)
_THREADS = _pre.parse_known_args()[0].threads
if hasattr(os, "sched_setaffinity"):
  _cpus = sorted(os.sched_getaffinity(0))
  os.sched_setaffinity(0, _cpus[: max(1, _THREADS)])
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
  os.environ.setdefault(_var, str(_THREADS))
# OpenMP threads that spin while waiting make torch's 2-thread steps several times slower
# on a machine shared with other work (XLA's own thread pool does not spin): let them sleep.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aggregators import runner as jax_runner  # noqa: E402
from aggregators import taskset as per_task_taskset  # noqa: E402
from rep_grad import shared_input_taskset  # noqa: E402

try:
  import torch
  import torchjd.aggregation as tjd_agg
  from torchjd.autojac import jac_to_grad, mtl_backward
except ImportError:  # the optional extra is not installed
  torch = None

# mtl_jax method (and method_kwargs) -> its PyTorch peer (impl, method).
JAX_METHODS = {
  "equal": ({}, ("torch", "sum")),
  "upgrad": ({}, ("torchjd", "upgrad")),
  "mgda": ({}, ("torchjd", "mgda")),
  "mean": ({}, ("torchjd", "mean")),
  "pcgrad": ({}, ("libmtl_loop", "pcgrad")),
}
# Shared inputs only: upgrad on ∂L/∂Z (rep_grad) and on the Jacobian-free Gramian path.
SHARED_EXTRA = {
  "upgrad_rep_grad": ({"rep_grad": True}, ("torchjd", "upgrad")),
  "upgrad_gramian": ({"gramian": "always"}, ("torchjd", "upgrad")),
}
TORCH_METHODS = [("torch", "sum"), ("torchjd", "upgrad"), ("torchjd", "mgda")]
TORCH_METHODS += [("torchjd", "mean"), ("libmtl_loop", "pcgrad")]


class TorchNet(torch.nn.Module if torch else object):
  """The same network in PyTorch: trunk Linear-ReLU-Linear-ReLU, T stacked linear heads."""

  def __init__(self, t: int, d_in: int, width: int):
    super().__init__()
    self.trunk = torch.nn.Sequential(
      torch.nn.Linear(d_in, width),
      torch.nn.ReLU(),
      torch.nn.Linear(width, width),
      torch.nn.ReLU(),
    )
    self.head_w = torch.nn.Parameter(torch.randn(t, width, 1) / width**0.5)
    self.head_b = torch.nn.Parameter(torch.zeros(t, 1, 1))

  def losses(self, x, y):
    """``(features, losses [T])``: x ``[T, B, D]`` (own inputs) or ``[B, D]`` (shared)."""
    z = self.trunk(x)
    if z.dim() == 2:
      out = torch.einsum("bh,tho->tbo", z, self.head_w) + self.head_b
    else:
      out = torch.bmm(z, self.head_w) + self.head_b
    return z, ((out - y) ** 2).mean(dim=(1, 2))


def _pcgrad_libmtl(net, losses):
  """LibMTL's PCGrad: one backward per task, projections on the flattened shared grads."""
  shared = list(net.trunk.parameters())
  rows = []
  for k in range(losses.shape[0]):
    losses[k].backward(retain_graph=k + 1 < losses.shape[0])
    rows.append(torch.cat([p.grad.reshape(-1) for p in shared]))
    for p in shared:
      p.grad = None
  grads = torch.stack(rows)
  pc = grads.clone()
  for i in range(len(rows)):
    order = list(range(len(rows)))
    random.shuffle(order)
    for j in order:
      dot = torch.dot(pc[i], grads[j])
      if dot < 0:
        pc[i] -= dot * grads[j] / grads[j].norm().pow(2)
  new, start = pc.sum(0), 0
  for p in shared:
    p.grad = new[start : start + p.numel()].view_as(p).clone()
    start += p.numel()


def torch_step_fn(impl: str, method: str, net, opt, x_all, y_all, args, shared: bool):
  """One eager training step of ``impl``/``method`` (samples its own batch)."""
  t, n = y_all.shape[0], y_all.shape[1]
  agg = {"upgrad": tjd_agg.UPGrad, "mgda": tjd_agg.MGDA, "mean": tjd_agg.Mean}.get(method)
  agg = agg() if agg else None
  trunk_params = list(net.trunk.parameters())

  def step():
    if shared:
      idx = torch.randint(0, n, (args.batch,))
      x, y = x_all[0, idx], y_all[:, idx]
    else:
      idx = torch.randint(0, n, (t, args.batch))
      x = torch.gather(x_all, 1, idx[..., None].expand(-1, -1, x_all.shape[-1]))
      y = torch.gather(y_all, 1, idx[..., None])
    opt.zero_grad(set_to_none=True)
    z, losses = net.losses(x, y)
    if impl == "torch":
      losses.sum().backward()
    elif impl == "torchjd":
      # The stacked heads are one graph node for all tasks: keep it for every task's pass.
      mtl_backward(list(losses.unbind()), features=z, retain_graph=True)
      jac_to_grad(trunk_params, agg)
    else:
      _pcgrad_libmtl(net, losses)
    opt.step()

  return step


def torch_runner(impl: str, method: str, ts, args):
  """``timed()``: one more chunk of ``args.chunk`` eager steps, seconds per step (after 2
  warm-up steps)."""
  torch.manual_seed(0)
  random.seed(0)
  x_all, y_all = torch.from_numpy(ts.x_train), torch.from_numpy(ts.y_train)
  net = TorchNet(ts.num_tasks, x_all.shape[-1], args.hidden)
  opt = torch.optim.Adam(net.parameters(), lr=1e-3)
  step = torch_step_fn(impl, method, net, opt, x_all, y_all, args, ts.shared_inputs)
  for _ in range(2):
    step()

  def timed():
    start = time.perf_counter()
    for _ in range(args.chunk):
      step()
    return (time.perf_counter() - start) / args.chunk

  return timed


def _row(setting, t, impl, method, step_s, plain_s):
  return {
    "bench": "vs_torchjd",
    "setting": setting,
    "T": t,
    "impl": impl,
    "method": method,
    "median_step_ms": round(1e3 * step_s, 3),
    "steps_per_s": round(1.0 / step_s, 1),
    "ratio_to_plain": round(step_s / plain_s, 3),
  }


def run_setting(setting: str, t: int, args, with_torch: bool) -> list[dict]:
  """Every JAX method and (``with_torch``) every PyTorch peer at T tasks: JSON rows."""
  if setting == "shared_inputs":
    ts = shared_input_taskset(t, args.examples, args.d_in)
    jax_methods = dict(JAX_METHODS, **SHARED_EXTRA)
  else:
    ts = per_task_taskset(t, args.examples, args.d_in)
    jax_methods = JAX_METHODS
  if args.methods:
    jax_methods = {k: v for k, v in jax_methods.items() if k in args.methods.split(",")}
  peers = {peer for _, peer in jax_methods.values()} | {("torch", "sum")}
  jax_methods = dict({"equal": JAX_METHODS["equal"]}, **jax_methods)  # the plain step
  runners = {}
  for label, (kwargs, _) in jax_methods.items():
    method = label.split("_")[0]  # the labels' base methods have no "_"
    runners["mtl_jax", label] = jax_runner(method, t, args, kwargs or None, ts=ts)[0]
  if with_torch:
    for impl, method in TORCH_METHODS:
      if (impl, method) in peers:
        runners[impl, method] = torch_runner(impl, method, ts, args)
  # Round robin: every implementation sees the same share of the machine's load swings.
  times = {key: [] for key in runners}
  for _ in range(args.repeats):
    for key, timed in runners.items():
      times[key].append(timed())
  med = {key: statistics.median(v) for key, v in times.items()}
  jax_s = {label: med["mtl_jax", label] for label in jax_methods}
  torch_s = {key: v for key, v in med.items() if key[0] != "mtl_jax"}
  rows = []
  for label, (_, peer) in jax_methods.items():
    row = _row(setting, t, "mtl_jax", label, jax_s[label], jax_s["equal"])
    if peer in torch_s:
      row["peer"] = "/".join(peer)
      row["speedup_vs_peer"] = round(torch_s[peer] / jax_s[label], 2)
    rows.append(row)
  for (impl, method), s in torch_s.items():
    rows.append(_row(setting, t, impl, method, s, torch_s["torch", "sum"]))
  for row in rows:
    print(json.dumps(row), flush=True)
  return rows


def table(rows: list[dict]) -> str:
  """Markdown: steps/s of each mtl_jax method beside its peer's, per (setting, T)."""
  keys = sorted({(r["setting"], r["T"]) for r in rows}, key=lambda k: (k[0] != "per_task", k[1]))
  labels = [
    m for m in list(JAX_METHODS) + list(SHARED_EXTRA) if any(r["method"] == m for r in rows)
  ]
  head = "| setting | T | " + " | ".join(f"{m} (peer, ×)" for m in labels) + " |"
  lines = [head, "|" + "---|" * (len(labels) + 2)]
  for setting, t in keys:
    cells = []
    for m in labels:
      r = [
        x
        for x in rows
        if (x["setting"], x["T"], x["impl"], x["method"]) == (setting, t, "mtl_jax", m)
      ]
      if not r:
        cells.append("")
        continue
      r = r[0]
      peer = [
        x
        for x in rows
        if x["setting"] == setting
        and x["T"] == t
        and "/".join((x["impl"], x["method"])) == r.get("peer")
      ]
      cell = f"{r['steps_per_s']:g}"
      if peer:
        cell += f" ({peer[0]['steps_per_s']:g}, {r['speedup_vs_peer']:g}×)"
      cells.append(cell)
    lines.append(f"| {setting} | {t} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--threads", type=int, default=2, help="CPU cores for both sides")
  parser.add_argument("--tasks", default="2,8,32", help="comma list of T (per-task inputs)")
  parser.add_argument("--shared_tasks", type=int, default=40, help="T with shared inputs; 0: skip")
  parser.add_argument("--chunk", type=int, default=10, help="steps per timed chunk")
  parser.add_argument("--repeats", type=int, default=7, help="timed chunks (median taken)")
  parser.add_argument("--batch", type=int, default=32, help="examples per task")
  parser.add_argument("--examples", type=int, default=256, help="examples per task (data)")
  parser.add_argument("--d_in", type=int, default=64)
  parser.add_argument("--hidden", type=int, default=256)
  parser.add_argument(
    "--methods", default="", help="mtl_jax methods (labels above; default all); equal always"
  )
  parser.add_argument("--jax_only", action="store_true", help="skip the PyTorch side")
  parser.add_argument(
    "--quick", action="store_true", help="tiny sizes; T = 2 (and 3 shared) unless given"
  )
  args = parser.parse_args(argv)
  if args.quick:
    args.chunk, args.repeats = 2, 1
    args.tasks = "2" if args.tasks == parser.get_default("tasks") else args.tasks
    args.shared_tasks = (
      3 if args.shared_tasks == parser.get_default("shared_tasks") else args.shared_tasks
    )
    args.hidden, args.batch, args.examples = 32, 8, 32
  with_torch = torch is not None and not args.jax_only
  if torch is None and not args.jax_only:
    print(
      json.dumps(
        {
          "bench": "vs_torchjd",
          "note": "torch/torchjd not installed (pip install -e .[bench]): timing the JAX side only",
        }
      ),
      flush=True,
    )
  if with_torch:
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
  rows = []
  for t in [int(v) for v in args.tasks.split(",") if v]:
    rows += run_setting("per_task", t, args, with_torch)
  if args.shared_tasks:
    rows += run_setting("shared_inputs", args.shared_tasks, args, with_torch)
  print(table(rows), file=sys.stderr)


if __name__ == "__main__":
  main()
