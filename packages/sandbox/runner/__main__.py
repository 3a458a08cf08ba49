"""In-container runner of @research/sandbox, shipped as this directory and run as
`python3 -B -E -s /opt/research/runner '<config json>'` (see sandbox_runner/main.py)."""
import sys

from sandbox_runner.main import main

if __name__ == "__main__":
    sys.exit(main())
