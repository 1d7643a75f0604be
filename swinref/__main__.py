import sys

from .cli import main

if __name__ == "__main__":  # Dask's spawned workers import the main module again; do not rerun then
    sys.exit(main())
