"""OpenPROM and EEPROM of SPARC guests: the NVRAM image codec (nvram) and the device-tree model (tree)."""
