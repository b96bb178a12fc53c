"""`standard-webhooks`: Svix, OpenAI, Clerk, Resend and every other Standard Webhooks sender."""

from schemas.presets._base import Preset

PRESET = Preset(
    name="standard-webhooks",
    action=("json:/type",),
    event_id="header:webhook-id",
    sent_at="header:webhook-timestamp",
    env_name="WEBHOOK_SECRET",
)
