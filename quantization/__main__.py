import os

# Timings on a shared CPU: torch's OpenMP threads must not spin while they wait (they steal the cores
# the other variants are timed on); set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .cli import main  # noqa: E402

raise SystemExit(main())
