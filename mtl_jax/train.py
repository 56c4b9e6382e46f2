"""The training loop: sample tasks, sample data, per-task losses, backprop, optax update.

:func:`train_step` is one pure function, ``(state, **static) -> (state, metrics)``; bind
its static arguments with ``functools.partial`` (:func:`make_train_step` does) and
:func:`make_chunk` runs ``n`` steps under ``jax.lax.scan`` inside one ``jax.jit``
(sampling happens on the device); the host only logs, evaluates and checkpoints between
chunks. On the streaming path (:mod:`mtl_jax.data.streaming`) the step takes its batch as
an argument instead and the chunk scans over the stacked batches the host sends. Whether
the method is a loss weighting or a gradient aggregator is the
:class:`~mtl_jax.methods.Method`'s business: the step calls ``method.grads``.
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mtl_jax import methods
from mtl_jax.data.sampling import DeviceData, TaskBatch, sample_batch
from mtl_jax.gradients import Objective, present_tasks, tree_norm


class TrainState(NamedTuple):
  step: jax.Array  # int32 scalar
  params: Any  # {"shared": θ^sh, "tasks": θ^{1..T} stacked}
  opt_state: Any
  method_state: Any  # weighting or aggregator state
  rng: jax.Array  # base key; step keys are fold_in(rng, step)


def make_optimizer(
  name: str = "adam",
  learning_rate: float = 1e-3,
  weight_decay: float = 0.0,
  clip_norm: float = 0.0,
  schedule: str = "constant",
  num_steps: int = 1,
) -> optax.GradientTransformation:
  """The optax chain that applies the (aggregated) gradient."""
  lr = learning_rate
  if schedule == "cosine":
    lr = optax.cosine_decay_schedule(learning_rate, max(1, num_steps))
  elif schedule != "constant":
    raise ValueError(f"unknown schedule {schedule!r}; valid: constant, cosine")
  opts = {
    "adam": lambda: optax.adam(lr),
    "adamw": lambda: optax.adamw(lr, weight_decay=weight_decay),
    "sgd": lambda: optax.sgd(lr, momentum=0.9),
  }
  if name not in opts:
    raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(sorted(opts))}")
  chain = [optax.clip_by_global_norm(clip_norm)] if clip_norm > 0 else []
  return optax.chain(*chain, opts[name]())


def init_state(method: methods.Method, optimizer, params, rng: jax.Array, num_tasks: int):
  """The initial :class:`TrainState` (step 0) for ``params``."""
  mstate = method.init(params, num_tasks)
  state = TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params), mstate, rng)
  # The state is donated to each chunk: no two leaves may share a buffer (an init that
  # reuses one zeros array for two fields would otherwise be donated twice).
  return jax.tree.map(lambda x: jnp.array(x, copy=True), state)


def train_step(
  state: TrainState,
  *,
  obj: Objective,
  method: methods.Method,
  optimizer: optax.GradientTransformation,
  data: DeviceData,
  tasks_per_batch: int,
  batch_size: int,
  constrain_batch: Callable | None = None,
  batch: TaskBatch | None = None,
):
  """One step: sample K tasks and a batch each, the method's gradient, the optax update.

  With ``batch`` given (the streaming path, :mod:`mtl_jax.data.streaming`) nothing is
  sampled: it must be the batch :func:`~mtl_jax.data.sampling.sample_batch` would draw with
  this step's key (``data`` then only sizes the step and may hold no rows).

  Returns:
    ``(state, metrics)`` with ``loss_sum [T]``, ``loss_count [T]`` (per-task losses
    scattered by task id; a task with no labelled example in the batch is not counted),
    ``weight_sum [T]``, ``loss`` (weighted total), ``grad_norm``, ``update_norm``,
    ``param_norm``.
  """
  rng = jax.random.fold_in(state.rng, state.step)
  k_batch, k_method = jax.random.split(rng)
  if batch is None:
    batch = sample_batch(k_batch, data, tasks_per_batch, batch_size, obj.shared_inputs)
  if constrain_batch is not None:  # e.g. split the examples over the mesh's "data" axis
    batch = constrain_batch(batch)
  extras = methods.compute_extras(method, obj, state.params, batch, k_method, state.step)
  grads, losses, w, mstate = method.grads(obj, state.params, state.method_state, batch, extras)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  zeros = jnp.zeros((data.n_train.shape[0],), losses.dtype)
  metrics = {
    "loss_sum": zeros.at[batch.task].add(losses),
    "loss_count": zeros.at[batch.task].add(present_tasks(obj, batch).astype(losses.dtype)),
    "weight_sum": zeros.at[batch.task].add(w),
    "loss": jnp.sum(w * losses),
    "grad_norm": tree_norm(grads),
    "update_norm": tree_norm(updates),
    "param_norm": tree_norm(params),
  }
  return TrainState(state.step + 1, params, opt_state, mstate, state.rng), metrics


def make_train_step(
  model,
  data: DeviceData,
  optimizer: optax.GradientTransformation,
  method: str = "equal",
  method_kwargs: dict | None = None,
  *,
  tasks_per_batch: int,
  batch_size: int,
  shared_inputs: bool = False,
  constrain_batch: Callable | None = None,
  data_argument: bool = False,
  batch_argument: bool = False,
  missing_labels: bool | None = None,
) -> tuple[Callable, Callable]:
  """Binds :func:`train_step` for one model, data set, optimiser and method name.

  With ``data_argument`` the data is not bound: the step is ``train_step(state, data)``
  and takes any data of ``data``'s tasks and shapes (e.g. each seed's own, vmapped with
  the state by :func:`make_chunk`); ``data`` then only sizes the step. With
  ``batch_argument`` (the streaming path) the step is ``train_step(state, batch)`` and
  trains on the given :class:`TaskBatch` (with ``shared_inputs`` its ``x`` may hold one
  row of tasks, ``[1, B, ...]``: it is broadcast to the K tasks on the device).
  ``missing_labels`` (None: whether ``data.y_train`` has NaN rows) turns on the
  missing-label path (:class:`~mtl_jax.gradients.Objective`); pass it when ``data`` holds
  no rows (streaming).

  Returns:
    ``(init_state(rng, params), train_step(state) -> (state, metrics))`` (its arguments
    ``(state, data)`` with ``data_argument``, ``(state, batch)`` with ``batch_argument``).
  """
  t = model.num_tasks
  if not 1 <= tasks_per_batch <= t:
    raise ValueError(f"tasks_per_batch (K) must be in [1, T={t}], got {tasks_per_batch}")
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}")

  def rep_template(params):  # a zeros Z of one batch (sizes rep_grad aggregators' state)
    x = jnp.zeros((batch_size,) + data.x_train.shape[2:], data.x_train.dtype)
    z = jax.eval_shape(model.represent, params["shared"], x)
    return jnp.zeros(z.shape, z.dtype)

  m = methods.get(
    method,
    num_tasks=t,
    tasks_per_batch=tasks_per_batch,
    rep_template=rep_template,
    **(method_kwargs or {}),
  )
  methods.check_model(m, model, shared_inputs=shared_inputs)
  if missing_labels is None:  # NaN label rows in the data (none without a y_train)
    y = getattr(data, "y_train", None)
    missing_labels = y is not None and bool(jnp.isnan(y[..., 0]).any())
  obj = Objective(model, data.kind, data.out_mask, shared_inputs, missing_labels)
  bound = functools.partial(
    train_step,
    obj=obj,
    method=m,
    optimizer=optimizer,
    tasks_per_batch=tasks_per_batch,
    batch_size=batch_size,
    constrain_batch=constrain_batch,
  )

  def step(state: TrainState):  # a plain function (chex.assert_max_traces inspects it)
    return bound(state, data=data)

  def step_on(state: TrainState, data: DeviceData):  # data_argument: data with each call
    return bound(state, data=data)

  def step_with(state: TrainState, batch: TaskBatch):  # batch_argument: a streamed batch
    if shared_inputs:  # one row of inputs serves every task
      batch = batch._replace(
        x=jnp.broadcast_to(batch.x[:1], (tasks_per_batch,) + batch.x.shape[1:])
      )
    return bound(state, data=data, batch=batch)

  if data_argument and batch_argument:
    raise ValueError("make_train_step: data_argument and batch_argument exclude each other")
  init = lambda rng, params: init_state(m, optimizer, params, rng, t)
  return init, (step_on if data_argument else step_with if batch_argument else step)


def make_chunk(
  train_step: Callable, length: int, num_seeds: int = 1, scan_batches: bool = False
) -> Callable:
  """``run(state, *args) -> (state, metrics)``: ``length`` steps under one jitted ``lax.scan``.

  ``args`` are passed on to every ``train_step(state, *args)`` (none for a step with its
  data bound; the data for one made with ``data_argument``); only the state is donated.
  With ``scan_batches`` (a step made with ``batch_argument``) it is ``run(state, batches)``:
  a pytree of ``length`` stacked batches (leading axis ``length``, after the seed axis)
  scanned over, step i training on batch i.
  With ``num_seeds = N > 1`` the state (and every arg) carries a leading seed axis N and
  the whole chunk is vmapped over it: N independent runs in one compiled program (every
  output below then has that leading axis too).

  Metrics are summed over the chunk (per-task sums/counts stay separable); norms and the
  total loss are averaged. The host learns of NaN/Inf from ``nonfinite_step`` (the first
  bad step, counted like ``state.step`` after it, or -1) and ``nonfinite_tasks [T]`` (the
  tasks whose loss was non-finite at that step), so it can stop and name them.
  """

  def run(state, *args):
    start = state.step
    if scan_batches:
      state, ms = jax.lax.scan(train_step, state, args[0], length=length)
    else:
      state, ms = jax.lax.scan(lambda s, _: train_step(s, *args), state, None, length=length)
    out = {key: ms[key].sum(0) for key in ("loss_sum", "loss_count", "weight_sum")}
    out.update({key: ms[key].mean(0) for key in ms if key not in out})
    # Per step, so the first bad step is exact even when later steps are all NaN.
    bad_task_NxT = ~jnp.isfinite(ms["loss_sum"])
    bad_N = bad_task_NxT.any(1)
    for key in ms:
      if ms[key].ndim == 1:  # per-step scalars: weighted loss and the norms (the update)
        bad_N = bad_N | ~jnp.isfinite(ms[key])
    first = jnp.argmax(bad_N)
    out["nonfinite_step"] = jnp.where(bad_N.any(), start + first + 1, -1)
    out["nonfinite_tasks"] = bad_task_NxT[first] & bad_N.any()
    return state, out

  return jax.jit(run if num_seeds == 1 else jax.vmap(run), donate_argnums=0)
