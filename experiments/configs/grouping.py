r"""Task grouping (TAG, Fifty et al. 2021) on MMoE regression with planted task clusters.

  python -m experiments.grouping --config=experiments/configs/grouping.py --workdir=/tmp/tag
  python -m experiments.grouping --config=experiments/configs/grouping.py --workdir=/tmp/t --smoke

Nine regression tasks in three planted clusters (task i in cluster i % 3: identical
weight vectors within a cluster, orthogonal ones between clusters). One all-task run
measures the inter-task affinity, groups are selected for k = 1..max_groups, and the k =
num_groups grouping is trained (one hard-sharing network per group) and compared with all
tasks together and every task alone; the adjusted Rand index says whether the planted
clusters were recovered, on ``grouping.num_seeds`` seeds (each its own draw of the task
set) for both estimators. ``smoke`` shrinks it to three tasks in two clusters (with the
exhaustive search over partitions, two seeds) that runs in seconds.
"""

import ml_collections

from experiments.configs import synthetic


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  smoke = "smoke" in (arg or "").split(",")
  rest = ",".join(a for a in (arg or "").split(",") if a and a != "smoke")
  config = synthetic.get_config(rest or None)
  if "num_seeds" in config:
    config.num_seeds = 1
  config.baseline = ""  # "every task alone" is one of the compared options
  config.taskset_kwargs.update(
    {"num_tasks": 9, "correlation": 1.0, "clusters": 3, "between": 0.0, "n_train": 500}
  )
  config.model_kwargs.width = 8  # a narrow trunk: tasks must share its features
  config.learning_rate = 1e-2
  config.batch_size = 128
  config.num_steps = 800
  config.log_every = 100
  config.checkpoint_every = 0
  config.grouping = ml_collections.ConfigDict(
    {
      "affinity_every": 10,  # steps between affinity measurements
      "estimator": "lookahead",  # lookahead (TAG's Z) | cosine (gradient cosine similarity)
      "lookahead": "optimizer",  # optimizer (the run's optax step) | sgd (θ − lr·∇L_i)
      "lookahead_lr": 0.01,  # the step size of the sgd lookahead
      "max_groups": 3,  # groups are selected for k = 1..max_groups
      "num_groups": 3,  # the k that is trained and reported
      "method": "auto",  # auto | exact | beam
      "exhaustive_max_tasks": 6,  # train every partition into num_groups blocks up to here
      "planted_clusters": 3,  # > 1: the adjusted Rand index against i % planted_clusters
      # > 1: repeat the affinity run on seeds seed + s with task-set seed + s (s < num_seeds)
      # and report each estimator's ARI over them (mean, 95% interval); --seeds=N sets it.
      "num_seeds": 5,
    }
  )
  if smoke:
    config.taskset_kwargs.update({"num_tasks": 3, "clusters": 2, "n_train": 200, "n_test": 200})
    config.num_steps = 100
    config.batch_size = 32
    config.log_every = 100  # one compiled chunk
    config.grouping.max_groups = 2
    config.grouping.num_groups = 2
    config.grouping.planted_clusters = 2
    config.grouping.num_seeds = 2
  return config
