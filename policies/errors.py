from core.errors import ConfigurationError, InvalidInput, NotFound


class ProfileInvalid(ConfigurationError):
    code = "profile_invalid"


class UnknownProfile(NotFound):
    code = "unknown_profile"


class UnknownUnit(InvalidInput):
    """A commune or province code that the catalogue does not know on the given date."""

    code = "unknown_admin_unit"


class CatalogueInvalid(InvalidInput):
    code = "catalogue_invalid"


class PolicyInvalid(ConfigurationError):
    """A policy file that does not parse or validate; names the file and the reason."""

    code = "policy_invalid"


class UnknownDocumentType(InvalidInput):
    code = "unknown_document_type"
