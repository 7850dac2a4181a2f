"""Fine-tuning role-play models: training data, one renderer shared with chat, LoRA SFT and DPO, export."""
