"""vhw: virtual hardware for QEMU guests."""

from . import compiled as _compiled

__version__ = "0.1.0"

# Before anything imports the wire codecs: serve them compiled if the build is current.
_compiled.install()
