"""The asyncio side of the BMC: transports, timers, the service a machine attaches."""
