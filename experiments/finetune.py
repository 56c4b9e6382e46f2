r"""Pre-train → checkpoint → fine-tune: adaptation curve, the practices and k-fold CV.

  python -m experiments.finetune --config=experiments/configs/finetune_digits.py --workdir=/tmp/ft
  python -m experiments.finetune --config=experiments/configs/finetune_digits.py:smoke
  python -m experiments.finetune --config.transfer.mtl_source_workdir=workdirs/RUN

Writes summary.json (``curve[ARM][N] = {"mean", "ci95"}``, N = examples per class as a
string), report.md, adaptation_curve.png, practices.png, cv.png and the pre-trained
sources (``sources/{stl,mtl}/``: checkpoints, metrics, summary) into the workdir. Without
``--workdir`` a fresh directory under workdirs/ is created and printed. Bad input: one line
``error: ...`` on stderr, exit status 2, nothing written (``--debug`` for a traceback).
"""

import os
import sys
import time

from absl import app, flags, logging
from ml_collections import config_flags

from experiments import cli
from mtl_jax.transfer import study

DEFAULT = os.path.join(os.path.dirname(__file__), "configs", "finetune_digits.py")


def fold_smoke(argv: list[str]) -> list[str]:
  """Names this launcher's config when none is given, and turns ``--smoke`` into ``:smoke``."""
  out = [a for a in argv if a != "--smoke"]
  at = next((i for i, a in enumerate(out) if a.startswith("--config=")), None)
  if at is None:
    out.insert(1, f"--config={DEFAULT}")
    at = 1
  if "--smoke" in argv:
    path, _, arg = out[at].partition(":")
    out[at] = f"{path}:" + ",".join([a for a in arg.split(",") if a] + ["smoke"])
  return out


if __name__ == "__main__":
  sys.argv[:] = fold_smoke(sys.argv)
  cli.prepare_argv()
config_flags.DEFINE_config_file("config", DEFAULT, "Fine-tuning config.", lock_config=True)
flags.DEFINE_string("workdir", None, "Where the results go (default: a fresh directory).")
flags.DEFINE_bool("smoke", False, "Shrink to a run of seconds (same as --config=FILE:smoke).")
flags.DEFINE_bool("progress", False, "Show progress bars.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  workdir = FLAGS.workdir or os.path.join("workdirs", time.strftime("%Y%m%d-%H%M%S") + "-finetune")
  announce = lambda: print(f"workdir: {os.path.abspath(workdir)}", flush=True)
  try:
    summary = study.run_study(FLAGS.config, workdir, FLAGS.progress, announce)
  except ValueError as e:  # bad config, value, source checkpoint or workdir
    if FLAGS.debug:
      raise
    cli.fail(e)
  print(summary["report"])
  print(f"summary: {os.path.join(os.path.abspath(workdir), 'summary.json')}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
