"""``python -m verihook.cli``: the same as the installed ``verihook`` script."""

from __future__ import annotations

from verihook.cli.app import main

if __name__ == "__main__":
    main()
