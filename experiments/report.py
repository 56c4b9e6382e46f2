r"""Re-draws a run's plots from the files in its workdir.

  python -m experiments.report --workdir=workdirs/default

Writes curves.png (per-task training loss, mean and band over seeds), test_metrics.png
(per-task test metric with 95% CIs, model vs baseline) and delta_m.png (Δm% per seed,
mean and CI) next to summary.json.
"""

import os

from absl import app, flags

from experiments import cli
from mtl_jax import plots

flags.DEFINE_string("workdir", None, "A finished run's workdir (holds summary.json).")
flags.DEFINE_bool("smoke", False, "Accepted for uniformity with the other scripts.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  if not FLAGS.workdir or not os.path.exists(os.path.join(FLAGS.workdir, "summary.json")):
    cli.fail(ValueError(f"--workdir={FLAGS.workdir!r} holds no summary.json (a finished run)"))
  for path in plots.draw_all(FLAGS.workdir):
    print(path)


if __name__ == "__main__":
  app.run(main)
