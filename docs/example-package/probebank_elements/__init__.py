"""An example dataset package for probebank: the plugin is `probebank_elements.plugin`."""
