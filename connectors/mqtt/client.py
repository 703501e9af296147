"""paho's ``Client`` reading the socket in large chunks, and PUBLISH packets without paho.

paho 2 reads one packet per select() wake-up, with a ``recv`` for the fixed header byte, one per
remaining-length byte and one for the body (four or five system calls per message, each releasing
and re-taking the GIL), then parses it through ``Properties``, ``MQTTMessage`` and its callback
machinery. Here a wake-up reads up to ``READ_CHUNK_BYTES`` at once; the complete QoS 0/1 PUBLISH
packets in it are read by ``read_publishes`` in one loop and handed over together
(``on_publishes``, one call per run of them), a packet the chunk cuts off waits for the next
chunk, and paho reads everything else from the same buffer (its small reads are served from it):
CONNACK, SUBACK, PINGRESP, DISCONNECT, QoS 2, a packet larger than a chunk. Measured with a replay
of broker bytes through this client and the connector, one thread: about 75 µs of CPU per message
before, 6 after, paho's parsing having been most of it (docs/mqtt.md has the bench figures).

Acknowledgements go the same way: ``ack()`` queues a 4-byte PUBACK and wakes paho's thread (a
socket write) per message; ``ack_many`` queues a settled batch's PUBACKs as one write, the same
bytes on the wire.

paho internals used (paho-mqtt is pinned to 2.x for that, and the integration tests run it against
the real broker): ``_sock_recv`` and ``_sock_close`` overridden, ``_packet_read``,
``_loop_rc_handle``, ``_packet_queue`` and ``_easy_log`` called, ``_in_packet``, ``_protocol`` and
``_last_bytes_received`` (the keepalive's clock, under ``_msgtime_mutex``) read or set.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from connectors.mqtt.packets import Incoming, cut_short, read_publishes

# Under glibc's mmap threshold (128 KB): a larger recv buffer is mapped, faulted in and unmapped
# on every read, which cost paho's thread more than parsing the packets in it.
READ_CHUNK_BYTES = 64 * 1024
# PUBACK: fixed header 0x40, remaining length 2, packet id (MQTT 5: reason code 0 may be left
# out), i.e. one big-endian 32-bit word per message
_PUBACK_HEADER = (paho.PUBACK << 24) | (2 << 16)

OnPublishes = Callable[[list[Incoming]], None]


class BufferedClient(paho.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._read_buffer = b""
        self._read_pos = 0
        self.on_publishes: OnPublishes | None = None  # None: paho parses them, to on_message
        super().__init__(*args, **kwargs)

    def _sock_recv(self, bufsize: int) -> bytes:
        """paho's reads, served from the chunk (a new one when it is used up)."""
        if self._read_pos >= len(self._read_buffer):
            # BlockingIOError (nothing there) and OSError go to paho as they come
            self._read_buffer, self._read_pos = super()._sock_recv(READ_CHUNK_BYTES), 0
        start = self._read_pos
        self._read_pos = min(start + bufsize, len(self._read_buffer))
        return self._read_buffer[start:self._read_pos]  # b"" when the broker closed the connection

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """One read wake-up: a chunk from the socket, then every packet complete in it.

        A packet the chunk cuts off waits in the buffer for the next chunk (unless it is larger
        than a chunk: paho reads that one on from the socket itself)."""
        if self._sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        try:
            chunk = super()._sock_recv(READ_CHUNK_BYTES)
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        except OSError as err:
            self._easy_log(paho.MQTT_LOG_ERR, "failed to receive on socket: %s", err)
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        if not chunk:
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        if self._read_pos < len(self._read_buffer):  # the start of a packet the last chunk cut off
            chunk = self._read_buffer[self._read_pos:] + chunk
        self._read_buffer, self._read_pos = chunk, 0
        while self._sock is not None:
            if self._in_packet["command"] == 0:  # between packets: ours to read, if PUBLISH
                self._take_publishes()
                if self._read_pos >= len(self._read_buffer):
                    break
                if cut_short(self._read_buffer, self._read_pos, READ_CHUNK_BYTES):
                    break
            # paho: a packet of another kind, or the rest of one larger than a chunk
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                break
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _take_publishes(self) -> None:
        if self.on_publishes is None:
            return
        messages: list[Incoming] = []
        self._read_pos = read_publishes(self._read_buffer, self._read_pos, self._protocol == paho.MQTTv5,
                                        time.time(), messages)
        if messages:
            with self._msgtime_mutex:
                self._last_bytes_received = paho.time_func()
            self.on_publishes(messages)

    def _sock_close(self) -> None:
        self._read_buffer, self._read_pos = b"", 0  # a new connection starts with a new stream
        super()._sock_close()

    def ack_many(self, mids: Sequence[int]) -> None:
        """PUBACK these QoS 1 messages (``manual_ack``), as one write."""
        if mids:
            packet = struct.pack(f"!{len(mids)}I", *[_PUBACK_HEADER | mid for mid in mids])
            self._packet_queue(paho.PUBACK, packet, 0, 1)
