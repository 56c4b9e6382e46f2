r"""Trains and evaluates a multi-task model from a config file.

  python -m experiments.train --config=experiments/configs/default.py --workdir=/tmp/mtl
  python -m experiments.train --config=experiments/configs/default.py:smoke
  python -m experiments.train --config.method=pcgrad --config.method_kwargs.rescale=1

Writes config.json, metrics.jsonl and summary.json into the workdir and prints the
per-task table (and Δm% when the config names a baseline). Bad input: one line
``error: ...`` on stderr, exit status 2, nothing written (``--debug`` for a traceback).
"""

import os
import time

from absl import app, flags, logging
from ml_collections import config_flags

from experiments import cli
from mtl_jax import experiment

if __name__ == "__main__":
  cli.prepare_argv()  # before DEFINE_config_file, which reads sys.argv
config_flags.DEFINE_config_file("config", cli.DEFAULT_CONFIG, "Training config.", lock_config=True)
flags.DEFINE_string("workdir", None, "Where config, metrics and summary go (default: fresh).")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  if not FLAGS["verbosity"].present:
    # orbax and jax log every checkpoint operation at INFO; --verbosity=0 brings them back.
    logging.set_verbosity(logging.WARNING)
  workdir = FLAGS.workdir or os.path.join(
    "workdirs", time.strftime("%Y%m%d-%H%M%S") + f"-{FLAGS.config.model}"
  )
  announce = lambda: print(f"workdir: {os.path.abspath(workdir)}", flush=True)
  try:
    summary = experiment.train_and_evaluate(FLAGS.config, workdir, FLAGS.progress, announce)
  except ValueError as e:  # bad config, data, hyperparameters or checkpoint
    if FLAGS.debug:
      raise
    cli.fail(e)
  except experiment.NonFiniteError as e:
    if FLAGS.debug:
      raise
    cli.fail(e, code=1)
  print(summary["table"])
  print(f"summary: {os.path.join(os.path.abspath(workdir), 'summary.json')}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
