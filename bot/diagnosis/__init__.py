"""Diagnosis: the "locate in 5 minutes" stage, as YAML procedures (SOPs) bound to playbooks.

One idea per module:

* ``model``       Procedure, Check, Node, Conclusion (what a loaded procedure is)
* ``loader``      parse/validate YAML with file:line problems; ``Library`` (load, get, choose)
* ``templating``  the sandboxed jinja2 environment; which checks a template reads
* ``checks``      the check kinds (promql, kubernetes, etcd, http), declared once
* ``ports``       the Protocols the checks talk through (``ClusterAccess``, ``Backends``)
* ``runner``      run checks (failures are *unknown*), walk the tree, fill in the conclusion
* ``service``     ``Diagnoser`` (timeline, lifecycle, cause, proposal, escalation), ``DiagnosisWorker``
* ``explain``     text views for ``incident-bot sop``
* ``fakes``       FakeEtcd, FakeHttp for tests

The real clients are wired in ``bot.app.diagnosis`` (the composition root).
"""
