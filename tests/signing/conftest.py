"""The signing fixtures live in ``fixtures.py`` (registered for every test by ``tests/conftest.py``)."""
from tests.signing.fixtures import CORPUS, COMMUNE, issue_credential, root_pem  # noqa: F401 - re-exported
