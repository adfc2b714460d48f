"""The sans-I/O state machines a BMC is made of; ``vhw.ipmi.core.assemble`` puts them in ``bmc.parts``."""
