"""Adapters of chat platforms, above bot.chat: ``slack`` turns the chat layer's neutral
messages into Block Kit and Slack's requests into chat commands.
"""

__all__ = ['slack']
