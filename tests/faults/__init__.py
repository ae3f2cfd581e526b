"""Helpers of the fault-injection suite: a delivery worker runnable as a process, and process launchers."""
