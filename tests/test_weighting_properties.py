"""Properties every registered loss weighting must have.

The list is in ``docs/design.md`` ("Contracts: loss weightings").

Parameterised over ``mtl_jax.weighting.names()``, so a newly registered method is tested
here automatically; give it hyperparameters in ``HYPERPARAMS`` if it has required ones.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_jax import weighting

NAMES = weighting.names()
KNOWN_EXTRAS = {"rng", "grad_norms", "step", "shared_grads"}

# Hyperparameters per method, as a function of the number of tasks T.
HYPERPARAMS = {
  "static": lambda t: {"weights": [1.0 + i for i in range(t)]},
}
# The T = 1 weight as a function of the loss, where it is not 1.
T1_WEIGHT = {"scale_invariant": lambda loss: 1.0 / loss}
# Methods whose T = 1 weight is 1 only on the first step: uncertainty's exp(−s) moves
# towards 1/L as s is learned; imtl_l's exp(s) likewise, and imtl's α·exp(s) (α = 1 at T = 1).
T1_FIRST_STEP_ONLY = {"uncertainty", "imtl_l", "imtl"}
# A constant added to the quadratic's losses (same Pareto set). Σ log L has no minimum
# when a loss can reach 0 (log L → −∞ at c_i), so scale_invariant needs losses bounded away
# from 0, as its docstring says. gls (the geometric mean Π L^{1/K}) likewise: its minimum is a
# zero loss, where √L is not differentiable and the steps jitter around c_i.
QUADRATIC_OFFSET = {"scale_invariant": 1.0, "gls": 1.0}


def make(name: str, num_tasks: int) -> weighting.Weighting:
  return weighting.get(name, **HYPERPARAMS.get(name, lambda t: {})(num_tasks))


def all_extras(losses: jax.Array, seed: int) -> dict:
  """Every extra the train step can pass, plus one no method knows (must be ignored)."""
  return {
    "rng": jax.random.PRNGKey(seed),
    "grad_norms": jnp.abs(losses) + 0.5,
    "step": seed,
    # Per-task gradients of θ^sh: orthogonal rows scaled by the losses (a well-posed IMTL-G).
    "shared_grads": jnp.diag(jnp.abs(losses) + 0.5),
    "some_unknown_extra": jnp.zeros(3),
  }


def losses_at(seed: int, k: int, dtype=jnp.float32) -> jax.Array:
  return jax.random.uniform(jax.random.PRNGKey(100 + seed), (k,), jnp.float32, 0.1, 3.0).astype(
    dtype
  )


@pytest.mark.parametrize("name", NAMES)
def test_requires_only_known_extras(name):
  assert set(make(name, 2).requires) <= KNOWN_EXTRAS


@pytest.mark.parametrize("name", NAMES)
def test_single_task_weight_is_one(name):
  w = make(name, 1)
  update = jax.jit(lambda losses, state, extras: w.update(losses, state, **extras))
  state = w.init(1)
  for step, value in enumerate([0.5, 2.0, 3.0]):
    losses = jnp.array([value], jnp.float32)
    weights, state = update(losses, state, all_extras(losses, step))
    if step == 0 or name not in T1_FIRST_STEP_ONLY:
      expected = T1_WEIGHT.get(name, lambda loss: 1.0)(value)
      np.testing.assert_allclose(weights, [expected], rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
  ("task_ids", "dtype"), [(None, jnp.float32), ((3, 1), jnp.float32), ((0, 2, 1), jnp.bfloat16)]
)
def test_weights_shape_dtype_finite_nonnegative(name, task_ids, dtype):
  num_tasks = 4
  w = make(name, num_tasks)
  update = jax.jit(lambda losses, state, ids, extras: w.update(losses, state, ids, **extras))
  state0 = state = w.init(num_tasks)
  k = num_tasks if task_ids is None else len(task_ids)
  ids = None if task_ids is None else jnp.array(task_ids, jnp.int32)
  for step in range(4):
    losses = losses_at(step, k, dtype)
    weights, state = update(losses, state, ids, all_extras(losses, step))
    chex.assert_shape(weights, (k,))
    chex.assert_type(weights, dtype)
    chex.assert_tree_all_finite(weights)
    assert bool(jnp.all(weights >= 0)), weights
  chex.assert_trees_all_equal_shapes_and_dtypes(state, state0)


@pytest.mark.parametrize("name", NAMES)
def test_runs_with_only_the_required_extras(name):
  w = make(name, 3)
  state = w.init(3)
  losses = losses_at(0, 3)
  extras = {k: v for k, v in all_extras(losses, 0).items() if k in w.requires}
  weights, _ = w.update(losses, state, **extras)
  chex.assert_tree_all_finite(weights)


@pytest.mark.parametrize("name", NAMES)
def test_no_recompilation_across_steps(name):
  num_tasks = 5
  w = make(name, num_tasks)
  chex.clear_trace_counter()  # the counter is keyed by function, shared across params

  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(losses, state, task_ids, extras):
    return w.update(losses, state, task_ids, **extras)

  state = w.init(num_tasks)
  for i in range(3):
    losses = losses_at(i, 3)
    ids = jax.random.permutation(jax.random.PRNGKey(i), num_tasks)[:3]
    weights, state = step(losses, state, ids, all_extras(losses, i))
    chex.assert_tree_all_finite(weights)


@pytest.mark.parametrize("name", NAMES)
def test_two_task_quadratic_reaches_pareto_stationary_point(name):
  # L_i(x) = ½‖x − c_i‖²: the Pareto set is the segment [c_1, c_2], and x is
  # Pareto-stationary exactly there. The start is off the segment and off its line.
  c = jnp.array([[1.0, 0.0], [-1.0, 0.0]])
  lr, num_steps = 0.1, 400
  w = make(name, 2)

  offset = QUADRATIC_OFFSET.get(name, 0.0)

  def losses_fn(x):
    return 0.5 * jnp.sum((x - c) ** 2, axis=1) + offset

  def body(carry, i):
    x, state = carry
    losses = losses_fn(x)
    # "Last shared layer" is x itself: ∇_x L_i = x − c_i.
    extras = {
      "rng": jax.random.fold_in(jax.random.PRNGKey(0), i),
      "grad_norms": jnp.linalg.norm(x - c, axis=1),
      "step": i,
      "shared_grads": x[None, :] - c,
    }
    weights, state = w.update(losses, state, None, **extras)
    g = jax.grad(lambda x: jnp.sum(jax.lax.stop_gradient(weights) * losses_fn(x)))(x)
    return (x - lr * g, state), weights

  (x, _), weights = jax.jit(lambda x0: jax.lax.scan(body, (x0, w.init(2)), jnp.arange(num_steps)))(
    jnp.array([0.5, 1.5])
  )
  chex.assert_tree_all_finite(weights)
  assert abs(float(x[1])) < 1e-3, x  # on the line through c_1, c_2
  assert -1.0 - 1e-3 <= float(x[0]) <= 1.0 + 1e-3, x  # between them
