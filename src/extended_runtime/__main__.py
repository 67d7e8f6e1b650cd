"""`python -m extended_runtime` is `xrs`."""

from ._cli.main import main

if __name__ == "__main__":
    main()
