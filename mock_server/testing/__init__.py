"""The fake for test suites: MockServer, in-process clients and the pytest plugin."""
