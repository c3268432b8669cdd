"""Training: config, loop, checkpoints. Importing this package does not import torch; its modules do."""
