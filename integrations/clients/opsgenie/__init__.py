"""Opsgenie: the Alert API (create, close) and its outgoing Webhook integration (alert actions)."""

__all__ = ["alerts", "webhooks"]
