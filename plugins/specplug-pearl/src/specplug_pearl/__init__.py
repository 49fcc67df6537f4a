"""PEARL as a specplug plugin: :class:`specplug_pearl.decoder.PearlDecoder`."""
