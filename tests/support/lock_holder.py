"""Hold a data dir's writer lock (``lock``) or the whole writer, lock and open catalog
(``writer``), for SECONDS, in a process of its own: another Replay process's long write, as a
test needs one. Prints ``held`` on stdout once it holds it.

    python lock_holder.py DATA_DIR SECONDS [lock|writer]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from models.settings import load_settings  # noqa: E402
from tasks.store import catalog  # noqa: E402


def main(data_dir: str, seconds: str, what: str = "lock") -> None:
    settings = load_settings(data_dir=Path(data_dir))
    with (catalog.write_lock if what == "lock" else catalog.writer)(settings):
        print("held", flush=True)
        time.sleep(float(seconds))


if __name__ == "__main__":
    main(*sys.argv[1:])
