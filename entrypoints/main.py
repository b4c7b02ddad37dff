"""MLproject entry point `main`: parse the parameters, then hand over to `mlops main`."""

import sys

from mlops.cli import main

if __name__ == "__main__":
    sys.exit(main(["main", *sys.argv[1:]]))
