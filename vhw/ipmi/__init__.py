"""The virtual BMC, in five packages:

- ``core``: the model's spine: the one dispatcher and its command table
  (``bmc``), the actions the model asks for, the configuration, the
  non-volatile port and the assembly of a Bmc from its parts.
- ``parts``: the sans-I/O state machines a BMC is made of (SEL, SDR, FRU,
  sensors, watchdog, users, channels, chassis, boot options, LAN
  configuration, LAN sessions, SOL, the serial channel's login, ...).
- ``commands``: the handlers, one module per NetFn or command group, each
  declared once with its NetFn, command, privilege and access rules.
- ``wire``: byte codecs: ipmi-bmc-extern, IPMB messages, RMCP, IPMI v1.5 and
  RMCP+ sessions and their crypto, serial Basic and Terminal Mode, the SOL
  payload.
- ``io``: the asyncio transports that move those bytes and run the timers:
  the runner, the extern and LAN servers, the serial channel, the SOL link,
  and the service a machine attaches.

Everything but ``io`` is sans-I/O and imports nothing from ``io``
(tests/unit/test_layers.py checks both).
"""
