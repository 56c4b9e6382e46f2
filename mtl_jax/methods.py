"""One method protocol: every loss weighting and gradient aggregator as a :class:`Method`.

The train step knows one kind of object. A :class:`Method` says which extras it needs
(``requires``), makes its state (``init``) and turns parameters and a task batch into
the gradient the optimiser applies (``grads``). Two adapters build one:

* :func:`from_weighting` — a loss weighting (:mod:`mtl_jax.weighting`): one backward pass
  of Σ_k sg(w_k)·L_k (:func:`mtl_jax.gradients.weighted_grads`);
* :func:`from_aggregator` — a gradient aggregator (:mod:`mtl_jax.aggregators`): per-task
  gradients of θ^sh (:func:`mtl_jax.gradients.per_task_grads`) aggregated into one update;
  each θ^i gets its own task's unweighted gradient.

A method declares the extras it needs: a weighting in its ``requires`` field, an
aggregator by naming them as keyword parameters of its ``update``. Extras the train step
can supply are the keys of :data:`EXTRAS`; each also says which models can provide it.
"""

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mtl_jax import aggregators, gradients, present, weighting
from mtl_jax import gramian as gramian_path

# Extras that the train step computes on request: name -> (provider, model check).
# ``provider(obj, params, batch, rng, step)``; ``check(model)`` returns what is missing
# (completing "method NAME ...") or None.
EXTRAS: dict[str, tuple[Callable, Callable]] = {
  "rng": (lambda obj, params, batch, rng, step: rng, lambda model: None),
  "step": (lambda obj, params, batch, rng, step: step, lambda model: None),
  "grad_norms": (
    lambda obj, params, batch, rng, step: jax.lax.stop_gradient(
      gradients.last_layer_grad_norms(obj, params, batch)
    ),
    lambda model: (
      None
      if model.last_shared_path() is not None
      else "needs a shared layer (it weighs tasks by their gradient norms at the last shared "
      f"layer) but model {model.name!r} shares none"
    ),
  ),
  "rep_grads": (
    lambda obj, params, batch, rng, step: gradients.representation_grads(obj, params, batch),
    lambda model: (
      None
      if model.has_representation_split()
      else "needs gradients w.r.t. a shared representation: use a model whose trunk is "
      f"shared (e.g. hard_sharing), not {model.name!r}"
    ),
  ),
}
# Filled by the adapters themselves (not computed by the train step).
_ADAPTER_EXTRAS = ("losses", "task_ids")
# Extras that are only meaningful when every task in a batch sees the same examples
# (``shared_inputs``): extra -> what is missing (completing "method NAME ...").
NEEDS_SHARED_INPUTS: dict[str, str] = {
  "rep_grads": "needs a shared input batch (one representation Z of the same examples for "
  "every task, Sener & Koltun's bound); with per-task inputs the rows of dL_k/dZ are "
  "different examples and the weights would depend on their order: use a task set with "
  "shared_inputs=True (e.g. digit_attributes), or mgda",
}


# Options every aggregator takes on top of its own hyperparameters (``method_kwargs``).
AGGREGATOR_OPTIONS = {
  "normalize": False,
  "rep_grad": False,
  "weigh_heads": False,
  "gramian": "auto",
}
REP_GRAD_MODEL = (
  "aggregates gradients w.r.t. the shared representation (rep_grad=True) and needs a model "
  "whose trunk is shared (e.g. hard_sharing), not {model!r}"
)
REP_GRAD_INPUTS = (
  "aggregates gradients w.r.t. the shared representation (rep_grad=True) and needs a shared "
  "input batch (every task's Z must be the same examples); use a task set with "
  "shared_inputs=True (e.g. digit_attributes), or rep_grad=False"
)


class Method(NamedTuple):
  """A weighting or an aggregator behind one interface.

  Attributes:
    name: the registered name.
    requires: extras the train step must compute and pass to ``grads`` (keys of
      :data:`EXTRAS`).
    init: ``init(params, num_tasks) -> state``.
    grads: ``grads(obj, params, state, batch, extras) -> (grads, losses_K, weights_K,
      state)``; ``grads`` has the structure of ``params`` and the sign of a gradient.
    representation: the method aggregates gradients w.r.t. the shared representation
      (``rep_grad``): the model needs a representation split and the tasks one input batch.
  """

  name: str
  requires: frozenset
  init: Callable[[Any, int], Any]
  grads: Callable[..., tuple[Any, jax.Array, jax.Array, Any]]
  representation: bool = False


