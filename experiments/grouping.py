r"""Which tasks to train together: TAG affinities, group selection and the trained groups.

  python -m experiments.grouping --config=experiments/configs/grouping.py --workdir=/tmp/tag
  python -m experiments.grouping --config=experiments/configs/grouping.py --workdir=DIR --smoke
  python -m experiments.grouping --workdir=/tmp/tag --seeds=10  # the seed study over 10 seeds

Writes affinity.json, affinity.png, results.json and report.md into the workdir and prints
the report (see docs/grouping.md). ``--seeds=N`` repeats the affinity run on N seeds (each
with its own task-set draw) and reports the planted-cluster ARI per estimator (mean, 95%
interval) in results.json["seeds"] and the report. Bad input: one line ``error: ...`` on
stderr, exit 2.
"""

import os
import sys
import time

from absl import app, flags, logging
from ml_collections import config_flags

from experiments import cli
from mtl_jax import grouping

DEFAULT = os.path.join(os.path.dirname(__file__), "configs", "grouping.py")


def fold_smoke(argv: list[str]) -> list[str]:
  """Names this launcher's config when none is given, and turns ``--smoke`` into ``:smoke``."""
  smoke = "--smoke" in argv
  out = [a for a in argv if a != "--smoke"]
  at = next((i for i, a in enumerate(out) if a.startswith("--config=")), None)
  if at is None:
    out.insert(1, f"--config={DEFAULT}")
    at = 1
  if smoke:
    path, _, arg = out[at].partition(":")
    out[at] = f"{path}:" + ",".join([a for a in arg.split(",") if a] + ["smoke"])
  return out


if __name__ == "__main__":
  sys.argv[:] = fold_smoke(sys.argv)
  cli.prepare_argv()
config_flags.DEFINE_config_file("config", DEFAULT, "Grouping config.", lock_config=True)
flags.DEFINE_string("workdir", None, "Where the results go (default: a fresh directory).")
flags.DEFINE_bool("smoke", False, "Shrink to a run of seconds (same as --config=FILE:smoke).")
flags.DEFINE_bool("progress", False, "Show progress bars.")
flags.DEFINE_integer(
  "seeds", None, "Seeds of the affinity study (sets config.grouping.num_seeds; default: config's)."
)
FLAGS = flags.FLAGS


def main(argv):
  del argv
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  config = FLAGS.config
  if FLAGS.seeds is not None:
    config.grouping.num_seeds = FLAGS.seeds
  workdir = FLAGS.workdir or os.path.join("workdirs", time.strftime("%Y%m%d-%H%M%S") + "-tag")
  try:
    grouping.run_procedure(config, workdir, FLAGS.progress)
  except ValueError as e:
    if FLAGS.debug:
      raise
    cli.fail(e)
  with open(os.path.join(workdir, "report.md")) as f:
    print(f.read())
  print(f"results: {os.path.join(os.path.abspath(workdir), 'results.json')}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
