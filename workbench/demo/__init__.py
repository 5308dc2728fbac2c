"""The bundled demo target: a support-triage model server with two versions, and its app."""

from pathlib import Path

PINS = Path(__file__).parent / "pins.yaml"
