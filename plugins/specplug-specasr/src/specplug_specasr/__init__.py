"""specplug-specasr: SpecASR for Whisper speech recognition (see the proposer module)."""