def from_weighting(name: str, w: weighting.Weighting) -> Method:
  """Adapter: a loss weighting → one backward pass of the weighted sum."""

  def init(params, num_tasks):
    del params
    return w.init(num_tasks)

  def grads(obj, params, state, batch, extras):
    if obj.missing_labels:  # weights of the present tasks only (absent: 0)
      present_k = gradients.present_tasks(obj, batch)
      weigh = lambda losses: weigh_present(w, present_k, losses, state, batch.task, extras)
    else:
      weigh = lambda losses: w.update(losses, state, task_ids=batch.task, **extras)
    return gradients.weighted_grads(obj, params, batch, weigh)

  return Method(name, frozenset(w.requires), init, grads)


def weigh_present(w: weighting.Weighting, present_k, losses, state, task_ids, extras: dict):
  """``w.update`` on the present tasks only (:func:`mtl_jax.present.run_on_present`).

  Returns ``(weights [K], state)``: the weighting's output on the present tasks' losses,
  task ids and per-task extras, in batch order, with 0 for the absent tasks.
  """
  per_task, others = present.split_extras(dict(extras, losses=losses, task_ids=task_ids))

  def fn(rows):
    rows = dict(rows)
    weights, new_state = w.update(rows.pop("losses"), state, **rows, **others)
    return new_state, weights

  new_state, weights = present.run_on_present(fn, present_k, per_task, lambda _: state)
  return weights, new_state


def aggregate_present(agg: aggregators.Aggregator, present_k, rows, state, params, extras: dict):
  """``agg.update(rows, state, params, **extras)`` on the present tasks' rows only.

  ``present_k`` None means every task is present (the plain call). Returns
  ``(update, state)``: the aggregator's result on the present rows (and their per-task
  extras: losses, task ids, ...) in batch order; zeros and the old state with none.
  """
  if present_k is None:
    return agg.update(rows, state, params, **extras)
  per_task, others = present.split_extras(extras)

  def fn(r):
    update, new_state = agg.update(r["g"], state, params, **r["extras"], **others)
    return (update, new_state), jnp.ones(jax.tree.leaves(r["g"])[0].shape[:1])

  if_none = lambda shapes: (present.zeros_like_shapes(shapes[0]), state)
  out, _ = present.run_on_present(fn, present_k, {"g": rows, "extras": per_task}, if_none)
  return out


def gramian_weights_present(agg, present_k, gram, state, extras: dict):
  """:func:`mtl_jax.gramian.gramian_weights` on the present tasks' Gramian ``[m, m]`` only
  (``present_k`` None: every task); ``(w [K], state)`` with 0 for the absent tasks."""
  if present_k is None:
    return gramian_path.gramian_weights(agg, gram, state, **extras)
  per_task, others = present.split_extras(extras)

  def fn(r):  # rows come present-first; the columns were put in the same order below
    m = r["gram"].shape[0]
    w, new_state = gramian_path.gramian_weights(
      agg, r["gram"][:, :m], state, **r["extras"], **others
    )
    return new_state, w

  rows = {"gram": gram[:, present.present_first(present_k)], "extras": per_task}
  new_state, w = present.run_on_present(fn, present_k, rows, lambda _: state)
  return w, new_state


def _present_or_none(obj, batch):
  return gradients.present_tasks(obj, batch) if obj.missing_labels else None


def declared_extras(update: Callable) -> frozenset:
  """The extras an aggregator's ``update`` names as keyword parameters."""
  params = inspect.signature(update).parameters
  return frozenset(p for p in params if p in EXTRAS or p in _ADAPTER_EXTRAS)


