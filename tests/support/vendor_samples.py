"""Where the vendor sample corpus is: `tests/data/vendor-samples/` inside the repository.

The corpus is real public vendor events, copied as data; `SOURCES.md` beside the files names the
repository, path and commit each line came from. Tests never read outside the repository.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VENDOR_SAMPLES = REPO_ROOT / "tests" / "data" / "vendor-samples"


def vendor_samples_dir() -> Path:
    return VENDOR_SAMPLES
