"""The bundled demo target: a support-triage model server with two versions."""
