"""The sans-I/O router of IPMI over LAN: one datagram in, the datagrams to send back out.

Each datagram goes through the codecs: RMCP (``rmcp``), then by class: ASF
(presence ping), IPMI.  IPMI packets are told apart by their authentication
type byte (IPMI 2.0 section 13.6): 06h is RMCP+ (``rmcpplus``), every other
type IPMI v1.5 (``session15``).  Nothing a peer sends raises out of here: a
failure is counted and logged, and the datagram dropped.
"""

from __future__ import annotations

import logging
from typing import Any

from . import rmcp
from .session15 import V15Handler
from ..parts.sessions import LanContext

log = logging.getLogger(__name__)


class LanDatagrams:
    """The sans-I/O datagram router: bytes in, datagrams out; never raises."""

    def __init__(self, lan: LanContext, rmcpplus: Any = None):
        self.lan = lan
        self.v15 = V15Handler(lan)
        self.rmcpplus = rmcpplus
        self._warned_no_rmcpplus = False

    def handle(self, datagram: bytes, peer, now: float) -> list[bytes]:
        lan = self.lan
        lan.count("datagrams")
        try:
            header, body = rmcp.parse(datagram)
            if header.cls == rmcp.CLASS_ASF:
                return rmcp.handle_asf(header, body)
            if header.cls != rmcp.CLASS_IPMI or header.ack:
                lan.count("rmcp_ignored")
                return []
            if not body:
                raise rmcp.RmcpError("IPMI class message without a session header")
            if body[0] & 0x0F == 0x06:
                if self.rmcpplus is None:
                    if not self._warned_no_rmcpplus:
                        log.info("RMCP+ packet from %s dropped: RMCP+ is not available", peer)
                        self._warned_no_rmcpplus = True
                    lan.count("rmcpplus_dropped")
                    return []
                return list(self.rmcpplus.handle(bytes(datagram), peer, now) or [])
            return self.v15.handle(body, peer, now)
        except rmcp.RmcpError as e:
            lan.count("rmcp_malformed")
            log.debug("datagram from %s dropped: %s", peer, e)
        except Exception:
            lan.count("internal_errors")
            log.exception("datagram from %s dropped: handler failed", peer)
        return []
