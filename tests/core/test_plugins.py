"""The extension seam: capabilities shared by typed keys, and a clear answer when one is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.compose.app.bot import build_bot
from bot.core.config import Settings
from bot.domain.diagnosis.service import DIAGNOSER, Diagnoser
from bot.core.plugins import Extra, Extras, MissingCapability
from playbooks.engine import PLAYBOOKS, PlaybookService


def test_a_capability_is_found_by_its_key_and_a_missing_one_names_its_extension() -> None:
    extras = Extras()
    key: Extra[list[str]] = Extra("names", "tests.core.test_plugins")
    assert extras.find(key) is None and extras.find(key, ["fallback"]) == ["fallback"]
    with pytest.raises(MissingCapability, match="the names capability is not registered: "
                                                "tests.core.test_plugins is not among the bot's extensions"):
        extras.need(key)
    extras.put(key, ["a"])
    assert extras.need(key) == ["a"] and "names" in extras  # still a mapping by name for start-up checks


def test_the_default_extensions_offer_the_keys_their_users_need(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'bot.db'}")
    bot = build_bot(settings)
    try:
        assert isinstance(bot.services.extras.need(DIAGNOSER), Diagnoser)
        assert isinstance(bot.services.extras.need(PLAYBOOKS), PlaybookService)
    finally:
        bot.close()

