"""train, evaluate, classify, label, reclassify, models: the classifier's commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from aggregator.commands.common import Context, handle_errors, pass_ctx, progress_reporter
from aggregator.errors import UsageError


def _read_data(paths: tuple[Path, ...], labelled: bool = True) -> list[Any]:
    from classifiers.train import read_jsonl

    rows: list[Any] = []
    for p in paths:
        try:
            rows += read_jsonl(p, labelled)
        except (OSError, ValueError) as e:
            raise UsageError(f"--data {p}: {e}") from None
    return rows


def _load_model(ctx: Context, model_path: Path | None) -> Any:
    from aggregator.errors import ModelError

    if model_path is not None:
        from classifiers.model import TagModel

        try:
            return TagModel.load(model_path)
        except (OSError, ValueError, KeyError) as e:
            raise ModelError(f"cannot load the model at {model_path}: {e}") from None
    from aggregator.service import load_classifier

    return load_classifier(ctx.config(), train_if_missing=False).model


@click.command()
@click.option("--data", "data", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A labelled JSONL file to train on (repeatable).")
@click.option("--no-starter", is_flag=True, help="Leave out the shipped starter corpus.")
@click.option("--no-labels", is_flag=True, help="Leave out the labels users gave.")
@click.option("--out", type=click.Path(path_type=Path), help="Save the model here instead of var/models/.")
@click.option("--background", type=click.IntRange(0, 1_000_000), default=0, show_default=True,
              metavar="N", help="Also learn from up to N stored items (last 90 days) as sure negatives "
              "of the tags whose evidence they lack.")
@pass_ctx
@handle_errors
def train(ctx: Context, data: tuple[Path, ...], no_starter: bool, no_labels: bool,
          out: Path | None, background: int) -> None:
    """Train a model, print its CV scores, make it current."""
    from aggregator.service import train_default

    config = ctx.config()
    store = None if no_labels and not background else ctx.store(config.database_url)
    report, stop = progress_reporter()
    try:
        # Absolute: click checked them from the current directory, not from the instance.
        result = train_default(config, extra=[p.resolve() for p in data], use_starter=not no_starter,
                               use_labels=not no_labels, out=out, progress=report, store=store,
                               background=background)
    finally:
        stop()
        if store is not None:
            store.close()
    model = result.model
    click.echo(f"trained {model.version} on {result.examples} examples -> {result.path}")
    from aggregator.service import cv_per_tag

    cv = model.meta.get("cv", {})
    if cv.get("micro_f1") is not None:
        click.echo(f"cross-validated ({cv.get('method', '')}): micro F1 {cv['micro_f1']:.3f}, "
                   f"macro F1 {cv.get('macro_f1', 0):.3f}")
    _print_scores(cv_per_tag(model.meta))


def _print_scores(per_tag: dict[str, Any]) -> None:
    if not per_tag:
        return
    def num(value: Any, width: int) -> str:
        # A tag with too few examples to cross-validate has no score: say so, not crash.
        return f"{value:>{width}.3f}" if isinstance(value, int | float) else f"{'-':>{width}}"

    click.echo(f"{'tag':<18} {'precision':>9} {'recall':>7} {'f1':>6} {'threshold':>9} {'support':>8}")
    for tag, s in sorted(per_tag.items()):
        click.echo(f"{tag:<18} {num(s.get('precision'), 9)} {num(s.get('recall'), 7)} "
                   f"{num(s.get('f1'), 6)} {num(s.get('threshold'), 9)} {s.get('support', ''):>8}")


@click.command()
@click.option("--data", "data", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Held-out labelled JSONL (repeatable).")
@click.option("--model", "model_path", type=click.Path(exists=True, path_type=Path),
              help="A saved model (default: the current one).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]),
              help="Default: table on a terminal, json when piped.")
@pass_ctx
@handle_errors
def evaluate(ctx: Context, data: tuple[Path, ...], model_path: Path | None, fmt: str | None) -> None:
    """Score a model on held-out labelled data."""
    from classifiers.evaluate import evaluate as run

    rows = _read_data(data)  # a bad file is reported before any model is loaded
    result = run(_load_model(ctx, model_path), rows)
    fmt = fmt or ("table" if sys.stdout.isatty() else "json")
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"n={result['n']}  accuracy={result['accuracy']:.4f}  micro P/R/F1="
               f"{result['micro_precision']:.4f}/{result['micro_recall']:.4f}/"
               f"{result['micro_f1']:.4f}  macro F1={result['macro_f1']:.4f}")
    click.echo(f"{'tag':<18} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}")
    for tag, s in sorted(result["per_label"].items()):
        click.echo(f"{tag:<18} {s['precision']:>9.3f} {s['recall']:>7.3f} {s['f1']:>6.3f} "
                   f"{s['support']:>8}")


@click.command()
@click.option("--data", "data", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSONL to classify ({\"id\", \"title\", \"text\"} per line).")
@click.option("--text", "texts", multiple=True, help="A text to classify (repeatable).")
@click.option("--model", "model_path", type=click.Path(exists=True, path_type=Path),
              help="A saved model (default: the current one).")
@pass_ctx
@handle_errors
def classify(ctx: Context, data: tuple[Path, ...], texts: tuple[str, ...],
             model_path: Path | None) -> None:
    """Tag texts or JSONL rows: a JSON line each, with reasons."""
    from classifiers.model import Doc

    if not data and not texts:
        raise UsageError("give --data FILE.jsonl or --text TEXT")
    docs: list[Any] = [Doc(id=f"text-{n + 1}", title="", text=t) for n, t in enumerate(texts)]
    docs += [r.doc for r in _read_data(data, labelled=False)] if data else []
    model = _load_model(ctx, model_path)
    for start in range(0, len(docs), 2000):
        batch = docs[start:start + 2000]
        for doc, p in zip(batch, model.predict(batch), strict=True):
            click.echo(json.dumps({
                "id": doc.id, "labels": list(p.labels),
                "scores": {t: round(float(s), 4) for t, s in p.scores.items()},
                "reasons": {t: list(r) for t, r in p.reasons.items() if t in p.labels},
            }, ensure_ascii=False))


@click.command()
@click.argument("item_id", type=click.IntRange(0, 2**63 - 1), required=False)
@click.option("--add", "add", multiple=True, metavar="TAG", help="The item has this tag (repeatable).")
@click.option("--remove", "remove", multiple=True, metavar="TAG", help="The item has not this tag.")
@click.option("--suggest", "suggest_n", type=click.IntRange(1, 100_000), metavar="N",
              help="Show the N items the model is least sure of and ask about each.")
@click.option("--tag", "focus", metavar="TAG", help="With --suggest: only this tag.")
@pass_ctx
@handle_errors
def label(ctx: Context, item_id: int | None, add: tuple[str, ...], remove: tuple[str, ...],
          suggest_n: int | None, focus: str | None) -> None:
    """Label an item, or be asked about uncertain ones."""
    from aggregator.service import check_tags, label_item, load_classifier, uncertain_items
    from aggregator.timeutil import utcnow

    config = ctx.config()
    known = [t.name for t in config.taxonomy.tags]
    store = ctx.store(config.database_url)
    try:
        if suggest_n:
            if focus:
                check_tags([focus], known)
            classifier = load_classifier(config, notice=lambda text: click.echo(text, err=True))
            candidates = uncertain_items(store, classifier, suggest_n, focus)
            if not candidates:
                click.echo("nothing to ask about: no model-tagged items yet", err=True)
                sys.exit(1)
            interactive = sys.stdin.isatty()
            for item, tag, score in candidates:
                click.echo(f"[{item.id}] {item.title}\n    {item.summary[:200]}\n"
                           f"    {tag}? (model: {score:.2f})")
                if not interactive:
                    continue
                answer = click.prompt("    y/n/skip", type=click.Choice(["y", "n", "skip"]),
                                      default="skip", show_choices=False)
                if answer != "skip":
                    label_item(store, item.id, [tag] if answer == "y" else [],
                               [tag] if answer == "n" else [], known, utcnow())
            return
        if item_id is None or not (add or remove):
            raise UsageError("give ITEM_ID with --add TAG and/or --remove TAG, or --suggest N")
        label_item(store, item_id, list(add), list(remove), known, utcnow())
        click.echo(f"labelled item {item_id}: +{','.join(add) or '-'} -{','.join(remove) or '-'}")
    finally:
        store.close()


@click.command()
@click.option("--since", metavar="WHEN", help="Only items published since: 2026-11-01, 7d, 2w.")
@pass_ctx
@handle_errors
def reclassify(ctx: Context, since: str | None) -> None:
    """Re-tag stored items with the current model, in batches."""
    from aggregator.service import load_classifier
    from aggregator.service import reclassify as run
    from aggregator.timeutil import parse_when, utcnow

    try:
        start = parse_when(since, utcnow()) if since else None
    except ValueError as e:
        raise UsageError(f"--since: {e}") from None
    config = ctx.config()
    store = ctx.store(config.database_url)
    report, stop = progress_reporter()
    try:
        classifier = load_classifier(config, progress=report,
                                     notice=lambda text: click.echo(text, err=True))
        written = run(store, classifier, since=start,
                      batch_size=config.settings.classifier.batch_size, progress=report)
    finally:
        stop()
        store.close()
    click.echo(f"reclassified with {classifier.version}: {written} tags written")


@click.group()
def models() -> None:
    """List trained model versions, or switch to one."""


@models.command("list")
@pass_ctx
@handle_errors
def models_list(ctx: Context) -> None:
    """Every saved version, the current one marked."""
    import json as _json

    from aggregator.service import models_dir
    from classifiers.model import MODEL_JSON
    from classifiers.model_store import current_version, list_versions

    directory = models_dir(ctx.config())
    current = current_version(directory)
    versions = list_versions(directory)
    if not versions:
        click.echo(f"no models in {directory}: train one with 'aggregator train'", err=True)
        sys.exit(1)
    for version in versions:
        mark = "*" if version == current else " "
        try:
            doc = _json.loads((directory / version / MODEL_JSON).read_text(encoding="utf-8"))
            meta = doc.get("meta", {}) if isinstance(doc, dict) else None
            if not isinstance(meta, dict):
                raise ValueError("no metadata object")
            cv = meta.get("cv", {})
            scores = (f"CV micro F1 {cv['micro_f1']:.3f}, macro F1 {cv.get('macro_f1', 0):.3f}"
                      if isinstance(cv, dict) and isinstance(cv.get("micro_f1"), (int, float))
                      else "")
            tags = meta.get("tags", [])
            click.echo(f"{mark} {version}  {meta.get('train_size', '?')} examples  "
                       f"{len(tags) if isinstance(tags, list) else '?'} tags  {scores}")
        except (OSError, ValueError) as e:  # a damaged model is listed, not a crash
            click.echo(f"{mark} {version}  unreadable {MODEL_JSON}: {e}")
    if current is not None and current not in versions:
        click.echo(f"current points at {current!r}, which is not a saved model: "
                   "pick one with 'aggregator models use VERSION'", err=True)


@models.command("use")
@click.argument("version")
@pass_ctx
@handle_errors
def models_use(ctx: Context, version: str) -> None:
    """Make VERSION the current model (then: aggregator reclassify)."""
    from aggregator.service import models_dir
    from classifiers.model_store import list_versions, use_version

    directory = models_dir(ctx.config())
    known = list_versions(directory)
    if version not in known:
        from aggregator.errors import suggest

        raise UsageError(f"no model version {version!r}{suggest(version, known)}")
    from aggregator.errors import ModelError
    from classifiers.model_store import ModelStoreError, check_model

    try:
        check_model(directory / version)
    except ModelStoreError as e:
        raise ModelError(f"model {version} not made current: {e}") from None
    use_version(directory, version)
    click.echo(f"current model: {version}")
