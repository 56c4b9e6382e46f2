r"""Trains and evaluates a multi-task model from a config file.

  python -m experiments.train --config=experiments/configs/default.py --workdir=/tmp/mtl
  python -m experiments.train --config=experiments/configs/default.py:smoke
  python -m experiments.train --config.method=pcgrad --config.num_steps=500

Writes config.json, metrics.jsonl and summary.json into the workdir and prints the
per-task table (and Δm% when the config names a baseline).
"""

import os
import time

from absl import app, flags, logging
from ml_collections import config_flags

from mtl_jax import experiment

_DEFAULT = os.path.join(os.path.dirname(__file__), "configs", "default.py")
config_flags.DEFINE_config_file("config", _DEFAULT, "Training configuration.", lock_config=True)
flags.DEFINE_string("workdir", None, "Where config, metrics and summary go (default: fresh).")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  if not FLAGS["verbosity"].present:
    # orbax and jax log every checkpoint operation at INFO; --verbosity=0 brings them back.
    logging.set_verbosity(logging.WARNING)
  workdir = FLAGS.workdir
  if workdir is None:
    workdir = os.path.join("workdirs", time.strftime("%Y%m%d-%H%M%S") + f"-{FLAGS.config.model}")
  print(f"workdir: {os.path.abspath(workdir)}")
  summary = experiment.train_and_evaluate(FLAGS.config, workdir, progress=FLAGS.progress)
  print(summary["table"])
  print(f"summary: {os.path.join(os.path.abspath(workdir), 'summary.json')}")


if __name__ == "__main__":
  app.run(main)
