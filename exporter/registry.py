"""The one registry: which converter handles a step, keyed by the step's type, looked up along the MRO.

Two kinds of entry exist:

* ``SKLEARN`` marks a type that skl2onnx converts (a run of such steps becomes one sklearn stage);
* a ``TorchAdapter`` says how to find the fitted ``torch.nn.Module`` inside a torch-backed step and
  which head turns its output into the step's ``predict`` / ``predict_proba``.

This module holds the entries only; ``exporter.registration`` fills it (``load_builtin``, the
user's ``register_*`` calls): nothing is registered by importing a module. Registering a type
twice fails loudly unless ``replace=True`` is passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from exporter.convert.heads import Head
from exporter.errors import RegistrationError


@dataclass(frozen=True)
class SklearnConverter:
    """Marker entry: skl2onnx converts this type."""

    def __repr__(self) -> str:
        return "SKLEARN"


SKLEARN = SklearnConverter()

# A module is found by attribute name, or by a function of the fitted step.
ModuleLocator = str | Callable[[Any], Any] | None
# A head is fixed, or computed from the fitted step (e.g. skorch's predict_nonlinearity).
HeadResolver = Head | Callable[[Any], Head] | None


@dataclass(frozen=True)
class TorchAdapter:
    """How to export a torch-backed step.

    ``module``: attribute name holding the fitted ``nn.Module`` (None: find the one module by
    duck typing). ``head``: how its output becomes ``predict`` / ``predict_proba`` (None: the
    default head, see ``Head``).
    """

    module: ModuleLocator = None
    head: HeadResolver = None
    source: str = "registered"

    def head_for(self, step: Any) -> Head:
        if self.head is None:
            return Head()
        if isinstance(self.head, Head):
            return self.head
        return self.head(step)


Entry = SklearnConverter | TorchAdapter


class Registry:
    """Type → converter entry. Lookup walks the MRO so subclasses inherit their parent's entry.

    Exception: ``SKLEARN`` entries match their exact type only, as skl2onnx does — a subclass of
    StandardScaler may override ``transform``, and converting it as a StandardScaler would be wrong.
    """

    def __init__(self) -> None:
        self._entries: dict[type, Entry] = {}

    def register(self, cls: type, entry: Entry, *, replace: bool = False) -> None:
        if not isinstance(cls, type):
            raise RegistrationError(f"register a class, not {cls!r} ({type(cls).__name__})")
        if cls in self._entries and not replace:
            raise RegistrationError(
                f"{public_name(cls)} is already registered ({self._entries[cls]!r}); "
                "pass replace=True to override it"
            )
        self._entries[cls] = entry

    def unregister(self, cls: type) -> None:
        self._entries.pop(cls, None)

    def lookup(self, cls: type) -> Entry | None:
        for base in cls.__mro__:
            entry = self._entries.get(base)
            if entry is not None and (entry is not SKLEARN or base is cls):
                return entry
        return None

    def __contains__(self, cls: type) -> bool:
        return cls in self._entries

    def items(self) -> Iterator[tuple[type, Entry]]:
        return iter(sorted(self._entries.items(), key=lambda kv: public_name(kv[0])))


def torch_adapter(step: Any) -> TorchAdapter | None:
    """The TorchAdapter of a torch-backed step — registered, or detected (predict/transform and a
    fitted module attribute) — or None for anything else. The built-ins must be loaded
    (``registration.load_builtin``) for skorch's nets and the sklearn types to be known."""
    from exporter.convert.torch import module_attributes

    entry = registry.lookup(type(step))
    if isinstance(entry, TorchAdapter):
        return entry
    if entry is SKLEARN:
        return None
    if (hasattr(step, "predict") or hasattr(step, "transform")) and module_attributes(step):
        return TorchAdapter(source="detected")
    return None


# The one registry of this process (exporter.registration fills it).
registry = Registry()


def public_name(cls: type) -> str:
    """The shortest import path users know a class by (sklearn.preprocessing.StandardScaler, not
    sklearn.preprocessing._data.StandardScaler; skorch.NeuralNetClassifier)."""
    import importlib

    parts = cls.__module__.split(".")
    for i in range(1, len(parts) + 1):
        module = ".".join(parts[:i])
        try:
            if getattr(importlib.import_module(module), cls.__name__, None) is cls:
                return f"{module}.{cls.__qualname__}"
        except ImportError:
            continue
    return f"{cls.__module__}.{cls.__qualname__}"
