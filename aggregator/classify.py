"""The classification use cases: the model loaded (or trained at first use), items tagged.

Shared by the ingest pipeline (its classify stage), the service functions and the daemon's
classify and retrain jobs. scikit-learn and the model load inside the functions that need
them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aggregator.errors import ModelError, UsageError
from aggregator.timeutil import utcnow
from aggregator.types import ItemToClassify
from aggregator.views import TagScore

if TYPE_CHECKING:
    from aggregator.config import Config
    from aggregator.store.base import Store

Progress = Callable[[str, int, int], None]  # (what, done, total)
# Items tagged per commit when classifying (in batches of [classifier] batch_size).
CLASSIFY_COMMIT_ITEMS = 2500


@dataclass
class Classifier:
    """The current model, loaded (or trained from the starter corpus at first use)."""

    model: Any  # classifiers.model.TagModel

    @property
    def version(self) -> str:
        return str(self.model.version)

    def predict_raw(self, items: Sequence[ItemToClassify]) -> list[Any]:
        from classifiers.model import Doc

        return list(self.model.predict([
            Doc(id=str(i.id), title=i.title, text=i.text, categories=i.categories,
                feed_tags=i.feed_tags, url=i.url) for i in items]))

    def thresholds(self) -> dict[str, float]:
        return {t: float(s.get("threshold", 0.5)) for t, s in cv_per_tag(self.model.meta).items()}

    def tag(self, items: Sequence[ItemToClassify]) -> list[tuple[int, list[TagScore]]]:
        out = []
        version = self.version
        for item, p in zip(items, self.predict_raw(items), strict=True):
            scores, reasons = p.scores, p.reasons
            out.append((item.id, [
                TagScore(tag, float(scores[tag]), "model", version, tuple(reasons.get(tag, ())))
                for tag in p.labels]))
        return out


def cv_per_tag(meta: dict[str, Any]) -> dict[str, dict[str, float]]:
    """A model's cross-validated scores per tag, from its metadata."""
    cv = meta.get("cv") if isinstance(meta, dict) else None
    per_tag = cv.get("per_tag") if isinstance(cv, dict) else None
    return {t: s for t, s in (per_tag or {}).items() if isinstance(s, dict)}


def models_dir(config: Config) -> Any:
    return config.instance.resolve(config.settings.classifier.models_dir)


FIRST_TRAINING = "training the default model from the starter corpus (first use, about 10 s)..."


def load_classifier(config: Config, *, train_if_missing: bool = True,
                    progress: Progress | None = None,
                    notice: Callable[[str], None] | None = None) -> Classifier:
    """The current model; trained from the starter corpus at first use, which takes a while:
    ``notice`` (the CLI prints it on stderr) is told before."""
    from classifiers.model_store import load_current

    directory = models_dir(config)
    try:
        model = load_current(directory)
    except Exception as e:  # a corrupt or incompatible model file
        raise ModelError(f"cannot load the model in {directory}: {e}; retrain it with "
                         "'aggregator train' or pick another with 'aggregator models use'") from None
    if model is None:
        if not train_if_missing:
            raise ModelError(f"no model in {directory}: train one with 'aggregator train'")
        if notice is not None:
            notice(FIRST_TRAINING)
        model = train_default(config, progress=progress).model
    return Classifier(model)


@dataclass(frozen=True)
class TrainResult:
    model: Any
    path: Any
    examples: int


