"""Test tools that ship with vhw but need the test extras (scapy)."""
