"""`python -m depot.services.allinone`: the same as `depot server`."""

from __future__ import annotations

import logging

from depot.services.common import serving, telemetry
from depot.services.common.config import Config

from .app import serve

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format=telemetry.LOG_FORMAT)
    telemetry.setup("depot")
    serving.run(serve(Config.from_env()))
