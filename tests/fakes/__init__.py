"""Fake services for tests: real servers on 127.0.0.1 speaking the documented wire formats."""
