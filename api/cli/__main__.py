"""``python -m api.cli …`` runs ``kyso …`` (the tests start their servers this way)."""
from . import main

main()
