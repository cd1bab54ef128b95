"""Alembic migrations of the bot's schema (applied by ``bot.store.migrate``); nothing imports them."""

__all__: list[str] = []
