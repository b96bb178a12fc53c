"""A demonstration handler for `make run`: a dead letter on request, so the console has one to replay.

`hookyard dev` loads it. An event whose payload has `"fail": true` makes
`demo-flaky` fail its first attempt for good (`PermanentError`, so the
delivery is dead at once); a replay is a later attempt, which succeeds. Any
other event it handles quietly.
"""

from __future__ import annotations

from workers.event import Event, PermanentError
from workers.registry import handler


@handler("*", name="demo-flaky")
def demo_flaky(event: Event) -> None:
    if event.payload.get("fail") is True and event.attempt == 1:
        raise PermanentError('asked to fail ("fail": true in the payload); replay it and it succeeds')