def from_aggregator(
  name: str,
  agg: aggregators.Aggregator,
  *,
  rep_grad: bool = False,
  rep_template: Callable[[Any], jax.Array] | None = None,
  weigh_heads: bool = False,
  gramian: str = "auto",
) -> Method:
  """Adapter: a gradient aggregator → per-task gradients of θ^sh, aggregated.

  Each θ^i gets its own task's gradient ∇_{θ^i} L_i, or with ``weigh_heads`` α_i ∇_{θ^i} L_i
  where α are the weights the aggregator gave the tasks, recovered from its update by
  least squares (:func:`mtl_jax.aggregators.implied_weights`); the step's reported weights
  are then α too (else 1).

  With ``rep_grad`` the aggregator combines each task's gradient w.r.t. the shared
  representation Z instead (LibMTL's ``rep_grad``): the trunk runs forward once, the K
  heads give ∂L_k/∂Z, the aggregated ∂/∂Z goes back through the trunk once.
  ``rep_template(params)`` returns a zeros Z (its shape sizes the aggregator's state).

  ``gramian`` (``"auto"``, ``"always"``, ``"never"``): for the aggregators of
  :data:`mtl_jax.gramian.GRAMIAN_METHODS`, the step computes G = J Jᵀ one task at a time
  and one backward pass of Σ_k w_k L_k instead of holding the ``[K, |θ^sh|]`` Jacobian
  (:mod:`mtl_jax.gramian`); ``"auto"`` does so once K·|θ^sh| ≥
  :data:`mtl_jax.gramian.AUTO_MIN_ELEMENTS`.
  """
  gramian_path.check_choice(name, gramian, rep_grad)
  declared = declared_extras(agg.update)
  if rep_grad and rep_template is None:
    raise ValueError(
      f"method {name!r} with rep_grad=True needs rep_template (the representation's shape); "
      "build it with mtl_jax.train.make_train_step"
    )

  def init(params, num_tasks):
    del num_tasks
    return agg.init(rep_template(params) if rep_grad else params["shared"])

  def shared_update(obj, params, state, batch, extras):
    if rep_grad:
      losses, g_z, g_task, trunk_vjp = gradients.representation_task_grads(obj, params, batch)
      update_z, state = aggregate_present(
        agg, _present_or_none(obj, batch), g_z, state, None, extras(losses)
      )
      return losses, trunk_vjp(update_z), g_task, state, weights_of(g_z, update_z, losses)
    if gramian_path.use_gramian(name, gramian, batch.task.shape[0], params["shared"]):
      losses, gram, g_task, shared_vjp = gramian_path.gramian_task_grads(obj, params, batch)
      present_k = _present_or_none(obj, batch)
      w, state = gramian_weights_present(agg, present_k, gram, state, extras(losses))
      w = jax.lax.stop_gradient(w)
      heads_w = w.astype(losses.dtype) if weigh_heads else jnp.ones_like(losses)
      return losses, shared_vjp(w), g_task, state, heads_w
    losses, g_sh, g_task = gradients.per_task_grads(obj, params, batch)
    if not jax.tree.leaves(g_sh):  # nothing is shared (independent networks): nothing to do
      return losses, g_sh, g_task, state, jnp.ones_like(losses)
    update_sh, state = aggregate_present(
      agg, _present_or_none(obj, batch), g_sh, state, params["shared"], extras(losses)
    )
    return losses, update_sh, g_task, state, weights_of(g_sh, update_sh, losses)

  def weights_of(rows, update, losses):
    if not weigh_heads:
      return jnp.ones_like(losses)
    return jax.lax.stop_gradient(aggregators.implied_weights(rows, update)).astype(losses.dtype)

  def grads(obj, params, state, batch, extras):
    def with_own(losses):
      own = {"losses": losses, "task_ids": batch.task}
      return dict(extras, **{k: v for k, v in own.items() if k in declared})

    losses, update_sh, g_task, state, w = shared_update(obj, params, state, batch, with_own)
    w = w * gradients.present_tasks(obj, batch).astype(w.dtype)  # absent tasks weigh 0
    if weigh_heads:
      g_task = jax.tree.map(lambda l: l * w.reshape((-1,) + (1,) * (l.ndim - 1)), g_task)
    g = {"shared": update_sh, "tasks": gradients.scatter_tasks(params["tasks"], batch.task, g_task)}
    g = jax.tree.map(jnp.add, g, gradients.regularizer_grads(obj, params))
    return g, losses, w, state

  return Method(name, declared - set(_ADAPTER_EXTRAS), init, grads, rep_grad)


def names() -> list[str]:
  """Every method name: loss weightings, then gradient aggregators (a name registered as
  both, e.g. ``imtl``, is listed once, among the aggregators: that is what trains)."""
  both = set(aggregators.names())
  return [n for n in weighting.names() if n not in both] + aggregators.names()


def _registry(name: str):
  # An aggregator wins over a weighting of the same name: the weighting form of ``imtl``
  # gives loss weights from given gradients, the aggregator is the one that trains.
  if name in aggregators.names():
    return aggregators._base._REGISTRY
  if name in weighting.names():
    return weighting._base._REGISTRY
  raise ValueError(
    f"unknown method {name!r}; loss weightings: {', '.join(weighting.names())}; "
    f"gradient aggregators: {', '.join(aggregators.names())}"
  )


