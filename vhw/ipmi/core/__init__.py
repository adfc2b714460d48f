"""The BMC model's spine: dispatcher and command table, actions, configuration, the non-volatile port, assembly."""
