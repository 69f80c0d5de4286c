#!/usr/bin/env python3
"""Generates the student notebooks from the instructor notebooks.

    python notebooks/build_student.py          # writes notebooks/NN_*.ipynb
    python notebooks/build_student.py --check  # only compares; exit 1 if stale
    python notebooks/build_student.py --out DIR

``--out DIR`` writes the **student bundle**: the student notebooks, the help
page ``AYUDA.md`` and the images the notebooks show. Every relative link in
it resolves inside it (tests/test_notebooks.py checks that), so nothing sends
a student to the instructor README or to ``source/``.

Each ``source/NN_*.ipynb`` (``NN`` may carry a letter: ``00a`` is the Rust
on-ramp that goes before ``00``) (solutions between ``// BEGIN SOLUTION`` and
``// END SOLUTION``, nbgrader metadata) goes through the same nbgrader
preprocessors as ``nbgrader generate_assignment`` (minus the database and
header steps), configured by ``nbgrader_config.py``: solutions become
``todo!()``, outputs are cleared, graded cells are locked and checksummed.
Then every graded self-check cell gets the ``raises-exception`` tag: in the
student version it fails (the stub panics) until the exercise is solved.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
from nbgrader.preprocessors import (
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    ClearOutput,
    ClearSolutions,
    ComputeChecksums,
    LockCells,
)
from traitlets.config.loader import PyFileConfigLoader

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "source"
FAILS_TAG = "raises-exception"
# A lesson file: two digits, an optional letter, "_", a name.
LESSON_GLOB = "[0-9][0-9]*_*.ipynb"
LESSON_NAME = re.compile(r"^[0-9]{2}[a-z]?_[^/]*\.ipynb$")
# What goes into the student bundle besides the notebooks.
HELP_PAGE = "AYUDA.md"
IMAGE_SUFFIXES = {".png", ".svg", ".jpg", ".jpeg", ".gif", ".webp"}

# The order of nbgrader's GenerateAssignment converter.
PIPELINE = [
    LockCells,
    ClearSolutions,
    ClearOutput,
    CheckCellMetadata,
    ComputeChecksums,
    ClearHiddenTests,
    ClearMarkScheme,
    ComputeChecksums,
    CheckCellMetadata,
]


def load_config():
    """The traitlets config in ``nbgrader_config.py``."""
    return PyFileConfigLoader("nbgrader_config.py", path=str(HERE)).load_config()


def is_lesson(path: Path) -> bool:
    return bool(LESSON_NAME.match(path.name))


def lessons() -> list[Path]:
    """The instructor notebooks, sorted by file name."""
    return sorted(p for p in SOURCE.glob(LESSON_GLOB) if is_lesson(p))


def bundle_extras() -> list[Path]:
    """The help page and the images under ``notebooks/`` (not ``source/``)."""
    images = [p for p in HERE.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
              and SOURCE not in p.parents and ".ipynb_checkpoints" not in p.parts]
    return [HERE / HELP_PAGE] + sorted(images)


def is_graded(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("grade"))


def to_text(nb) -> str:
    """The committed form of a notebook (stable key order, final newline)."""
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def student_version(source: Path, config=None) -> str:
    """The student notebook generated from one instructor notebook, as text."""
    config = config or load_config()
    nb = nbformat.read(source, as_version=4)
    resources = {"metadata": {"name": source.stem, "path": str(source.parent)}}
    for step in PIPELINE:
        nb, resources = step(config=config).preprocess(nb, resources)
    for cell in nb.cells:
        if cell.cell_type == "code" and is_graded(cell):
            tags = cell.metadata.setdefault("tags", [])
            if FAILS_TAG not in tags:
                tags.append(FAILS_TAG)
    nbformat.validate(nb)
    return to_text(nb)


def build(out: Path) -> list[Path]:
    """Writes the student bundle into ``out``: every student notebook, then
    the help page and the images; returns the notebooks' paths."""
    config = load_config()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for source in lessons():
        target = out / source.name
        target.write_text(student_version(source, config), encoding="utf-8")
        written.append(target)
    for extra in bundle_extras():
        target = out / extra.relative_to(HERE)
        if target.resolve() != extra.resolve():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(extra, target)
    return written


def stale(out: Path = HERE) -> list[str]:
    """Names of student notebooks in ``out`` that differ from a fresh build."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = build(Path(tmp))
        bad = []
        for f in fresh:
            committed = out / f.name
            if not committed.exists() or committed.read_bytes() != f.read_bytes():
                bad.append(f.name)
        expected = {f.name for f in fresh}
        extra = [p.name for p in out.glob(LESSON_GLOB) if is_lesson(p) and p.name not in expected]
        return bad + extra


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output directory")
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        bad = stale(args.out)
        if bad:
            print("student notebooks out of date (run notebooks/build_student.py):",
                  ", ".join(bad), file=sys.stderr)
            return 1
        print("student notebooks up to date")
        return 0
    for path in build(args.out):
        print("wrote", path)
    if args.out.resolve() != HERE:
        print("copied", ", ".join(str(p.relative_to(HERE)) for p in bundle_extras()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
