"""vhw: virtual hardware for QEMU guests."""

__version__ = "0.1.0"
