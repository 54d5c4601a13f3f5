"""Where the FHIR material shared with every developer and CI lives: ``../shared`` beside the
project root (referenced in place, never copied into the project)."""

from __future__ import annotations

from pathlib import Path

SAMPLES_RELATIVE = Path("samples") / "fhir-synthea"


def shared_dir(root: Path) -> Path:
    return root.parent / "shared"


def samples_dir(root: Path) -> Path:
    """The Synthea-generated R4 transaction bundles used by tests and the benchmark."""
    return shared_dir(root) / SAMPLES_RELATIVE
