"""What a user can do wrong, as seen by the job service: one small error family with a one-line ``.message``.

Bots print ``.message`` verbatim (escaping it for their markup) and catch ``ServiceError`` plus the command
language's ``PromptError``, which the service lets through unchanged.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A refusal the user caused and can fix; ``message`` is one line naming what was wrong and what is allowed."""

    title = "Request refused"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class JobNotFound(ServiceError):
    title = "Job not found"


class NotYourJob(ServiceError):
    title = "Not your job"


class JobNotReady(ServiceError):
    """A button on a job that has not finished (or failed): there is no image to act on yet."""

    title = "Job not ready"


class InvalidRequest(ServiceError):
    """A button index, setting or option the service does not accept."""

    title = "Invalid request"


class QueueFull(ServiceError):
    title = "Queue full"


class CreditsExhausted(ServiceError):
    title = "Credits exhausted"


class DailyCapReached(ServiceError):
    title = "Daily limit reached"


class RelaxNotAllowed(ServiceError):
    title = "Relax mode not available"


class ChannelNotAllowed(ServiceError):
    title = "Not in this channel"


class QueueUnavailable(ServiceError):
    """The job could not be queued (Redis unreachable); it was failed and nothing was charged."""

    title = "Queue unavailable"


class PromptRefused(ServiceError):
    """The server's moderation refused the prompt (or the user is banned or timed out); audited, nothing charged."""

    title = "Prompt refused"

    def __init__(self, message: str, *, refusal_id: int | None = None) -> None:
        super().__init__(message)
        self.refusal_id = refusal_id  # the audit row of a policy refusal: what an Appeal button carries


class RateLimited(ServiceError):
    """Too many commands or presses too fast (``queue.ratelimit``); nothing was queued or charged."""

    title = "Slow down"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
