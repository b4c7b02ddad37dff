"""MLproject entry point `pretrain`: parse the parameters, then hand over to `mlops pretrain`."""

import sys

from mlops.cli import main

if __name__ == "__main__":
    sys.exit(main(["pretrain", *sys.argv[1:]]))
