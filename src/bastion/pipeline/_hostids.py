"""The sandbox's host ids, kept importable here for the pipeline's modules: they live in
:mod:`bastion.sandbox`, which image tests and source builds share."""

from bastion.sandbox import HOST_ID_BASE, HOST_ID_COUNT, give_to_sandbox, host_owner, map_ids

__all__ = ["HOST_ID_BASE", "HOST_ID_COUNT", "give_to_sandbox", "host_owner", "map_ids"]
