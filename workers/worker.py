"""`hookyard worker`: a supervisor that keeps worker processes alive.

Each child runs `HookyardWorker`, an RQ `SimpleWorker` on exactly one queue
(RQ then dequeues with BLMOVE into its intermediate list, so a worker killed
in the dequeue window does not lose the job). It runs jobs in-process (no
fork per job), sends heartbeats from a thread so a `kill -9`'d worker's job
is recovered by any other worker within about `3 x heartbeat_seconds +
maintenance_seconds`, renews the job's delivery leases from another thread
until their outcomes are committed (`workers.lease`), and sweeps stranded
deliveries at every maintenance pass.

The supervisor restarts a child that dies (a handler that crashes its
process, OOM) with backoff, and on SIGTERM asks children for a warm
shutdown, then kills what is left after the grace period.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import structlog
from rq import SimpleWorker
from rq.job import Job
from rq.queue import Queue

from schemas.settings import Settings, load_settings
from workers import lease
from workers.context import WorkerContext, set_context
from workers.jobs import reconcile
from workers.lease import give_back
from workers.liveness import beat_file, clear, touch
from workers.progress import never_started
from workers.shared.connections import make_engine
from workers.shared.defaults import SHUTDOWN_MARGIN_SECONDS
from workers.shared.logs import bound, configure_logging
from workers.shared.serializer import JSONSerializer

log = structlog.get_logger("hookyard.worker")


class HookyardWorker(SimpleWorker):
    def __init__(self, *args: Any, context: WorkerContext, beat_file: Path | None = None, **kwargs: Any) -> None:
        self.context = context
        self.heartbeat_seconds = context.settings.worker.heartbeat_seconds
        self.beat_file = beat_file
        super().__init__(*args, **kwargs)
        # While Redis is away RQ retries with backoff up to 60 s; retry (and beat) every heartbeat instead.
        self.max_connection_wait_time = float(self.heartbeat_seconds)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's heartbeat, after touching the liveness file (`workers.liveness`), which needs no Redis."""
        if self.beat_file is not None:
            touch(self.beat_file)
        super().heartbeat(timeout, pipeline)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return int(self.heartbeat_seconds * 3)

    def execute_job(self, job: Job, queue: Queue) -> None:
        execution = self.prepare_execution(job)
        owner = self.context.leases.begin(self.name)  # a holder name per job run (`workers.lease.Holdings`)
        done = threading.Event()
        beat = threading.Thread(target=self._beat, args=(job, execution, owner, done), daemon=True)
        keeper = threading.Thread(target=self._keep_leases, args=(job, done), daemon=True)
        beat.start()
        keeper.start()
        try:
            with bound(job_id=job.id):  # every line while the job runs, RQ's and handlers' included
                self.perform_job(job, queue, execution)
        finally:
            done.set()
            beat.join(timeout=5)
        self.set_state("idle")

    def _beat(self, job: Job, execution: Any, owner: str, done: threading.Event) -> None:
        """RQ's job heartbeat, and the lease holder's key: while it beats, no sweep takes this job's leases."""
        while True:
            try:
                lease.beat(self.context, owner)
            except Exception as exc:  # noqa: BLE001 - a missed beat is retried next time
                log.warning("heartbeat_failed", error=type(exc).__name__, job_id=job.id)
            if done.wait(self.heartbeat_seconds):
                return
            try:
                self.maintain_heartbeats(job, execution)
            except Exception as exc:  # noqa: BLE001 - a missed beat is retried next time
                log.warning("heartbeat_failed", error=type(exc).__name__, job_id=job.id)

    def _keep_leases(self, job: Job, done: threading.Event) -> None:
        """Renew the leases held until their outcomes are committed (`workers.lease.renew`).

        A thread of its own: a renewal stuck behind a database lock must not stop the Redis beat.
        """
        every = lease.renew_every(self.context)
        while not done.wait(every):
            try:
                lease.renew(self.context)
            except Exception as exc:  # noqa: BLE001 - the next beat renews again
                log.warning("lease_renewal_failed", error=type(exc).__name__, job_id=job.id)

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
        try:
            reconcile(self.context)
        except Exception as exc:  # noqa: BLE001 - the sweep runs again at the next pass
            log.warning("reconcile_failed", error=type(exc).__name__)

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.context.stopping.set()
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]


def build_worker(context: WorkerContext, beat_file: Path | None = None) -> HookyardWorker:
    settings = context.settings
    return HookyardWorker(
        [context.queue],
        connection=context.redis,
        serializer=JSONSerializer,
        context=context,
        beat_file=beat_file,
        maintenance_interval=settings.worker.maintenance_seconds,
        worker_ttl=settings.worker.maintenance_seconds + 15,  # RQ blocks in dequeue for ttl - 15 s
        job_monitoring_interval=settings.worker.heartbeat_seconds,
    )


