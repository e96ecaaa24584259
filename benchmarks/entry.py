"""How every benchmark script runs its `main`: a problem the user can fix (an
`EcgPlatformError`: a wrong --data-dir, an unknown record; an `OSError`: a file named that is
not there) ends it with one line, as the CLI's commands do, instead of a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

from ecg_platform.errors import EcgPlatformError


def run_main(main: Callable[[], object]) -> None:
    """Call `main`; exit with status 1 and `error: <message>` on an `EcgPlatformError` or
    `OSError`."""
    try:
        main()
    except (EcgPlatformError, OSError) as exc:
        sys.exit(f"error: {exc}")
