"""`hookyard sign` and `hookyard send` for every scheme and preset, and `make run`'s commented preset examples."""

from __future__ import annotations

import base64
import tomllib
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from schemas.presets import PRESETS
from schemas.settings import load_settings
from schemas.signatures import SCHEMES, scheme_for
from service.cli.dev import _dev_config
from service.cli.send import sample_request
from tests.conftest import Config, ConfigFactory
from tests.service.cli.test_cli import assert_one_line_exit_2, run

SW_SECRET = "whsec_" + base64.b64encode(b"a standard webhooks key, 32 byte").decode()
PRESET_SOURCES = [
    {"name": name.replace("-", "_"), "preset": name, "secrets": [SW_SECRET if name == "standard-webhooks" else "s3"]}
    for name in sorted(PRESETS)
]


def toml_for(scheme: str) -> str:
    secret = SW_SECRET if scheme == "standard-webhooks" else "s3cret"
    return f'[[sources]]\nname = "src"\nscheme = "{scheme}"\nsecrets = ["{secret}"]\n'


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_sign_prints_every_header_the_scheme_sets_and_they_verify(tmp_path: Path, scheme: str) -> None:
    body = tmp_path / "body.json"
    body.write_bytes(b'{"type": "ping"}')
    result = run(["sign", "--source", "src", "--body", str(body)], tmp_path, toml_for(scheme))
    assert result.returncode == 0, result.stderr
    headers = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    secret = SW_SECRET if scheme == "standard-webhooks" else "s3cret"
    checker = scheme_for(scheme, [secret])
    assert checker.header in headers
    lower = {name.lower().encode(): value.encode() for name, value in headers.items()}
    assert checker.verify(lower, b'{"type": "ping"}')


def test_sign_without_a_body_says_what_it_signed(tmp_path: Path) -> None:
    result = run(["sign", "--source", "src", "--timestamp", "1700000000"], tmp_path, toml_for("stripe"))
    assert result.returncode == 0
    assert result.stdout.startswith("Stripe-Signature: t=1700000000,v1=")
    assert "empty body" in result.stderr
    gxm = run(["sign", "--source", "src"], tmp_path, toml_for("gxm-sha256"))
    assert gxm.stdout.strip().startswith("X-GXM-APISIGNATURE: ")
    assert gxm.stderr == ""


def test_send_body_file_that_is_missing_is_exit_2(tmp_path: Path) -> None:
    result = run(["send", "--source", "src", "--body", str(tmp_path / "nope.json")], tmp_path, toml_for("stripe"))
    assert_one_line_exit_2(result, "--body")


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_the_sample_request_of_every_preset_reads_back_as_its_action(tmp_path: Path, preset: str) -> None:
    """What `send` builds is read by the source's own locators as the action asked for, with a fresh id."""
    path = tmp_path / "h.toml"
    secret = SW_SECRET if preset == "standard-webhooks" else "s3cret"
    path.write_text(f'[[sources]]\nname = "src"\npreset = "{preset}"\nsecrets = ["{secret}"]\n')
    source = load_settings({"HOOKYARD_CONFIG": str(path)}).sources[0]
    action = "LOCATION:CREATED" if source.format == "gxm" else "PULL_REQUEST:OPENED"
    first, headers = sample_request(source, action, {"n": 1}, sent_at=1_700_000_000)
    second, other = sample_request(source, action, {"n": 1}, sent_at=1_700_000_000)
    if source.event_id:
        assert (first, headers) != (second, other)  # a fresh vendor id each time: not a duplicate
    if source.format == "json":
        document = msgspec.json.decode(first)
        assert document["n"] == 1
        if "json:/type" in source.action:
            assert document["type"].startswith("pull_request")


def test_send_reaches_every_preset_source(make_config: ConfigFactory, server_for: Callable[[Config], str]) -> None:
    config = make_config(sources=PRESET_SOURCES)
    server_for(config)
    for source in config.settings.sources:
        action = "LOCATION:CREATED" if source.format == "gxm" else "CUSTOMER:SUBSCRIPTION:UPDATED"
        result = run(
            ["send", "--source", source.name, "--action", action], Path(config.path).parent, None, **config.env()
        )
        assert result.returncode == 0, (source.name, result.stdout, result.stderr)
        assert result.stdout.startswith("202 "), (source.name, result.stdout)


def test_make_runs_config_shows_every_preset_commented_and_each_works_uncommented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = _dev_config(8000).read_text()
    tomllib.loads(text)  # the generated file itself is valid
    for name, preset in PRESETS.items():
        if name == "gxm":
            continue
        lines = [line for line in text.splitlines() if line.startswith("# ")]
        start = lines.index(next(line for line in lines if line.startswith(f'# name = "{name}"'))) - 1
        example = []
        for line in lines[start:]:
            if example and line.startswith(("# [[sources]]", "# [[forwards]]")):
                break
            example.append(line[2:])
        uncommented = "\n".join(example).replace(f"env:{preset.env_name}", "env:SECRET")
        secret = SW_SECRET if name == "standard-webhooks" else "s3"
        path = tmp_path / f"{name}.toml"
        path.write_text(uncommented + "\n")
        loaded = load_settings({"HOOKYARD_CONFIG": str(path), "SECRET": secret})
        assert loaded.sources[0].preset == name
        assert loaded.sources[0].scheme == preset.scheme
    lines = text.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("# [[forwards]]")))
    forward = [line[2:] for line in lines[start : lines.index("", start)]]  # the commented [[forwards]] block
    path = tmp_path / "forward.toml"
    path.write_text("\n".join(forward) + "\n")
    loaded = load_settings({"HOOKYARD_CONFIG": str(path)})
    assert [(f.name, f.actions, f.allow_hosts) for f in loaded.forwards] == [
        ("billing", ("INVOICE:*",), ("127.0.0.1",))
    ]
