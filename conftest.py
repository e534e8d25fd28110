"""Repository-level pytest configuration: nothing here; the plugin is `junkdna_core.pytest_plugin.plugin`."""
