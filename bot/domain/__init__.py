"""The domain layer, in contract order: ``export`` > ``diagnosis`` > ``incidents`` >
``slo`` | ``guard``.  Imports integrations.clients and bot.core; never chat or Slack.
"""

__all__ = ['diagnosis', 'export', 'guard', 'incidents', 'slo']
