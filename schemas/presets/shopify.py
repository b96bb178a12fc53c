"""`shopify`: the topic header (`orders/create` -> `ORDERS:CREATE`), de-duplicated on `X-Shopify-Webhook-Id`."""

from schemas.presets._base import Preset

PRESET = Preset(name="shopify", action=("header:X-Shopify-Topic",), event_id="header:X-Shopify-Webhook-Id")
