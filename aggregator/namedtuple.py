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
    # What the class body defines that is not a field or a method to copy: typing's own list.
    _NOT_COPIED = frozenset({"__module__", "__qualname__", "__annotations__", "__orig_bases__",
                             "__slots__", "__new__", "__init__", "__getnewargs__", "_fields",
                             "_field_defaults", "_make", "_replace", "_asdict", "_source"})

    class _Builder(type):
        def __new__(mcls, name, bases, namespace):
            if not bases:  # NamedTuple itself
                return super().__new__(mcls, name, bases, namespace)
            fields = tuple(namespace.get("__annotations__", ()))
            defaults = [namespace[f] for f in fields if f in namespace]
            if any(f not in namespace for f in fields[len(fields) - len(defaults):]):
                raise TypeError(f"{name}: a field without a default follows one with a default")
            for key in namespace:
                if key in _NOT_COPIED and key not in ("__module__", "__qualname__",
                                                      "__annotations__"):
                    raise AttributeError(f"{name}: cannot overwrite NamedTuple attribute {key}")
            cls = namedtuple(name, fields, defaults=defaults, module=namespace["__module__"])
            for key, value in namespace.items():
                if key not in fields and key not in _NOT_COPIED:
                    setattr(cls, key, value)
            cls.__qualname__ = namespace.get("__qualname__", name)
            cls.__annotations__ = dict(namespace.get("__annotations__", {}))
            return cls

    class NamedTuple(metaclass=_Builder):
        pass
