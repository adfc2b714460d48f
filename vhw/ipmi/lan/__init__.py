"""IPMI over LAN (IPMI 2.0 chapter 13): RMCP, IPMI v1.5 sessions, RMCP+.

- ``rmcp``       sans-I/O RMCP header and ASF presence ping/pong codec
- ``session15``  IPMI v1.5 session packets and the v1.5 session state machine
- ``sessions``   the session table and ``LanContext`` shared with RMCP+
- ``server``     the asyncio UDP server that demultiplexes datagrams

Nothing here is imported by the BMC unless a LAN listener is configured.
"""
