"""``python -m vae_np``: see vae_np.cli."""
from .cli import main

raise SystemExit(main())
