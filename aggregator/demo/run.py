"""``aggregator demo``: the whole pipeline, offline, on feeds the project wrote.

Serves the shipped demo feeds from 127.0.0.1, fetches them into a fresh database under
``var/demo/``, tags them with the default model (trained at first use), prints a table
with the Russia–Iran pieces on top and writes a digest preview.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aggregator.instance import Instance, shipped_config


def _fresh_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def _digest_order(taxonomy: Any) -> list[str]:
    """The demo digest's sections: the relationship first, then themes, then regions;
    genre (analysis / news) is not a section."""
    kinds = {"relationship": 0, "theme": 1, "region": 2}
    tags = [t for t in taxonomy.tags if t.kind in kinds]
    return [t.name for t in sorted(tags, key=lambda t: kinds[t.kind])]


def run_demo(instance: Instance, echo: Callable[[str], None] = print,
             table: bool = True) -> Path:
    from aggregator.config import Config, settings_from
    from aggregator.demo import demo_feed_files, feed_name
    from aggregator.demo.server import FeedFileServer
    from aggregator.digest.render import Digest, group_by_tag, render
    from aggregator.service import demo_listing, fetch_pass, load_classifier
    from aggregator.store.sqlite import SQLiteStore
    from aggregator.timeutil import utcnow
    from aggregator.views import FeedConfig
    from classifiers.taxonomy import load_taxonomy

    out_dir = instance.var_dir / "demo"
    out_dir.mkdir(parents=True, exist_ok=True)
    db = out_dir / "aggregator.db"
    _fresh_database(db)
    taxonomy_file = instance.taxonomy_file if instance.taxonomy_file.exists() \
        else shipped_config() / "taxonomy.toml"
    taxonomy = load_taxonomy(taxonomy_file)
    settings = settings_from({
        "database": {"url": f"sqlite:///{db}"},
        "classifier": {"models_dir": str(instance.var_dir / "models")},
    })
    files = demo_feed_files()
    with FeedFileServer(files) as server:
        feeds = tuple(FeedConfig(feed_name(p), server.url(p.name)) for p in files)
        config = Config(instance, settings, feeds, taxonomy)
        store = SQLiteStore(db)
        try:
            echo(f"serving {len(files)} demo feeds at {server.base_url}")
            classifier = load_classifier(config)
            echo(f"model {classifier.version}")
            summary = fetch_pass(config, store, all_feeds=True, classifier=classifier)
            echo(f"fetched: {summary.feeds_ok} feeds ok, {summary.feeds_failed} failed; "
                 f"{summary.new_items} items, {summary.tags_assigned} tags")
            items = demo_listing(store)
            if table:
                from aggregator.output import print_table

                print_table(items, title="Tagged items (Russia–Iran first)")
            digest_items = store.items_by_ids([i.id for i in items])
            digest = Digest(
                title="Demo digest: russia-iran and more", generated_at=utcnow(),
                period_start=None, period_end=utcnow(),
                sections=group_by_tag(digest_items, _digest_order(taxonomy), min_score=0.5),
                focus_tags=("russia-iran",))
            html, text = render(digest, instance.templates_dir)
        finally:
            store.close()
    preview = out_dir / "digest-preview.html"
    preview.write_text(html, encoding="utf-8")
    preview.with_suffix(".txt").write_text(text, encoding="utf-8")
    echo(f"digest preview: {preview}")
    echo(f"explore it: AGGREGATOR_DATABASE_URL=sqlite:///{db} aggregator query --tag russia-iran")
    return preview
