"""PagerDuty: the Events API v2 (trigger, resolve) and webhooks v3 (signed incident events)."""

__all__ = ["events", "webhooks"]
