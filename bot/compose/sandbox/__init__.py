"""The sandbox and the fault drills: a real local control plane, a fault, the bot recovering.

A composition root like ``bot.compose.app`` (nothing below imports it).  Public modules: ``sandbox`` (the
interactive sandbox), ``drill`` (one fault drill and its scorecard), ``scenarios`` (the fault
library) and ``settings`` (the bot's settings for a sandbox).  The rest are the parts: processes,
PKI, kube-apiservers, the customer cluster, loopback stand-ins.
"""

__all__ = ["drill", "sandbox", "scenarios", "settings"]
