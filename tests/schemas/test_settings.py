"""Configuration mistakes stop start-up with one line naming the key (CONTRACT section 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.settings import ConfigError, load_settings

SOURCE = '[[sources]]\nname = "gxm"\nsecrets = ["s"]\n'


def load(tmp_path: Path, toml: str, **env: str) -> object:
    path = tmp_path / "hookyard.toml"
    path.write_text(toml)
    return load_settings({"HOOKYARD_CONFIG": str(path), **env})


def error(tmp_path: Path, toml: str, **env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, toml, **env)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[server]\nprot = 1\n", "server.prot"),
        ("[nonsense]\na = 1\n", "nonsense"),
        (SOURCE + "secret = 'x'\n", "sources[0].secret"),
        ('[[api_keys]]\nname = "a"\nkey = "k"\nrol = "read"\n', "api_keys[0].rol"),
    ],
)
def test_unknown_key_in_the_file_is_named(tmp_path: Path, toml: str, key: str) -> None:
    assert error(tmp_path, toml) == f"{key}: unknown key"


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("HOOKYARD_SERVER_PROT", "server.prot"),
        ("HOOKYARD_NOPE_X", "HOOKYARD_NOPE_X"),
        ("HOOKYARD_SERVER", "HOOKYARD_SERVER"),
    ],
)
def test_unknown_key_in_the_environment_is_named(tmp_path: Path, name: str, named: str) -> None:
    assert named in error(tmp_path, "", **{name: "1"})


@pytest.mark.parametrize(
    ("toml", "env", "key"),
    [
        ("[server]\nport = 70000\n", {}, "server.port"),
        ("", {"HOOKYARD_SERVER_PORT": "eighty"}, "server.port"),
        ("[server]\nmax_body_bytes = 0\n", {}, "server.max_body_bytes"),
        ("[server]\ntrusted_proxies = ['10.0.0.0/33']\n", {}, "server.trusted_proxies[0]"),
        (SOURCE + "allow_ips = ['nope']\n", {}, "sources[0].allow_ips[0]"),
        ('[[sources]]\nname = "Bad Name"\nsecrets = ["s"]\n', {}, "sources[0].name"),
        ('[[sources]]\nname = "gxm"\n', {}, "sources[0].secrets"),
        (SOURCE + "scheme = 'md5'\n", {}, "sources[0].scheme"),
        (SOURCE + "rate_per_minute = -1\n", {}, "sources[0].rate_per_minute"),
        ("", {"HOOKYARD_DATABASE_URL": "mysql://x"}, "database.url"),
        ("[log]\nlevel = 'loud'\n", {}, "log.level"),
        ("[server\n", {}, "not valid TOML"),
    ],
)
def test_bad_value_is_named(tmp_path: Path, toml: str, env: dict[str, str], key: str) -> None:
    assert key in error(tmp_path, toml, **env)


def test_config_naming_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"HOOKYARD_CONFIG: file .*missing.toml does not exist"):
        load_settings({"HOOKYARD_CONFIG": str(tmp_path / "missing.toml")})


def test_absent_default_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.server.port == 8000
    assert settings.sources == ()


def test_env_overrides_the_file(tmp_path: Path) -> None:
    settings = load(tmp_path, "[server]\nport = 1234\n", HOOKYARD_SERVER_PORT="4321")
    assert settings.server.port == 4321  # type: ignore[attr-defined]


def test_list_settings_from_the_environment_are_comma_separated(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "[server]\ntrusted_proxies = ['127.0.0.1/32']\n",
        HOOKYARD_SERVER_TRUSTED_PROXIES="10.0.0.0/8,192.168.0.0/16",
        HOOKYARD_HANDLERS_MODULES=" acme.hooks , acme.more ",
    )
    assert settings.server.trusted_proxies == ("10.0.0.0/8", "192.168.0.0/16")  # type: ignore[attr-defined]
    assert settings.handlers.modules == ("acme.hooks", "acme.more")  # type: ignore[attr-defined]
    one = load(tmp_path, "", HOOKYARD_SERVER_TRUSTED_PROXIES="10.1.2.3")
    assert one.server.trusted_proxies == ("10.1.2.3",)  # type: ignore[attr-defined]
    none = load(tmp_path, "[server]\ntrusted_proxies = ['10.1.2.3']\n", HOOKYARD_SERVER_TRUSTED_PROXIES="")
    assert none.server.trusted_proxies == ()  # type: ignore[attr-defined]
    as_json = load(tmp_path, "", HOOKYARD_HANDLERS_MODULES='["a.b", "c"]')
    assert as_json.handlers.modules == ("a.b", "c")  # type: ignore[attr-defined]
    assert "server.trusted_proxies[1]" in error(tmp_path, "", HOOKYARD_SERVER_TRUSTED_PROXIES="10.0.0.0/8,nope")


def test_env_and_file_secret_references(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("from-a-file\n")
    toml = f'[[sources]]\nname = "gxm"\nsecrets = ["env:GXM_SECRET", "file:{secret_file}", "inline"]\n'
    settings = load(tmp_path, toml, GXM_SECRET="from-env")
    assert settings.sources[0].secrets == ("from-env", "from-a-file", "inline")  # type: ignore[attr-defined]


def test_file_secret_keeps_inner_newlines_and_drops_only_one_trailing(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("line1\nline2\n\n")
    settings = load(tmp_path, f'[[sources]]\nname = "gxm"\nsecrets = ["file:{secret_file}"]\n')
    assert settings.sources[0].secrets == ("line1\nline2\n",)  # type: ignore[attr-defined]


def test_missing_env_secret_names_the_variable(tmp_path: Path) -> None:
    message = error(tmp_path, '[[sources]]\nname = "gxm"\nsecrets = ["env:NOT_SET_ANYWHERE"]\n')
    assert message == "sources[0].secrets[0]: environment variable NOT_SET_ANYWHERE is not set"


def test_unreadable_file_secret_names_the_key(tmp_path: Path) -> None:
    message = error(tmp_path, f'[[sources]]\nname = "gxm"\nsecrets = ["file:{tmp_path}/absent"]\n')
    assert message.startswith("sources[0].secrets[0]: cannot read")


def test_api_key_reference_resolves(tmp_path: Path) -> None:
    settings = load(tmp_path, '[[api_keys]]\nname = "g"\nkey = "env:DASH"\n', DASH="dash-key")
    assert settings.api_keys[0].key == "dash-key"  # type: ignore[attr-defined]


# --- CONTRACT section 7: presets, schemes, locators ------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "key", "says"),
    [
        ("preset = 'paypal'\n", "sources[0].preset", "unknown preset 'paypal'"),
        ("preset = 'stripe'\nscheme = 'md5'\n", "sources[0].scheme", "unknown scheme 'md5'"),
        ("format = 'json'\naction = ['type']\n", "sources[0].action[0]", "not a locator"),
        ("format = 'json'\naction = ['json:/type', 'json:type']\n", "sources[0].action[1]", "JSON pointer"),
        ("format = 'json'\naction = ['json:/a~2b']\n", "sources[0].action[0]", "RFC 6901"),
        ("format = 'json'\naction = ['header:']\n", "sources[0].action[0]", "header name"),
        ("format = 'json'\naction = ['=']\n", "sources[0].action[0]", "literal"),
        ("preset = 'stripe'\nevent_id = 'id'\n", "sources[0].event_id", "not a locator"),
        ("preset = 'stripe'\nevent_id = '=evt_1'\n", "sources[0].event_id", "literal"),
        ("preset = 'stripe'\nsent_at = '=0'\n", "sources[0].sent_at", "literal"),
        ("preset = 'stripe'\ntolerance_seconds = 0\n", "sources[0].tolerance_seconds", ""),
        ("preset = 'standard-webhooks'\n", "sources[0].secrets", "whsec_"),
    ],
)
def test_bad_preset_scheme_or_locator_is_one_line_naming_the_key(
    tmp_path: Path, extra: str, key: str, says: str
) -> None:
    message = error(tmp_path, SOURCE + extra)
    assert message.startswith(f"{key}:"), message
    assert says in message


def test_a_preset_fills_what_is_left_out_and_a_key_set_by_hand_wins(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        '[[sources]]\nname = "stripe"\npreset = "stripe"\nsecrets = ["whsec_x"]\n'
        '[[sources]]\nname = "mine"\npreset = "stripe"\nsecrets = ["whsec_x"]\n'
        'action = ["=billing", "json:/type"]\nsent_at = "header:X-Sent"\ntolerance_seconds = 900\n'
        '[[sources]]\nname = "gxm"\nsecrets = ["s"]\n',
    )
    stripe, mine, gxm = settings.sources  # type: ignore[attr-defined]
    assert (stripe.scheme, stripe.format, stripe.action) == ("stripe", "json", ("json:/type",))
    assert (stripe.event_id, stripe.sent_at, stripe.tolerance_seconds) == ("json:/id", "json:/created", 300)
    assert (mine.scheme, mine.action, mine.event_id) == ("stripe", ("=billing", "json:/type"), "json:/id")
    assert (mine.sent_at, mine.tolerance_seconds) == ("header:X-Sent", 900)
    assert (gxm.preset, gxm.scheme, gxm.format, gxm.action, gxm.event_id) == ("gxm", "gxm-sha256", "gxm", (), "")
