"""Training: pretraining and loss-masked fine-tuning."""
