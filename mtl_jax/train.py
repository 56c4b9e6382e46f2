"""The training loop: sample tasks, sample data, per-task losses, backprop, optax update.

``train_step(state) -> (state, metrics)`` is one pure function; :func:`make_chunk` runs
``n`` of them under ``jax.lax.scan`` inside one ``jax.jit`` (sampling happens on the
device), and the host only logs, evaluates and checkpoints between chunks.

Two paths, chosen by the method name (``config.method``):

* a **loss weighting** (``mtl_jax.weighting``): one backward pass of Σ_k sg(w_k)·L_k;
* a **gradient aggregator** (``mtl_jax.aggregators``): per-task gradients of θ^sh
  (``vmap(grad)`` when tasks have their own inputs, one forward + vmapped VJPs when they
  share one input batch), aggregated into one update; θ^i always gets task i's gradient.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mtl_jax import aggregators, weighting
from mtl_jax.data.sampling import DeviceData, sample_batch
from mtl_jax.losses import task_loss
from mtl_jax.models.base import MultiTaskNet, gather_tasks

# Aggregators that take ``rep_grads``: per-task gradients w.r.t. the shared representation.
_REP_GRAD_METHODS = ("mgda_ub",)


class TrainState(NamedTuple):
  step: jax.Array  # int32 scalar
  params: Any  # {"shared": θ^sh, "tasks": θ^{1..T} stacked}
  opt_state: Any
  method_state: Any  # weighting or aggregator state
  rng: jax.Array  # base key; step keys are fold_in(rng, step)


def method_kind(name: str) -> str:
  """``"weighting"`` or ``"aggregator"``; unknown names list every valid one."""
  if name in weighting.names():
    return "weighting"
  if name in aggregators.names():
    return "aggregator"
  raise ValueError(
    f"unknown method {name!r}; loss weightings: {', '.join(weighting.names())}; "
    f"gradient aggregators: {', '.join(aggregators.names())}"
  )


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


def _tree_norm(tree) -> jax.Array:
  leaves = jax.tree.leaves(tree)
  if not leaves:
    return jnp.zeros(())
  return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in leaves))


def make_train_step(
  model: MultiTaskNet,
  data: DeviceData,
  optimizer: optax.GradientTransformation,
  method: str = "equal",
  method_kwargs: dict | None = None,
  *,
  tasks_per_batch: int,
  batch_size: int,
  shared_inputs: bool = False,
  constrain_batch: Callable | None = None,
) -> tuple[Callable, Callable]:
  """Builds ``init_state(rng, params)`` and the pure ``train_step(state)``.

  Args:
    model: the multi-task network.
    data: device-resident task data.
    optimizer: optax transformation applied to the final gradient.
    method: a weighting or aggregator name.
    method_kwargs: its hyperparameters.
    tasks_per_batch: K, tasks sampled per step (K = T: every task every step).
    batch_size: examples per sampled task.
    shared_inputs: tasks share one input batch (multi-label).
    constrain_batch: applied to each sampled batch inside the step (``mtl_jax.sharding``
      uses it to split the examples over the mesh's ``"data"`` axis); None on one device.

  Returns:
    ``(init_state, train_step)``; ``train_step(state) -> (state, metrics)`` with metrics
    ``loss_sum [T]``, ``loss_count [T]`` (per-task losses scattered by task id),
    ``weight_sum [T]``, ``loss`` (weighted total), ``grad_norm``, ``update_norm``,
    ``param_norm``.
  """
  method_kwargs = dict(method_kwargs or {})
  kind = method_kind(method)
  t = model.num_tasks
  k = tasks_per_batch
  if not 1 <= k <= t:
    raise ValueError(f"tasks_per_batch (K) must be in [1, T={t}], got {k}")
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}")
  if kind == "aggregator":
    # Stateful aggregators size their state by the number of gradient rows (K per step)
    # or by the task ids they can see (T); fill those in unless the user did.
    params_of = aggregators._base._REGISTRY.accepted_kwargs(method)
    if "num_tasks" in params_of and "num_tasks" not in method_kwargs:
      method_kwargs["num_tasks"] = k
    if "max_tasks" in params_of and "max_tasks" not in method_kwargs:
      method_kwargs["max_tasks"] = t
  transform = (
    weighting.get(method, **method_kwargs)
    if kind == "weighting"
    else aggregators.get(method, **method_kwargs)
  )
  use_rep_grads = method in _REP_GRAD_METHODS
  if use_rep_grads and not model.has_representation_split():
    raise ValueError(
      f"method {method!r} needs gradients w.r.t. a shared representation: "
      f"use a model whose trunk is shared (e.g. hard_sharing), not "
      f"{model.name!r}"
    )
  requires = getattr(transform, "requires", ())
  if "grad_norms" in requires and model.last_shared_path() is None:
    raise ValueError(
      f"method {method!r} needs a shared layer (it weighs tasks by their "
      f"gradient norms at the last shared layer) but model {model.name!r} "
      "shares none"
    )

  def one_loss(shared, task_p, task_id, x, y):
    out = model.apply_task(shared, task_p, task_id, x)
    return task_loss(out, y, data.kind[task_id], data.out_mask[task_id])

  # With one p(x) (shared inputs) every task's rows are the same examples: passing them
  # unbatched lets vmap run the shared trunk once per step instead of K times.
  x_axis = None if shared_inputs else 0

  def task_x(batch):
    return batch.x[0] if shared_inputs else batch.x

  vlosses = jax.vmap(one_loss, in_axes=(None, 0, 0, x_axis, 0))

  def init_state(rng: jax.Array, params) -> TrainState:
    mstate = transform.init(t) if kind == "weighting" else transform.init(params["shared"])
    state = TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params), mstate, rng)
    # The state is donated to each chunk: no two leaves may share a buffer (an init that
    # reuses one zeros array for two fields would otherwise be donated twice).
    return jax.tree.map(lambda x: jnp.array(x, copy=True), state)

  def last_layer_grad_norms(params, batch):
    path = model.last_shared_path()
    w = params["shared"][path[0]]

    def loss_w(w, task_p, task_id, x, y):
      shared = dict(params["shared"])
      shared[path[0]] = w
      return one_loss(shared, task_p, task_id, x, y)

    task_k = gather_tasks(params["tasks"], batch.task)
    g = jax.vmap(jax.grad(loss_w), in_axes=(None, 0, 0, x_axis, 0))(
      w, task_k, batch.task, task_x(batch), batch.y
    )
    return jax.vmap(_tree_norm)(g)

  def weighting_grads(params, mstate, batch, extras):
    if "grad_norms" in requires:
      extras["grad_norms"] = jax.lax.stop_gradient(last_layer_grad_norms(params, batch))

    def total(params):
      task_k = gather_tasks(params["tasks"], batch.task)
      losses = vlosses(params["shared"], task_k, batch.task, task_x(batch), batch.y)
      w, new_mstate = transform.update(
        jax.lax.stop_gradient(losses), mstate, task_ids=batch.task, **extras
      )
      w = jax.lax.stop_gradient(w)
      return jnp.sum(w * losses) + model.regularizer(params), (losses, w, new_mstate)

    grads, (losses, w, new_mstate) = jax.grad(total, has_aux=True)(params)
    return grads, losses, w, new_mstate

  def representation_grads(shared, task_k, batch):
    """∂L_k/∂Z_k per sampled task, Z = the shared trunk's output (MGDA-UB)."""

    def head_loss(z, task_p, task_id, y):
      out = model.apply_from_representation(task_p, z)
      return task_loss(out, y, data.kind[task_id], data.out_mask[task_id])

    if shared_inputs:
      z = model.represent(shared, task_x(batch))
    else:
      z = jax.vmap(model.represent, in_axes=(None, 0))(shared, batch.x)
    return jax.vmap(jax.grad(head_loss), in_axes=(x_axis, 0, 0, 0))(
      jax.lax.stop_gradient(z), task_k, batch.task, batch.y
    )

  def aggregator_grads(params, mstate, batch, extras):
    task_k = gather_tasks(params["tasks"], batch.task)
    if shared_inputs:

      def losses_fn(shared, task_k):
        return vlosses(shared, task_k, batch.task, task_x(batch), batch.y)

      losses, vjp = jax.vjp(losses_fn, params["shared"], task_k)
      g_sh, _ = jax.vmap(vjp)(jnp.eye(k, dtype=losses.dtype))
      _, g_task = vjp(jnp.ones_like(losses))
    else:
      losses, (g_sh, g_task) = jax.vmap(
        jax.value_and_grad(one_loss, argnums=(0, 1)), in_axes=(None, 0, 0, 0, 0)
      )(params["shared"], task_k, batch.task, batch.x, batch.y)
    if use_rep_grads:
      extras["rep_grads"] = representation_grads(params["shared"], task_k, batch)
    if jax.tree.leaves(g_sh):
      update_sh, new_mstate = transform.update(
        g_sh, mstate, params["shared"], losses=losses, task_ids=batch.task, **extras
      )
    else:  # nothing is shared (independent networks): nothing to aggregate
      update_sh, new_mstate = g_sh, mstate
    # θ^i gets its own task's gradient: scatter-add the K rows back into the T stack.
    g_tasks = jax.tree.map(
      lambda p, g: jnp.zeros_like(p).at[batch.task].add(g), params["tasks"], g_task
    )
    grads = {"shared": update_sh, "tasks": g_tasks}
    reg_grads = jax.grad(model.regularizer)(params)
    grads = jax.tree.map(jnp.add, grads, reg_grads)
    return grads, losses, jnp.ones_like(losses), new_mstate

  def train_step(state: TrainState):
    rng = jax.random.fold_in(state.rng, state.step)
    k_batch, k_method = jax.random.split(rng)
    batch = sample_batch(k_batch, data, k, batch_size, shared_inputs)
    if constrain_batch is not None:
      batch = constrain_batch(batch)
    extras = {"rng": k_method, "step": state.step}
    fn = weighting_grads if kind == "weighting" else aggregator_grads
    grads, losses, w, new_mstate = fn(state.params, state.method_state, batch, extras)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    zeros = jnp.zeros((t,), losses.dtype)
    metrics = {
      "loss_sum": zeros.at[batch.task].add(losses),
      "loss_count": zeros.at[batch.task].add(1.0),
      "weight_sum": zeros.at[batch.task].add(w),
      "loss": jnp.sum(w * losses),
      "grad_norm": _tree_norm(grads),
      "update_norm": _tree_norm(updates),
      "param_norm": _tree_norm(params),
    }
    return TrainState(state.step + 1, params, opt_state, new_mstate, state.rng), metrics

  return init_state, train_step


def make_chunk(train_step: Callable, length: int) -> Callable:
  """``run(state) -> (state, metrics)``: ``length`` steps under one jitted ``lax.scan``.

  Metrics are summed over the chunk (per-task sums/counts stay separable); norms and the
  total loss are averaged. The host learns of NaN/Inf from ``nonfinite_step`` (the first
  bad step, counted like ``state.step`` after it, or -1) and ``nonfinite_tasks [T]`` (the
  tasks whose loss was non-finite at that step), so it can stop and name them.
  """

  def run(state):
    start = state.step
    state, ms = jax.lax.scan(lambda s, _: train_step(s), state, None, length=length)
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

  return jax.jit(run, donate_argnums=0)
