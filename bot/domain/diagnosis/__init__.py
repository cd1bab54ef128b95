"""Diagnosis: the "locate in 5 minutes" stage, as YAML procedures (SOPs) bound to playbooks.

One idea per module:

* ``model``       Procedure, Check, Node, Conclusion (what a loaded procedure is)
* ``loader``      the procedure grammar: YAML text to ``Procedure`` or every problem with its line
* ``validation`` YAML composed with lines; the collecting validator; ``Problem``, ``ProcedureError``
* ``library``    procedure files and directories; ``Library`` (load, get, choose)
* ``templating``  the sandboxed jinja2 environment; which checks a template reads
* ``checks``      the check kinds (promql, kubernetes, etcd, http), declared once
* ``ports``       the Protocols the checks talk through (``ClusterAccess``, ``Backends``)
* ``runner``      run checks (failures are *unknown*), walk the tree, fill in the conclusion
* ``service``     ``Diagnoser`` (timeline, lifecycle, cause, proposal, escalation), ``DiagnosisWorker``
* ``explain``     text views for ``incident-bot sop``
* ``fakes``       FakeEtcd, FakeHttp for tests

The real clients are wired in ``bot.compose.app.diagnosis`` (the composition root).  Domain layer: above
``bot.domain.incidents`` and ``bot.domain.slo``, below ``bot.domain.export``.  Public modules are those in ``__all__``;
``model``, ``checks`` and ``fakes`` are the package's own (and the tests').
"""

__all__ = ["changes", "explain", "library", "loader", "ports", "runner", "service", "t0_evidence", "templating",
           "validation"]
