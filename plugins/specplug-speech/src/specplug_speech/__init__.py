"""specplug-speech: speculative decoding for Whisper speech recognition (see the plugin module)."""
