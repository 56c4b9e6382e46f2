r"""Transfer on rotated digits: pre-train on three rotations, fine-tune on a held-out one.

  python -m experiments.finetune --config=experiments/configs/finetune_digits.py --workdir=/tmp/ft
  python -m experiments.finetune --config=experiments/configs/finetune_digits.py:smoke

Four tasks classify sklearn's digits rotated by 0/15/30/45 degrees, each on its own
disjoint images (337 training and 112 test images per task). ``rot30`` is the target 𝒯_b;
the multi-task source trains on rot15, rot0 and rot45 (hard sharing), the single-task
source on rot15 alone (a neighbouring rotation). The base fields (model, optimiser,
num_steps, num_seeds, ...) are the pre-training runs', as in ``default.py``; ``transfer``
holds the fine-tuning practices, ``practices`` the settings whose effect is measured one at
a time, ``cv`` the grid of the k-fold cross-validation. See docs/transfer.md.
"""

import ml_collections

from experiments.configs import default


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = [a for a in (arg or "").split(",") if a]
  smoke = "smoke" in args
  config = default.get_config(",".join(a for a in args if a != "smoke") or None)
  config.taskset_kwargs.angles = (0, 15, 30, 45)
  config.baseline = ""
  config.num_seeds = 8  # sources and every fine-tuning arm: seed s fine-tunes source seed s
  config.num_steps = 1000  # pre-training steps
  config.checkpoint_every = 0  # sources are saved once, at the end
  config.transfer = ml_collections.ConfigDict(
    {
      "target_task": "rot30",  # the held-out task 𝒯_b
      "stl_source_task": "rot15",  # the single-task source's task (row 0 of both sources)
      # A finished `python -m experiments.train` workdir (or checkpoint dir) to use as a
      # source instead of pre-training one here ("" = pre-train in workdir/sources/NAME).
      "mtl_source_workdir": "",
      "stl_source_workdir": "",
      "source_row": 0,  # task row of a source's task-specific layers (a kept head)
      "num_steps": 300,  # fine-tuning steps (every arm, every n)
      "batch_size": 32,
      "optimizer": "adam",  # adam | sgd (plain), scaled per layer
      "learning_rate": 3e-4,  # the smaller fine-tuning rate (of the head, level 0)
      "scratch_learning_rate": 1e-3,  # the from-scratch arm's rate
      "probe_learning_rate": 1e-2,  # the linear probe's rate (only the head trains)
      "layer_decay": 1.0,  # level d (0 = head) trains at learning_rate * layer_decay**d
      "freeze_layers": 0,  # bottom trunk layers never trained (no optimiser state/gradient)
      "unfreeze_every": 0,  # > 0: head first, one more layer every N steps (0: all at once)
      "head": "reinit",  # reinit | keep (the source's head, row source_row)
      "n_per_class": (1, 5, 10, 25, 0),  # curve points; 0 = all (largest balanced subset)
    }
  )
  config.practices = ml_collections.ConfigDict(
    {"n_per_class": 5, "layer_decay": 0.5, "freeze_layers": 1, "unfreeze_every": 60}
  )
  config.cv = ml_collections.ConfigDict(
    {
      "folds": 5,
      "n_per_class": 0,  # 0: all of D^tr_b
      "learning_rate": (1e-4, 3e-4, 1e-3, 3e-3),
      "layer_decay": (1.0, 0.5),
      "freeze_layers": (0, 1),
    }
  )
  if smoke:
    config.num_steps, config.num_seeds, config.log_every, config.batch_size = 30, 2, 30, 16
    config.transfer.update({"num_steps": 20, "batch_size": 16, "n_per_class": (1, 0)})
    config.practices.update({"n_per_class": 1, "unfreeze_every": 5})
    config.cv.update(
      {"folds": 2, "learning_rate": (1e-3,), "layer_decay": (1.0, 0.5), "freeze_layers": (0,)}
    )
  return config
