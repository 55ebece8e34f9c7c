"""``aggregator.namedtuple.NamedTuple`` builds what ``typing.NamedTuple`` builds from the same
class statement: the views the read commands return depend on it."""

from __future__ import annotations

import pickle
import typing
from datetime import datetime

import pytest

from aggregator import namedtuple as ours
from aggregator.views import ItemQuery, TagCount, TagScore


def _define(base: type) -> type:
    class Sample(base):  # type: ignore[valid-type, misc]
        """A sample."""

        name: str
        when: datetime | None = None
        tags: tuple[str, ...] = ()
        count: int = 0  # shadows tuple.count, as TagCount's does

        def first(self) -> str | None:
            return self.tags[0] if self.tags else None

        @property
        def shout(self) -> str:
            return self.name.upper()

    return Sample


@pytest.fixture(params=["typing", "ours"])
def sample(request: pytest.FixtureRequest) -> type:
    return _define(typing.NamedTuple if request.param == "typing" else ours.NamedTuple)


def test_the_runtime_base_is_not_typings() -> None:
    assert ours.NamedTuple is not typing.NamedTuple


def test_both_build_the_same_class(sample: type) -> None:
    assert issubclass(sample, tuple)
    assert sample._fields == ("name", "when", "tags", "count")
    assert sample._field_defaults == {"when": None, "tags": (), "count": 0}
    assert sample.__doc__ == "A sample."
    assert sample.__name__ == "Sample"
    assert sample.__qualname__.endswith("_define.<locals>.Sample")
    assert sample.__module__ == __name__
    assert list(sample.__annotations__) == ["name", "when", "tags", "count"]


def test_both_build_the_same_values(sample: type) -> None:
    value = sample("iran", tags=("nuclear", "sanctions"))
    assert value == ("iran", None, ("nuclear", "sanctions"), 0)
    assert value.first() == "nuclear" and value.shout == "IRAN"
    assert value.count == 0
    assert value._replace(count=3).count == 3
    assert value._asdict()["tags"] == ("nuclear", "sanctions")
    assert repr(value) == "Sample(name='iran', when=None, tags=('nuclear', 'sanctions'), count=0)"
    with pytest.raises(AttributeError):
        value.name = "russia"
    with pytest.raises(TypeError):
        sample()  # name has no default


@pytest.mark.parametrize("base", [typing.NamedTuple, ours.NamedTuple])
def test_a_field_without_a_default_after_one_with_a_default_is_refused(base: type) -> None:
    with pytest.raises(TypeError):
        class Bad(base):  # type: ignore[valid-type, misc]
            a: int = 0
            b: int


@pytest.mark.parametrize("base", [typing.NamedTuple, ours.NamedTuple])
def test_overwriting_a_named_tuple_method_is_refused(base: type) -> None:
    with pytest.raises(AttributeError):
        class Bad(base):  # type: ignore[valid-type, misc]
            a: int

            def _replace(self, **kw: object) -> None:  # type: ignore[override]
                pass


def test_the_views_are_named_tuples_that_pickle_and_compare() -> None:
    score = TagScore("iran", 0.9)
    assert score == TagScore(tag="iran", score=0.9, source="model", model_version=None, reasons=())
    assert pickle.loads(pickle.dumps(score)) == score
    assert ItemQuery().limit == 50 and ItemQuery(limit=None).sort == "date"
    assert TagCount("iran", 3).count == 3
