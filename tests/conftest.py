import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Throwaway PostgreSQL/PostGIS cluster fixtures (pg_cluster, pg_dsn): see tests/pg.py.
from tests.pg import pg_cluster, pg_dsn  # noqa: E402,F401

import os  # noqa: E402
import tempfile  # noqa: E402

# The embedded default's working files (the sample's working copy, generated keys) go to a
# throwaway folder, never to the developer's ~/.local/share/minsheng.
os.environ.setdefault("MINSHENG_HOME", tempfile.mkdtemp(prefix="minsheng-home-"))