def train_default(config: Config, *, extra: Sequence[Any] = (), use_starter: bool = True,
                  use_labels: bool = True, out: Any = None,
                  progress: Progress | None = None, store: Store | None = None,
                  background: int = 0) -> TrainResult:
    """Train from the starter corpus, extra JSONL files and the users' labels; save it.

    `background`: up to that many of the instance's stored items (the last 90 days) join the
    fits as sure negatives of every tag whose evidence they lack (classifiers.train.train)."""
    from pathlib import Path

    from classifiers.model_store import save_version
    from classifiers.train import STARTER_CONFIG, read_jsonl, starter_examples, train

    examples: list[Any] = list(starter_examples()) if use_starter else []
    for path in [*config.settings.classifier.extra_data, *extra]:
        try:
            examples += read_jsonl(config.instance.resolve(str(path)))
        except UnicodeDecodeError as e:
            raise UsageError(f"training data: {path}: not UTF-8 text (byte {e.start})") from None
        except OSError as e:
            raise UsageError(f"training data: {path}: {e.strerror or e}") from None
        except ValueError as e:  # classifiers.train.DataError names the file and line
            raise UsageError(f"training data: {e}") from None
    if use_labels and store is not None:
        examples += user_label_examples(store)
    if not examples:
        raise UsageError("no training data: give --data FILE.jsonl or drop --no-starter")
    # With the starter corpus, its own CV-chosen settings; any other corpus, the general ones.
    model = train(examples, config.taxonomy if use_starter else None, progress=progress,
                  config=STARTER_CONFIG if use_starter else None,
                  background=background_docs(store, background) if store is not None else ())
    if out is not None:
        model.save(Path(out))
        return TrainResult(model, Path(out), len(examples))
    path = save_version(model, models_dir(config), make_current=True)
    return TrainResult(model, path, len(examples))


def background_docs(store: Store, limit: int, days: int = 90) -> list[Any]:
    """Up to `limit` stored items of the last `days`, as documents to train beside."""
    from classifiers.model import Doc

    docs: list[Any] = []
    if limit <= 0:
        return docs
    for batch in store.items_for_reclassify(utcnow() - timedelta(days=days), 1000):
        docs += [Doc(id=f"item-{i.id}", title=i.title, text=i.text, categories=i.categories,
                     feed_tags=i.feed_tags, url=i.url) for i in batch]
        if len(docs) >= limit:
            break
    return docs[:limit]


def user_label_examples(store: Store) -> list[Any]:
    """Users' labels as training rows: the labels they set, plus the model's tags they kept."""
    from classifiers.model import Example

    rows = []
    for item, labels in store.labelled_examples():
        view = store.get_item(item.id)
        current = {t.tag for t in view.tags} if view else set()
        tags = (current | {t for t, v in labels.items() if v}) - {t for t, v in labels.items()
                                                                   if not v}
        rows.append(Example(id=f"item-{item.id}", title=item.title, text=item.text,
                            categories=item.categories, feed_tags=item.feed_tags, url=item.url,
                            labels=tuple(sorted(tags))))
    return rows


def classify_pending(store: Store, classifier: Classifier, *, batch_size: int = 300,
                     now: datetime | None = None, progress: Progress | None = None,
                     stop: threading.Event | None = None, owner: str | None = None,
                     lease: timedelta = timedelta(minutes=2)) -> int:
    """Tag every item that is new or changed since it was last tagged. Returns tags written.
    ``stop`` (the daemon's SIGTERM) ends it between batches; the rest stay pending.
    ``owner`` (a daemon) claims each batch under ``lease``, so daemons sharing a database
    classify each item once."""
    written = 0
    done = 0
    after = 0
    while not (stop and stop.is_set()):
        # Several batches a commit: a commit writes out every page of the (tag, score)
        # index that its tags touched, which for a batch of a few hundred items is most of
        # that index; committing every 2,500 items instead of every 500 wrote 203k tags
        # in 0.77 s instead of 1.07.
        # A kill loses only uncommitted tags: those items are still pending, and the next
        # run tags them.
        with store.transaction():
            pending = 0
            while pending < CLASSIFY_COMMIT_ITEMS and not (stop and stop.is_set()):
                batch = (store.items_to_classify(batch_size, after) if owner is None else
                         store.claim_items_to_classify(batch_size, owner, now or utcnow(), lease))
                if not batch:
                    return written
                after = batch[-1].id
                written += store.write_model_tags(classifier.tag(batch), now or utcnow())
                done += len(batch)
                pending += len(batch)
                if progress:
                    progress("classify", done, 0)
    return written


def reclassify(store: Store, classifier: Classifier, *, since: datetime | None = None,
               batch_size: int = 300, progress: Progress | None = None) -> int:
    written = 0
    for batch in store.items_for_reclassify(since, batch_size):
        written += store.write_model_tags(classifier.tag(batch), utcnow())
        if progress:
            progress("reclassify", written, 0)
    return written
