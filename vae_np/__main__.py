"""``python -m vae_np``: see vae_np.cli."""
from .cli import main

if __name__ == "__main__":     # not on import (the docs' API pages import every module)
    raise SystemExit(main())
