"""Configuration: the shipped file, environment overrides and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaserver.config import LEAF_KEYS, Secret, env_name, load_settings
from mediaserver.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "callwright.toml"
KEY = "k" * 24


def test_shipped_file_loads_and_matches_the_defaults() -> None:
    from_file = load_settings(SHIPPED, env={})
    assert from_file == load_settings(None, env={})
    assert from_file.database.url.startswith("sqlite+aiosqlite:///var/")


def test_every_key_has_a_documented_line_in_the_shipped_file() -> None:
    text = SHIPPED.read_text()
    for dotted in LEAF_KEYS:
        assert f"\n{dotted.rsplit('.', 1)[1]} =" in text, dotted


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[server]\nport = 8100\n[database]\nurl = "sqlite+aiosqlite:///a.db"\n'
    )
    env = {
        "CALLWRIGHT_API_KEYS": f"{KEY}, {'z' * 20}",
        "CALLWRIGHT_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1/test",
        "CALLWRIGHT_MEDIA_SECRET": "media-secret",
        "CALLWRIGHT_PUBLIC_URL": "https://calls.example.test",
        "CALLWRIGHT_SERVER_PORT": "8200",
        "CALLWRIGHT_CARRIERS_TWILIO_AUTH_TOKEN": "tw-token",
        "CALLWRIGHT_TELNYX_CONNECTION_ID": "conn-1",
    }
    settings = load_settings(path, env=env)

    assert settings.server.port == 8200
    assert settings.database.url.startswith("postgresql+asyncpg://")
    assert [k.reveal() for k in settings.api.keys] == [KEY, "z" * 20]
    assert settings.media.secret.reveal() == "media-secret"
    assert settings.http_base_url == "https://calls.example.test"
    assert settings.carriers.twilio.auth_token.reveal() == "tw-token"
    assert settings.carriers.telnyx.connection_id == "conn-1"


def test_secrets_are_masked_in_repr() -> None:
    env = {"CALLWRIGHT_MEDIA_SECRET": "hunter2-hunter2", "CALLWRIGHT_API_KEYS": KEY}
    settings = load_settings(None, env=env)
    text = repr(settings) + str(settings.media.secret)
    assert "hunter2" not in text
    assert KEY not in text
    assert "***" in text
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")


def test_env_names_follow_the_section_key_rule() -> None:
    assert env_name("database.url") == "CALLWRIGHT_DATABASE_URL"
    assert env_name("carriers.telnyx.api_key") == "CALLWRIGHT_CARRIERS_TELNYX_API_KEY"


@pytest.mark.parametrize(
    ("toml", "env", "names"),
    [
        ("[server]\nport = 'eighty'\n", {}, ["server.port", "int"]),
        ("[server]\nprot = 80\n", {}, ["server.prot", "unknown key"]),
        ("[sevrer]\nport = 80\n", {}, ["sevrer", "unknown key"]),
        ("", {"CALLWRIGHT_MEDIA_PORT": "x"}, ["media.port", "CALLWRIGHT_MEDIA_PORT"]),
        ("[media]\nport = 70000\n", {}, ["media.port", "TCP port"]),
        ("[database]\nurl = 'mysql://x/y'\n", {}, ["database.url", "mysql"]),
        ("[server]\npublic_url = 'ftp://x'\n", {}, ["server.public_url"]),
        ("[api]\nkeys = ['short']\n", {}, ["api.keys.0", "16"]),
        ("[server\n", {}, ["cannot read"]),
    ],
)
def test_bad_settings_name_the_key(
    tmp_path: Path, toml: str, env: dict[str, str], names: list[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env=env)
    for name in names:
        assert name in str(caught.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_settings(tmp_path / "absent.toml", env={})


def test_cli_config_prints_masked_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mediaserver.cli import main

    monkeypatch.setenv("CALLWRIGHT_API_KEYS", KEY)
    monkeypatch.setenv("CALLWRIGHT_MEDIA_SECRET", "very-secret-media-key")
    assert main(["config", "--config", str(SHIPPED)]) == 0
    printed = capsys.readouterr().out
    assert "port=8080" in printed
    assert KEY not in printed
    assert "very-secret-media-key" not in printed


def test_cli_reports_a_bad_file_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mediaserver.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = -1\n")
    monkeypatch.setenv("CALLWRIGHT_API_KEYS", KEY)
    assert main(["config", "--config", str(bad)]) == 2
    assert "server.port" in capsys.readouterr().err


def test_carrier_api_base_is_test_only_and_must_be_http() -> None:
    assert load_settings(None, env={}).carriers.twilio.api_base == ""
    env = {"CALLWRIGHT_CARRIERS_TELNYX_API_BASE": "ftp://127.0.0.1:9"}
    with pytest.raises(ConfigError, match=r"carriers\.telnyx\.api_base"):
        load_settings(None, env=env)
    ok = {"CALLWRIGHT_CARRIERS_TWILIO_API_BASE": "http://127.0.0.1:9"}
    assert (
        load_settings(None, env=ok).carriers.twilio.api_base
        == ok["CALLWRIGHT_CARRIERS_TWILIO_API_BASE"]
    )


def test_a_mistyped_variable_is_warned_about_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {"CALLWRIGHT_SERVR_PORT_T1": "9000", "CALLWRIGHT_CORPUS": "/x"}
    with caplog.at_level("WARNING", logger="mediaserver.config"):
        settings = load_settings(None, env=env)
        load_settings(None, env=env)
    assert settings.server.port == 8080
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings  # once, and not for CALLWRIGHT_CORPUS
    assert "CALLWRIGHT_SERVR_PORT_T1 matches no setting" in warnings[0]
    assert "did you mean CALLWRIGHT_SERVER_PORT?" in warnings[0]


def test_simulated_recordings_dirs_come_from_the_environment() -> None:
    env = {"CALLWRIGHT_SIMULATED_RECORDINGS_DIRS": "/a, /b"}
    assert load_settings(None, env=env).simulated.recordings_dirs == ["/a", "/b"]
    assert load_settings(None, env={}).simulated.recordings_dirs == []
