"""`python -m extended_runtime` is `xrs`."""

from ._cli import main

if __name__ == "__main__":
    main()
