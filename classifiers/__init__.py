"""News tagger: taxonomy, features, per-tag calibrated linear models, training and evaluation.

Standalone (does not import `aggregator`). Typical use::

    from classifiers import load_taxonomy, starter_examples, train, Doc
    model = train(starter_examples(), load_taxonomy())
    model.predict([Doc("1", "Title", "Text ...")])
"""

# Importing this package must stay light: `fetch` imports classifiers.taxonomy to read the
# config, and a pass with nothing to classify must not pay for numpy and scipy (~0.2 s). So
# the names below are imported on first use (PEP 562); scikit-learn (about 0.8 s and 77 MiB)
# only where training fits a model.
import sys
import types
from typing import TYPE_CHECKING, Any

_WHERE = {
    "evaluate": "classifiers.evaluate",
    "Doc": "classifiers.model", "Example": "classifiers.model",
    "Prediction": "classifiers.model", "TagModel": "classifiers.model",
    "list_versions": "classifiers.model_store", "load_current": "classifiers.model_store",
    "save_version": "classifiers.model_store", "use_version": "classifiers.model_store",
    "TagDef": "classifiers.taxonomy", "Taxonomy": "classifiers.taxonomy",
    "TaxonomyError": "classifiers.taxonomy", "load_taxonomy": "classifiers.taxonomy",
    "DataError": "classifiers.train", "TrainConfig": "classifiers.train",
    "read_jsonl": "classifiers.train", "starter_examples": "classifiers.train",
    "train": "classifiers.train",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'classifiers' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """Importing the submodule ``classifiers.train`` binds it to the package as ``train``;
    here ``train`` and ``evaluate`` name the functions, as they did when this file imported
    them eagerly, so that binding is left out (the submodules stay in sys.modules)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("train", "evaluate") and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

if TYPE_CHECKING:
    from classifiers.evaluate import evaluate
    from classifiers.model import Doc, Example, Prediction, TagModel
    from classifiers.model_store import list_versions, load_current, save_version, use_version
    from classifiers.taxonomy import TagDef, Taxonomy, TaxonomyError, load_taxonomy
    from classifiers.train import DataError, TrainConfig, read_jsonl, starter_examples, train

__all__ = [
    "DataError",
    "Doc",
    "Example",
    "Prediction",
    "TagDef",
    "TagModel",
    "Taxonomy",
    "TaxonomyError",
    "TrainConfig",
    "evaluate",
    "list_versions",
    "load_current",
    "load_taxonomy",
    "read_jsonl",
    "save_version",
    "starter_examples",
    "train",
    "use_version",
]
