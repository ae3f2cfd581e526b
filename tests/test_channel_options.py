"""Channel options are declared once per adapter (Channel.declared_options): the configuration checks them
with file:line:column errors, `crieur channels` lists them, and the README shows exactly that list."""

from __future__ import annotations

import pathlib
import re
import textwrap

import pytest

from alerts.cli import build_parser
from alerts.config import load_config
from channels import channel_class, known_kinds
from rules.yamlcheck import ValidationFailed

ROOT = pathlib.Path(__file__).resolve().parent.parent
# how adapters read their options (channels/*.py and the shared helpers of channels/_http.py)
READS = re.compile(r"""(?:options\.get\(|options\[|require\(|secret\(|_option\(self, |_flag\(self, )"([a-z_]+)\"""")


def crieur(*argv: str) -> int:
    """A command run in this process (without `main`, which would set up logging for the whole run)."""
    args = build_parser().parse_args(list(argv))
    return int(args.func(args))


def errors_of(tmp_path: pathlib.Path, text: str) -> list[str]:
    path = tmp_path / "crieur.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ValidationFailed) as failure:
        load_config(path)
    return [str(e).replace(f"{path}:", "") for e in failure.value.errors]


@pytest.mark.parametrize("kind", known_kinds())
def test_every_option_an_adapter_reads_is_declared(kind: str) -> None:
    cls = channel_class(kind)
    source = (ROOT / "channels" / f"{kind}.py").read_text(encoding="utf-8")
    read = set(READS.findall(source))
    if "timeout_option(self)" in source:
        read.add("timeout")
    if cls.per_recipient and not cls.subscribers:
        read.add("recipients")  # alerts.fanout reads them
    declared = {option.name for option in cls.option_table()}
    assert read <= declared, f"{kind}: read but not declared: {sorted(read - declared)}"


def test_unknown_option_wrong_type_and_missing_option_name_line_and_column(tmp_path: pathlib.Path) -> None:
    errors = errors_of(
        tmp_path,
        """\
        channels:
          toots:
            kind: mastodon
            base_url: https://mastodon.example
            acess_token_env: TOKEN
            timeout: soon
          sms:
            kind: twilio
            from: "+33757000041"
            max_segments: 2.5
            account_sid_env: SID
            auth_token_env: TOKEN
          mail:
            kind: email
            from: route41@departement-41.example
            recipients: astreinte@departement-41.example
    """,
    )
    assert any(
        e.startswith("5:5: channels.toots.acess_token_env: unknown option for a mastodon channel (known:")
        and "access_token_env" in e
        for e in errors
    ), errors
    assert "6:14: channels.toots.timeout: expected a number, got 'soon'" in errors
    assert any(e.startswith("3:5: channels.toots: missing required option access_token_env") for e in errors)
    assert "10:19: channels.sms.max_segments: expected a whole number, got 2.5" in errors
    assert any(e.startswith("14:5: channels.mail: missing required option host") for e in errors), errors
    assert "16:17: channels.mail.recipients: expected a list of texts, got 'astreinte@departement-41.example'" in errors


def test_secrets_are_not_required_to_dry_run(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "crieur.yaml"
    path.write_text("service: {dry_run: true}\nchannels:\n  toots: {kind: mastodon, base_url: 'https://m.example'}\n")
    assert load_config(path).channels["toots"]["base_url"] == "https://m.example"


def test_the_bundled_example_declares_nothing_unknown() -> None:
    load_config(ROOT / "examples" / "loir-et-cher" / "crieur.yaml")


def test_readme_lists_what_crieur_channels_prints(capsys: pytest.CaptureFixture[str]) -> None:
    assert crieur("channels") == 0
    printed = capsys.readouterr().out.strip()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"<!-- channel-options:[^>]*-->\n(.*?)\n<!-- /channel-options -->", readme, re.S)
    assert section is not None, "README.md has no channel-options section"
    assert section.group(1).strip() == printed, "README.md's channel options differ from `crieur channels`"
    assert "| `access_token_env` | secret | yes |" in printed


def test_crieur_channels_names_an_unknown_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert crieur("channels", "pigeon") == 2
    assert "unknown channel kind 'pigeon'" in capsys.readouterr().err
