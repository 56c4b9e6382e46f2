"""The sharing dial as its own name: share the first k trunk layers (CS330 lec. 2).

``split`` is :class:`~mtl_jax.models.layer_split.LayerSplitNet` with ``num_shared = k``
(``model_kwargs.num_shared``, default 1): layers ``0..k-1`` are θ^sh, layers ``k..`` and
the head are per-task (stacked on the task axis). k = 0 is ``independent``, k = depth is
``hard_sharing``; ``hard_sharing`` accepts the same ``num_shared``.
"""

from mtl_jax.models import _trunk, register
from mtl_jax.models.layer_split import LayerSplitNet


@register("split")
def split(
  *, num_tasks, output_size, input_shape=None, trunk="mlp", width=64, depth=2, num_shared=1
):
  """Shares the first ``num_shared`` (default 1) of ``depth`` trunk layers.

  model_kwargs: trunk (mlp|conv), width, depth, num_shared.
  """
  del input_shape
  return LayerSplitNet(
    _trunk(trunk, width, depth), num_tasks, output_size, num_shared=num_shared, name="split"
  )
