"""An example third-party junkdna compression method, registered in the ``junkdna.methods`` group."""

from junkdna_example_plugin.ria import RIA, RIAParams, relative_importance

__all__ = ["RIA", "RIAParams", "relative_importance"]
