#!/usr/bin/env python3
"""The comparison server of ``bench_ingest.py``: the same stack (Starlette under uvicorn) doing nothing.

    python benchmarks/noop_server.py PORT
"""

from __future__ import annotations

import sys

import uvicorn

from processes import noop_app

if __name__ == "__main__":
    # the same uvicorn options as ``incident-bot serve`` (bot/compose/app/serve.py)
    uvicorn.run(noop_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="off",
                log_config=None)
