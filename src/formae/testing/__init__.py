"""Helpers for testing against a real agent: start one, drive it, wait on its log, clean up."""

from formae.testing.agent import AgentProcess, pid_alive, wait_until

__all__ = ["AgentProcess", "pid_alive", "wait_until"]
