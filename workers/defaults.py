"""Fixed numbers of the worker side, each with its unit."""

STORE_JOB_TIMEOUT = -1
"""RQ job timeout for a store job: none, since each handler attempt has its own time limit."""

STORE_JOB_RETRIES = 20
"""RQ retries of a store job whose worker died (`AbandonedJobError`) or that raised."""

STORE_JOB_RETRY_INTERVALS = [1, 2, 5, 10, 30, 60]
"""Seconds between those retries; the last one repeats."""

STORE_JOB_FAILURE_TTL = 30 * 24 * 3600
"""Seconds a store job that ran out of retries stays in RQ's FailedJobRegistry."""

LEASE_GRACE_SECONDS = 2.0
"""Added to the claimed handlers' time limits: a lease older than that means its worker died."""

DB_RETRY_MAX_SECONDS = 30.0
"""Longest wait between tries while the database is unreachable."""
