"""Properties every registered gradient aggregator must have.

The list is in ``docs/design.md`` ("Contracts: gradient aggregators").

Runs over ``mtl_jax.aggregators.names()``, so a newly registered method is checked
without editing this file. Methods that document a different convention list it in the
dicts below (with the reason); everything else must meet the default expectation.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mtl_jax import aggregators

NAMES = aggregators.names()

# Hyperparameters used for the property checks (default: the factory's defaults).
HPARAMS: dict[str, dict] = {}

# What T = 1 returns, as a function of the single gradient g (default: g itself).
T1_EXPECTED = {
  # update = g_0 + c g_w = (1 + c) g, divided by (1 + c²) under the default rescale=1.
  "cagrad": lambda g: g * (1.4 / 1.16),
  # Nash bargaining: g α = 1/α gives α = 1/‖g‖, a unit-norm update.
  "nash_mtl": lambda g: g / jnp.linalg.norm(g),
  # FairGrad: ‖g‖² w = w^{-1/α} gives w = ‖g‖^{-2α/(1+α)}, a unit-norm update at α = 1.
  "fairgrad": lambda g: g / jnp.linalg.norm(g),
  # DB-MTL's EMA buffers start at 0 (as LibMTL): the first step gives (1 − β) g, β = 0.9.
  "db_mtl": lambda g: 0.1 * g,
}

# Methods whose pytree and flat results only agree in distribution (random draws made per
# leaf rather than over the flat vector).
PYTREE_STOCHASTIC: set[str] = set()

# Quadratic run: lr and steps per method (default below). Distances are to the Pareto set.
QUAD_TOL = {"graddrop": 0.1}  # random per-coordinate drops keep jittering near the set


def _agg(name):
  return aggregators.get(name, **HPARAMS.get(name, {}))


# Traces per method: the jitted updates are shared by every test below (one compile per
# input shape keeps the suite fast), and the counter lets the recompile test use them too.
_TRACES: dict[str, int] = {}


@functools.cache
def _jitted(name):
  """One aggregator and one jitted, trace-counting update per method."""
  agg = _agg(name)

  def update(g, state, params):
    _TRACES[name] = _TRACES.get(name, 0) + 1
    return agg.update(g, state, params)

  return agg, jax.jit(update)


def _grads(t, p=10, seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=(t, p)), jnp.float32)


def _apply(name, g, params=None):
  agg, update = _jitted(name)
  params = jnp.zeros(g.shape[1:], g.dtype) if params is None else params
  d, _ = update(g, agg.init(params), params)
  return d


def test_registry_has_contract_names():
  for name in ["sum", "mean", "pcgrad", "mgda", "mgda_ub", "cagrad", "nash_mtl", "imtl_g"]:
    assert name in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_single_task(name):
  g = _grads(1)
  expected = T1_EXPECTED.get(name, lambda g: g)(g[0])
  chex.assert_trees_all_close(_apply(name, g), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_identical_gradients_give_positive_multiple(name):
  g_P = _grads(1)[0]
  d = _apply(name, jnp.tile(g_P, (3, 1)))
  cos = jnp.dot(d, g_P) / (jnp.linalg.norm(d) * jnp.linalg.norm(g_P))
  assert jnp.linalg.norm(d) > 1e-3 * jnp.linalg.norm(g_P)
  np.testing.assert_allclose(cos, 1.0, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_zero_rows_stay_finite(name):
  g = _grads(3).at[1].set(0.0)
  chex.assert_tree_all_finite(_apply(name, g))
  chex.assert_tree_all_finite(_apply(name, jnp.zeros((3, 10), jnp.float32)))


@pytest.mark.parametrize("name", NAMES)
def test_no_recompile_dtype_and_state_kept(name):
  agg, update = _jitted(name)
  params = jnp.zeros(10, jnp.float32)
  state = agg.init(params)
  for k in range(3):
    d, new_state = update(_grads(3, seed=k), state, params)
    if k == 0:
      traces = _TRACES[name]
    chex.assert_type(d, jnp.float32)
    chex.assert_shape(d, (10,))
    chex.assert_trees_all_equal_shapes_and_dtypes(new_state, state)
    state = new_state
  assert _TRACES[name] == traces, "new values (and the returned state) retraced"


@pytest.mark.parametrize("name", NAMES)
def test_pytree_matches_flat(name):
  rng = np.random.default_rng(3)
  tree = {
    "a": jnp.asarray(rng.normal(size=(3, 2, 3)), jnp.float32),
    "b": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
  }
  flat = jnp.concatenate([tree["a"].reshape(3, -1), tree["b"]], axis=1)
  params = jax.tree.map(lambda x: x[0], tree)
  agg = _agg(name)
  d_tree, _ = jax.jit(agg.update)(tree, agg.init(params), params)
  d_flat = _apply(name, flat)
  chex.assert_trees_all_equal_shapes_and_dtypes(d_tree, params)
  got = jnp.concatenate([d_tree["a"].reshape(-1), d_tree["b"]])
  if name in PYTREE_STOCHASTIC:
    chex.assert_tree_all_finite(got)
  else:
    chex.assert_trees_all_close(got, d_flat, rtol=1e-4, atol=1e-5)


_C = jnp.array([[1.0, 0.0], [0.0, 1.0]], jnp.float32)  # minima of L_i = ½‖x − c_i‖²


def _dist_to_segment(x):
  a, b = _C
  s = jnp.clip(jnp.dot(x - a, b - a) / jnp.dot(b - a, b - a), 0.0, 1.0)
  return jnp.linalg.norm(x - (a + s * (b - a)))


@pytest.mark.parametrize("name", NAMES)
def test_two_task_quadratic_reaches_pareto_set(name):
  steps = 400
  agg = _agg(name)
  # A decaying rate lets methods with normalised updates (nash_mtl) settle too.
  opt = optax.sgd(optax.cosine_decay_schedule(0.1, steps))
  x0 = jnp.array([2.0, -1.0], jnp.float32)

  @jax.jit
  def run(x):
    def step(carry, _):
      x, agg_state, opt_state = carry
      g_TxP = x[None, :] - _C  # ∇L_i = x − c_i
      d, agg_state = agg.update(g_TxP, agg_state, x)
      u, opt_state = opt.update(d, opt_state, x)
      return (optax.apply_updates(x, u), agg_state, opt_state), None

    (x, _, _), _ = jax.lax.scan(step, (x, agg.init(x), opt.init(x)), None, length=steps)
    return x

  x = run(x0)
  chex.assert_tree_all_finite(x)
  assert _dist_to_segment(x) < QUAD_TOL.get(name, 0.02), (name, x)
