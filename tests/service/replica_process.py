"""A replica in a process of its own, for the test that kills one: the app on uvicorn, configured from the
`FNO_*` environment, whose rollouts block forever once started (it announces that by writing a file).

    python -m tests.service.replica_process STARTED_FILE PORT
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> None:
    import uvicorn

    from service.app import create_app
    from service.deps import get_forecast_function
    from service.settings import ServiceSettings

    started, port = Path(argv[0]), int(argv[1])

    def stuck(*_args: Any, **_kwargs: Any) -> Any:
        started.write_text("computing")
        threading.Event().wait()  # until the process is killed

    async def dependency() -> Any:
        return stuck

    app = create_app(ServiceSettings())
    app.dependency_overrides[get_forecast_function] = dependency
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
