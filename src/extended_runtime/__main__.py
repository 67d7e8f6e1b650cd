"""`python -m extended_runtime` is `xrs`."""

from ._cli.entry import main

if __name__ == "__main__":
    main()
