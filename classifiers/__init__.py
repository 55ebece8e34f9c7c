"""News tagger: taxonomy, features, per-tag calibrated linear models, training and evaluation.

Standalone (does not import `aggregator`). Typical use::

    from classifiers import load_taxonomy, starter_examples, train, Doc
    model = train(starter_examples(), load_taxonomy())
    model.predict([Doc("1", "Title", "Text ...")])
"""

# Importing this package must stay light: the daemon and `fetch` import it to predict, and
# scikit-learn (about 0.8 s and 77 MiB) is imported only where training fits a model.
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
