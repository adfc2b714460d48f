"""Running vhw machines on farm engines (LAVA: lava.py)."""
