"""Byte codecs of the BMC's transports, sans-I/O: bytes in, events or bytes out."""
