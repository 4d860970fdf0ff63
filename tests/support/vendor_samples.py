"""Where the shared vendor sample corpus is: `CLOSELOOP_VENDOR_SAMPLES`, else a
`shared/reference/vendor-samples` folder beside the repository or one of its ancestors.

The corpus is real public vendor events kept outside the repository. A missing corpus fails the tests
that need it, with this message; they never skip.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def vendor_samples_dir() -> Path:
    configured = os.environ.get("CLOSELOOP_VENDOR_SAMPLES")
    if configured:
        return Path(configured)
    for parent in REPO_ROOT.parents:
        candidate = parent / "shared" / "reference" / "vendor-samples"
        if candidate.is_dir():
            return candidate
    raise AssertionError(
        "the shared vendor samples are missing: set CLOSELOOP_VENDOR_SAMPLES, or put shared/reference/vendor-samples "
        "beside the repository"
    )
