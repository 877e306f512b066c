"""A TCP proxy on loopback that delays every byte by a fixed time in each direction.

Emulates the round trip to a remote host (25 ms each way: a 50 ms RTT) in front of the
lab's sshd, without tc/netem and without root. Bandwidth is not limited: each chunk read
is written out ``delay`` seconds after it arrived, in order. Only loopback addresses are
accepted, to listen on and to forward to; anything else is refused.

    python benchmarks/delay_proxy.py --upstream 127.0.0.1:PORT [--listen 127.0.0.1:0]
                                     [--delay 0.025]

Prints ``listening 127.0.0.1:PORT`` once ready, then serves until SIGTERM or ^C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import signal
import sys

_CHUNK = 64 * 1024


def loopback(address: str) -> tuple[str, int]:
    """``HOST:PORT`` with HOST a loopback IP literal; ValueError for anything else."""
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep:
        raise ValueError(f"{address!r}: expected HOST:PORT")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{address!r}: give a loopback IP address, not a name") from None
    if not ip.is_loopback:
        raise ValueError(f"{address!r}: refused, only loopback addresses are proxied")
    number = int(port)
    if not 0 <= number <= 65535:
        raise ValueError(f"{address!r}: port out of range")
    return str(ip), number


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                delay: float) -> None:
    """Copy reader to writer, each chunk sent ``delay`` after it was read."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(_CHUNK)
            queue.put_nowait((loop.time() + delay, data))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()
    finally:
        with contextlib.suppress(Exception):
            writer.close()


class DelayProxy:
    def __init__(self, upstream: tuple[str, int], delay: float) -> None:
        self.upstream, self.delay = upstream, delay

    async def handle(self, client_r: asyncio.StreamReader,
                     client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pump(client_r, server_w, self.delay),
                             _pump(server_r, client_w, self.delay),
                             return_exceptions=True)

    async def serve(self, listen: tuple[str, int], ready: asyncio.Event | None = None,
                    ) -> None:
        server = await asyncio.start_server(self.handle, *listen)
        host, port = server.sockets[0].getsockname()[:2]
        print(f"listening {host}:{port}", flush=True)
        if ready is not None:
            ready.set()
        async with server:
            await server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--upstream", required=True, help="loopback HOST:PORT to forward to")
    parser.add_argument("--listen", default="127.0.0.1:0", help="loopback HOST:PORT (0: any)")
    parser.add_argument("--delay", type=float, default=0.025, help="seconds, each way")
    args = parser.parse_args()
    try:
        upstream, listen = loopback(args.upstream), loopback(args.listen)
    except ValueError as err:
        parser.error(str(err))
    if not 0 <= args.delay <= 10:
        parser.error("--delay: 0 to 10 seconds")
    proxy = DelayProxy(upstream, args.delay)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await proxy.serve(listen)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
