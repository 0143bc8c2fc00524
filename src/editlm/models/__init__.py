"""Models: tokenizers, model presets and loading of local Hugging Face checkpoints."""
