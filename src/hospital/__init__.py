"""Hospital data platform: a seeded synthetic hospital and the pipelines that land its data."""

__version__ = "0.1.0"
