"""`slack`: Events API callbacks (`event_callback` + `app_mention` -> `EVENT_CALLBACK:APP_MENTION`)."""

from schemas.presets._base import Preset

PRESET = Preset(
    name="slack",
    action=("json:/type", "json:/event/type"),
    event_id="json:/event_id",
    sent_at="header:X-Slack-Request-Timestamp",
    env_name="SLACK_SIGNING_SECRET",
)
