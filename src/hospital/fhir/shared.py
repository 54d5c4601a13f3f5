"""Where the FHIR material shared with every developer and CI lives: ``../shared`` beside the
project root (referenced in place, never copied into the project)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

SAMPLES_RELATIVE = Path("samples") / "fhir-synthea"
SAMPLES_ENV_VAR = "FHIR_SAMPLES_DIR"


def shared_dir(root: Path) -> Path:
    return root.parent / "shared"


def samples_dir(root: Path, env: Mapping[str, str] | None = None) -> Path:
    """The Synthea-generated R4 transaction bundles used by tests and the benchmark:
    ``$FHIR_SAMPLES_DIR`` or ``<root>/../shared/samples/fhir-synthea``."""
    override = (os.environ if env is None else env).get(SAMPLES_ENV_VAR)
    if override:
        return Path(override)
    return shared_dir(root) / SAMPLES_RELATIVE
