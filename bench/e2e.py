"""Target 4: POST to handler start at a steady rate, with a bounded open-loop client.

Requests leave on a fixed schedule (i / rate seconds after the start) over
a pool of keep-alive connections, whether or not earlier answers came back,
so a slow server shows up as latency instead of a slower client. Each body
carries `bench_t0`, the sender's clock just before the write; the bench
handler (`bench.handlers`) appends `start - bench_t0` to a file.
"""

from __future__ import annotations

import asyncio
import collections
import time

import msgspec

from bench.context import Context, Measured
from bench.databases import database, write_config
from bench.procs import hookyard, hookyard_env, stack_in, start_serve, wait_until
from bench.report import Row, at_most, percentile
from service.embedded_redis import free_port

P50_GOAL_MS = 20.0
P99_GOAL_MS = 100.0
MAX_CONNECTIONS = 256
SIGNATURE = "0159438a9235d6abde38e49fb98944660d067d6b9b03d8a8f4ee4e522feb62cb"  # sha256("bench-secret")
_encode = msgspec.json.encode


def _request(port: int, seq: int, stamp: bool) -> bytes:
    payload: dict[str, object] = {"company_id": 999999, "location": {"id": seq, "name": "Hotel Bench"}, "seq": seq}
    if stamp:
        payload["bench_t0"] = time.time()
    body = _encode({"data": {"sent_at": int(time.time()), "action": "LOCATION:UPDATED", "payload": payload}})
    head = (
        f"POST /webhooks/gxm HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"X-GXM-APISIGNATURE: {SIGNATURE}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class OpenLoop:
    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: collections.deque[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = collections.deque()
        self.open = 0
        self.statuses: dict[int, int] = {}
        self.refused = 0
        self.answer_ms: list[float] = []

    async def _one(self, seq: int, stamp: bool) -> None:
        """Send one request; a connection the server closed while idle is replaced once."""
        for attempt in (1, 2):
            if self.idle:
                reader, writer = self.idle.popleft()  # FIFO: every connection stays in use
            elif self.open < MAX_CONNECTIONS:
                self.open += 1
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            else:
                self.refused += 1
                return
            sent = time.perf_counter()
            try:
                writer.write(_request(self.port, seq, stamp))
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                self.open -= 1
                writer.close()
                if attempt == 2:
                    raise
                continue
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            self.answer_ms.append((time.perf_counter() - sent) * 1000.0)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.idle.append((reader, writer))
            return

    async def run(self, rate: int, seconds: float, first_seq: int, stamp: bool) -> int:
        total = int(rate * seconds)
        tasks = []
        start = time.perf_counter()
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self._one(first_seq + i, stamp)))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
        return total

    async def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def _drive(port: int, rate: int, seconds: float) -> OpenLoop:
    loop = OpenLoop(port)
    warm = await loop.run(rate, 1.0, 0, stamp=False)
    loop.statuses.clear()
    loop.answer_ms.clear()
    await loop.run(rate, seconds, warm, stamp=True)
    await loop.close()
    return loop


def measure(ctx: Context) -> Measured:
    workdir = ctx.workdir / "e2e"
    workdir.mkdir()
    kind = "postgres" if ctx.pg_base else "sqlite"
    rate, seconds = ctx.options.e2e_rate, ctx.options.e2e_seconds
    ctx.flush(0)
    timings = workdir / "e2e-latencies.txt"
    with stack_in(workdir) as stack, database(kind, workdir, ctx.pg_base) as db_url:
        port = free_port()
        config = write_config(
            workdir / "hookyard.toml", port=port, redis_url=ctx.redis_url, database_url=db_url, spool=workdir / "spool"
        )
        start_serve(stack, config, port)
        env = hookyard_env(config, BENCH_E2E_FILE=str(timings))
        worker = stack.start("e2e-worker", hookyard("worker", "--processes", "1"), env)
        client = ctx.redis(0)
        try:
            wait_until(lambda: client.scard("rq:workers") > 0, 30, "a worker to register", 0.1)
        except RuntimeError:
            raise RuntimeError(f"worker did not start:\n{worker.tail()}") from None
        finally:
            client.close()
        loop = asyncio.run(_drive(port, rate, seconds))
        accepted = loop.statuses.get(202, 0)

        def handled() -> list[str]:
            lines = timings.read_text().splitlines() if timings.exists() else []
            return lines if len(lines) >= accepted else []

        lines = wait_until(handled, 60, "handlers to see every event", 0.2)
        starts = [float(line.split()[0]) for line in lines]
        latencies = [float(line.split()[1]) * 1000.0 for line in lines]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    note = (
        f"{rate}/s for {seconds:g} s on {kind}, {len(latencies)} events, max {max(latencies):.1f} ms,"
        f" answers {dict(sorted(loop.statuses.items()))} in p50 {percentile(loop.answer_ms, 50):.1f} /"
        f" p99 {percentile(loop.answer_ms, 99):.1f} ms, over the connection cap {loop.refused}"
    )
    bad = loop.refused or set(loop.statuses) != {202}
    out = [
        Row(
            section="e2e",
            target=f"POST -> handler start p50 @ {rate}/s",
            measured=p50,
            unit="ms",
            goal=f"<= {P50_GOAL_MS:g} ms",
            passed=at_most(p50, P50_GOAL_MS) and not bad,
            note=note,
        ),
        Row(
            section="e2e",
            target=f"POST -> handler start p99 @ {rate}/s",
            measured=p99,
            unit="ms",
            goal=f"<= {P99_GOAL_MS:g} ms",
            passed=at_most(p99, P99_GOAL_MS) and not bad,
        ),
    ]
    return out, {"handler_started": starts, "latencies_ms": latencies, "statuses": loop.statuses, "database": kind}
