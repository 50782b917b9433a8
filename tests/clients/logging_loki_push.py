#!/usr/bin/env python3
"""Pushes log lines to a Loki push endpoint with the real python-logging-loki handler (JSON,
Loki push v1 format), for strata's black-box tests (installed into .peers/venv by
scripts/install-peers.sh).

    logging_loki_push.py --url http://127.0.0.1:PORT/loki/api/v1/push --lines N
                         [--tenant T] [--app APP]

The handler posts one request per record: stream {severity="info"|"warning",
logger="strata-test", app=APP}, line `python line <i>`. Odd lines are warnings. The handler
has no header option, so X-Scope-OrgID goes on its requests.Session. The handler reports a
non-204 answer through logging's handleError, which is recorded here: exit 1 if any push
failed. Prints a JSON summary line on stdout.
"""

import argparse
import json
import logging
import sys

import logging_loki


class RecordingLokiHandler(logging_loki.LokiHandler):
    failures = []

    def handleError(self, record):
        self.failures.append(f"{record.getMessage()}: {sys.exc_info()[1]}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--lines", type=int, default=10)
    p.add_argument("--tenant", default="")
    p.add_argument("--app", default="python-test")
    args = p.parse_args()

    handler = RecordingLokiHandler(url=args.url, tags={"app": args.app}, version="1")
    session = handler.emitter.session
    session.trust_env = False  # no proxies from the environment: the target is loopback
    if args.tenant:
        session.headers["X-Scope-OrgID"] = args.tenant
    logger = logging.getLogger("strata-test")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    for i in range(args.lines):
        if i % 2:
            logger.warning("python line %d", i)
        else:
            logger.info("python line %d", i)
    handler.close()
    print(json.dumps({"lines": args.lines, "failures": handler.failures}), flush=True)
    if handler.failures:
        print("python-logging-loki push failed: " + "; ".join(handler.failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
