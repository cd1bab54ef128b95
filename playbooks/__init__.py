"""Remediation playbooks and the engine that runs them (plan -> approve -> execute -> verify).

Public API (see README "Playbooks"):

* declare: ``Playbook``, ``Step``, ``Param``, ``Plan``, ``Verdict`` (``playbooks.engine``);
  ship it by listing its module in ``playbooks.library.MODULES``.
* propose a run: ``bot.services.extras.need(playbooks.engine.PLAYBOOKS).propose(incident, playbook, params,
  requested_by="diagnosis")`` (a ``PlaybookService``).
"""

__all__ = ["backups", "engine", "library"]
