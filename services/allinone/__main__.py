"""`python -m depot.services.allinone`: the same as `depot server`."""

from __future__ import annotations

import logging
import sys

from depot.services.common import serving, telemetry
from depot.services.common.config import Config

from .app import WORKER_FLAG, serve, serve_worker

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format=telemetry.LOG_FORMAT)
    telemetry.setup("depot")
    config = Config.from_env()
    serving.run(serve_worker(config) if sys.argv[1:] == [WORKER_FLAG] else serve(config))
