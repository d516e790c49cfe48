"""nbval runs the shared notebooks as a reader would: replayed answers, a fresh demo database.

The kernels nbval starts inherit this process's environment, so it is set here, when pytest
collects this folder: a throwaway ``NEXUS_HOME`` (the embedded database is created and seeded
with the default demo data by the first notebook that needs it) and no model credentials, so
each notebook's first cell replays its cassette. pytest runs the notebooks in file-name order,
the order their cassettes were recorded in (``record.py``).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from nexusleads_lab.db.embedded import stop_embedded

_home = Path(tempfile.mkdtemp(prefix="nexus-notebooks-"))
for _var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "NEXUS_REPLAY", "NEXUS_RECORD", "DATABASE_URL",
             "NEXUS_AGENT_DATABASE_URL", "NEXUS_MODEL"):  # fmt: skip
    os.environ.pop(_var, None)
os.environ.update(NEXUS_HOME=str(_home), NEXUS_USER="analyst", NEXUS_ORG="acme-analytics")


@atexit.register
def _cleanup() -> None:
    stop_embedded(_home / "pgdata")
    shutil.rmtree(_home, ignore_errors=True)
