"""``typing.NamedTuple``'s class syntax without importing ``typing``.

The read commands (``query``, ``show``, ``tags``, ``feeds list``) run in shell loops, where
process start is most of their cost, and ``import typing`` alone is about 5 ms of a ~55 ms
``query`` (``bench/bench_query.py``). Their values are named tuples, so this builds the same
class ``typing.NamedTuple`` builds (``collections.namedtuple`` with the annotated fields, the
defaults, and the class body's methods and docstring) from the same class statement. Type
checkers read ``typing.NamedTuple`` itself; ``tests/test_namedtuple.py`` holds the two
side by side.
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
else:
    # As typing's: names a class body may not define, and names it defines that are not copied.
    _PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields",
                             "_field_defaults", "_make", "_replace", "_asdict", "_source"})
    _SPECIAL = frozenset({"__module__", "__name__", "__qualname__", "__annotations__"})

    class _Builder(type):
        def __new__(mcls, name, bases, namespace):
            if not bases:  # NamedTuple itself
                return super().__new__(mcls, name, bases, namespace)
            fields = tuple(namespace.get("__annotations__", ()))
            defaults = [namespace[f] for f in fields if f in namespace]
            if any(f not in namespace for f in fields[len(fields) - len(defaults):]):
                raise TypeError(f"{name}: a field without a default follows one with a default")
            if clash := sorted(_PROHIBITED & namespace.keys()):
                raise AttributeError(f"{name}: cannot overwrite NamedTuple attribute {clash[0]}")
            cls = namedtuple(name, fields, defaults=defaults, module=namespace["__module__"])
            for key, value in namespace.items():
                if key not in fields and key not in _SPECIAL:
                    setattr(cls, key, value)
            cls.__qualname__ = namespace.get("__qualname__", name)
            cls.__annotations__ = dict(namespace.get("__annotations__", {}))
            return cls

    class NamedTuple(metaclass=_Builder):
        pass
