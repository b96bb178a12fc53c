"""Every fixed number of the queue and the workers, each with its unit, and the RQ job options.

Settings (`schemas.settings`) hold what an operator tunes; these are the
numbers behind them. Both processes read them: ingest writes store jobs
with these options from Lua, workers and replays queue run jobs with them.
"""

from __future__ import annotations

from typing import Any

from rq import Callback, Retry

# --- the two RQ jobs -------------------------------------------------------------------------

STORE_BATCH = "workers.jobs.store_batch"
"""Job path of a store job (written by ingest's Lua script, or re-queued on hand-back)."""

RUN_DELIVERIES = "workers.jobs.run_deliveries"
"""Job path of a run job: retries, replays and the sweeper's recoveries."""

JOB_RETRIES = 20
"""RQ retries of a job whose worker died (`AbandonedJobError`) or that raised."""

JOB_RETRY_INTERVALS = [1, 2, 5, 10, 30] + [60] * (JOB_RETRIES - 5)
"""Seconds before each retry, one per retry: RQ reads this list from its end backwards
(with fewer intervals than retries it repeats the first), so it lists all of them."""

JOB_TIMEOUT = -1
"""RQ job timeout: none, since each handler attempt has its own time limit."""

STORE_JOB_FAILURE_TTL = 30 * 24 * 3600
"""Seconds a store job that ran out of retries stays in RQ's FailedJobRegistry."""

STORE_JOB_FAILED = "workers.jobs.release_fingerprints"
"""A store job's RQ `on_failure` callback: once it is out of retries, the fingerprints of its events
are released, so a re-delivery is stored rather than answered with an id that never exists."""

STORE_JOB_FAILED_TIMEOUT = 60
"""Seconds RQ gives that callback (RQ's own default, which `Callback` writes into the job hash)."""


def job_options(description: str, *, store: bool = False) -> dict[str, Any]:
    """The keyword arguments every job we queue from Python gets (ingest's Lua writes the same);
    `store`: a store job, which releases its fingerprints when it fails for good."""
    options: dict[str, Any] = {
        "job_timeout": JOB_TIMEOUT,
        "result_ttl": 0,
        "failure_ttl": STORE_JOB_FAILURE_TTL,
        "retry": Retry(max=JOB_RETRIES, interval=JOB_RETRY_INTERVALS),
        "description": description,
    }
    if store:
        options["on_failure"] = Callback(STORE_JOB_FAILED, timeout=STORE_JOB_FAILED_TIMEOUT)
    return options


# --- ingest's enqueue --------------------------------------------------------------------------

ENQUEUE_BATCH = 256
"""Events per Lua call: large enough for bursts, small enough to keep Redis responsive."""

MAX_JOB_EVENTS = 500
"""Default cap on events one store job collects (`[worker] batch_size`)."""

APPEND_BELOW_BYTES = 32 * 1024
"""A waiting job takes more events only while it is smaller than this, in bytes: every append
rewrites the job's whole `data` inside Redis (and into its AOF), so appending to a large job
costs Redis more than starting a new one (measured: 23 us of Redis per 1 KiB vendor event at a
64 KiB limit, 19 us at 32 KiB; below that, smaller jobs cost the workers more than Redis saves)."""

MAX_JOB_BYTES = 64 * 1024
"""No store job (new, or appended to) grows past this size, in bytes, except a lone larger event:
a worker never holds a huge batch in memory (about 140 typical events; per-job costs are amortised
well before that)."""

REDIS_RETRY_SECONDS = 1.0
"""After a Redis error, ingest sends batches straight to the spool this long before trying Redis again."""

SPOOL_DRAIN_SECONDS = 1.0
"""How often, in seconds, the API's drainer looks for spooled events to move into Redis."""

SPOOL_SHUTDOWN_SECONDS = 20.0
"""On SIGTERM, `serve` keeps moving its spool into Redis up to this many seconds before it exits
(deploy/ gives the pod a longer termination grace period)."""

WAITAOF_TIMEOUT_SECONDS = 1.0
"""Longest, in seconds, an enqueue waits for Redis >= 7.2 to fsync it (`WAITAOF 1 0`) before the
batch goes to the spool instead (capped at half of `[redis] socket_timeout_seconds`)."""

FSYNC_CHECK_SECONDS = 30.0
"""How often, in seconds, the API re-reads Redis's version and AOF settings (`/health/ready`)."""

FINGERPRINT_LOOKUP_SECONDS = 1.0
"""While a new Redis server's fingerprint memory is rebuilt, ingest waits at most this long, in seconds,
for the database to say whether a group commit's new events were stored before."""

FINGERPRINT_LOOKUP_PAUSE_SECONDS = 5.0
"""After a lookup failed or timed out, ingest answers without the database this long, in seconds:
a stalled database costs one `FINGERPRINT_LOOKUP_SECONDS` wait per pause, not one per group commit."""

FINGERPRINT_REBUILD_RETRY_SECONDS = 5.0
"""An API process starts a fingerprint rebuild at most this often, in seconds (another may hold the lock)."""

# --- deliveries --------------------------------------------------------------------------------

LEASE_GRACE_SECONDS = 2.0
"""Added to the claimed handlers' time limits: a lease older than that means its worker died."""

STALE_PENDING_SECONDS = 60.0
"""A `pending` delivery never started this long after it was planned lost its job: the sweep re-queues it."""

HANDLER_MISSING_RETRY_SECONDS = 30.0
"""A worker that lacks a handler (mid rolling deploy) leaves its deliveries this long, uncharged."""

MAX_ERROR_CHARS = 2000
"""A delivery's `last_error` is cut to this many characters."""

SWEEP_LIMIT = 1000
"""Most stranded deliveries one sweep re-queues."""

RUN_JOB_CHUNK = 100
"""Delivery ids per run job when many are queued at once (replays, sweeps)."""

DB_RETRY_MAX_SECONDS = 30.0
"""Longest wait, in seconds, between tries while the database is unreachable."""

# --- the worker process ------------------------------------------------------------------------

SHUTDOWN_MARGIN_SECONDS = 15.0
"""Added to the handler time limit: how long after SIGTERM the supervisor waits before SIGKILL."""

REDIS_BLOCKING_MARGIN_SECONDS = 30.0
"""A worker's Redis read timeout is `maintenance_seconds` plus this, so RQ's blocking dequeue fits."""

# --- bulk replays --------------------------------------------------------------------------------

RUN_REPLAY = "workers.jobs.run_replay"
"""Job path of a bulk replay's runner (`POST /v1/replays`)."""

REPLAY_BATCH = 1000
"""Deliveries a bulk replay resets and queues per transaction."""

REPLAY_SLICE_SECONDS = 2.0
"""How long one replay job runs batches before it hands over to its continuation (queued at the front, so
a replay is `done` as fast as the database resets rows; the run jobs it queued wait at the back, in order
with fresh events). Between slices a worker that is stopping hands the rest back."""

REPLAY_STALE_SECONDS = 120.0
"""A replay not done and untouched this long lost its job: the workers' sweep gives it a new one."""
