"""Ingest, in the API process: `POST /webhooks/{source}` checked, de-duplicated and enqueued (or spooled)."""
