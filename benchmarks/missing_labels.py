"""Cost of the missing-label path (methods run on the present tasks only), as JSON lines.

The task set is ``digit_attributes`` with its regression task (T = 5 tasks on the same
64-pixel digits: one softmax, three sigmoid, one regression), the model ``hard_sharing``
(a 64 → 256 → 256 ReLU trunk shared, T linear heads), K = T, Adam. Each method runs twice
through the library's own step (``make_train_step`` + ``make_chunk``): on the full labels
and with ``missing_rate`` of the labels dropped, which turns on the present-subset path
(``mtl_jax/present.py``: the method compiled for 1..K present tasks, picked by
``lax.switch``). Timed per step over chunks of ``--chunk`` steps after a compile chunk.

    python benchmarks/missing_labels.py                      # equal, mean, mgda, upgrad, famo
    python benchmarks/missing_labels.py --methods=mgda --missing_rate=0.5
    python benchmarks/missing_labels.py --quick              # seconds

Prints one line per (method, missing_rate):
{"bench": "missing_labels", "method", "T", "missing_rate", "median_step_ms",
"ratio_to_full_labels", "compile_s"}.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from aggregators import bench as library_bench  # noqa: E402

from mtl_jax.data import get_taskset  # noqa: E402


def bench(method: str, missing_rate: float, args) -> tuple[float, float]:
  """(median seconds per step, compile seconds) of one method at one missing rate."""
  ts = get_taskset("digit_attributes", include_regression=True, missing_rate=missing_rate)
  return library_bench(method, ts.num_tasks, args, ts=ts)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--methods", default="equal,mean,mgda,upgrad,famo", help="comma list")
  parser.add_argument("--missing_rate", type=float, default=0.3)
  parser.add_argument("--chunk", type=int, default=20, help="steps per timed chunk")
  parser.add_argument("--repeats", type=int, default=5, help="timed chunks (median taken)")
  parser.add_argument("--batch", type=int, default=32, help="examples per step")
  parser.add_argument("--hidden", type=int, default=256)
  parser.add_argument("--quick", action="store_true", help="tiny sizes, one method")
  args = parser.parse_args(argv)
  if args.quick:
    args.methods, args.chunk, args.repeats, args.hidden, args.batch = "mgda", 2, 1, 16, 4
  for name in args.methods.split(","):
    full, masked = bench(name, 0.0, args), bench(name, args.missing_rate, args)
    for rate, (step_s, compile_s) in ((0.0, full), (args.missing_rate, masked)):
      row = {
        "bench": "missing_labels",
        "method": name,
        "T": 5,
        "missing_rate": rate,
        "median_step_ms": round(1e3 * step_s, 3),
        "ratio_to_full_labels": round(step_s / full[0], 3),
        "compile_s": round(compile_s, 3),
      }
      print(json.dumps(row), flush=True)


if __name__ == "__main__":
  main()
