"""`/ui/replays/<id>`: a bulk replay's progress; `/ui/replays/<id>/progress` is the same as JSON for the page's
script, which updates the bar until the replay is done (without script, the page refreshes itself)."""

from __future__ import annotations

from litestar import Response, get
from litestar.response import Template

from schemas.api import BulkReplay
from schemas.errors import NotFound
from service.api.bulk_replays import get_replay
from service.console.web import Console, Viewer, page


def _replay(console: Console, replay_id: str) -> BulkReplay:
    replay = get_replay(console.api.engine, replay_id)
    if replay is None:
        raise NotFound("no replay has this id")
    return replay


@get("/replays/{replay_id:str}", sync_to_thread=True)
def replay_page(console: Console, viewer: Viewer, replay_id: str) -> Template:
    return page("replay.html", viewer, title="Replay", active="dead", replay=_replay(console, replay_id))


@get("/replays/{replay_id:str}/progress", sync_to_thread=True)
def replay_progress(console: Console, viewer: Viewer, replay_id: str) -> Response[BulkReplay]:
    return Response(_replay(console, replay_id), headers={"cache-control": "no-store"})
