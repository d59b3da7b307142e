"""Connects to an agent as a plugin would (cleartext, the cookie) and times the answer to each heartbeat.

A process of its own, so that the load a test puts on the agent does not also slow the probe.
``python heartbeat_probe.py ADDRESS`` with ``FORMAE_NETWORK_COOKIE`` set; prints ``ready``, then one
line per answered heartbeat (seconds, as a float) until SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

from formae.wire import PROTOCOL_VERSIONS, auth
from formae.wire.frames import Announcement, AnnouncementAck, Challenge, Heartbeat, HeartbeatAck
from formae.wire.transport import PluginConnection

INTERVAL = 0.02


async def probe(address: str, cookie: str) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    connection = PluginConnection(address)
    try:
        stream = connection.stream
        challenge = await stream.receive()
        assert isinstance(challenge, Challenge)
        nonce = auth.new_nonce()
        await stream.send(announcement(challenge, nonce, cookie))
        ack = await stream.receive()
        assert isinstance(ack, AnnouncementAck), ack
        assert ack.accepted, ack.reason
        print("ready", flush=True)
        sequence = 0
        while not stop.is_set():
            sequence += 1
            sent = time.monotonic()
            await stream.send(Heartbeat(sequence, 0))
            assert isinstance(await stream.receive(), HeartbeatAck)
            print(f"{time.monotonic() - sent:.6f}", flush=True)
            await asyncio.sleep(INTERVAL)
    finally:
        await connection.close()


def announcement(challenge: Challenge, nonce: bytes, cookie: str) -> Announcement:
    return Announcement(
        namespace="Probe",
        plugin_name="probe",
        plugin_version="0.1.0",
        protocol_versions=PROTOCOL_VERSIONS,
        node="probe@test",
        rate_limit=0.0,
        max_concurrency=0,
        resource_types=(),
        plugin_nonce=nonce,
        proof=auth.plugin_proof(cookie, challenge.agent_nonce, nonce),
        pid=os.getpid(),
        heartbeat_interval=INTERVAL,
    )


if __name__ == "__main__":
    asyncio.run(probe(sys.argv[1], os.environ["FORMAE_NETWORK_COOKIE"]))
