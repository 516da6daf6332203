"""The circuit breaker geo's provider calls go through; it lives in rtmn_shared.resilience,
as payments' gateways use it too."""

from rtmn_shared.resilience import CircuitBreaker, CircuitOpen, State

__all__ = ["CircuitBreaker", "CircuitOpen", "State"]
