"""`python -m lnexp` is the same as the `lnexp` command."""

from lnexp.entry import main

if __name__ == "__main__":
    main()
