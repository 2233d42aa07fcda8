"""The rule catalogue, one module per area; importing this package registers every rule."""

from bastion.compliance._rules import accounts, crypto, files, host, image, packages, secrets
from bastion.compliance._rules._context import Context
from bastion.compliance._rules._registry import RULES

__all__ = ["RULES", "Context", "accounts", "crypto", "files", "host", "image", "packages", "secrets"]
