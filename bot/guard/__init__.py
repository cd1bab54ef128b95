"""The admission guard: a validating webhook that blocks risky changes while an incident is open."""
