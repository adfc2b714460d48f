def pytest_configure(config):
    config.addinivalue_line("markers", "component: runs real outside clients (ipmitool, FreeIPMI) against an in-process BMC")
