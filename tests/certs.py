"""Self-signed certificates for TLS tests, made with the `openssl` command (the
`cryptography` package is not a dependency)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path


def make_cert(directory: Path, name: str, *sans: str) -> Cert:
    """A self-signed certificate (its own CA) for `sans`, e.g. "DNS:localhost", "IP:127.0.0.1"."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert),
            "-addext", "subjectAltName=" + ",".join(sans),
            "-addext", "basicConstraints=critical,CA:TRUE",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return Cert(cert, key)
