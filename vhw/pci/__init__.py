"""PCI building blocks: sans-I/O models and the transport that feeds them.

Models (no socket, clock, thread or file descriptor):
  `function` one conventional PCI function (config space, BARs, INTx);
  `dma`      the port a model reads and writes guest RAM through;
  `mpqemu`   the codec of QEMU's multi-process protocol (bytes in, events out).
I/O side:
  `memfd`          guest RAM QEMU shares as memfds, mapped (implements `dma.Dma`);
  `mpqemu_server`  the blocking socket loop that serves one function to x-pci-proxy-dev.
"""
