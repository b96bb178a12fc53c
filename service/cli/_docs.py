"""`python -m service.cli._docs > docs/cli.md`: the CLI reference, written from the parsers themselves.

tests/test_docs.py regenerates it and compares, so docs/cli.md cannot drift from `--help`.
"""

from __future__ import annotations

import argparse
import os
import sys

INTRO = """\
# The `hookyard` command

<!-- Written by `python -m service.cli._docs > docs/cli.md` from the parsers; edit those, then rerun. -->

`hookyard COMMAND [options]`; `hookyard --help` lists the commands and
`hookyard COMMAND --help` shows each option with its default and examples
(this page is that text). Configuration comes from `HOOKYARD_CONFIG` and
`HOOKYARD_<SECTION>_<KEY>` variables ([configuration.md](configuration.md)).

Conventions every command keeps:

- A mistake you can fix (a bad argument, an unknown source, a bad
  configuration key) is one line on stderr and exit 2, never a traceback.
- Redis or the database unreachable: one line, exit 1.
- Results go to stdout (`--json` where offered, for scripts); progress of
  long operations (`replay`, `purge`) goes to stderr: a bar on a terminal,
  a line every few seconds otherwise.
- `hookyard --version` prints the installed version.

| command | does |
|---|---|
"""


def reference() -> str:
    os.environ["COLUMNS"] = "100"  # the same wrapping wherever it is generated
    from service.cli import build_parser, command_modules  # noqa: PLC0415 - after COLUMNS is set

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    summaries = {choice.dest: choice.help for choice in commands._choices_actions}
    parts = [INTRO]
    parts += [f"| [`hookyard {name}`](#hookyard-{name}) | {summaries[name]} |\n" for name in command_modules()]
    parts.append(f"\n## hookyard\n\n```text\n{parser.format_help().rstrip()}\n```\n")
    for name in command_modules():
        parts.append(f"\n## hookyard {name}\n\n```text\n{commands.choices[name].format_help().rstrip()}\n```\n")
    return "".join(parts)


if __name__ == "__main__":
    sys.stdout.write(reference())
