"""The playbook engine: declare, plan, approve, execute, verify, roll back, resume.

``build_engine`` wires the pieces for the composition root; ``Engine.service``
is the API for chat, CLI and diagnosis (``propose``), ``Engine.worker`` the
background worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.domain.incidents.service import Incidents
from bot.core.plugins import Extra
from bot.core.store.db import Database
from playbooks.engine.declaration import RISKS, Plan, PlanContext, Playbook, Step, StepContext, Verdict
from playbooks.engine.execution import Executor
from playbooks.engine.params import REQUIRED, Param
from playbooks.engine.registry import Registry, default_registry
from playbooks.engine.service import Decision, PlaybookService
from playbooks.engine.toolbox import Toolbox
from playbooks.engine.worker import PlaybookWorker


@dataclass
class Engine:
    service: PlaybookService
    executor: Executor
    worker: PlaybookWorker
    registry: Registry
    tools: Toolbox


def build_engine(db: Database, settings: Settings, clock: Clock, incidents: Incidents, *,
                 registry: Registry | None = None, tools: Toolbox | None = None) -> Engine:
    registry = registry if registry is not None else default_registry()
    tools = tools or Toolbox(settings)
    service = PlaybookService(db, settings, clock, incidents, registry, tools)
    executor = Executor(db, settings, clock, incidents, registry, tools)
    return Engine(service, executor, PlaybookWorker(executor), registry, tools)


# the capabilities the engine offers other plugins (bot.chat.handlers_playbooks puts them)
PLAYBOOKS: Extra[PlaybookService] = Extra("playbooks", "bot.chat.handlers_playbooks")
PLAYBOOK_ENGINE: Extra[Engine] = Extra("playbook_engine", "bot.chat.handlers_playbooks")


__all__ = [
    "PLAYBOOKS", "PLAYBOOK_ENGINE",
    "Decision", "Engine", "Executor", "Param", "Plan", "PlanContext", "Playbook", "PlaybookService",
    "PlaybookWorker", "REQUIRED", "RISKS", "Registry", "Step", "StepContext", "Toolbox", "Verdict",
    "build_engine", "default_registry",
    # modules read directly: the declaration types, the docs generator, the metrics, params, the run table,
    # the steps' waiting loop
    "declaration", "docs", "metrics", "params", "run_lifecycle", "waiting",
]
