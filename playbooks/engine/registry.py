"""The playbook registry: name -> declaration.

The shipped playbooks live in modules listed in ``playbooks.library.MODULES``;
each module exposes ``PLAYBOOK`` (or ``PLAYBOOKS``).  Tests and extensions
build their own ``Registry`` or ``register`` into the default one.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from bot.core.errors import NotFound
from playbooks.engine.declaration import Playbook


class Registry:
    def __init__(self, playbooks: Iterable[Playbook] = ()) -> None:
        self._by_name: dict[str, Playbook] = {}
        for playbook in playbooks:
            self.register(playbook)

    def register(self, playbook: Playbook, *, replace: bool = False) -> Playbook:
        if playbook.name in self._by_name and not replace and self._by_name[playbook.name] is not playbook:
            raise ValueError(f"a playbook named {playbook.name!r} is already registered")
        self._by_name[playbook.name] = playbook
        return playbook

    def load_modules(self, modules: Iterable[str]) -> "Registry":
        for path in modules:
            module = importlib.import_module(path)
            found = list(getattr(module, "PLAYBOOKS", ())) or [getattr(module, "PLAYBOOK")]
            for playbook in found:
                self.register(playbook)
        return self

    def get(self, name: str) -> Playbook:
        playbook = self._by_name.get((name or "").strip().lower())
        if playbook is None:
            known = ", ".join(sorted(self._by_name)) or "none"
            raise NotFound(f"there is no playbook `{name}`; known playbooks: {known}.")
        return playbook

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def all(self) -> list[Playbook]:
        return [self._by_name[n] for n in self.names()]

    def __contains__(self, name: str) -> bool:
        return name in self._by_name


def default_registry() -> Registry:
    """A registry holding every shipped playbook (``playbooks.library.MODULES``)."""
    from playbooks.library import MODULES

    return Registry().load_modules(MODULES)
