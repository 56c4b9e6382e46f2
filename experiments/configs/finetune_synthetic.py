r"""Transfer on MMoE-style regression with two task families: positive and negative transfer.

  python -m experiments.finetune --config=experiments/configs/finetune_synthetic.py --workdir=/tmp/f
  python -m experiments.finetune --config=experiments/configs/finetune_synthetic.py:unrelated

Six regression tasks in two planted families (task i in family i % 2: weight vectors with
cosine 0.9 inside a family, orthogonal between families), each task with its own inputs.
The default holds out ``task_2`` and pre-trains on ``task_0`` and ``task_4`` (its own
family, correlated: positive transfer expected); ``:unrelated`` holds out ``task_1`` and
pre-trains on the same family-0 tasks (unrelated: negative transfer expected). n is the
number of target examples (regression has no classes); the metric is test MSE in label
units (lower is better). See docs/transfer.md.
"""

import ml_collections

from experiments.configs import finetune_digits, synthetic


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = [a for a in (arg or "").split(",") if a]
  unrelated = "unrelated" in args
  rest = ",".join(a for a in args if a != "unrelated")
  config = finetune_digits.get_config(rest or None)
  base = synthetic.get_config()
  config.taskset = base.taskset
  config.taskset_kwargs = ml_collections.ConfigDict(
    {"num_tasks": 6, "correlation": 0.9, "clusters": 2, "between": 0.0, "dim": 16,
     "n_train": 200, "n_test": 1000}
  )  # fmt: skip
  config.model_kwargs = ml_collections.ConfigDict({"trunk": "mlp", "width": 64, "depth": 2})
  smoke = "smoke" in args
  config.transfer.target_task = "task_1" if unrelated else "task_2"
  config.transfer.stl_source_task = "task_0"
  config.transfer.mtl_source_tasks = ("task_0", "task_4")
  config.transfer.n_per_class = (10, 1) if smoke else (5, 10, 25, 100, 0)  # examples; 0 = all
  config.practices.n_per_class = 10 if smoke else 25
  if not smoke:
    config.cv.update({"learning_rate": (3e-4, 1e-3, 3e-3), "layer_decay": (1.0, 0.5)})
  return config
