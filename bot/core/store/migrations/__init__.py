"""Alembic migrations of the bot's schema (applied by ``bot.core.store.migrate``); nothing imports them."""

__all__: list[str] = []
