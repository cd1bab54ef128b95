#!/usr/bin/env python3
"""Write rules-fast.yml from rules.yml: the same alerts for tests and the sandbox.

Scrape and evaluation every 1 s, ``for: 1s`` (``0s`` for the rules in ``FAST_FOR``) and rate
windows (and offsets) of seconds, so a killed etcd member reaches the bot in about 2 s (research
part D.1) instead of ~40 s.  Run it after editing rules.yml; tests/detect checks the two agree.

    python deploy/prometheus/make_fast_rules.py [rules.yml] [rules-fast.yml]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

# the SLO burn-rate windows shrink 60-fold as well (1 h -> 1 min): a burn is paged in seconds
WINDOWS = {"1m": "10s", "5m": "10s", "10m": "1m", "30m": "30s", "1h": "1m", "2h": "2m", "6h": "6m",
           "1d": "24m", "3d": "72m"}
# rules that fire at the first evaluation that sees them (``for: 0s``): their expression already asks
# for more than one scrape's noise, and a 1 s ``for`` would add a whole evaluation to what the sandbox's
# client-flood drill must announce within 2.5 s of the flood's start
FAST_FOR = {"KubeAPIFlowControlRejections": "0s"}
HEADER = """\
# GENERATED from rules.yml by make_fast_rules.py: do not edit by hand.
# The same alerts for tests and the sandbox: evaluation every 1 s, `for: 1s`, rate windows
# of seconds (use with scrape_interval 1s).  A killed etcd member reaches the bot in ~2 s.
"""


def fast(rules: dict) -> dict:
    out = {"groups": []}
    for group in rules["groups"]:
        new_group = {"name": group["name"] + "-fast", "interval": "1s", "rules": []}
        for rule in group["rules"]:
            rule = dict(rule)
            rule["expr"] = re.sub(r"\[(\d+[mhd])\]", lambda m: f"[{WINDOWS.get(m.group(1), m.group(1))}]", rule["expr"])
            rule["expr"] = re.sub(r"\boffset (\d+[mhd])\b", lambda m: f"offset {WINDOWS.get(m.group(1), m.group(1))}",
                                  rule["expr"])
            rule["for"] = FAST_FOR.get(rule.get("alert", ""), "1s")
            new_group["rules"].append(rule)
        out["groups"].append(new_group)
    return out


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    source = Path(argv[1]) if len(argv) > 1 else here / "rules.yml"
    target = Path(argv[2]) if len(argv) > 2 else here / "rules-fast.yml"
    target.write_text(HEADER + yaml.safe_dump(fast(yaml.safe_load(source.read_text())), sort_keys=False, width=120))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
