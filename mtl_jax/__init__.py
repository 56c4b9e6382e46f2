"""mtl_jax: multi-task and transfer learning in JAX/Flax.

Import what you need from the submodules::

    from mtl_jax import data, models, aggregators, weighting, train, experiment
"""

__version__ = "0.1.0"
