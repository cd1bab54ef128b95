"""The admission guard: a validating webhook that blocks risky changes while an incident is open.

Domain layer, beside ``bot.domain.slo`` (it imports neither incidents nor chat).  Public modules:
``review`` (an AdmissionReview in, a decision out), ``decide`` (the rules), ``policy`` (the risk
list), ``breaker`` (the mass-deletion circuit breaker), ``count_store`` (the breaker's counts,
shared by replicas), ``exceptions`` (people allowed through a freeze) and ``state`` (what the guard
reads of the store: open incidents, the freeze flag).
"""

__all__ = ["breaker", "count_store", "decide", "exceptions", "policy", "review", "state"]
