"""`python -m lnexp` is the same as the `lnexp` command."""

from lnexp.cli import main

if __name__ == "__main__":
    main()
