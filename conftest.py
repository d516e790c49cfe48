"""nbval runs the shared notebooks as a reader would: replayed answers, a fresh demo database.

The kernels nbval starts inherit this process's environment, so it is set when pytest first
collects a notebook: a throwaway ``NEXUS_HOME`` (the embedded database is created and seeded
with the default demo data by the first notebook that needs it) and no model credentials, so
each notebook's first cell replays its cassette (``notebooks/.cassettes``). pytest runs the
notebooks in file-name order, the order their cassettes were recorded in
(``scripts/record_notebooks.py``). It lives here, not beside the notebooks, so the notebook
folder holds only notebooks.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_home: Path | None = None


def pytest_collect_file(file_path: Path, parent):
    global _home
    if file_path.suffix != ".ipynb" or _home is not None:
        return None
    _home = Path(tempfile.mkdtemp(prefix="nexus-notebooks-"))
    for var in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "NEXUS_REPLAY",
        "NEXUS_RECORD",
        "DATABASE_URL",
        "NEXUS_AGENT_DATABASE_URL",
        "NEXUS_MODEL",
    ):
        os.environ.pop(var, None)
    os.environ.update(NEXUS_HOME=str(_home), NEXUS_USER="analyst", NEXUS_ORG="acme-analytics")
    atexit.register(_cleanup, _home)
    return None


def _cleanup(home: Path) -> None:
    from nexusleads_lab.db.embedded import stop_embedded

    stop_embedded(home / "pgdata")
    shutil.rmtree(home, ignore_errors=True)
