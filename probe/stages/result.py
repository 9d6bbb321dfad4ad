"""What one step gave, returned to the caller: the value, the failure bound to its operation,
the transaction id and the times (netxlite's wrapped error, with the value beside it).

The trace is the *record* of a measurement; a :class:`StageResult` is the *answer* to the
caller. An orchestrator decides what to do next from the result it got back, never by looking
in the trace lists (with concurrent steps the last event there may be another task's).

``value`` may be set together with a failure (an HTTP response whose body failed half-way keeps
its status and headers). ``t0``/``t`` are seconds from the trace's zero, as in the events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from probe.failures import OpFailure
from probe.vocabulary import Operation

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StageResult(Generic[T]):
    """One attempt at one step."""

    value: T
    error: OpFailure | None
    operation: Operation
    transaction_id: int
    t0: float
    t: float

    @property
    def failure(self) -> str | None:
        """The OONI failure string, or None when the step worked."""
        return None if self.error is None else self.error.failure

    @property
    def ok(self) -> bool:
        return self.error is None
