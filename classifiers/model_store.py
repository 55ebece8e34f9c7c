"""Model versions kept in a directory: `<models_dir>/<version>/` plus a `current` pointer file.

The pointer is a one-line text file naming a version; it is replaced atomically (write a
temporary file, then rename), so a reader never sees a half-written pointer.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from classifiers.model import MODEL_JSON, TagModel

CURRENT = "current"
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ModelStoreError(ValueError):
    pass


def _check_version(version: str) -> str:
    # A version names a directory: refuse anything that could escape models_dir.
    if not _VERSION_RE.match(version) or version == CURRENT:
        raise ModelStoreError(f"not a model version: {version!r}")
    return version


def save_version(model: TagModel, models_dir: str | Path, make_current: bool = True) -> Path:
    """Save `model` as `<models_dir>/<model.version>/`; point `current` at it unless told not to."""
    models_dir = Path(models_dir)
    target = models_dir / _check_version(model.version)
    if (target / MODEL_JSON).exists():
        raise ModelStoreError(f"{target}: version already saved")
    model.save(target)
    if make_current:
        use_version(models_dir, model.version)
    return target


def list_versions(models_dir: str | Path) -> list[str]:
    """Saved versions, oldest first (versions start with a UTC timestamp, so names sort by age)."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    return sorted(p.name for p in models_dir.iterdir() if p.is_dir() and (p / MODEL_JSON).is_file())


def current_version(models_dir: str | Path) -> str | None:
    pointer = Path(models_dir) / CURRENT
    if not pointer.is_file():
        return None
    version = pointer.read_text(encoding="utf-8").strip()
    return version or None


def use_version(models_dir: str | Path, version: str) -> None:
    """Point `current` at an already saved version."""
    models_dir = Path(models_dir)
    if version not in list_versions(models_dir):
        raise ModelStoreError(f"{models_dir}: no saved version {version!r}")
    tmp = models_dir / f".{CURRENT}.tmp"
    tmp.write_text(version + "\n", encoding="utf-8")
    os.replace(tmp, models_dir / CURRENT)


def _expect(doc: dict, key: str, kind: type, what: str) -> None:
    value = doc.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ModelStoreError(f"{MODEL_JSON}: {key}: expected {what}, found "
                              f"{type(value).__name__ if key in doc else 'nothing'}")


def check_model(path: str | Path) -> TagModel:
    """The model saved at ``path``, loaded and tried on one text; ModelStoreError saying
    what is wrong when it is truncated, wrongly typed or does not fit its arrays."""
    import json

    path = Path(path)
    try:
        doc = json.loads((path / MODEL_JSON).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or e
        raise ModelStoreError(f"{MODEL_JSON}: cannot read it: {reason}") from None
    except json.JSONDecodeError as e:
        raise ModelStoreError(f"{MODEL_JSON}: not valid JSON (truncated?): {e.msg} (line "
                              f"{e.lineno}, column {e.colno})") from None
    if not isinstance(doc, dict):
        raise ModelStoreError(f"{MODEL_JSON}: expected a JSON object, found {type(doc).__name__}")
    for key, kind, what in [("version", str, "a string"), ("tags", list, "a list of tags"),
                            ("meta", dict, "an object"), ("feature_config", dict, "an object"),
                            ("n_actor", int, "an integer"), ("rules", dict, "an object"),
                            ("regions", dict, "an object"), ("named", list, "a list")]:
        _expect(doc, key, kind, what)
    if not doc["tags"] or not all(isinstance(t, str) for t in doc["tags"]):
        raise ModelStoreError(f"{MODEL_JSON}: tags: expected a non-empty list of strings")
    try:
        from classifiers.model import Doc

        model = TagModel.load(path)
        model.predict([Doc(id="check", title="check", text="a text to check the model with")])
    except Exception as e:  # whatever a damaged file makes numpy or the loader raise
        raise ModelStoreError(f"cannot use it: {type(e).__name__}: {e}") from None
    return model


def load_current(models_dir: str | Path) -> TagModel | None:
    """The current model, or None when no version is current."""
    version = current_version(models_dir)
    if version is None:
        return None
    return TagModel.load(Path(models_dir) / _check_version(version))
