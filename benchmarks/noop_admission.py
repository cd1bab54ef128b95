#!/usr/bin/env python3
"""The baseline of ``bench_admission.py``: the guard's stack (Starlette under uvicorn, TLS with client
certificates, the same options as ``bot/compose/app/admission.py``'s listener) answering every
AdmissionReview "allowed" after parsing it, and deciding nothing.

    python benchmarks/noop_admission.py PORT CERT KEY CLIENT_CA
"""

from __future__ import annotations

import json
import ssl
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


async def admission(request: Request) -> Response:
    review = json.loads(await request.body())
    return JSONResponse({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                         "response": {"uid": review["request"]["uid"], "allowed": True}})


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


if __name__ == "__main__":
    port, cert, key, client_ca = sys.argv[1:5]
    app = Starlette(routes=[Route("/admission/{cluster}", admission, methods=["POST"]), Route("/healthz", healthz)])
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning", lifespan="off", log_config=None,
                ssl_certfile=cert, ssl_keyfile=key, ssl_ca_certs=client_ca, ssl_cert_reqs=ssl.CERT_REQUIRED)
