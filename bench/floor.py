"""The floor: a bare Starlette endpoint answering every request with one constant JSON body.

It is what the framework and server cost on their own, so the fake's numbers are quoted as a
ratio to it. It runs under uvicorn exactly as the fake does: one worker, uvloop, httptools, no
access log.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# About the size of the fake's success body, so both send alike.
BODY = (
    b'{"data":[{"url":"http://127.0.0.1:8000/files/AVsiYmxhY2tmb3Jlc3RsYWJzL2ZsdXgtMiIsIkEgVC1S'
    b'ZXgiLDE0NzIsNTEyLCJwbmciLDQyLDBdzK1x.png","b64_json":null}],"meta":{"usage":'
    b'{"credits_used":25200}}}'
)


async def constant(request: Request) -> Response:
    return Response(BODY, media_type="application/json; charset=utf-8")


app = Starlette(routes=[Route("/", constant, methods=["GET", "POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
