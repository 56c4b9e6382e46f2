"""The shared name -> factory registry: unknown names and misspelled kwargs are clear errors."""

import pytest

from mtl_jax import aggregators, models, weighting
from mtl_jax.registry import Registry


def test_registry_round_trip_and_errors():
  reg = Registry("gizmo", "gizmo_kwargs")

  @reg.register("double")
  def double(x=1):
    return 2 * x

  assert reg.names() == ["double"] and reg.get("double", x=3) == 6
  with pytest.raises(ValueError, match="registered twice"):
    reg.register("double")(double)
  with pytest.raises(ValueError, match=r"unknown gizmo 'triple'; valid names: double"):
    reg.get("triple")
  with pytest.raises(ValueError, match=r"gizmo 'double': unknown gizmo_kwargs \['y'\].*\['x'\]"):
    reg.get("double", y=1)


@pytest.mark.parametrize(
  "get, name",
  [(aggregators.get, "cagrad"), (weighting.get, "dwa"), (models.get, "hard_sharing")],
)
def test_misspelled_hyperparameter_names_the_field(get, name):
  with pytest.raises(
    ValueError, match=rf"'{name}': unknown (method|model)_kwargs \['tempreature'\]"
  ):
    get(name, tempreature=2.0)