def run_one(settings: Settings, *, burst: bool, progress_path: str | None = None, beat_file: Path | None = None) -> int:
    """Run one worker in this process until it stops (or, with `burst`, the queue is empty)."""
    context = WorkerContext.build(settings, progress_path=progress_path)
    set_context(context)
    worker = build_worker(context, beat_file)
    log.info("worker_started", name=worker.name, queue=settings.redis.queue, handlers=len(context.registry.all()))
    try:
        worked = worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
    finally:
        context.close()
    return 0 if worked or burst else 1


def _die_with_parent() -> None:
    """Linux: the kernel kills this child if the supervisor is SIGKILLed."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def child_main(argv: list[str]) -> None:
    """`python -m workers.worker [PROGRESS_FILE [BEAT_FILE]]`: one supervised worker process."""
    _die_with_parent()
    settings = load_settings()
    configure_logging(settings.log)
    beat = Path(argv[1]) if len(argv) > 1 else None
    sys.exit(run_one(settings, burst=False, progress_path=argv[0] if argv else None, beat_file=beat))


class Supervisor:
    def __init__(self, processes: int, settings: Settings) -> None:
        self.processes = processes
        self.settings = settings
        self.grace_seconds = settings.handlers.timeout_seconds + SHUTDOWN_MARGIN_SECONDS
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.stopping = False
        self.progress_dir = Path(tempfile.mkdtemp(prefix="hookyard-worker-"))

    def _progress_file(self, slot: int) -> Path:
        return self.progress_dir / f"slot-{slot}"

    def _spawn(self, slot: int) -> None:
        beat = beat_file(self.settings.worker, slot)
        touch(beat)  # a process just started is live; it beats from its first dequeue on
        child = subprocess.Popen([sys.executable, "-m", "workers.worker", str(self._progress_file(slot)), str(beat)])
        self.children[slot] = child
        log.info("worker_child_started", slot=slot, pid=child.pid)

    def _give_back(self, slot: int) -> None:
        """A child died: deliveries it claimed but never started get their attempt back."""
        items = never_started(self._progress_file(slot))
        if not items:
            return
        engine = make_engine(self.settings.database)
        try:
            count = give_back(engine, items)
            log.warning("attempts_given_back", slot=slot, deliveries=count)
        except Exception as exc:  # noqa: BLE001 - the database may be away; the pessimistic count stands
            log.warning("give_back_failed", slot=slot, error=type(exc).__name__)
        finally:
            engine.dispose()

    def _stop(self, signum: int, _frame: Any) -> None:
        if self.stopping:
            return
        self.stopping = True
        log.info("worker_stopping", signal=signal.Signals(signum).name)
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        clear(self.settings.worker)
        backoff = dict.fromkeys(range(self.processes), 1.0)
        started = {}
        for slot in range(self.processes):
            self._spawn(slot)
            started[slot] = time.monotonic()
        while not self.stopping:
            time.sleep(0.2)
            for slot, child in list(self.children.items()):
                code = child.poll()
                if code is None or self.stopping:
                    continue
                lived = time.monotonic() - started[slot]
                backoff[slot] = 1.0 if lived > 60 else min(backoff[slot] * 2, 30.0)
                log.error(
                    "worker_child_died",
                    slot=slot,
                    pid=child.pid,
                    exit_code=code,
                    restart_in_seconds=backoff[slot],
                )
                self._give_back(slot)
                self._wait_beating(slot, backoff[slot])
                if not self.stopping:
                    self._spawn(slot)
                    started[slot] = time.monotonic()
        return self._wait_for_children()

    def _wait_beating(self, slot: int, seconds: float) -> None:
        """Wait before a restart, keeping the slot's liveness file fresh: a process the supervisor is
        restarting (say, while Redis is down) is not hung, and restarting the pod would not help."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            touch(beat_file(self.settings.worker, slot))
            time.sleep(min(left, 1.0))

    def _wait_for_children(self) -> int:
        deadline = time.monotonic() + self.grace_seconds
        for child in self.children.values():
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.error("worker_child_killed", pid=child.pid, reason="grace period over")
                child.kill()
                child.wait()
        return 0


def supervise(processes: int, settings: Settings) -> int:
    """Run `processes` workers; after SIGTERM a running handler gets its whole time limit to finish."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    supervisor = Supervisor(processes, settings)
    try:
        return supervisor.run()
    finally:
        shutil.rmtree(supervisor.progress_dir, ignore_errors=True)


if __name__ == "__main__":
    child_main(sys.argv[1:])
