"""The emulated I2O IOP (issue 6): frame codecs, the messaging unit, later the
executive and DDMs.  Every module here is sans-I/O (tests/unit/test_layers.py)."""
