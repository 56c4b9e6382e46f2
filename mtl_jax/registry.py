"""One name -> factory registry, shared by models, loss weightings and aggregators."""

import inspect
from collections.abc import Callable
from typing import Any


class Registry:
  """Maps config names to factories; ``get`` checks names and keyword arguments.

  Args:
    kind: what is registered ("model", "weighting", "aggregator"), used in messages.
    kwargs_field: the config field holding the hyperparameters, used in messages.
  """

  def __init__(self, kind: str, kwargs_field: str):
    self.kind = kind
    self.kwargs_field = kwargs_field
    self.factories: dict[str, Callable[..., Any]] = {}

  def register(self, name: str):
    """Decorator registering a factory under ``name``."""

    def deco(factory):
      if name in self.factories:
        raise ValueError(f"{self.kind} {name!r} registered twice")
      self.factories[name] = factory
      return factory

    return deco

  def names(self) -> list[str]:
    """Sorted registered names."""
    return sorted(self.factories)

  def factory(self, name: str) -> Callable[..., Any]:
    """The factory registered as ``name``; unknown names list the valid ones."""
    if name not in self.factories:
      raise ValueError(f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names())}")
    return self.factories[name]

  def accepted_kwargs(self, name: str) -> set[str]:
    """The keyword arguments of the factory registered as ``name``."""
    params = inspect.signature(self.factory(name)).parameters
    return {k for k, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}

  def get(self, name: str, **kwargs: Any) -> Any:
    """Builds ``name`` with ``kwargs``; a misspelled keyword is a clear error."""
    factory = self.factory(name)
    accepted = self.accepted_kwargs(name)
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
      raise ValueError(
        f"{self.kind} {name!r}: unknown {self.kwargs_field} {unknown}; it accepts "
        f"{sorted(accepted)}"
      )
    return factory(**kwargs)
