from __future__ import annotations

from pathlib import Path

import pytest

from closeloop.db.migrate import MIGRATIONS_DIR, MigrationError, load_migrations


def test_committed_migrations_are_ordered_and_unique() -> None:
    migrations = load_migrations()
    versions = [m.version for m in migrations]
    assert versions == sorted(versions)
    assert versions[0] == "0001"
    assert all(path.name[:4].isdigit() for path in MIGRATIONS_DIR.glob("*.sql"))


def test_duplicate_versions_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 2;")
    with pytest.raises(MigrationError, match="duplicate"):
        load_migrations(tmp_path)


def test_unnumbered_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="must start with a number"):
        load_migrations(tmp_path)