def factory(name: str) -> Callable[..., Any]:
  """The registered factory (its signature holds the method's hyperparameter defaults).

  An aggregator's signature also lists :data:`AGGREGATOR_OPTIONS` (``normalize``,
  ``rep_grad``, ``weigh_heads``, ``gramian``), which :func:`get` applies around any aggregator.
  """
  registry = _registry(name)
  f = registry.factory(name)
  if registry is weighting._base._REGISTRY:
    return f

  def with_options(*args, **kwargs):
    return f(*args, **{k: v for k, v in kwargs.items() if k not in AGGREGATOR_OPTIONS})

  sig = inspect.signature(f)
  extra = [
    inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v, annotation=type(v))
    for k, v in AGGREGATOR_OPTIONS.items()
  ]
  params = [p for p in sig.parameters.values() if p.kind != p.VAR_KEYWORD]
  with_options.__signature__ = sig.replace(parameters=params + extra)
  with_options.__doc__ = f.__doc__
  return with_options


def get(
  name: str,
  *,
  num_tasks: int,
  tasks_per_batch: int | None = None,
  rep_template: Callable[[Any], jax.Array] | None = None,
  **hyperparams,
) -> Method:
  """Builds the method ``name`` for T = ``num_tasks`` tasks, K = ``tasks_per_batch`` a step.

  Stateful aggregators that size their state by the gradient rows per step
  (``num_tasks``) or by the task ids they see (``max_tasks``) get K and T unless given
  (a None, e.g. a config's placeholder, counts as not given).

  Every aggregator also takes the options ``normalize=True`` (feed it unit-norm task
  gradients, :func:`mtl_jax.aggregators.normalized`), ``rep_grad=True`` (aggregate the
  gradients w.r.t. the shared representation instead of θ^sh; ``rep_template(params)``
  gives a zeros Z), ``weigh_heads=True`` (θ^i get α_i ∇L_i, see :func:`from_aggregator`)
  and ``gramian`` (``"auto"``/``"always"``/``"never"``: the Jacobian-free Gramian path of
  :mod:`mtl_jax.gramian`).
  """
  registry = _registry(name)
  if registry is weighting._base._REGISTRY:
    w = registry.get(name, **hyperparams)
    w.init(num_tasks)  # hyperparameters sized for the wrong T (static weights) raise here
    return from_weighting(name, w)
  accepted = registry.accepted_kwargs(name)
  filled = {"num_tasks": tasks_per_batch or num_tasks, "max_tasks": num_tasks}
  for k, v in filled.items():
    if k in accepted and hyperparams.get(k) is None:
      hyperparams[k] = v
  options = {
    k: (hyperparams.pop(k, None) or v)
    if isinstance(v, str)
    else bool(hyperparams.pop(k, None) or v)
    for k, v in AGGREGATOR_OPTIONS.items()
  }
  agg = registry.get(name, **hyperparams)
  if options["normalize"]:
    agg = aggregators.normalized(agg)
  return from_aggregator(
    name,
    agg,
    rep_grad=options["rep_grad"],
    rep_template=rep_template,
    weigh_heads=options["weigh_heads"],
    gramian=options["gramian"],
  )


def check_inputs(method: Method, shared_inputs: bool) -> None:
  """Raises ``ValueError`` when the method needs one input batch shared by all tasks
  (an extra in :data:`NEEDS_SHARED_INPUTS`, e.g. MGDA-UB's ``rep_grads``) and the task
  set gives each task its own inputs."""
  if shared_inputs:
    return
  if method.representation:
    raise ValueError(f"method {method.name!r} {REP_GRAD_INPUTS}")
  for extra in sorted(method.requires):
    if extra in NEEDS_SHARED_INPUTS:
      raise ValueError(f"method {method.name!r} {NEEDS_SHARED_INPUTS[extra]}")


def check_model(method: Method, model, shared_inputs: bool | None = None) -> None:
  """Raises ``ValueError`` when ``model`` cannot supply an extra the method requires, or
  (``shared_inputs`` given) when the inputs cannot (:func:`check_inputs`)."""
  for extra in sorted(method.requires):
    problem = EXTRAS[extra][1](model)
    if problem:
      raise ValueError(f"method {method.name!r} {problem}")
  if method.representation and not model.has_representation_split():
    raise ValueError(f"method {method.name!r} {REP_GRAD_MODEL.format(model=model.name)}")
  if shared_inputs is not None:
    check_inputs(method, shared_inputs)


def compute_extras(method: Method, obj, params, batch, rng, step) -> dict:
  """The extras ``method`` requires, computed for this step (checked against
  ``obj.shared_inputs`` when traced)."""
  check_inputs(method, obj.shared_inputs)
  return {k: EXTRAS[k][0](obj, params, batch, rng, step) for k in sorted(method.requires)}
