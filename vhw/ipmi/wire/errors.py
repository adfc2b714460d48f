"""The base of every wire codec's error.

A codec raises a ``WireError`` subclass for bytes that are not a well-formed
frame of its protocol; the transport drops (and counts) the frame or answers
with the completion code the error carries.  ``ValueError`` stays its base so
a caller that only knows "bad input" still catches it.
"""

from __future__ import annotations


class WireError(ValueError):
    """Bytes that are not a well-formed frame of a protocol."""
