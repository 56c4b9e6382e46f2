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
from mtl_jax import experiment, sharding, writers

if __name__ == "__main__":
  cli.prepare_argv()  # before DEFINE_config_file, which reads sys.argv
config_flags.DEFINE_config_file("config", cli.DEFAULT_CONFIG, "Training config.", lock_config=True)
flags.DEFINE_string("workdir", None, "Where config, metrics and summary go (default: fresh).")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.DEFINE_string(
  "coordinator_address", None, "Multi-process: process 0's host:port (or JAX_COORDINATOR_ADDRESS)."
)
flags.DEFINE_integer("num_processes", None, "Multi-process: how many (or JAX_NUM_PROCESSES).")
flags.DEFINE_integer("process_id", None, "Multi-process: this one's id (or JAX_PROCESS_ID).")
flags.DEFINE_integer(
  "heartbeat_timeout",
  sharding.HEARTBEAT_TIMEOUT_S,
  "Multi-process: seconds without a peer's heartbeat before this process stops.",
)
FLAGS = flags.FLAGS


def _join_processes():
  """Multi-process (``--config.distributed``, a process flag or ``JAX_NUM_PROCESSES`` > 1):
  join the other processes before anything touches JAX."""
  given = (FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  if not sharding.distributed_requested(FLAGS.config) and all(v is None for v in given):
    return
  if not FLAGS.workdir:
    raise ValueError("a multi-process run needs --workdir (one directory every process sees)")
  sharding.initialize_distributed(*given, heartbeat_timeout_s=FLAGS.heartbeat_timeout)
  if "distributed" in FLAGS.config:
    FLAGS.config.distributed = True  # config.json says how it ran


def main(argv):
  del argv
  if not FLAGS["verbosity"].present:
    # orbax and jax log every checkpoint operation at INFO; --verbosity=0 brings them back.
    logging.set_verbosity(logging.WARNING)
  try:
    _join_processes()
  except ValueError as e:
    if FLAGS.debug:
      raise
    cli.fail(e)
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
  if writers.is_writer():  # process 0 (the others trained the same runs)
    print(summary["table"])
    print(f"summary: {os.path.join(os.path.abspath(workdir), 'summary.json')}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
