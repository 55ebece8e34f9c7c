"""Bad config exits with one line naming the file, the key, what was expected and found."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.config import load_config, load_feeds, load_settings
from aggregator.errors import ConfigError
from aggregator.instance import Instance


def _set(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def test_shipped_config_loads(instance_dir: Path) -> None:
    config = load_config(Instance(instance_dir))
    assert len(config.feeds) >= 40
    assert config.settings.fetch.interval == timedelta(hours=1)
    names = {t.name for t in config.taxonomy.tags}
    assert {"russia", "iran", "russia-iran", "analysis", "news"} <= names
    assert config.database_url == f"sqlite:///{instance_dir}/var/aggregator.db"


@pytest.mark.parametrize(
    ("toml", "key", "expected", "found"),
    [
        ("[fetch]\ninterval = \"5 parsecs\"\n", "fetch.interval", "a duration", "'5 parsecs'"),
        ("[fetch]\nconcurrency = \"many\"\n", "fetch.concurrency", "valid integer", "'many'"),
        ("[fetch]\nintervall = \"1h\"\n", "fetch.intervall", "no such key", "unknown key"),
        ("[smtp]\nsecurity = \"tls\"\n", "smtp.security", "'starttls', 'ssl' or 'none'", "'tls'"),
        ("[[digest]]\nname = \"d\"\nto = [\"a@b.c\"]\ntimezone = \"Mars/Olympus\"\n",
         "digest[0].timezone", "IANA time zone", "'Mars/Olympus'"),
        ("[fetch\n", "", "valid TOML", "line 1"),
    ],
)
def test_bad_settings_name_file_key_expected_found(
        instance_dir: Path, toml: str, key: str, expected: str, found: str) -> None:
    _set(instance_dir / "config" / "aggregator.toml", toml)
    with pytest.raises(ConfigError) as err:
        load_settings(Instance(instance_dir))
    e = err.value
    assert e.file == "config/aggregator.toml"
    assert e.key == key
    assert expected in e.expected
    assert found in e.found
    assert "\n" not in str(e)


def test_environment_overrides_a_setting_and_names_itself_when_bad(
        instance_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATOR_FETCH_CONCURRENCY", "7")
    monkeypatch.setenv("AGGREGATOR_SMTP_HOST", "mail.example.org")
    settings = load_settings(Instance(instance_dir))
    assert settings.fetch.concurrency == 7
    assert settings.smtp.host == "mail.example.org"
    monkeypatch.setenv("AGGREGATOR_FETCH_INTERVAL", "soon")
    with pytest.raises(ConfigError) as err:
        load_settings(Instance(instance_dir))
    assert err.value.file == "environment AGGREGATOR_FETCH_INTERVAL"


def test_smtp_password_only_from_the_environment(
        instance_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _set(instance_dir / "config" / "aggregator.toml", "[smtp]\npassword = \"hunter2\"\n")
    with pytest.raises(ConfigError, match=r"smtp\.password: expected no such key"):
        load_settings(Instance(instance_dir))
    _set(instance_dir / "config" / "aggregator.toml", "[smtp]\npassword_env = \"MY_PW\"\n")
    monkeypatch.setenv("MY_PW", "s3cret")
    assert load_settings(Instance(instance_dir)).smtp.password == "s3cret"


@pytest.mark.parametrize(
    ("feeds", "key", "expected"),
    [
        ('[[feed]]\nname = "a"\nurl = "https://a.example/rss"\n'
         '[[feed]]\nname = "a"\nurl = "https://b.example/rss"\n', "feed[1].name", "unique"),
        ('[[feed]]\nname = "a"\nurl = "ftp://a.example/rss"\n', "feed[0] (a).url", "match pattern"),
        ('[[feed]]\nname = "a"\nurl = "https://a.example/rss"\ninterval = "often"\n',
         "feed[0] (a).interval", "a duration"),
        ('[[feed]]\nname = "a"\nurl = "https://a.example/rss"\ntags = ["atlantis"]\n',
         "feed[0] (a).tags", "tags from config/taxonomy.toml"),
        ('[[feed]]\nurl = "https://a.example/rss"\n', "feed[0] (?).name", "this key to be set"),
    ],
)
def test_bad_feeds(instance_dir: Path, feeds: str, key: str, expected: str) -> None:
    _set(instance_dir / "config" / "feeds.toml", feeds)
    with pytest.raises(ConfigError) as err:
        load_feeds(Instance(instance_dir), known_tags={"iran", "russia"})
    assert err.value.file == "config/feeds.toml"
    assert err.value.key == key
    assert expected in err.value.expected


def test_missing_file(instance_dir: Path) -> None:
    (instance_dir / "config" / "feeds.toml").unlink()
    with pytest.raises(ConfigError) as err:
        load_config(Instance(instance_dir))
    assert err.value.file == "config/feeds.toml"
    assert "aggregator init" in err.value.expected


def test_cli_prints_one_line_and_exits_2(instance_dir: Path) -> None:
    _set(instance_dir / "config" / "aggregator.toml", "[fetch]\nmax_body_size = \"huge\"\n")
    proc = subprocess.run(
        [sys.executable, "-m", "aggregator", "--home", str(instance_dir), "fetch"],
        capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: config/aggregator.toml: fetch.max_body_size: expected a size like 15728640 "
        "or '15MiB', found 'huge'"]
    assert "Traceback" not in proc.stderr
